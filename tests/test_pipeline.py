"""One-epoch runs of the image app through the whole pipeline, on real and mocked data."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds

from training.errors import DataNotFoundError, TrainingDiverged
from training.export.saved_model import versions
from training.pipeline import train
from training.run_dir import RunDir


def test_real_fashion_mnist_slice_writes_every_artifact(finished_run):
    metrics = finished_run  # SMOKE, trained once for the session
    run = RunDir(finished_run["run"])
    for path in (run.config, run.metrics, run.history, run.model, run.training_curves,
                 run.confusion_matrix, run.best_weights):
        assert path.exists(), path
    saved = json.loads(run.metrics.read_text())
    assert saved["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert 0.0 <= saved["test"]["accuracy"] <= 1.0
    assert saved["train_examples"] == 256 and saved["epochs_completed"] == 1
    assert np.array(saved["confusion_matrix"]).sum() == 256  # every test image counted once
    assert saved["export"].endswith("image_classification/1")


def _fresh_process_predictions(export_path, images_path):
    code = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(export_path)!r})
        fn = loaded.signatures["serving_default"]
        out = fn(image=tf.constant(np.load({str(images_path)!r})))
        np.save({str(images_path)!r} + ".probs.npy", out["probabilities"].numpy())
        print(sorted(out))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip(), np.load(str(images_path) + ".probs.npy")


def test_export_reloads_in_fresh_process_with_same_predictions(finished_run, tmp_path):
    import keras

    metrics = finished_run
    model = keras.saving.load_model(RunDir(finished_run["run"]).model)
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    outputs, probs = _fresh_process_predictions(metrics["export"], tmp_path / "images.npy")
    assert outputs == "['class_id', 'class_name', 'probabilities']"
    assert np.max(np.abs(probs - model.predict(images, verbose=0))) <= 1e-5

    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    show = subprocess.run([cli, "show", "--dir", metrics["export"], "--all"],
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    assert "signature_def['serving_default']" in show.stdout
    assert "dtype: DT_UINT8" in show.stdout and "outputs['class_name']" in show.stdout


def test_export_never_overwrites_a_version(finished_run):
    from training.export import export_run

    export = finished_run["export_dir"]
    before = versions(export / "image_classification")
    second = export_run(finished_run["run"])
    assert second.name == str(before[-1] + 1)
    assert versions(export / "image_classification") == before + [before[-1] + 1]
    config_text = (export / "models.config").read_text()
    assert "name: 'image_classification'" in config_text
    assert not [p for p in (export / "image_classification").iterdir()
                if p.name.startswith(".tmp")]


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_datasets_by_name(smoke_config, tmp_path, name, shape):
    with tfds.testing.mock_data(num_examples=96):
        config = smoke_config(f"data.name={name}", "data.limit=64", "export.enabled=false")
        metrics = train(config)
    assert metrics["train_examples"] == 64
    assert "accuracy" in metrics["test"]
    import keras
    model = keras.saving.load_model(RunDir(tmp_path / "run").model)
    assert tuple(model.inputs[0].shape[1:]) == shape


def test_missing_data_names_both_fixes(smoke_config, tmp_path, monkeypatch):
    monkeypatch.setattr("apps.image_classification.data.IDX_DIRS", {})
    monkeypatch.delenv("KAT_DATA_DIR", raising=False)
    (tmp_path / "empty").mkdir()
    config = smoke_config(f"data.dir={tmp_path / 'empty'}", "data.download=false")
    with pytest.raises(DataNotFoundError) as err:
        train(config)
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message and "data.download=true" in message


def test_nan_loss_stops_with_a_fix(smoke_config):
    config = smoke_config("optimizer.name=sgd", "optimizer.learning_rate=1e30",
                          "optimizer.schedule=constant", "export.enabled=false")
    with pytest.raises(TrainingDiverged, match="optimizer.learning_rate="):
        train(config)


def test_test_each_epoch_logs_the_accuracy_curve_without_a_validation_split(smoke_config, tmp_path):
    import csv

    # No validation: Keras' CSVLogger still writes val_* columns, as NA, which the end-of-run
    # baseline check once read as numbers (a ValueError after the whole run).
    metrics = train(smoke_config("epochs=2", "callbacks.test_each_epoch=true",
                                 "data.validation_split=0", "export.enabled=false"))
    with open(RunDir(tmp_path / "run").history) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {r.get("val_accuracy", "NA") for r in rows} == {"NA"}
    assert "validation" not in metrics["baseline"]
    # The last epoch's test evaluation is of the final weights, as the run's own test.
    assert float(rows[-1]["test_accuracy"]) == pytest.approx(metrics["test"]["accuracy"])
    wall = [float(r["wall_seconds"]) for r in rows]
    assert 0 < wall[0] < wall[1] <= metrics["train_seconds"]


def test_seed_zero_trains_with_a_fresh_order_each_epoch(smoke_config):
    import keras
    import tensorflow as tf

    from training.pipeline import inputs as input_pipeline
    from training.registry import get_app

    config = smoke_config("seed=0", "data.validation_split=0")
    keras.utils.set_random_seed(0)  # as train() does; a global seed of 0 once broke the stream
    app = get_app(config.app)(config)
    stream, examples = input_pipeline.make_dataset(app, "train", config, tf.distribute.get_strategy(),
                                                   training=True, epochs=(0, 2))
    labels = np.concatenate([y.numpy() for _, y in stream])
    first, second = labels[:examples], labels[examples:]
    assert len(second) == examples and sorted(first) == sorted(second)
    assert not np.array_equal(first, second)


def test_steps_per_execution_divides_the_epoch(smoke_config):
    import tensorflow as tf

    from training.pipeline.compile import compile_options

    config = smoke_config("runtime.steps_per_execution=16")
    strategy = tf.distribute.get_strategy()
    assert compile_options(config, strategy)["steps_per_execution"] == 16
    # 446 = 2 x 223 steps: an execution of 16 would run into the next epoch's batches.
    assert compile_options(config, strategy, 446)["steps_per_execution"] == 2
    assert compile_options(config, strategy, 80)["steps_per_execution"] == 16


def test_split_range_partitions_in_order_and_honours_the_limit():
    from training.datasets import split_range

    ranges = [split_range(s, 1000, 0.1, 0.2) for s in ("train", "validation", "test")]
    assert ranges == [(0, 720), (720, 800), (800, 1000)]
    # Fashion-MNIST's 60,000 training images: the last 10% validate, as before the helper.
    assert split_range("validation", 60000, 0.1) == (54000, 60000)
    assert split_range("validation", 60000, 0.1, limit=256) == (54000, 54256)
    assert split_range("test", 10, test_split=1.0) == (0, 10)
    with pytest.raises(ValueError, match="train, validation, test"):
        split_range("dev", 10)


def test_a_missing_module_is_named_not_reported_as_missing_data(monkeypatch):
    from training.datasets import tfds_load
    from training.errors import CommandError

    def needs_beam(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'apache_beam'", name="apache_beam")

    monkeypatch.setattr(tfds, "load", needs_beam)
    with pytest.raises(CommandError, match="needs the Python module apache_beam: pip install it"):
        tfds_load("mnist", "train")

