"""Fault tolerance: resume after SIGKILL, atomic backups, SIGTERM preemption."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from training.pipeline.callbacks import AtomicBackupAndRestore, PreemptedStop, Preemption, recover_backup
from training.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, "-m", "training", "train", "--app", "sequence_modeling",
         "--set", "model.units=16", "--set", "data.limit=1200", "--set", "epochs=4",
         "--set", "batch_size=32", "--set", "runtime.verbose=0", "--set", "callbacks.tensorboard=false",
         "--set", "export.enabled=false",
         # Two fits (training/pipeline/fine_tuning.py): the SIGKILL lands after the first one's last
         # epoch, so the resume starts the second phase from the first one's backup.
         "--set", "model.freeze_backbone=true", "--set", "model.unfreeze_after_epochs=2"]


def env_for(backend="tensorflow"):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend}


def command(run_dir, overrides=()):
    return TRAIN + ["--set", f"run_dir={run_dir}"] + [a for o in overrides for a in ("--set", o)]


def start_and_signal_after_epochs(run_dir, epochs, signum, backend="tensorflow",
                                  overrides=()):
    """Start training, send `signum` once `epochs` epochs are backed up; return it."""
    proc = subprocess.Popen(command(run_dir, overrides), env=env_for(backend), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metadata = RunDir(run_dir).backup_metadata
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(metadata.read_text())["epoch"] >= epochs:
                time.sleep(0.1)  # into the next epoch
                proc.send_signal(signum)
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.wait(timeout=300)
    return proc


def final_state(run_dir):
    weights = keras.saving.load_model(RunDir(run_dir).model).get_weights()
    return weights, json.loads(RunDir(run_dir).metrics.read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The final state of the same run without interruption, under a backend (run once each)."""
    runs = {}

    def get(backend="tensorflow"):
        if backend not in runs:
            run_dir = tmp_path_factory.mktemp(f"full-{backend}") / "run"
            subprocess.run(command(run_dir), env=env_for(backend), cwd=ROOT, check=True,
                           capture_output=True, timeout=600)
            runs[backend] = final_state(run_dir)
        return runs[backend]

    return get


