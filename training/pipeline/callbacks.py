"""The callbacks every run gets: checkpoints, resume, logs, throughput, NaN guard."""

import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import time

import keras
from keras.src.saving import saving_lib

from training.errors import ConfigError
from training.pipeline.batch_norm_statistics import RecomputeBeforeValidation
from training.runtime.disk_space import require_free_space, saved_bytes

# callbacks.restore_best=auto compares epochs only on at least this many validation examples.
# On fewer, the choice is noise: on 50 Fashion-MNIST images per class (46 validation images),
# the lowest validation loss picked epoch 21 of 104 for one seed (test 74.7%), where the last
# epoch had validation accuracy 87.0% against that epoch's 80.4% (benchmarks/small_data.py);
# the standard error of an accuracy near 85% is 5.3 points on 46 images, 1.1 on 1,000.
RESTORE_BEST_MIN_VALIDATION = 1000


def resolve_restore_best(config, validation_examples):
    """Set `callbacks.restore_best: auto` to whether the validation split is large enough to
    choose an epoch by; say so in one line when it is not."""
    if config.callbacks.restore_best != "auto":
        return
    config.callbacks.restore_best = validation_examples >= RESTORE_BEST_MIN_VALIDATION
    if validation_examples and not config.callbacks.restore_best:
        print(f"callbacks.restore_best=auto: off, {validation_examples:,} validation examples are "
              f"too few to choose an epoch by (on from {RESTORE_BEST_MIN_VALIDATION:,}); the last "
              "epoch's model is tested and exported", flush=True)


class Throughput(keras.callbacks.Callback):
    """Adds `epoch_seconds` and `examples_per_sec` to each epoch's logs.

    Placed first in the list so CSVLogger and TensorBoard record them.
    """

    def __init__(self, examples_per_epoch):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.epoch_seconds.append(seconds)
        if logs is not None:
            logs["epoch_seconds"] = seconds
            logs["examples_per_sec"] = self.examples_per_epoch / seconds


def steady_examples_per_sec(epoch_seconds, examples_per_epoch):
    """Mean throughput, leaving out the first epoch (tracing) when there are others."""
    steady = epoch_seconds[1:] or epoch_seconds
    return examples_per_epoch * len(steady) / sum(steady) if steady else float("nan")


