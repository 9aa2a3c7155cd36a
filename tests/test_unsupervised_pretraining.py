"""fit_rbm and the DBN app: greedy pretraining, unrolling, semi-supervised report, strategies."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.unsupervised_pretraining.app import UnsupervisedPretraining
from apps.unsupervised_pretraining.rbm_training import HISTORY_FILE, MomentumSchedule, RBMTrainer, fit_rbm
from layers import RBM
from training.errors import ConfigError
from training.pipeline import train
from training.registry import load_config
from training.run_dir import RunDir

TINY = ["model.hidden=24,12", "pretrain.epochs=1", "epochs=1", "data.limit=256",
        "batch_size=32", "runtime.verbose=0", "callbacks.tensorboard=false",
        "runtime.steps_per_execution=4"]
MONITOR_KEYS = {"loss", "reconstruction_error", "val_reconstruction_error", "free_energy_train",
                "free_energy_val", "free_energy_gap", "pseudo_log_likelihood"}


def dbn_config(tmp_path, *overrides):
    return load_config("unsupervised_pretraining", None, TINY + [
        f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}", *overrides])


def binary_data(n=200, d=12, seed=0):
    return (np.random.default_rng(seed).random((n, d)) > 0.6).astype("float32")


def test_fit_rbm_on_arrays_logs_every_monitor_value():
    x = binary_data()
    rbm = fit_rbm(x, 5, epochs=2, batch_size=20, validation_data=binary_data(seed=1), verbose=0,
                  seed=0)
    assert isinstance(rbm, RBM) and rbm.kernel.shape == (12, 5)
    assert MONITOR_KEYS <= set(rbm.history)
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in rbm.history.values())
    # Hinton's init: visible bias = logit of the data mean (before training moved it a little).
    p = x.mean(0)
    np.testing.assert_allclose(rbm.visible_bias, np.log(p / (1 - p)), atol=0.5)


@pytest.mark.parametrize("batched", [False, True])
def test_fit_rbm_takes_datasets_of_vectors_or_pairs(batched):
    x = binary_data()
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x), "int64")))
    if batched:
        ds = ds.batch(25)
    rbm = fit_rbm(ds, 4, epochs=1, batch_size=25, monitor=False, verbose=0, seed=0)
    assert rbm(x[:3]).shape == (3, 4)


def test_fit_rbm_rejects_what_it_cannot_train():
    with pytest.raises(ValueError, match="2-D array"):
        fit_rbm(np.zeros((4, 3, 3)), 2, verbose=0)
    with pytest.raises(ValueError, match="visible"):
        fit_rbm(binary_data(), 2, visible="poisson", verbose=0)
    with pytest.raises(ValueError, match="non-zero start"):
        fit_rbm(binary_data(), 2, momentum=(0, 0.9, 1), verbose=0)


def test_momentum_schedule_switches_and_takes_effect():
    rbm = RBM(4, seed=0)
    trainer = RBMTrainer(rbm)
    trainer.build((None, 12))
    trainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(trainer.optimizer.momentum))
    trainer.fit(binary_data(), epochs=3, batch_size=50, verbose=0,
                callbacks=[MomentumSchedule(0.5, 0.9, switch_epoch=1), record])
    assert seen == [0.5, 0.9, 0.9]


def test_pretrain_then_unroll_into_a_classifier_with_the_rbm_weights(tmp_path):
    app = UnsupervisedPretraining(dbn_config(tmp_path))
    run_dir = tmp_path / "run"
    app.pretrain(str(run_dir), {"steps_per_execution": 4, "jit_compile": False})
    assert [r.units for r in app.rbms] == [24, 12]
    assert app.rbms[1].kernel.shape == (24, 12)  # RBM 2 learned RBM 1's features
    for name in ("rbm_filters.png", "rbm_reconstructions.png", "pretraining_curves.png",
                 "pretraining/rbm_1.keras", "pretraining/rbm_2/history.csv"):
        assert (run_dir / name).exists(), name
    model = app.build_model()
    for i, rbm in enumerate(app.rbms):
        kernel, bias = model.get_layer(f"hidden_{i + 1}").get_weights()
        np.testing.assert_array_equal(kernel, rbm.kernel)
        np.testing.assert_array_equal(bias, rbm.hidden_bias)

    # A resumed run loads the RBMs it already trained instead of training them again.
    again = UnsupervisedPretraining(dbn_config(tmp_path))
    again.pretrain(str(run_dir), {"steps_per_execution": 4, "jit_compile": False})
    for old, new in zip(app.rbms, again.rbms):
        np.testing.assert_array_equal(old.kernel, new.kernel)


def test_the_next_rbm_learns_from_float32_probabilities_under_mixed_precision(tmp_path):
    """RBM 2's data is RBM 1's P(h|v): in bfloat16 it would keep 8 bits of each probability."""
    app = UnsupervisedPretraining(dbn_config(tmp_path))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # as in a run's pretraining
    try:
        rbm = RBM(5, seed=0)
        rbm.build((None, 12))
        batches = tf.data.Dataset.from_tensor_slices(binary_data()).batch(50)
        features = app._features(batches, rbm)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert features.element_spec.dtype == tf.float32
    first = next(iter(features))
    np.testing.assert_allclose(first, rbm.prob_h(binary_data()[:50]), rtol=1e-6)


def test_semi_supervised_run_reports_pretrained_vs_random_init(tmp_path):
    config = dbn_config(tmp_path, "data.labeled=64", "compare_random_init=true")
    metrics = train(config)
    assert metrics["train_examples"] == 64 and metrics["pretrain_seconds"] > 0
    assert 0.0 <= metrics["random_init_test"]["accuracy"] <= 1.0
    gain = 100 * (metrics["test"]["accuracy"] - metrics["random_init_test"]["accuracy"])
    assert metrics["pretraining_gain_points"] == pytest.approx(gain, abs=1e-6)
    # The export serves raw uint8 images, like the image app.
    served = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    out = served(image=tf.zeros((2, 28, 28, 1), tf.uint8))
    assert out["probabilities"].shape == (2, 10) and out["class_name"].shape == (2,)


def test_random_init_mode_skips_pretraining(tmp_path):
    config = dbn_config(tmp_path, "model.pretrained=false", "export.enabled=false")
    metrics = train(config)
    assert not (tmp_path / "run" / "pretraining").exists()
    assert metrics["params"] == 784 * 24 + 24 + 24 * 12 + 12 + 12 * 10 + 10


def test_gaussian_visible_units_standardise_inside_the_model(tmp_path):
    config = dbn_config(tmp_path, "model.visible=gaussian", "export.enabled=false")
    metrics = train(config)
    assert np.isfinite(metrics["test"]["loss"])
    model = keras.saving.load_model(RunDir(tmp_path / "run").model)
    assert model.get_layer("standardize") is not None


@pytest.mark.parametrize("override,match", [
    ("model.hidden=0", "model.hidden"), ("model.visible=poisson", "model.visible"),
    ("data.labeled=0", "data.labeled")])
def test_bad_dbn_config_names_the_key(tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        UnsupervisedPretraining(dbn_config(tmp_path, override))


def test_dbn_pretrains_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    # A fresh process: logical devices must be configured before TensorFlow runs an op.
    args = [a for o in TINY for a in ("--set", o)]
    result = subprocess.run(
        [sys.executable, "-m", "training", "train", "--app", "unsupervised_pretraining", *args,
         "--set", "strategy=mirrored", "--set", "runtime.logical_cpus=2",
         "--set", f"run_dir={tmp_path / 'run'}", "--set", "export.enabled=false"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(RunDir(tmp_path / "run").metrics.read_text())
    assert metrics["strategy"] == "MirroredStrategy" and metrics["replicas"] == 2
    history = (tmp_path / "run" / "pretraining" / "rbm_1" / HISTORY_FILE).read_text()
    assert "free_energy_gap" in history and "nan" not in history.lower()
