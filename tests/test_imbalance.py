"""Imbalanced classes: the class counts line, data.class_weight and data.sampling in the training
stream, balanced accuracy and macro F1 as metrics (history.csv, restore_best, tune's objective)."""

import re

import numpy as np
import pytest
from PIL import Image

from tests.conftest import fashion_train
from training.errors import ConfigError
from training.registry import load_config

TINY = ["epochs=2", "batch_size=16", "model.width_multiplier=0.25", "runtime.verbose=0",
        "callbacks.tensorboard=false", "export.enabled=false", "data.test_split=0.25",
        "callbacks.batch_norm_batches=2"]
COUNTS = {"Bag": 12, "Sneaker": 72, "Trouser": 72}  # Fashion-MNIST classes 8, 7, 1: 6:1


@pytest.fixture(scope="module")
def imbalanced_folder(tmp_path_factory):
    """Class folders of Fashion-MNIST PNGs, COUNTS images each: the kind of data a user brings."""
    root = tmp_path_factory.mktemp("imbalanced")
    images, labels = fashion_train()
    for name, label in (("Bag", 8), ("Sneaker", 7), ("Trouser", 1)):
        (root / name).mkdir()
        for i in np.flatnonzero(labels == label)[:COUNTS[name]]:
            Image.fromarray(images[i][..., 0]).save(root / name / f"{i}.png")
    return root


def _counts(names, counts):
    from training.pipeline.class_balance import ClassCounts

    return ClassCounts(names, np.array(counts))


def test_balanced_weights_are_scikit_learns():
    from sklearn.utils.class_weight import compute_class_weight

    from training.pipeline.class_balance import class_weights

    labels = np.array([0] * 5 + [1] * 30 + [2] * 65)
    ours = class_weights("balanced", _counts(["a", "b", "c"], np.bincount(labels)))
    np.testing.assert_allclose(ours, compute_class_weight("balanced", classes=np.arange(3), y=labels))
    mapped = class_weights({"b": 2.5}, _counts(["a", "b", "c"], [5, 30, 65]))
    np.testing.assert_allclose(mapped, [1.0, 2.5, 1.0])  # the others keep 1


def test_bad_class_weights_are_one_line_errors():
    from training.pipeline.class_balance import class_weights

    with pytest.raises(ConfigError, match="names Cat, which is not a class.*classes: a, b"):
        class_weights({"Cat": 2.0}, _counts(["a", "b"], [5, 30]))
    with pytest.raises(ConfigError, match="weight >= 0 .Bag: -1."):
        load_config("image_classification", None, ["data.class_weight={Bag: -1}"])
    with pytest.raises(ConfigError, match="mapping .str: float. or one of: none, balanced"):
        load_config("image_classification", None, ["data.class_weight=heavy"])
    with pytest.raises(ConfigError, match="choose one"):
        load_config("image_classification", None, ["data.class_weight=balanced",
                                                    "data.sampling=balanced"])
    with pytest.raises(ConfigError, match="without val_"):
        load_config("image_classification", None, ["callbacks.monitor=val_macro_f1"])


def test_imbalance_line_only_above_three_to_one():
    assert not _counts(["a", "b"], [10, 30]).is_imbalanced()
    line = _counts(["a", "b", "c"], [10, 31, 25]).line()
    assert "3.1:1" in line and line.index("a 10") < line.index("c 25") < line.index("b 31")


def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from layers.class_metrics import BalancedAccuracy, MacroF1

    rng = np.random.default_rng(0)
    truth = rng.choice(4, 300, p=[0.05, 0.15, 0.3, 0.5])
    scores = rng.random((300, 4)) + np.eye(4)[truth] * rng.random((300, 1))
    predicted = scores.argmax(-1)
    for metric, reference in ((BalancedAccuracy(4), balanced_accuracy_score(truth, predicted)),
                              (MacroF1(4), f1_score(truth, predicted, average="macro"))):
        for start in range(0, 300, 64):  # batch by batch, as fit updates it
            metric.update_state(truth[start:start + 64], scores[start:start + 64])
        assert float(metric.result()) == pytest.approx(reference, abs=1e-6)


def _training_stream(config):
    import tensorflow as tf

    from training.pipeline import class_balance, inputs
    from training.registry import get_app

    app = get_app(config.app)(config)
    balance = class_balance.Balance(config, class_balance.train_counts(app))
    ds, examples = inputs.make_dataset(app, "train", config, tf.distribute.get_strategy(),
                                       training=True, epochs=(0, 2), balance=balance)
    return app, balance, list(ds.as_numpy_iterator()), examples


