"""Where a classifier fails: per-class figures against scikit-learn's, the calibration error of
hand-made predictions, the worst mistakes kept in one pass, and what a run prints and writes."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import fashion_train
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support

from apps.image_classification.model import build_classifier
from training.cli.train import SHOWN_CLASS_ROWS, per_class_table
from training.errors import ConfigError
from training.pipeline import diagnostics, gradcam
from training.run_dir import RunDir


def test_per_class_figures_are_scikit_learns_with_a_class_never_predicted_and_one_absent():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, 500)  # class 4 never occurs in the test split
    predicted = np.where(rng.random(500) < 0.6, true, rng.integers(0, 5, 500))
    predicted[predicted == 2] = 1  # class 2 is never predicted
    names = ["a", "b", "c", "d", "e"]
    matrix = diagnostics.Predictions(true, predicted, np.ones(500, np.float32)).confusion(5)
    got = diagnostics.per_class(matrix, names)
    p, r, f, s = precision_recall_fscore_support(true, predicted, labels=range(5), zero_division=0)
    for i, name in enumerate(names):
        assert got["per_class"][name] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    present = [0, 1, 2, 3]  # the averages are over the classes the test split has
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(true, predicted, labels=present, average=average,
                                                     zero_division=0)
        assert got[f"{average}_avg"] == pytest.approx({"precision": p, "recall": r, "f1": f})
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(true, predicted))


def test_expected_calibration_error_of_hand_made_predictions():
    # 10 examples at confidence 0.95, 8 of them right; 10 at 0.55, 5 right.
    confidence = np.array([0.95] * 10 + [0.55] * 10, np.float32)
    true = np.zeros(20, np.int64)
    predicted = np.array([0] * 8 + [1] * 2 + [0] * 5 + [1] * 5)
    result = diagnostics.calibration(diagnostics.Predictions(true, predicted, confidence), bins=10)
    assert result["ece"] == pytest.approx(0.5 * abs(0.8 - 0.95) + 0.5 * abs(0.5 - 0.55), abs=1e-6)
    filled = [b for b in result["bins"] if b["examples"]]
    assert [(b["low"], b["examples"], b["accuracy"]) for b in filled] == [
        (pytest.approx(0.5), 10, 0.5), (pytest.approx(0.9), 10, 0.8)]


def test_one_pass_keeps_the_images_of_the_most_confident_mistakes_only():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (90, 6, 6, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, 90)
    model = keras.Sequential([keras.Input((6, 6, 1), dtype="uint8"), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    predictions = diagnostics.predict(model, ds)
    probabilities = model.predict(images, verbose=0)
    np.testing.assert_array_equal(predictions.predicted, probabilities.argmax(-1))
    np.testing.assert_allclose(predictions.confidence, probabilities.max(-1), rtol=1e-5)
    worst = predictions.mistakes()
    assert len(worst) > diagnostics.SHOWN_MISTAKES
    assert sorted(predictions.worst_images) == sorted(worst[:diagnostics.SHOWN_MISTAKES])
    for index, image in predictions.worst_images.items():
        np.testing.assert_array_equal(image, images[index])


def test_a_run_writes_and_prints_the_per_class_figures_weakest_first(finished_run, cli):
    run = RunDir(finished_run["run"])
    metrics = json.loads(run.metrics.read_text())
    assert list(metrics["per_class"]) == metrics["class_names"]
    matrix = np.array(metrics["confusion_matrix"])
    assert [v["support"] for v in metrics["per_class"].values()] == matrix.sum(axis=1).tolist()
    assert 0 <= metrics["calibration"]["ece"] <= 1 and len(metrics["calibration"]["bins"]) == 15
    for figure in (run.calibration, run.mistakes_png, run.mistakes_csv):
        assert figure.stat().st_size > 0
    evaluated = cli("evaluate", "--run", str(run.path))
    assert evaluated.returncode == 0, evaluated.stderr
    again = json.loads(evaluated.stdout)  # the same model on the same test split
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    assert again["per_class"] == metrics["per_class"]  # from equal confusion counts
    assert again["calibration"]["ece"] == pytest.approx(metrics["calibration"]["ece"], abs=1e-6)
    table = per_class_table(metrics).splitlines()
    f1 = [float(line.split()[-2]) for line in table[2:2 + len(metrics["class_names"])]]
    assert f1 == sorted(f1)  # weakest first
    many = {**metrics, "per_class": {f"class {i}": {"precision": 0.5, "recall": 0.5, "f1": i / 100,
                                                    "support": 3} for i in range(35)}}
    shown = per_class_table(many).splitlines()
    assert len(shown) == 2 + SHOWN_CLASS_ROWS + 4
    assert shown[2].split()[:2] == ["class", "0"] and f"... {35 - SHOWN_CLASS_ROWS} more" in shown[-4]


def _patch_detector():
    """A conv net whose class 0 score grows with bright 3x3 patches anywhere (class 1's falls)."""
    inputs = keras.Input((16, 16, 1), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="conv",
                            kernel_initializer="ones", bias_initializer=keras.initializers.Constant(-4.0))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.Constant(
        [[20.0, -20.0]]), bias_initializer="zeros")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("where", [(3, 4), (11, 12)])
