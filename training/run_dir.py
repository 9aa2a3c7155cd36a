"""The run directory of one training run: the one place that names its files (RunDir, for
whoever writes or reads them: the pipeline, its callbacks, evaluate, export, tune, init_from),
claimed by one process at a time, never modified once finished, and not left behind empty
when the run fails before it starts training."""

import contextlib
import fcntl
import os
import shutil
from datetime import datetime
from pathlib import Path

from training.errors import CommandError, ConfigError, DataError, model_file_damage
from training.registry import get_app, load_config

LOCK_FILE = ".lock"
FINISHED_MARKER = "metrics.json"  # written last, after the export
TRAIN_OPTION = "--set run_dir=DIR (or leave it out for runs/<app>/<timestamp>)"


def _default_path(app):
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, suffix = Path("runs") / app / stamp, 1
    while path.exists():
        path, suffix = Path("runs") / app / f"{stamp}-{suffix}", suffix + 1
    return path


def check_reusable(path, option=TRAIN_OPTION):
    """ConfigError unless `path` can hold a new or resumed run: new, empty, or a run dir of
    ours (every claim writes LOCK_FILE first) that has not finished. A user's own directory is
    never adopted: its files could be overwritten."""
    run_dir = RunDir(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run_dir {path} is a file, not a directory; choose another {option}")
    if run_dir.is_finished():
        raise ConfigError(
            f"run_dir {path} holds a finished run ({FINISHED_MARKER}); a finished run is never "
            f"modified. Evaluate it with `python -m training evaluate --run {path}` or export it "
            f"with `python -m training export --run {path}`; to train again, choose a new {option}")
    if path.is_dir() and not run_dir.lock.exists() and any(path.iterdir()):
        raise ConfigError(f"run_dir {path} holds files that no run of ours wrote; a run dir must "
                          f"be new, empty or an interrupted run. Choose another {option}")


def share(path, option=TRAIN_OPTION):
    """Make `path` a dir of ours without locking it: for processes that write beside the one
    that claims it (a search's workers beside its chief, which may come later)."""
    check_reusable(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
        RunDir(path).lock.touch()
    except OSError as e:
        raise ConfigError(f"Cannot write {path} ({e.strerror}); choose a writable {option}") from None


def _lock(path, option):
    """An open file holding an exclusive lock on run dir `path`, or CommandError if another
    process holds it. The lock goes when the file is closed or the process dies."""
    handle = open(RunDir(path).lock, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CommandError(f"run_dir {path} is in use by {holder}; two runs in one directory "
                           f"would corrupt it. Wait for that run, or choose another {option}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
    handle.flush()
    return handle


class RunDir:
    """The files of one run directory, each named here once (as serving/layout.py names an
    export's). An app's own files (the DBN's pretrained layers, its figures) go under `path`,
    which the App hooks receive."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    @property
    def config(self):
        """The resolved config (rerun with --config)."""
        return self.path / "config.yaml"

    @property
    def metrics(self):
        """Test metrics and the run's figures; written last, so it marks a finished run."""
        return self.path / FINISHED_MARKER

    @property
    def history(self):
        """Keras' CSVLogger: one row per epoch."""
        return self.path / "history.csv"

    @property
    def backup(self):
        """The resume state while training (callbacks.AtomicBackupAndRestore)."""
        return self.path / "backup"

    @property
    def backup_metadata(self):
        """Keras' BackupAndRestore's own file in `backup`: the epoch (and our steps_done)."""
        return self.backup / "training_metadata.json"

    @property
    def checkpoints(self):
        return self.path / "checkpoints"

    @property
    def best_weights(self):
        """The weights of the best monitored epoch."""
        return self.checkpoints / "best.weights.h5"

    @property
    def model(self):
        """The trained Keras model."""
        return self.path / "model.keras"

    @property
    def tensorboard(self):
        return self.path / "tensorboard"

    @property
    def lock(self):
        return self.path / LOCK_FILE

    @property
    def training_curves(self):
        return self.path / "training_curves.png"

    @property
    def confusion_matrix(self):
        return self.path / "confusion_matrix.png"

    @property
    def mistakes_csv(self):
        return self.path / "mistakes.csv"

    @property
    def mistakes_png(self):
        return self.path / "mistakes.png"

    @property
    def gradcam(self):
        return self.path / "gradcam.png"

    @property
    def calibration(self):
        return self.path / "calibration.png"

    @property
    def report(self):
        return self.path / "report.html"

    def is_finished(self):
        return self.metrics.exists()

    def finished_problem(self):
        """Why this is not a finished run (a file missing), or None."""
        for needed in (self.config, self.model):
            if not needed.exists():
                return (f"{self.path} is not a finished run: {needed.name} is missing (train "
                        "first: python -m training train --app NAME)")
        return None


class Claim:
    """A claimed run directory; `started()` once the run has something worth keeping."""

    def __init__(self, run_dir, created):
        self.run_dir = run_dir
        self.keep = not created  # a directory that was there before is never removed

    def started(self):
        self.keep = True


@contextlib.contextmanager
def claim(configured, app, option=TRAIN_OPTION):
    """Create or reopen the run dir `configured` (default runs/<app>/<timestamp>) and lock it
    for this process; yields a Claim. `option` is how the command names another directory.
    If the block fails before `started()`, a directory this call created is removed again."""
    path = Path(configured) if configured else _default_path(app)
    check_reusable(path, option)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = _lock(path, option)
    except OSError as e:  # read-only, a parent that is a file, ...
        raise ConfigError(f"Cannot write run_dir {path} ({e.strerror}); choose a writable "
                          f"{option}") from None
    claimed = Claim(RunDir(path), created)
    try:
        yield claimed
    except BaseException:
        if not claimed.keep:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        handle.close()


def load_run(path, overrides=()):
    """(config, app, model) of the finished run in directory `path`; `overrides` as in --set."""
    import keras  # loads TensorFlow: the rest of this module does not

    run_dir = RunDir(path)
    problem = run_dir.finished_problem()
    if problem:
        raise FileNotFoundError(problem)
    config = load_config(None, run_dir.config, overrides)
    app = get_app(config.app)(config)
    try:
        model = keras.saving.load_model(run_dir.model)
    except Exception as e:  # Keras reports a torn zip as "File not found", among others
        best = run_dir.best_weights
        raise DataError(f"{run_dir.model} cannot be loaded "
                        f"({model_file_damage(run_dir.model, e)}); it is damaged or was "
                        "not written completely. Train again into a new run_dir"
                        + (f" (the best weights are in {best})" if best.exists() else "")) from None
    if app.is_multi_label():  # the thresholds the run chose on its validation split
        import json

        chosen = json.loads(run_dir.metrics.read_text()).get("thresholds") or {}
        app.thresholds = [float(chosen.get(name, 0.5)) for name in app.class_names()]
    return config, app, model
