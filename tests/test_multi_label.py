"""Multi-label images: the manifest (and its bad rows), thresholds chosen on validation, the
figures, and a run that starts from a single-label one, exports, predicts and serves its
labels above those thresholds."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import fashion_train
from training.errors import DataError
from training.registry import load_config
from training.run_dir import RunDir

# Coarse groups of Fashion-MNIST's classes: an image of two articles has one or two of them.
GROUPS = {"top": (0, 2, 4, 6), "shoe": (5, 7, 9), "other": (1, 3, 8)}
TINY = ["epochs=1", "batch_size=16", "model.width_multiplier=0.25", "runtime.verbose=0",
        "callbacks.tensorboard=false", "callbacks.batch_norm_batches=2"]


def _group(label):
    return next(name for name, members in GROUPS.items() if label in members)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Side-by-side pairs of Fashion-MNIST images (28x56) and their manifest (labels: the
    groups shown), plus class folders of single articles shown twice (a single-label run's data)."""
    root = tmp_path_factory.mktemp("pairs")
    images, labels = fashion_train()
    rng = np.random.default_rng(0)
    (root / "img").mkdir()
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "labels"])
        for n in range(160):
            a, b = rng.integers(0, len(images), 2)
            Image.fromarray(np.concatenate([images[a], images[b]], axis=1)[..., 0]).save(
                root / "img" / f"{n}.png")
            writer.writerow([f"img/{n}.png", ";".join(sorted({_group(labels[a]), _group(labels[b])}))])
    for n in range(60):
        name = _group(labels[n])
        (root / "single" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate([images[n], images[n]], axis=1)[..., 0]).save(
            root / "single" / name / f"{n}.png")
    return root


def _manifest(tmp_path, rows, files=("a.png", "b.png", "c.png", "d.png")):
    for name in files:
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name)
    path = tmp_path / "m.csv"
    path.write_text("file,labels\n" + "".join(f"{row}\n" for row in rows))
    return path


def test_bad_manifest_rows_are_skipped_and_counted(tmp_path, capsys):
    from apps.image_classification.manifest import read_manifest

    path = _manifest(tmp_path, ["a.png,cat;dog", "b.png,dog", "gone.png,cat", "c.png,",
                                "a.png,cat", "d.png,cat,extra", "b.png ,dog"])
    listing = read_manifest(path, ";", validation_split=0.0, test_split=0.0)
    out = capsys.readouterr().out
    assert listing.class_names == ["cat", "dog"]
    assert sorted(listing.splits["train"]) == [("a.png", (0, 1)), ("b.png", (1,))]
    for line in ("Skipped 1 of 7 manifest rows naming no image file that exists: gone.png",
                 "Skipped 1 of 7 manifest rows without labels: c.png",
                 "Skipped 2 of 7 manifest rows listing a file again: a.png, b.png",
                 "Skipped 1 of 7 manifest rows whose fields do not match the header: line 7",
                 "Kept 2 of 7 rows of"):
        assert line in out, out


def test_a_label_no_training_row_has_skips_the_row(tmp_path, capsys):
    from apps.image_classification.manifest import read_manifest
    from training.folder_data import hash_split

    files = [f"{i}.png" for i in range(40)]
    held = [f for f in files if hash_split(f, 0.0, 0.5) == "test"]
    rows = [f"{f},{'cat;owl' if f == held[0] else 'cat' if i % 2 else 'dog'}"
            for i, f in enumerate(files)]
    listing = read_manifest(_manifest(tmp_path, rows, files), ";", 0.0, 0.5)
    assert "owl" not in listing.class_names
    assert held[0] not in [f for f, _ in listing.splits["test"]]
    assert f"with a label no training row has (owl): {held[0]}" in capsys.readouterr().out


def test_a_manifest_without_its_columns_is_one_error(tmp_path):
    from apps.image_classification.manifest import read_manifest

    path = tmp_path / "m.csv"
    path.write_text("path,tags\na.png,cat\n")
    with pytest.raises(DataError, match="needs a header row with the columns file,labels .it has: "
                                        "path,tags."):
        read_manifest(path, ";", 0.1, 0.2)


def test_thresholds_maximise_each_labels_f1():
    from training.pipeline.multi_label import choose

    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [0, 1]], np.float32)
    scores = np.array([[0.30, 0.9], [0.25, 0.8], [0.10, 0.7], [0.05, 0.95], [0.2, 0.6]])
    low, high = choose(truth, scores)
    assert 0.2 < low <= 0.25  # both positives (0.25, 0.30) above, every negative below
    assert high <= 0.6  # label 2's positives score 0.6 and 0.7, below a negative's 0.95
    assert choose(np.zeros((3, 1)), np.random.default_rng(0).random((3, 1))) == [0.5]


def test_figures_agree_with_scikit_learn():
    from sklearn.metrics import average_precision_score, f1_score

    from training.pipeline.multi_label import average_precision, scores_at

    rng = np.random.default_rng(1)
    truth = (rng.random((200, 4)) < [0.05, 0.2, 0.4, 0.6]).astype(np.float32)
    scores = np.clip(truth * 0.3 + rng.random((200, 4)) * 0.7, 0, 1)
    thresholds = [0.3, 0.4, 0.5, 0.6]
    found = scores_at(truth, scores, thresholds, list("abcd"))
    decided = scores >= np.array(thresholds)
    assert found["micro_f1"] == pytest.approx(f1_score(truth, decided, average="micro"))
    assert found["macro_f1"] == pytest.approx(f1_score(truth, decided, average="macro"))
    np.testing.assert_allclose(average_precision(truth, scores),
                               average_precision_score(truth, scores, average=None))


