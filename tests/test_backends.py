"""The same templates under the JAX backend: train, export to the same SavedModel contract,
distribute with keras.distribution; and the clear errors of a backend that cannot be had.
Each JAX run is a fresh process, since Keras picks its backend once, at import."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error

ROOT = Path(__file__).resolve().parents[1]
LICENSE = "/usr/share/common-licenses/GPL-3"  # real English prose on every Debian system


def run_under(backend, *args, devices=1, env=None):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           **(env or {})}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=env)


def train_under(backend, app, sets, env=None):
    """`python -m training train --app APP --set S ...` in a fresh process under `backend`."""
    return run_under(backend, "-m", "training", "train", "--app", app,
                     *[a for s in sets for a in ("--set", s)], env=env)


def last_json(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


CLASSES = ["class_id", "class_name", "probabilities"]
# Class weights and balanced sampling: a third element of each example, under each backend.
IMAGE = ("image_classification", ["data.limit=256", "model.width_multiplier=0.25", "batch_size=64",
                                  "data.class_weight=balanced"],
         ["image_bytes", "serving_default"], CLASSES)
TABULAR = ("tabular_regression", ["data.target=y"], ["serving_default"], ["prediction"])
# RBM pretraining: the CD update is a loss Keras' own train step differentiates.
DBN = ("unsupervised_pretraining", ["data.limit=256", "model.hidden=32,16", "pretrain.epochs=1",
                                    "data.sampling=balanced"],
       ["image_bytes", "serving_default"], CLASSES)
# Text: the model takes ids made in tf.data; the export takes raw strings.
TEXT = ("sequence_modeling", ["data.text_column=review", "data.label_column=mood", "model.units=16"],
        ["serving_default"], CLASSES)
CHARS = ("sequence_modeling", ["task=language_model", f"data.path={LICENSE}",
                               "data.sequence_length=40", "model.units=16"],
         ["serving_default"], ["next_char", "next_char_probabilities"])
ROWS = ("sequence_modeling", ["data.limit=256", "model.units=16"], ["serving_default"], CLASSES)


@pytest.mark.parametrize("app,extra,signatures,outputs", [IMAGE, TABULAR, DBN, TEXT, CHARS])
def test_jax_trains_and_exports_the_tensorflow_serving_contract(app, extra, signatures, outputs,
                                                                 tmp_path):
    check_train_and_export("jax", app, extra, signatures, outputs, tmp_path)


@pytest.mark.torch
@pytest.mark.parametrize("app,extra,signatures,outputs", [IMAGE, TABULAR, DBN, TEXT, CHARS, ROWS])
def test_torch_trains_and_exports_the_tensorflow_serving_contract(app, extra, signatures, outputs,
                                                                   tmp_path):
    """Under PyTorch the SavedModel is written by a TensorFlow process from model.keras."""
    check_train_and_export("torch", app, extra, signatures, outputs, tmp_path)


def check_train_and_export(backend, app, extra, signatures, outputs, tmp_path):
    if app == "tabular_regression":
        rows = "\n".join(f"{i % 7},{i % 5},{2 * (i % 7) - i % 5}" for i in range(300))
        (tmp_path / "t.csv").write_text("a,b,y\n" + rows + "\n")
        extra = extra + [f"data.path={tmp_path / 't.csv'}"]
    if "data.text_column=review" in extra:
        write_reviews(tmp_path / "reviews.csv")
        extra = extra + [f"data.path={tmp_path / 'reviews.csv'}"]
    out = last_json(run_under(backend, str(ROOT / "tests" / "backend_export.py"), app, *extra))
    assert out["keras_backend"] == out["metrics_backend"] == out["config_backend"] == backend
    assert out["signatures"] == signatures and out["outputs"] == outputs
    assert out["max_abs_diff"] <= 1e-5, out  # the export answers as the Keras model does
    assert out["warmup_requests"] > 0  # real examples, as text when the model takes ids


def write_reviews(path):
    """A CSV of 200 short labelled reviews: a mood word among filler words."""
    rng = np.random.default_rng(0)
    filler = "the a film plot actor was is it and very".split()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "mood"])
        for i in range(200):
            mood = ("good", "bad")[i % 2]
            words = list(rng.choice(filler, rng.integers(2, 12))) + [mood]
            writer.writerow([" ".join(rng.permutation(words)), mood])


def test_jax_two_devices_end_with_the_one_device_weights():
    out = last_json(run_under("jax", str(ROOT / "tests" / "mirrored_equivalence.py"),
                              "image_classification", "model.width_multiplier=0.25", devices=2))
    assert out["replicas"] == [1, 2] and out["global_batch"] == [16, 16]
    assert out["max_rel_diff"] < 1e-4, out
    assert out["train_loss"][1] == pytest.approx(out["train_loss"][0], rel=1e-4)


@pytest.mark.parametrize("backend,strategy,message,hint", [
    ("jax", "multi_worker", "error: strategy=multi_worker is tf.distribute's",
     "under jax use strategy=auto or mirrored"),
    pytest.param("torch", "mirrored", "error: strategy=mirrored is not available under torch",
                 "use strategy=auto for one device", marks=pytest.mark.torch),
])
def test_a_strategy_the_backend_lacks_is_one_clear_error(backend, strategy, message, hint, tmp_path):
    (tmp_path / "t.csv").write_text("a,y\n" + "\n".join(f"{i},{i}" for i in range(50)))
    result = train_under(backend, "tabular_regression", [
        f"data.path={tmp_path / 't.csv'}", "data.target=y", f"strategy={strategy}",
        f"run_dir={tmp_path / 'run'}"])
    # The error is one line; the C++ start-up chatter of TF and XLA above it is not silenced
    # by TF_CPP_MIN_LOG_LEVEL once JAX has set up absl's logging first.
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(message) and hint in line, line


def test_a_repeated_jax_run_loads_its_compiled_steps_from_the_compilation_cache(tmp_path):
    (tmp_path / "t.csv").write_text("a,y\n" + "\n".join(f"{i % 9},{i % 9}" for i in range(200)))
    cache = tmp_path / "cache"

    def train(run):
        sets = [f"data.path={tmp_path / 't.csv'}", "data.target=y", "epochs=1", "runtime.verbose=0",
                "export.enabled=false", f"run_dir={tmp_path / run}", f"runtime.compilation_cache={cache}"]
        result = train_under("jax", "tabular_regression", sets, env={"JAX_LOG_COMPILES": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr

    first = train("first")
    assert "cache hit for 'jit_train_step'" not in first
    assert any(p.name.startswith("jit_train_step-") for p in cache.iterdir())
    assert "Persistent compilation cache hit for 'jit_train_step'" in train("second")


def test_asking_for_another_backend_once_keras_is_loaded_says_start_a_new_process(cli):
    one_line_error(cli("train", "--app", "tabular_regression", "--set", "runtime.backend=jax"),
                   "runtime.backend=jax, but this process already loaded Keras with tensorflow",
                   "start a new process")


def test_a_language_model_trained_under_jax_generates_and_exports_under_tensorflow(tmp_path):
    """The model takes character ids under JAX; generation and a TF export read its
    vocabulary from model.keras and answer as the JAX export does."""
    sets = ["task=language_model", f"data.path={LICENSE}", "data.sequence_length=40", "epochs=1",
            "model.units=16", "runtime.verbose=0", f"run_dir={tmp_path / 'run'}",
            f"export.dir={tmp_path / 'export'}"]
    trained = train_under("jax", "sequence_modeling", sets)
    assert trained.returncode == 0, trained.stderr[-3000:]
    generated = run_under("jax", "-m", "training", "generate", "--run", str(tmp_path / "run"),
                          "--prompt", "The ", "--length", "20", "--seed", "1")
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert generated.stdout.startswith("The ") and len(generated.stdout.rstrip("\n")) == 24
    exported = run_under("tensorflow", "-m", "training", "export", "--run", str(tmp_path / "run"),
                         "--export-dir", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    import tensorflow as tf

    texts = tf.constant(["The GNU General Public Licen", "Th", "x" * 50])  # one longer than a window
    jax_export, tf_export = (tf.saved_model.load(str(tmp_path / "export" / "sequence_modeling" / v))
                             .signatures["serving_default"](text=texts) for v in ("1", "2"))
    np.testing.assert_allclose(tf_export["next_char_probabilities"],
                               jax_export["next_char_probabilities"], atol=1e-5)
    assert list(tf_export["next_char"].numpy()) == list(jax_export["next_char"].numpy())


def test_an_export_jax_cannot_convert_says_export_under_tensorflow(tmp_path):
    """The autoencoder's serving function builds a second Keras model (code and reconstruction),
    which the converted call does not cover: the run's model.keras exports under TF."""
    sets = ["data.limit=128", "epochs=1", "model.hidden_units=16", "runtime.verbose=0",
            f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}"]
    result = train_under("jax", "image_autoencoder", sets)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "export it under TensorFlow with `KERAS_BACKEND=tensorflow python -m training export " \
           "--run RUN_DIR`" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "export" / "image_autoencoder").exists() or not any(
        (tmp_path / "export" / "image_autoencoder").iterdir())
    exported = run_under("tensorflow", "-m", "training", "export", "--run", str(tmp_path / "run"),
                         "--export-dir", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert exported.stdout.strip() == str(tmp_path / "export" / "image_autoencoder" / "1")