class TestEachEpoch(keras.callbacks.Callback):
    """Evaluates the test split after each epoch, for accuracy-vs-time curves.

    Adds `test_<metric>` and `wall_seconds` (training time since fit began,
    these evaluations left out) to the epoch's logs. Off by default
    (`callbacks.test_each_epoch`): it costs one pass over the test split per epoch.
    """

    def __init__(self, test_data):
        super().__init__()
        self.test_data = test_data
        self._evaluating = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        wall = start - self._start - self._evaluating
        results = self.model.evaluate(self.test_data, verbose=0, return_dict=True)
        self._evaluating += time.perf_counter() - start
        if logs is not None:
            logs["wall_seconds"] = wall
            logs.update({f"test_{name}": float(value) for name, value in results.items()})


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first NaN/inf loss and remembers where it happened.

    Keras' TerminateOnNaN only prints a line; the pipeline turns `failure`
    into a TrainingDiverged error that says how to fix it.
    """

    def __init__(self):
        super().__init__()
        self.failure = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = (self._epoch + 1, batch + 1, float(loss))
            self.model.stop_training = True


def recover_backup(backup_dir):
    """Finish or undo a backup save that a kill interrupted (see AtomicBackupAndRestore)."""
    backup_dir = str(backup_dir)
    if not os.path.exists(backup_dir) and os.path.exists(backup_dir + ".old"):
        os.rename(backup_dir + ".old", backup_dir)
    shutil.rmtree(backup_dir + ".saving", ignore_errors=True)


def load_weights_without_optimizer(model, path):
    """The model's weights from a weights file, leaving its optimizer as it is: the file's
    optimizer state may be another phase's (training/pipeline/fine_tuning.py). Keras' public
    load_weights always loads the optimizer too."""
    saving_lib.load_weights_only(model, path, objects_to_skip=[model.optimizer])


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, with saves that a kill cannot tear, and kept on preemption.

    Keras writes latest.weights.h5 and training_metadata.json in place, so a
    kill during a save can leave a torn or mismatched pair. Here both go to
    `<dir>.saving/`, then the directories are swapped by rename; a kill between
    the renames leaves `<dir>.old`, which `recover_backup` puts back.

    `phase` (training/pipeline/fine_tuning.py) is saved with the epoch. A backup of an earlier
    phase gives only the weights: the new phase starts with a fresh optimizer, as it
    does when the run is not interrupted. `keep` leaves the backup in place at the end
    (preemption, and every phase but the last).

    A save within an epoch (an integer save_freq, or SIGTERM: Preemption) records the
    steps done of that epoch, `steps_done`; Keras' own restore would redo the epoch from
    its start, so the pipeline resumes such a backup by skipping those batches
    (training/pipeline/stages.py), and the resumed run is the uninterrupted one.
    """

    def __init__(self, backup_dir, save_freq="epoch", phase=0, keep=False, first_step=0):
        super().__init__(backup_dir, save_freq=save_freq)
        self.phase = phase
        self.keep = keep
        self.first_step = first_step  # steps of the first epoch done before this fit
        self._steps_done = 0

    def on_train_begin(self, logs=None):
        recover_backup(self.backup_dir)
        super().on_train_begin(logs)

    def _load_model(self):
        try:
            with open(self._training_metadata_path) as f:
                metadata = json.load(f)
        except FileNotFoundError:
            metadata = {}
        if metadata.get("phase", self.phase) == self.phase:
            return super()._load_model()
        load_weights_without_optimizer(self.model, self._weights_path)
        self.model._initial_epoch = metadata["epoch"]

    def _save_model(self):
        if hasattr(self.model, "jax_state_sync"):  # JAX holds a fit's state apart until its epoch ends
            self.model.jax_state_sync()
        require_free_space(os.path.dirname(self.backup_dir), saved_bytes(self.model), "the backup")
        saving, old = self.backup_dir + ".saving", self.backup_dir + ".old"
        shutil.rmtree(saving, ignore_errors=True)
        os.makedirs(saving)
        self.model.save_weights(os.path.join(saving, os.path.basename(self._weights_path)))
        with open(os.path.join(saving, os.path.basename(self._training_metadata_path)), "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen,
                       "steps_done": self._steps_done, "phase": self.phase}, f)
        if os.path.exists(self.backup_dir):
            os.rename(self.backup_dir, old)
        os.rename(saving, self.backup_dir)
        shutil.rmtree(old, ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done = self.first_step + batch + 1  # Keras gives an execution's last step
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._steps_done = self.first_step = 0  # the next epoch starts from its first batch
        super().on_epoch_end(epoch, logs)

    def save_mid_epoch(self, batch):
        """Back up now, after step `batch` (0-based, of this fit's epoch)."""
        self._steps_done = self.first_step + batch + 1
        self._save_model()

    def on_train_end(self, logs=None):
        if not self.keep:
            super().on_train_end(logs)
        elif self.save_freq != "epoch":  # the next fit of this run starts from this backup
            self._save_model()


class DiskSpaceGuard(keras.callbacks.Callback):
    """Before the epoch's saves (best checkpoint, then backup): stop with DiskFull unless both
    fit, so a full disk never interrupts a write and the last backup stays whole."""

    def __init__(self, run_dir):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        require_free_space(self.run_dir, 2 * saved_bytes(self.model),
                           "the best checkpoint and the backup")


class PreemptedStop(Exception):
    """Raised out of `fit` by Preemption once the backup is saved: a stop that skips the
    epoch's remaining steps and its validation pass."""


class Preemption(keras.callbacks.Callback):
    """On SIGTERM, stop after the current step (execution) with a backup to resume from:
    within an epoch, a mid-epoch backup of the steps done; after the epoch's last step,
    once the epoch's own callbacks (validation, backup, history) are done. The last of a
    fit's callbacks, so all the others see each step and epoch first."""

    def __init__(self, backup, steps_per_epoch):
        super().__init__()
        self.backup = backup
        self.steps_per_epoch = steps_per_epoch
        self.signalled = False
        self._previous = None

    def _handle(self, signum, frame):
        self.signalled = True
        self.backup.keep = True

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def on_train_batch_end(self, batch, logs=None):
        if self.signalled and batch + 1 < self.steps_per_epoch:
            self.backup.save_mid_epoch(batch)
            self._restore_handler()
            raise PreemptedStop()

    def on_epoch_end(self, epoch, logs=None):
        if self.signalled:
            self._restore_handler()
            raise PreemptedStop()

    def on_train_end(self, logs=None):
        self._restore_handler()

    def _restore_handler(self):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "perplexity")
