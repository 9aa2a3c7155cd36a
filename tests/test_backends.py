"""The same templates under the JAX backend: train, export to the same SavedModel contract,
distribute with keras.distribution; and the clear errors of a backend that cannot be had.
Each JAX run is a fresh process, since Keras picks its backend once, at import."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_line_error

ROOT = Path(__file__).resolve().parents[1]


def run_under(backend, *args, devices=1):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=env)


def last_json(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("app,extra,signatures,outputs", [
    ("image_classification", ["data.limit=256", "model.width_multiplier=0.25", "batch_size=64"],
     ["image_bytes", "serving_default"], ["class_id", "class_name", "probabilities"]),
    ("tabular_regression", ["data.target=y"], ["serving_default"], ["prediction"]),
    # RBM pretraining: the CD update is a loss Keras' JAX trainer differentiates.
    ("unsupervised_pretraining", ["data.limit=256", "model.hidden=32,16", "pretrain.epochs=1"],
     ["image_bytes", "serving_default"], ["class_id", "class_name", "probabilities"]),
])
def test_jax_trains_and_exports_the_tensorflow_serving_contract(app, extra, signatures, outputs,
                                                                 tmp_path):
    if app == "tabular_regression":
        rows = "\n".join(f"{i % 7},{i % 5},{2 * (i % 7) - i % 5}" for i in range(300))
        (tmp_path / "t.csv").write_text("a,b,y\n" + rows + "\n")
        extra = extra + [f"data.path={tmp_path / 't.csv'}"]
    out = last_json(run_under("jax", str(ROOT / "tests" / "backend_export.py"), app, *extra))
    assert out["keras_backend"] == out["metrics_backend"] == out["config_backend"] == "jax"
    assert out["signatures"] == signatures and out["outputs"] == outputs
    assert out["max_abs_diff"] <= 1e-5, out  # the export answers as the Keras model does


def test_jax_two_devices_end_with_the_one_device_weights():
    out = last_json(run_under("jax", str(ROOT / "tests" / "mirrored_equivalence.py"),
                              "image_classification", "model.width_multiplier=0.25", devices=2))
    assert out["replicas"] == [1, 2] and out["global_batch"] == [16, 16]
    assert out["max_rel_diff"] < 1e-4, out
    assert out["train_loss"][1] == pytest.approx(out["train_loss"][0], rel=1e-4)


def test_a_tf_distribute_strategy_under_jax_is_one_clear_error(tmp_path):
    (tmp_path / "t.csv").write_text("a,y\n" + "\n".join(f"{i},{i}" for i in range(50)))
    result = run_under("jax", "-m", "training", "train", "--app", "tabular_regression",
                       "--set", f"data.path={tmp_path / 't.csv'}", "--set", "data.target=y",
                       "--set", "strategy=multi_worker", "--set", f"run_dir={tmp_path / 'run'}")
    # The error is one line; the C++ start-up chatter of TF and XLA above it is not silenced
    # by TF_CPP_MIN_LOG_LEVEL once JAX has set up absl's logging first.
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: strategy=multi_worker is tf.distribute's") and (
        "under jax use strategy=auto or mirrored" in line), line


def test_asking_for_another_backend_once_keras_is_loaded_says_start_a_new_process(cli):
    one_line_error(cli("train", "--app", "tabular_regression", "--set", "runtime.backend=jax"),
                   "runtime.backend=jax, but this process already loaded Keras with tensorflow",
                   "start a new process")


@pytest.mark.parametrize("args,message", [
    (["--app", "sequence_modeling", "--set", "task=language_model", "--set",
      "data.path=/usr/share/common-licenses/GPL-3"], "A text task"),
])
def test_what_jax_cannot_run_yet_is_one_clear_error(args, message, tmp_path):
    result = run_under("jax", "-m", "training", "train", *args, "--set", f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
    assert not (tmp_path / "run").exists()


def test_an_export_jax_cannot_convert_says_export_under_tensorflow(tmp_path):
    """The autoencoder's serving function builds a second Keras model (code and reconstruction),
    which the converted call does not cover: the run's model.keras exports under TF."""
    sets = ["data.limit=128", "epochs=1", "model.hidden_units=16", "runtime.verbose=0",
            f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}"]
    result = run_under("jax", "-m", "training", "train", "--app", "image_autoencoder",
                       *[a for s in sets for a in ("--set", s)])
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "export it under TensorFlow with `KERAS_BACKEND=tensorflow python -m training export " \
           "--run RUN_DIR`" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "export" / "image_autoencoder").exists() or not any(
        (tmp_path / "export" / "image_autoencoder").iterdir())
    exported = run_under("tensorflow", "-m", "training", "export", "--run", str(tmp_path / "run"),
                         "--export-dir", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert exported.stdout.strip() == str(tmp_path / "export" / "image_autoencoder" / "1")
