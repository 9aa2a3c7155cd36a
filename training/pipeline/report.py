"""The end of a run: its figures (training curves, confusion matrix, the app's own), the
majority-class baseline and its warnings, and which metrics.json keys are the app's."""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training import plots
from training.errors import described
from training.pipeline import baselines
from training.pipeline import history as run_history

# metrics.json's keys that the pipeline writes; the others are the app's report's.
PIPELINE_KEYS = frozenset({
    "app", "test", "epochs_completed", "train_seconds", "pretrain_seconds",
    "train_examples_per_sec", "train_examples", "validation_examples", "test_examples",
    "global_batch_size", "replicas", "strategy", "backend", "precision", "params", "class_names",
    "confusion_matrix", "baseline", "warnings", "export", "run_dir"})


def report_scalars(metrics):
    """The numbers among metrics.json's entries that the app's report() added."""
    return {k: v for k, v in metrics.items() if k not in PIPELINE_KEYS
            and isinstance(v, (int, float)) and not isinstance(v, bool)}


def draw(plot, path, *args):
    """`plot(*args, path)`; a figure that fails (memory, an odd value) is a warning: the run
    keeps its model and metrics."""
    try:
        return plot(*args, path)
    except Exception as e:
        print(f"warning: {Path(path).name} was not drawn ({described(e)}); the run's metrics "
              "and model are kept", flush=True)
        return None


def _confusion(model, dataset, num_classes):
    """Counts of (true, predicted) class over `dataset`. Under TensorFlow the model runs as one
    traced function: called batch by batch it ran op by op, which took longer than training on
    small data. (Not Keras' predict: under tf.distribute it splits or shards the batches.)"""
    forward = lambda x: model(x, training=False)  # noqa: E731
    if keras.backend.backend() == "tensorflow":
        forward = tf.function(forward, reduce_retracing=True, autograph=False)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for features, labels in dataset:
        predicted = np.argmax(keras.ops.convert_to_numpy(forward(features)), axis=-1)
        np.add.at(matrix, (np.asarray(labels).reshape(-1), predicted.reshape(-1)), 1)
    return matrix


def write_report(app, model, history, test_ds, run_dir):
    """Training curves, confusion matrix (classification apps) and the app's own figures;
    returns their metrics.json entries. `run_dir`: a RunDir."""
    extra = {}
    draw(plots.training_curves, run_dir.training_curves, history)
    names = app.class_names()
    if names:
        extra["class_names"] = list(names)
    if names and test_ds is not None:
        matrix = _confusion(model, test_ds, len(names))
        draw(plots.confusion_matrix, run_dir.confusion_matrix, matrix, names)
        extra["confusion_matrix"] = matrix.tolist()
        extra["baseline"] = {"test": baselines.majority(matrix.sum(axis=1), names)}
    try:
        extra.update(app.report(model, test_ds, run_dir.path) or {})
    except Exception as e:  # its figures and extra metrics; the run's own are kept
        print(f"warning: the app's report failed ({described(e)}); the run's metrics and model "
              "are kept", flush=True)
    return extra


def baseline_warnings(app, config, metrics, val_ds, run_dir, steps):
    """Warning lines when validation never beat the majority class, or test does not clearly
    beat it (classification apps); the validation baseline goes into metrics["baseline"]."""
    names = app.class_names()
    if "baseline" not in metrics:
        return []
    warnings = []
    accuracies = [value for row, value in run_history.numbers(run_dir, "val_accuracy")]
    if val_ds is not None and accuracies:
        baseline = baselines.majority(baselines.label_counts(val_ds, len(names)), names)
        metrics["baseline"]["validation"] = baseline
        warnings.append(baselines.validation_warning(accuracies, baseline, steps,
                                                     config.optimizer.learning_rate))
    matrix = np.array(metrics["confusion_matrix"])
    warnings.append(baselines.test_warning(float(np.trace(matrix) / max(matrix.sum(), 1)),
                                           metrics["baseline"]["test"]))
    return [w for w in warnings if w]