HIGHER_IS_BETTER = ("acc", "auc", "f1", "precision", "recall")


def direction(name):
    """"min" or "max": whether a lower or a higher value of metric `name` is better; None
    when its name does not say."""
    if any(word in name for word in LOWER_IS_BETTER):
        return "min"
    if any(word in name for word in HIGHER_IS_BETTER):
        return "max"
    return None


@dataclasses.dataclass(frozen=True)
class Monitor:
    """The history.csv column the best checkpoint and early stopping watch, and which way is
    better."""

    name: str
    mode: str  # "min" or "max"

    def best(self, values):
        """The index of the best of `values` (the first, as ModelCheckpoint keeps it)."""
        pick = min if self.mode == "min" else max
        return values.index(pick(values))


def monitored(config, has_validation):
    """The Monitor of `callbacks.monitor` (its val_ column when there is validation)."""
    metric = config.callbacks.monitor
    mode = direction(metric)
    if mode is None:
        raise ConfigError(f"callbacks.monitor={metric}: say whether lower or higher is better "
                          f"by its name (one with {', '.join(LOWER_IS_BETTER)} is lowered, one with "
                          f"{', '.join(HIGHER_IS_BETTER)} raised)")
    return Monitor(("val_" if has_validation else "") + metric, mode)


def check_monitor(config, metric_names):
    """callbacks.monitor is one of the run's metrics (`metric_names`, loss included); Keras'
    ModelCheckpoint would only warn at each epoch and keep the first."""
    metric = config.callbacks.monitor
    if metric not in metric_names:
        raise ConfigError(f"callbacks.monitor={metric} is not a metric of this run; it has: "
                          f"{', '.join(metric_names)}")


def standard_callbacks(config, run_dir, examples_per_epoch, has_validation, resuming,
                       previous_best=None, test_data=None, phase=0, last_phase=True,
                       batch_norm=None, steps_per_epoch=None, first_step=0):
    """(throughput, nan_guard, preemption, full callback list) for one fit of a run, whose
    files go where `run_dir` (a RunDir) names them.

    resuming: the fit continues earlier epochs (history.csv is appended to).
    previous_best: the best monitored value of the completed epochs, so the
    best checkpoint is not replaced by a worse epoch.
    test_data: evaluated after each epoch when `callbacks.test_each_epoch`.
    phase, last_phase: which fit of the run (training/pipeline/fine_tuning.py) this is.
    batch_norm: the run's BatchNormStatistics, recomputed before each validation (or at each
    epoch's end without one), before anything checkpoints or tests.
    steps_per_epoch, first_step: the steps of this fit's epochs (Preemption saves within
    them), and of its first epoch done before it (the rest of a mid-epoch backup's epoch).
    The caller appends its own callbacks, then `preemption` last.
    """
    cb = config.callbacks
    monitor = monitored(config, has_validation)
    throughput, nan_guard = Throughput(examples_per_epoch), NaNGuard()
    save_freq = cb.save_freq if cb.save_freq == "epoch" else int(cb.save_freq)
    backup = AtomicBackupAndRestore(str(run_dir.backup), save_freq=save_freq,
                                    phase=phase, keep=not last_phase, first_step=first_step)
    preemption = Preemption(backup, steps_per_epoch)
    best = keras.callbacks.ModelCheckpoint(
        str(run_dir.best_weights), monitor=monitor.name, mode=monitor.mode,
        save_best_only=True, save_weights_only=True)
    if previous_best is not None:
        best.best = previous_best
    callbacks = [throughput]
    if batch_norm is not None:
        callbacks.append(RecomputeBeforeValidation(batch_norm, has_validation))
    if cb.test_each_epoch and test_data is not None:  # before CSVLogger, which logs its figures
        callbacks.append(TestEachEpoch(test_data))
    callbacks += [
        nan_guard,
        DiskSpaceGuard(run_dir.path),
        best,
        backup,
        keras.callbacks.CSVLogger(str(run_dir.history), append=resuming),
    ]
    if cb.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir.tensorboard)))
    if cb.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor.name, mode=monitor.mode,
                                                       patience=cb.early_stopping_patience))
    return throughput, nan_guard, preemption, callbacks