def test_gradcam_peaks_where_the_only_signal_is(where):
    image = np.zeros((1, 16, 16, 1), np.uint8)
    image[0, where[0] - 1:where[0] + 2, where[1] - 1:where[1] + 2] = 255  # one bright 3x3 patch
    maps, probabilities = gradcam.heatmaps(_patch_detector(), image)
    assert probabilities.argmax() == 0 and maps.shape == (1, 16, 16)
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == where
    assert maps[0].max() == pytest.approx(1.0)
    far = np.add.outer((np.arange(16) - where[0]) ** 2, (np.arange(16) - where[1]) ** 2) > 5 ** 2
    assert maps[0][far].max() < 0.05  # nothing far from the patch


def test_gradcam_finds_a_nested_backbones_map_and_refuses_models_without_one():
    backbone = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, strides=2),
                                 keras.layers.Conv2D(8, 3)], name="backbone")
    inputs = keras.Input((16, 16, 3))
    nested = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(backbone(inputs))))
    assert gradcam.feature_map_layer(nested).name == "backbone"
    maps, _ = gradcam.heatmaps(nested, np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32"))
    assert maps.shape == (2, 16, 16) and np.isfinite(maps).all()
    application = build_classifier("keras_applications/MobileNetV2", (64, 64, 3), 3, weights=None)
    assert gradcam.feature_map_layer(application).name.startswith("mobilenetv2")  # its 2x2 map
    with pytest.raises(ConfigError, match="last feature map is 1x1 at this image size"):
        gradcam.feature_map_layer(build_classifier("keras_applications/MobileNetV2", (32, 32, 3), 3,
                                                   weights=None))
    dense_only = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Rescaling(1 / 255),
                                   keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ConfigError, match="has no convolutional feature map"):
        gradcam.feature_map_layer(dense_only)
    rows = keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    with pytest.raises(ConfigError, match=r"image models; .* takes float32 \(28, 28\), not images"):
        gradcam.feature_map_layer(rows)


def test_kat_explain_writes_the_figure_and_bad_files_are_one_line(finished_run, cli, tmp_path):
    run = str(finished_run["run"])
    images, _ = fashion_train()
    for i in range(2):
        Image.fromarray(images[i][..., 0]).save(tmp_path / f"item{i}.png")
    (tmp_path / "notes.png").write_text("not an image")
    out = tmp_path / "cam.png"
    result = cli("explain", "--run", run, str(tmp_path / "item0.png"), str(tmp_path / "item1.png"),
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'item0.png'}: ") and lines[-1] == f"Grad-CAM: {out}"
    assert Image.open(out).size[0] > 200
    assert RunDir(run).gradcam.stat().st_size > 0  # the run drew its own
    bad = cli("explain", "--run", run, str(tmp_path / "notes.png"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "notes.png is not a readable image" in bad.stderr
