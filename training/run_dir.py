"""The run directory of one training run: claimed by one process at a time, never modified
once finished, and not left behind empty when the run fails before it starts training."""

import contextlib
import fcntl
import os
import shutil
from datetime import datetime
from pathlib import Path

from training.errors import CommandError, ConfigError

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
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run_dir {path} is a file, not a directory; choose another {option}")
    if (path / FINISHED_MARKER).exists():
        raise ConfigError(
            f"run_dir {path} holds a finished run ({FINISHED_MARKER}); a finished run is never "
            f"modified. Evaluate it with `python -m training evaluate --run {path}` or export it "
            f"with `python -m training export --run {path}`; to train again, choose a new {option}")
    if path.is_dir() and not (path / LOCK_FILE).exists() and any(path.iterdir()):
        raise ConfigError(f"run_dir {path} holds files that no run of ours wrote; a run dir must "
                          f"be new, empty or an interrupted run. Choose another {option}")


def share(path, option=TRAIN_OPTION):
    """Make `path` a dir of ours without locking it: for processes that write beside the one
    that claims it (a search's workers beside its chief, which may come later)."""
    check_reusable(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / LOCK_FILE).touch()
    except OSError as e:
        raise ConfigError(f"Cannot write {path} ({e.strerror}); choose a writable {option}") from None


def _lock(path, option):
    """An open file holding an exclusive lock on run dir `path`, or CommandError if another
    process holds it. The lock goes when the file is closed or the process dies."""
    handle = open(path / LOCK_FILE, "a+")
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
    """A claimed run directory; `started()` once the run has something worth keeping."""

    def __init__(self, path, created):
        self.path = path
        self.created = created
        self.keep = not created

    def started(self):
        self.keep = True


@contextlib.contextmanager
def claim(configured, app, option=TRAIN_OPTION):
    """Create or reopen the run dir `configured` (default runs/<app>/<timestamp>) and lock it
    for this process; yields a RunDir. `option` is how the command names another directory.
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
    run_dir = RunDir(path, created)
    try:
        yield run_dir
    except BaseException:
        if not run_dir.keep:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        handle.close()