def test_a_multi_label_run_from_a_single_label_one(pairs, tmp_path, cli):
    """Start from a single-label run of the same groups: a new head; then the thresholds
    chosen on validation are in metrics.json, the export and predict's answers."""
    import tensorflow as tf

    sets = [a for s in TINY for a in ("--set", s)]
    single = tmp_path / "single"
    result = cli("train", "--app", "image_classification", *sets, "--set",
                 f"data.dir={pairs / 'single'}", "--set", f"run_dir={single}",
                 "--set", "export.enabled=false")
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "multi"
    result = cli("train", "--app", "image_classification", *sets,
                 "--set", "data.labels=multi", "--set", f"data.manifest={pairs / 'manifest.csv'}",
                 "--set", f"model.init_from={single}", "--set", f"run_dir={run}",
                 "--set", f"export.dir={tmp_path / 'export'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "its head is single-label, this run is multi-label: a new head" in result.stdout
    assert "Multi-label thresholds, chosen on the validation split" in result.stdout
    assert "Per label on the test split" in result.stdout
    metrics = json.loads(RunDir(run).metrics.read_text())
    assert metrics["labels"] == "multi" and metrics["class_names"] == ["other", "shoe", "top"]
    thresholds = [metrics["thresholds"][name] for name in metrics["class_names"]]
    figures = metrics["multi_label"]
    for key in ("micro_f1", "macro_f1", "map"):
        assert 0 <= figures[key] <= 1
    assert set(figures["per_label"]) == {"other", "shoe", "top"}
    assert {"micro_f1", "macro_f1", "map"} <= set(metrics["test"])  # Keras' figures at 0.5

    served = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    image = np.array(Image.open(pairs / "img" / "0.png"))[None, ..., None]
    out = {k: v.numpy() for k, v in served(image=tf.constant(image)).items()}
    np.testing.assert_array_equal(out["above_threshold"][0], out["probabilities"][0] >= thresholds)
    assert [n.decode() for n in out["labels"][0]] == [
        name if above else "" for name, above in zip(metrics["class_names"], out["above_threshold"][0])]

    assert "Per label, weakest F1 first" in RunDir(run).report.read_text()
    lite = cli("export", "--run", str(run), "--format", "litert", "--export-dir", str(tmp_path / "lite"))
    assert lite.returncode == 0, lite.stderr[-2000:]
    details = json.loads((Path(lite.stdout.strip().splitlines()[-1]) / "model.json").read_text())
    assert details["thresholds"] == metrics["thresholds"] and details["labels"] == "labels.txt"

    answer = cli("predict", "--run", str(run), str(pairs / "img" / "0.png"))
    assert answer.returncode == 0, answer.stderr[-2000:]
    chosen = [n for n, above in zip(metrics["class_names"], out["above_threshold"][0]) if above]
    for name in chosen:
        assert name in answer.stdout
    if not chosen:
        assert "no label above its threshold" in answer.stdout


def test_multi_label_config_needs_a_manifest():
    from training.errors import ConfigError

    with pytest.raises(ConfigError, match="data.labels=multi reads its labels from data.manifest"):
        load_config("image_classification", None, ["data.labels=multi"])
    # "|" alone is a YAML block indicator: --set keeps it as the character.
    assert load_config("sequence_modeling", None, ["data.label_separator=|"]).data.label_separator == "|"
    with pytest.raises(ConfigError, match="data.labels=multi is the image_classification app's"):
        load_config("unsupervised_pretraining", None, ["data.labels=multi", "data.manifest=m.csv"])


def test_a_split_column_places_rows(tmp_path):
    from apps.image_classification.manifest import read_manifest

    files = [f"{i}.png" for i in range(12)]
    rows = [f"{f},{'cat' if i % 2 else 'dog'},{'test' if i < 3 else ''}" for i, f in enumerate(files)]
    path = _manifest(tmp_path, rows, files)
    path.write_text(path.read_text().replace("file,labels", "file,labels,split"))
    listing = read_manifest(path, ";", validation_split=0.0, test_split=0.5)
    assert sorted(f for f, _ in listing.splits["test"]) == ["0.png", "1.png", "2.png"]
    assert len(listing.splits["train"]) == 9  # test_split holds out nothing more: test is named


def test_a_text_csv_with_a_column_of_label_sets(tmp_path, cli):
    """Lines of real licenses tagged by the words they use: a text may have several tags or
    none (skipped); the export serves the tags above their thresholds."""
    import tensorflow as tf

    words = ("copyright", "license", "warranty", "software")
    path = tmp_path / "tags.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["line", "tags"])
        for name in ("GPL-3", "Apache-2.0"):
            for line in open(f"/usr/share/common-licenses/{name}", errors="replace"):
                if len(line.strip()) > 30:
                    writer.writerow([line.strip(), "|".join(w for w in words if w in line.lower())])
    run = tmp_path / "run"
    result = cli("train", "--app", "sequence_modeling", "--set", f"data.path={path}",
                 "--set", "data.text_column=line", "--set", "data.label_column=tags",
                 "--set", "data.labels=multi", "--set", "data.label_separator=|",
                 "--set", "epochs=2", "--set", "model.units=16", "--set", "runtime.verbose=0",
                 "--set", f"run_dir={run}", "--set", f"export.dir={tmp_path / 'export'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rows with an empty text, no label or bytes that are not UTF-8" in result.stdout
    metrics = json.loads(RunDir(run).metrics.read_text())
    assert metrics["class_names"] == sorted(words) and metrics["labels"] == "multi"
    served = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    out = served(text=tf.constant(["THERE IS NO WARRANTY FOR THE PROGRAM"]))
    cut = np.array([metrics["thresholds"][name] for name in metrics["class_names"]])
    np.testing.assert_array_equal(out["above_threshold"].numpy()[0],
                                  out["probabilities"].numpy()[0] >= cut)
