"""The callbacks every run gets: checkpoints, resume, logs, throughput, NaN guard."""

import math
import os
import time

import keras


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


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

    def steady_examples_per_sec(self):
        """Mean throughput, leaving out the first epoch (tracing) when there are others."""
        steady = self.epoch_seconds[1:] or self.epoch_seconds
        return self.examples_per_epoch * len(steady) / sum(steady) if steady else float("nan")


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


def standard_callbacks(config, run_dir, examples_per_epoch, has_validation, resuming):
    """(throughput, nan_guard, full callback list) for one run."""
    cb = config.callbacks
    monitor = "val_loss" if has_validation else "loss"
    throughput, nan_guard = Throughput(examples_per_epoch), NaNGuard()
    save_freq = cb.save_freq if cb.save_freq == "epoch" else int(cb.save_freq)
    callbacks = [
        throughput,
        nan_guard,
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, "checkpoints", "best.weights.h5"), monitor=monitor,
            save_best_only=True, save_weights_only=True),
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"), save_freq=save_freq),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=resuming),
    ]
    if cb.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")))
    if cb.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor,
                                                       patience=cb.early_stopping_patience))
    return throughput, nan_guard, callbacks