def assert_same_run(resumed_dir, uninterrupted):
    weights, metrics = final_state(resumed_dir)
    for a, b in zip(weights, uninterrupted[0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    assert abs(metrics["test"]["accuracy"] - uninterrupted[1]["test"]["accuracy"]) <= 0.001
    epochs = [line.split(",")[0] for line in
              RunDir(resumed_dir).history.read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]  # completed epochs are not redone
    assert metrics["epochs_completed"] == 4  # the whole run's, not only the resumed part's


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sigkill_mid_epoch_then_the_same_command_resumes_exactly(tmp_path, uninterrupted, backend):
    # Backups every 6 steps, so the one a kill leaves is most likely mid-epoch: its resume
    # skips the batches it holds (callbacks.save_freq does not change the training).
    run_dir = tmp_path / "run"
    killed = start_and_signal_after_epochs(run_dir, 2, signal.SIGKILL, backend,
                                           ["callbacks.save_freq=6"])
    assert killed.returncode == -signal.SIGKILL
    assert not RunDir(run_dir).metrics.exists()
    resumed = subprocess.run(command(run_dir, ["callbacks.save_freq=6"]), env=env_for(backend),
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(run_dir, uninterrupted(backend))
    assert json.loads(RunDir(run_dir).metrics.read_text())["backend"] == backend


def test_sigterm_backs_up_the_steps_done_says_so_and_resumes_exactly(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    stopped = start_and_signal_after_epochs(run_dir, 1, signal.SIGTERM)  # early in epoch 2
    stderr = stopped.stderr.read()
    assert stopped.returncode == 143, stderr[-3000:]
    assert "preempted" in stderr and f"--set run_dir={run_dir}" in stderr
    assert "Traceback" not in stderr
    # What the message says the backup holds is what it holds (it said "0 completed epochs"
    # of a backup that held one), and no completed epoch is lost.
    metadata = json.loads(RunDir(run_dir).backup_metadata.read_text())
    epoch, steps_done = metadata["epoch"], metadata["steps_done"]
    steps = f" and {steps_done} of 38 steps of epoch {epoch + 1}" if steps_done else ""
    held = f"{epoch} completed epoch(s) of 4{steps}"
    assert f"holds {held}; resume" in stderr and epoch >= 1, stderr
    resumed = subprocess.run(command(run_dir), env=env_for(), cwd=ROOT, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming {run_dir} after epoch {epoch} of 4{steps}" in resumed.stdout
    assert_same_run(run_dir, uninterrupted())


@pytest.mark.slow  # three float16 runs, which a CPU computes in software
def test_float16_with_loss_scaling_resumes_exactly(tmp_path):
    """The GPU path of runtime.mixed_precision (mixed_float16: Keras wraps the optimizer in a
    LossScaleOptimizer, whose scale is state too), forced on a CPU: a SIGKILL, then the same
    command, ends as the uninterrupted run does."""
    float16 = ["runtime.mixed_precision=float16", "callbacks.save_freq=6"]
    full = tmp_path / "full"
    subprocess.run(command(full, float16), env=env_for(), cwd=ROOT, check=True,
                   capture_output=True, timeout=900)
    run_dir = tmp_path / "run"
    killed = start_and_signal_after_epochs(run_dir, 2, signal.SIGKILL, overrides=float16)
    assert killed.returncode == -signal.SIGKILL
    resumed = subprocess.run(command(run_dir, float16), env=env_for(), cwd=ROOT,
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(run_dir, final_state(full))
    assert final_state(run_dir)[1]["precision"]["policy"] == "mixed_float16"


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_save_torn_by_a_kill_leaves_the_previous_backup(tmp_path, monkeypatch):
    run_dir = RunDir(tmp_path)
    backup_dir = run_dir.backup
    callback = AtomicBackupAndRestore(str(backup_dir))
    callback.set_model(tiny_model())
    callback.on_epoch_end(0)
    saved = json.loads(run_dir.backup_metadata.read_text())
    assert saved["epoch"] == 1

    # A kill while the next save writes its files: the complete backup is untouched.
    def killed_mid_write(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(callback.model, "save_weights", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        callback.on_epoch_end(1)
    assert json.loads(run_dir.backup_metadata.read_text()) == saved
    recover_backup(backup_dir)
    assert not backup_dir.with_name(backup_dir.name + ".saving").exists()

    # A kill between the two renames leaves only backup.old: recovery puts it back.
    os.rename(backup_dir, backup_dir.with_name(backup_dir.name + ".old"))
    recover_backup(backup_dir)
    assert json.loads(run_dir.backup_metadata.read_text()) == saved


def test_a_full_disk_refuses_the_save_and_keeps_the_previous_backup(tmp_path, monkeypatch):
    """h5py segfaults when the disk fills mid-save, so saves check for room first."""
    from collections import namedtuple

    from training.errors import DiskFull
    from training.pipeline.callbacks import DiskSpaceGuard
    from training.runtime import disk_space

    run_dir = RunDir(tmp_path)
    backup_dir = run_dir.backup
    model = tiny_model()
    callback, guard = AtomicBackupAndRestore(str(backup_dir)), DiskSpaceGuard(str(tmp_path))
    callback.set_model(model)
    guard.set_model(model)
    guard.on_epoch_end(0)
    callback.on_epoch_end(0)
    saved = json.loads(run_dir.backup_metadata.read_text())

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda path: usage(2**30, 2**30, 4096))
    for save in (guard.on_epoch_end, callback.on_epoch_end):  # the epoch's saves, in order
        with pytest.raises(DiskFull, match="Only 0 MiB free .* free some space, then run the same"):
            save(1)
    assert json.loads(run_dir.backup_metadata.read_text()) == saved
    assert not backup_dir.with_name(backup_dir.name + ".saving").exists()


def test_sigterm_within_an_epoch_backs_up_its_steps_and_stops_before_validating(tmp_path):
    """It took 238 s to stop (the rest of the epoch, then validation) and said the backup held
    0 epochs: now the stop comes after the current step, with a backup of the steps done."""
    model = tiny_model()
    backup = AtomicBackupAndRestore(str(RunDir(tmp_path).backup))
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(("step", batch))
            if batch == 3 and ("validate", None) in seen:  # in epoch 2: SIGTERM during step 4
                os.kill(os.getpid(), signal.SIGTERM)

        def on_test_begin(self, logs=None):
            seen.append(("validate", None))

    x, y = np.ones((40, 3), "float32"), np.zeros((40, 2), "float32")
    with pytest.raises(PreemptedStop):
        model.fit(x, y, batch_size=4, epochs=3, validation_data=(x[:4], y[:4]), verbose=0,
                  callbacks=[Watch(), backup, Preemption(backup, steps_per_epoch=10)])
    assert seen[-2:] == [("step", 2), ("step", 3)] and seen.count(("validate", None)) == 1
    metadata = json.loads(RunDir(tmp_path).backup_metadata.read_text())
    assert (metadata["epoch"], metadata["steps_done"]) == (1, 4)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is given back
