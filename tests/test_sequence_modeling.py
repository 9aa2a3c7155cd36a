"""Sequence app: each task for one short epoch, masking, raw-input exports, generation."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from apps.sequence_modeling.app import SequenceModeling
from serving.warmup import read_warmup
from training.errors import ConfigError
from training.pipeline import evaluate, train
from training.registry import load_config
from training.run_dir import RunDir, load_run

QUICK = ["epochs=1", "batch_size=32", "runtime.verbose=0", "callbacks.tensorboard=false",
         "runtime.steps_per_execution=4", "model.units=16"]
LICENSE = "/usr/share/common-licenses/GPL-3"  # real English prose on every Debian system


def seq_config(tmp_path, *overrides):
    return load_config("sequence_modeling", None, QUICK + [
        f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}", *overrides])


def serving(metrics):
    return tf.saved_model.load(metrics["export"]).signatures["serving_default"]


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_row_sequential_fashion_mnist_trains_and_exports(tmp_path, cell):
    metrics = train(seq_config(tmp_path, f"model.cell={cell}", "data.limit=256"))
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and len(metrics["confusion_matrix"]) == 10
    config, _, model = load_run(metrics["run_dir"])
    images = np.random.default_rng(0).integers(0, 255, (3, 28, 28, 1), dtype=np.uint8)
    out = serving(metrics)(image=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"], model(images), atol=1e-5)
    assert model.get_layer(f"{cell}_1") is not None


def test_text_classification_serves_raw_strings_and_masks_padding(tmp_path):
    with tfds.testing.mock_data(num_examples=64):
        metrics = train(seq_config(tmp_path, "data.name=imdb_reviews", "model.bidirectional=true",
                                   "model.layers=2", "data.max_tokens=500"))
    _, _, model = load_run(metrics["run_dir"])
    texts = tf.constant(["a b c", "c b a " * 40])
    out = serving(metrics)(text=texts)
    np.testing.assert_allclose(out["probabilities"], model(texts), atol=1e-5)
    assert set(np.asarray(out["class_name"]).astype(str)) <= {"neg", "pos"}
    # Masking: the short text alone and padded to the long one's length give one answer.
    alone = model(tf.constant(["a b c"]))
    np.testing.assert_allclose(alone[0], model(texts)[0], atol=1e-5)


def test_language_model_on_a_local_text_file_generates(tmp_path):
    metrics = train(seq_config(tmp_path, "task=language_model", f"data.path={LICENSE}",
                               "data.sequence_length=40"))
    assert metrics["test"]["perplexity"] == pytest.approx(np.exp(metrics["test"]["loss"]), rel=1e-4)
    assert metrics["test"]["perplexity"] > 1.0 and "pretrain_seconds" not in metrics
    with open(RunDir(metrics["run_dir"]).history) as f:
        history = list(csv.DictReader(f))
    assert {"perplexity", "val_perplexity"} <= set(history[0])  # in the curves, next to the loss
    assert float(history[0]["val_perplexity"]) == pytest.approx(np.exp(float(history[0]["val_loss"])),
                                                                rel=1e-3)
    saved = RunDir(tmp_path / "run").config.read_text()
    assert "fashion_mnist" not in saved  # the data set the run read: the file at data.path
    out = serving(metrics)(text=tf.constant(["The GNU General Public Licen", "Th"]))
    assert out["next_char_probabilities"].shape[0] == 2
    np.testing.assert_allclose(np.sum(out["next_char_probabilities"], axis=-1), 1.0, atol=1e-4)
    # A fresh app builds the test split's vocabulary from the training text, as train did.
    again = evaluate(metrics["run_dir"])
    assert again["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-4)
    warmup = read_warmup(metrics["export"])  # the warm-up texts are real windows of the corpus
    assert len(warmup) == 3 and len(warmup[0][1]["text"][0]) == 40

    result = subprocess.run(
        [sys.executable, "-m", "training", "generate", "--run", metrics["run_dir"],
         "--prompt", "The ", "--length", "30", "--seed", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("The ") and len(result.stdout.rstrip("\n")) >= 34, result.stdout
    progress = [line for line in result.stderr.splitlines() if line.startswith("generating: ")]
    assert progress[-1] == "generating: 30/30 characters" and len(progress) == 4  # a line a quarter


def test_language_model_on_a_tfds_text_set(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        metrics = train(seq_config(tmp_path, "task=language_model", "data.name=tiny_shakespeare",
                                   "data.sequence_length=10", "export.enabled=false"))
    assert np.isfinite(metrics["test"]["perplexity"])


def test_generation_follows_the_temperature(tmp_path):
    config = seq_config(tmp_path, "task=language_model", f"data.path={LICENSE}",
                        "data.sequence_length=40", "export.enabled=false")
    metrics = train(config)
    _, app, model = load_run(metrics["run_dir"])
    greedy = [app.generate(model, "The ", 20, temperature=0, seed=s) for s in (1, 2)]
    assert greedy[0] == greedy[1]  # temperature 0: always the likeliest character
    assert app.generate(model, "The ", 20, temperature=1.0, seed=3) == \
        app.generate(model, "The ", 20, temperature=1.0, seed=3)


def write_series(path, n=400):
    t = np.arange(n)
    values = 10 + 5 * np.sin(2 * np.pi * t / 25) + np.random.default_rng(0).normal(0, 0.3, n)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "load"])
        writer.writerows(zip(t, values))


def test_forecasting_reports_the_naive_baseline_and_serves_windows(tmp_path):
    write_series(tmp_path / "series.csv")
    metrics = train(seq_config(tmp_path, "task=forecasting", f"data.path={tmp_path / 'series.csv'}",
                               "data.column=load", "data.sequence_length=24", "epochs=3"))
    assert metrics["naive_last_value_mae"] > 0 and np.isfinite(metrics["test_mae"])
    assert metrics["mae_vs_naive"] == pytest.approx(metrics["test_mae"] / metrics["naive_last_value_mae"])
    _, _, model = load_run(metrics["run_dir"])
    windows = np.random.default_rng(1).normal(10, 3, (2, 24)).astype("float32")
    out = serving(metrics)(window=tf.constant(windows))
    np.testing.assert_allclose(out["forecast"], np.asarray(model(windows))[:, 0], atol=1e-4)


@pytest.mark.parametrize("override,match", [
    ("model.cell=transformer", "model.cell"), ("task=translation", "task"),
    ("task=forecasting", "data.path"),
])
def test_bad_sequence_config_names_the_key(tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        SequenceModeling(seq_config(tmp_path, override))


def test_missing_csv_column_lists_the_columns(tmp_path):
    write_series(tmp_path / "series.csv")
    app = SequenceModeling(seq_config(tmp_path, "task=forecasting", "data.column=nope",
                                      f"data.path={tmp_path / 'series.csv'}"))
    with pytest.raises(ConfigError, match="step, load"):
        app.build_data("train")


def test_generate_refuses_other_tasks(tmp_path, cli):
    metrics = train(seq_config(tmp_path, "data.limit=64", "export.enabled=false"))
    result = cli("generate", "--run", metrics["run_dir"])
    assert result.returncode == 2 and "language_model" in result.stderr
    assert json.loads(RunDir(tmp_path / "run").metrics.read_text())["app"] == "sequence_modeling"
