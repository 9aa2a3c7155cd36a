"""The end of a run: its figures (training curves, confusion matrix, the worst mistakes,
calibration, the app's own), the per-class figures, the majority-class baseline and its
warnings, and which metrics.json keys are the app's."""

from pathlib import Path

import numpy as np

from training import plots
from training.errors import described
from training.pipeline import baselines, diagnostics, gradcam, multi_label
from training.pipeline import history as run_history

# metrics.json's keys that the pipeline writes; the others are the app's report's.
PIPELINE_KEYS = frozenset({
    "app", "test", "epochs_completed", "train_seconds", "pretrain_seconds",
    "train_examples_per_sec", "train_examples", "validation_examples", "test_examples",
    "global_batch_size", "replicas", "strategy", "backend", "precision", "params", "class_names",
    "confusion_matrix", "baseline", "warnings", "export", "run_dir", "per_class", "macro_avg",
    "weighted_avg", "balanced_accuracy", "calibration", "mistakes", "labels", "multi_label",
    "thresholds"})


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


def classification_figures(app, model, test_ds, run_dir=None):
    """One pass of `model` over the batched test split: metrics.json's confusion matrix,
    per-class figures and calibration; with `run_dir` (a RunDir), also mistakes.csv,
    calibration.png and, for image apps, mistakes.png and gradcam.png (a few right and the
    most confident wrong test images)."""
    names = list(app.class_names())
    predictions = diagnostics.predict(model, test_ds)
    matrix = predictions.confusion(len(names))
    calibration = diagnostics.calibration(predictions)
    figures = {"confusion_matrix": matrix.tolist(), **diagnostics.per_class(matrix, names),
               "calibration": calibration}
    if run_dir is None:
        return figures
    examples = app.example_names("test")
    figures["mistakes"] = diagnostics.write_mistakes_csv(predictions, names, run_dir.mistakes_csv, examples)
    draw(plots.reliability_diagram, run_dir.calibration, calibration)
    worst = sorted(predictions.worst_images, key=lambda i: -predictions.confidence[i])
    if worst:
        draw(plots.mistakes, run_dir.mistakes_png, [predictions.worst_images[i] for i in worst],
             [_title(predictions, names, i) for i in worst])
    explained = list(predictions.correct_images) + worst[:diagnostics.EXPLAINED]
    if explained:
        images = {**predictions.correct_images, **predictions.worst_images}
        draw(_gradcam, run_dir.gradcam, model, [images[i] for i in explained],
             [_title(predictions, names, i) for i in explained])
    return figures


def _title(predictions, names, i):
    """"Trouser (0.97)" for a right prediction, "Dress -> Trouser (0.28)" for a wrong one."""
    true, predicted = predictions.true[i], predictions.predicted[i]
    shown = plots.short(names[predicted]) if true == predicted else (
        f"{plots.short(names[true])} -> {plots.short(names[predicted])}")
    return f"{shown} ({predictions.confidence[i]:.2f})"


def _gradcam(model, images, titles, path):
    maps, _ = gradcam.heatmaps(model, np.stack(images))
    return plots.gradcam(images, maps, titles, path)


def write_report(app, model, history, test_ds, run_dir):
    """Training curves, confusion matrix (classification apps) and the app's own figures;
    returns their metrics.json entries. `run_dir`: a RunDir."""
    extra = {}
    draw(plots.training_curves, run_dir.training_curves, history)
    names = app.class_names()
    if names:
        extra["class_names"] = list(names)
    if names and app.is_multi_label():
        extra["labels"] = "multi"
        extra["thresholds"] = dict(zip(names, app.thresholds or [multi_label.DEFAULT] * len(names)))
        if test_ds is not None:
            extra.update(multi_label.test_figures(app, model, test_ds))
    elif names and test_ds is not None:
        extra.update(classification_figures(app, model, test_ds, run_dir))
        matrix = np.array(extra["confusion_matrix"])
        draw(plots.confusion_matrix, run_dir.confusion_matrix, matrix, names)
        extra["baseline"] = {"test": baselines.majority(matrix.sum(axis=1), names)}
    try:
        extra.update(app.report(model, test_ds, run_dir.path) or {})
    except Exception as e:  # its figures and extra metrics; the run's own are kept
        print(f"warning: the app's report failed ({described(e)}); the run's metrics and model "
              "are kept", flush=True)
    return extra


def baseline_warnings(app, config, metrics, val_ds, run_dir, steps):
    """Warning lines when validation never beat the majority class, or test does not clearly
    beat it (classification apps); the validation baseline goes into metrics["baseline"]. A run
    that weighs or draws the classes alike (data.class_weight, data.sampling) trades accuracy
    for the rare classes' recall, so it is judged by balanced accuracy (majority class: 1 /
    classes)."""
    names = app.class_names()
    if "baseline" not in metrics:
        return []
    evened = config.data.class_weight != "none" or config.data.sampling != "none"
    measure = "balanced accuracy" if evened else "accuracy"

    def scored(baseline):
        return baselines.balanced(baseline, len(names)) if evened else baseline

    warnings = []
    column = "val_balanced_accuracy" if evened else "val_accuracy"
    accuracies = [value for row, value in run_history.numbers(run_dir, column)]
    if val_ds is not None and accuracies:
        baseline = baselines.majority(baselines.label_counts(val_ds, len(names)), names)
        metrics["baseline"]["validation"] = baseline
        warnings.append(baselines.validation_warning(accuracies, scored(baseline), steps,
                                                     config.optimizer.learning_rate, measure))
    matrix = np.array(metrics["confusion_matrix"])
    test = (metrics["balanced_accuracy"] if evened
            else float(np.trace(matrix) / max(matrix.sum(), 1)))
    warnings.append(baselines.test_warning(test, scored(metrics["baseline"]["test"]), measure))
    return [w for w in warnings if w]


def rebuild_page(path):
    """`kat report`: write the finished run's report.html again. A classifier's run from before
    the per-class figures existed gets them first (one pass over its test split; the figures'
    files are written, metrics.json is left as it is). Returns the page's path."""
    import json

    import tensorflow as tf

    from training.errors import ConfigError
    from training.pipeline import inputs, report_page
    from training.run_dir import RunDir, load_run

    run_dir = RunDir(path)
    problem = run_dir.finished_problem() or (None if run_dir.is_finished() else
                                             f"{path} is not a finished run: metrics.json is missing")
    if problem:
        raise ConfigError(problem)
    metrics = json.loads(run_dir.metrics.read_text())
    if "confusion_matrix" in metrics and "per_class" not in metrics:
        config, app, model = load_run(path)
        test_ds, _ = inputs.make_dataset(app, "test", config, tf.distribute.get_strategy())
        metrics = {**metrics, **classification_figures(app, model, test_ds, run_dir)}
    return report_page.write(run_dir, metrics)