def test_class_weight_is_each_examples_sample_weight(imbalanced_folder):
    config = load_config("image_classification", None, TINY + [
        f"data.dir={imbalanced_folder}", "data.class_weight=balanced"])
    app, balance, batches, _ = _training_stream(config)
    labels = np.concatenate([b[1] for b in batches])
    weights = np.concatenate([b[2] for b in batches])
    np.testing.assert_allclose(weights, balance.weights[labels], rtol=1e-6)
    assert weights[labels == app.class_names().index("Bag")].min() > 2 * weights.min()


def test_balanced_sampling_draws_classes_alike_and_repeatably(imbalanced_folder):
    config = load_config("image_classification", None, TINY + [
        f"data.dir={imbalanced_folder}", "data.sampling=balanced"])
    app, balance, batches, examples = _training_stream(config)
    labels = np.concatenate([b[1] for b in batches])
    assert len(labels) == 2 * examples  # two epochs of the split's length
    drawn = np.bincount(labels, minlength=3) / len(labels)
    assert balance.counts.counts.min() / balance.counts.counts.sum() < 0.1
    assert drawn.min() > 0.2, drawn  # the rare class, 7% of the split, drawn about a third
    again = np.concatenate([b[1] for b in _training_stream(config)[2]])
    np.testing.assert_array_equal(labels, again)  # seeded: a resumed run sees the same


def test_a_run_on_imbalanced_folders_says_so_and_keeps_its_best_balanced_epoch(
        imbalanced_folder, tmp_path, cli):
    from training.pipeline import history
    from training.run_dir import RunDir
    from training.tuning.results import objective_value

    run = tmp_path / "run"
    result = cli("train", "--app", "image_classification", *[a for s in TINY for a in ("--set", s)],
                 "--set", f"data.dir={imbalanced_folder}", "--set", "data.class_weight=balanced",
                 "--set", "callbacks.monitor=macro_f1", "--set", "callbacks.restore_best=true",
                 "--set", f"run_dir={run}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"Classes are imbalanced \(\d+\.\d:1, largest to smallest\): Bag \d+, ",
                     result.stdout), result.stdout
    assert "data.class_weight: Bag " in result.stdout  # the rare class weighs most
    rows = history.read(RunDir(run))
    for column in ("balanced_accuracy", "macro_f1", "val_balanced_accuracy", "val_macro_f1"):
        assert column in rows[0]
    scores = [float(r["val_macro_f1"]) for r in rows]
    best = scores.index(max(scores))
    assert f"Restored the weights of epoch {best + 1} of 2, the best val_macro_f1" in result.stdout
    config = load_config("image_classification", RunDir(run).config)
    assert objective_value(config, "val_balanced_accuracy") == float(
        rows[best]["val_balanced_accuracy"])


def test_monitor_must_be_a_metric_of_the_run(imbalanced_folder, tmp_path, cli):
    result = cli("train", "--app", "image_classification", *[a for s in TINY for a in ("--set", s)],
                 "--set", f"data.dir={imbalanced_folder}", "--set", "callbacks.monitor=auc",
                 "--set", f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert "callbacks.monitor=auc is not a metric of this run; it has: loss, accuracy, " \
           "balanced_accuracy, macro_f1" in result.stderr


def test_tune_objectives_know_which_way_f1_goes():
    from training.tuning.search import make_objective

    assert make_objective("val_macro_f1").direction == "max"
    assert make_objective("val_balanced_accuracy").direction == "max"


def test_remedies_are_for_classifiers():
    from training.pipeline.class_balance import Balance

    config = load_config("tabular_regression", None, ["data.class_weight=balanced"])
    with pytest.raises(ConfigError, match="tabular_regression app has no classes"):
        Balance(config, None)


def test_a_run_that_evens_the_classes_is_judged_by_balanced_accuracy():
    from training.pipeline import baselines

    majority = {"class": "GPL-3", "accuracy": 0.9}  # 90% of the test split is one class
    assert baselines.test_warning(0.7, majority) is not None  # below always answering GPL-3
    # Balanced accuracy 0.7 over 5 classes is well above the majority answer's 0.2.
    assert baselines.test_warning(0.7, baselines.balanced(majority, 5), "balanced accuracy") is None
    line = baselines.test_warning(0.21, baselines.balanced(majority, 5), "balanced accuracy")
    assert line.startswith("warning: test balanced accuracy 0.2100 is not clearly above the "
                           "majority-class rate 0.2000")
