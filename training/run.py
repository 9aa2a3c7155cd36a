"""The shared pipeline: config -> strategy -> data -> model -> fit/evaluate -> artifacts -> export."""

import csv
import json
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from serving.layout import model_name_problem
from training import (
    artifacts,
    backend,
    baselines,
    fine_tuning,
    input_pipeline,
    litert,
    plots,
    run_length,
)
from training import run_dir as run_dirs
from training.app import App
from training.batch_norm_statistics import BatchNormStatistics, normalized_batch, sample_batches
from training.callbacks import (
    PreemptedStop,
    load_weights_without_optimizer,
    monitored,
    recover_backup,
    resolve_restore_best,
    standard_callbacks,
    steady_examples_per_sec,
)
from training.config import load_config, save_yaml
from training.contract import check_features
from training.disk_space import require_free_space, saved_bytes
from training.errors import (
    AppContractError,
    ConfigError,
    DataError,
    ExportError,
    Preempted,
    TrainingDiverged,
    described,
    model_file_damage,
)
from training.export import export_in_tensorflow, export_saved_model
from training.optimizers import build_optimizer
from training.registry import get_app
from training.strategy import make_strategy, strategy_name


def _set_precision(config):
    if config.runtime.mixed_precision:
        on_gpu = any("gpu" in d.lower() or "cuda" in d.lower()
                     for d in keras.distribution.list_devices())
        keras.mixed_precision.set_global_policy("mixed_float16" if on_gpu else "mixed_bfloat16")
    else:
        keras.mixed_precision.set_global_policy("float32")


def _resume_point(run_dir):
    """(epochs completed, steps done of the next one) of the interrupted run's backup, from
    its metadata ((0, 0) if none; AtomicBackupAndRestore)."""
    path = run_dir / "backup" / "training_metadata.json"
    try:
        metadata = json.loads(path.read_text())
        return int(metadata["epoch"]), int(metadata.get("steps_done", 0))
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def _backup_holds(run_dir, config, steps):
    epoch, steps_done = _resume_point(run_dir)
    return (f"{epoch} completed epoch(s) of {config.epochs}"
            + (f" and {steps_done} of {steps} steps of epoch {epoch + 1}" if steps_done else ""))


def _history(run_dir, column, rows=None):
    """(row, value) for each history.csv row (or each of `rows`) whose `column` holds a number:
    Keras' CSVLogger writes NA into the val_* columns of a run without validation."""
    path = run_dir / "history.csv"
    if rows is None:
        if not path.exists():
            return []
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    numbers = []
    for row in rows:
        try:
            numbers.append((row, float(row.get(column, ""))))
        except ValueError:  # NA, or no such column
            continue
    return numbers


def _trim_history(run_dir, completed, has_validation):
    """On resume: drop history.csv rows of epochs the backup does not hold (an epoch cut
    short by a kill or SIGTERM); return the best monitored value of the rest, or None."""
    path = run_dir / "history.csv"
    if not path.exists():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if int(r["epoch"]) < completed]
    if rows:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)
    values = [value for row, value in _history(run_dir, monitored(has_validation), kept)]
    return min(values) if values else None


def _dividing(steps_per_execution, steps_per_epoch):
    """The largest step count <= steps_per_execution that divides the epoch.

    The training stream runs through all epochs (seeded per epoch, for exact
    resumes), and Keras always runs whole executions, so an execution that
    straddled an epoch's end would take the next epoch's batches.
    """
    return max(d for d in range(1, steps_per_execution + 1) if steps_per_epoch % d == 0)


def _steps_per_execution(config, strategy):
    """Keras 3 fails with steps_per_execution > 1 under more than one replica
    ("You must feed a value for placeholder", keras-team/keras#19246), so
    multi-replica runs execute one step per call; Keras' PyTorch trainer takes only one."""
    if keras.backend.backend() == "torch":
        return 1
    if strategy.num_replicas_in_sync > 1 and config.runtime.steps_per_execution > 1:
        print(f"note: runtime.steps_per_execution={config.runtime.steps_per_execution} -> 1 with "
              f"{strategy.num_replicas_in_sync} replicas (keras-team/keras#19246)")
        return 1
    return config.runtime.steps_per_execution


def compile_options(config, strategy, steps_per_epoch=None):
    """The runtime options every `model.compile` of a run gets; given the epoch's
    steps, steps_per_execution is lowered to divide them (see _dividing)."""
    spe = _steps_per_execution(config, strategy)
    if steps_per_epoch:
        spe = _dividing(spe, steps_per_epoch)
    return {"steps_per_execution": spe, "jit_compile": backend.jit_compile(config.runtime.jit_compile)}


def compile_model(model, app, config, steps_per_epoch, options, phase=None):
    """model.compile with the app's loss/metrics, the configured optimizer and
    schedule (over the epochs of `phase`, a fine_tuning.Phase, if given), and the
    run's `compile_options`."""
    args = dict(app.compile_args())
    default_optimizer = args.pop("optimizer", "adam")
    if not isinstance(default_optimizer, str):
        raise AppContractError(f"{type(app).__name__}.compile_args()['optimizer'] must be a name "
                               "(e.g. 'adam'); the pipeline builds the optimizer from config.optimizer")
    epochs = phase.end - phase.start if phase else config.epochs
    optimizer = phase.optimizer if phase else config.optimizer
    total = steps_per_epoch * epochs if steps_per_epoch else None
    model.compile(
        optimizer=build_optimizer(optimizer, default_optimizer, total, steps_per_epoch),
        **options,
        **args,
    )


def _diverged_message(failure, config, run_dir):
    epoch, batch, loss = failure
    lr = config.optimizer.learning_rate
    return (f"Training diverged: the loss became {loss} in epoch {epoch} near batch {batch}. "
            f"Lower the learning rate (--set optimizer.learning_rate={lr / 10:g}, now {lr:g}) "
            f"or clip gradients (--set optimizer.clipnorm=1.0). Checkpoints of the last good "
            f"epochs are in {run_dir / 'checkpoints'}.")


def _restored_message(run_dir, monitor, best_value):
    """One line: which epoch restore_best went back to, and its monitored value."""
    rows = _history(run_dir, monitor)
    if not rows:
        return f"Restored the best checkpoint ({monitor} {best_value:.4f})"
    best, value = min(rows, key=lambda row_value: row_value[1])
    return (f"Restored the weights of epoch {int(best['epoch']) + 1} of {len(rows)}, the best "
            f"{monitor} ({value:.4f}; callbacks.restore_best=false keeps the last)")


def _baseline_warnings(app, config, metrics, val_ds, run_dir, steps):
    """Warning lines when validation never beat the majority class, or test does not clearly
    beat it (classification apps); the validation baseline goes into metrics["baseline"]."""
    names = app.class_names()
    if "baseline" not in metrics:
        return []
    warnings = []
    accuracies = [value for row, value in _history(run_dir, "val_accuracy")]
    if val_ds is not None and accuracies:
        baseline = baselines.majority(baselines.label_counts(val_ds, len(names)), names)
        metrics["baseline"]["validation"] = baseline
        warnings.append(baselines.validation_warning(accuracies, baseline, steps,
                                                     config.optimizer.learning_rate))
    matrix = np.array(metrics["confusion_matrix"])
    warnings.append(baselines.test_warning(float(np.trace(matrix) / max(matrix.sum(), 1)),
                                           metrics["baseline"]["test"]))
    return [w for w in warnings if w]


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


def draw(plot, path, *args):
    """`plot(*args, path)`; a figure that fails (memory, an odd value) is a warning: the run
    keeps its model and metrics."""
    try:
        return plot(*args, path)
    except Exception as e:
        print(f"warning: {Path(path).name} was not drawn ({described(e)}); the run's metrics "
              "and model are kept", flush=True)
        return None


def write_report(app, model, history, test_ds, run_dir):
    """Training curves, confusion matrix (classification apps) and the app's own figures."""
    extra = {}
    draw(plots.training_curves, run_dir / "training_curves.png", history)
    names = app.class_names()
    if names:
        extra["class_names"] = list(names)
    if names and test_ds is not None:
        matrix = _confusion(model, test_ds, len(names))
        draw(plots.confusion_matrix, run_dir / "confusion_matrix.png", matrix, names)
        extra["confusion_matrix"] = matrix.tolist()
        extra["baseline"] = {"test": baselines.majority(matrix.sum(axis=1), names)}
    try:
        extra.update(app.report(model, test_ds, str(run_dir)) or {})
    except Exception as e:  # its figures and extra metrics; the run's own are kept
        print(f"warning: the app's report failed ({described(e)}); the run's metrics and model "
              "are kept", flush=True)
    return extra


WARMUP_EXAMPLES = 3  # per signature: every graph runs once at load, and loading stays quick


def warmup_features(app):
    """A batch of WARMUP_EXAMPLES real examples' features (test split, else train), or None."""
    for split in ("test", "train"):
        ds = app.build_data(split)
        if ds is not None:
            for features, _ in ds.batch(WARMUP_EXAMPLES).take(1):
                return features
    return None


def export_model(app, model, config, name=None, run_dir=None):
    """Export `model` for TF Serving, with warm-up requests; returns the version directory.
    Under PyTorch, `run_dir`'s model.keras is exported by a TensorFlow process."""
    name = name or config.export.name or config.app
    if keras.backend.backend() == "torch":
        return export_in_tensorflow(run_dir or config.run_dir, config.export.dir, name)

    def signatures(served):  # the model itself, or its TF conversion under another backend
        return {"serving_default": app.serving_signature(served), **app.extra_signatures(served)}

    return export_saved_model(model, signatures, config.export.dir, name, warmup_features(app))


# metrics.json's keys that the pipeline writes; the others are the app's report's.
PIPELINE_KEYS = frozenset({
    "app", "test", "epochs_completed", "train_seconds", "pretrain_seconds",
    "train_examples_per_sec", "train_examples", "validation_examples", "test_examples",
    "global_batch_size", "replicas", "strategy", "backend", "params", "class_names", "confusion_matrix",
    "baseline", "warnings", "export", "run_dir"})


def report_scalars(metrics):
    """The numbers among metrics.json's entries that the app's report() added."""
    return {k: v for k, v in metrics.items() if k not in PIPELINE_KEYS
            and isinstance(v, (int, float)) and not isinstance(v, bool)}


def train(config):
    """Train, evaluate and export one app as configured; returns metrics.json's content."""
    backend.select(config)  # Keras is loaded: this checks it is the configured backend
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy, config.runtime.logical_cpus)
    _set_precision(config)
    # tf.distribute names the chief (worker 0 without a "chief" task); the other
    # workers keep their files (backups too) out of the run dir.
    if not strategy.extended.should_checkpoint:
        config.run_dir = tempfile.mkdtemp(prefix="kat-worker-")
        config.export.enabled = False
    if config.model.init_from:  # before the run dir is made
        source = fine_tuning.source_path(config.model.init_from).resolve()
        if config.run_dir and Path(config.run_dir).resolve() in source.parents:
            raise ConfigError(f"model.init_from={config.model.init_from} lies in run_dir "
                              f"{config.run_dir}, which this run writes; choose another "
                              f"{run_dirs.TRAIN_OPTION}")
    with run_dirs.claim(config.run_dir, config.app) as claimed:
        return _train(config, strategy, claimed)


def _train(config, strategy, claimed):
    run_dir = claimed.path
    app = get_app(config.app)(config)
    train_examples = input_pipeline.split_examples(app)
    run_length.resolve(config, train_examples, strategy.num_replicas_in_sync)
    app.resolve_auto()
    recover_backup(run_dir / "backup")
    resuming = (run_dir / "backup").exists()
    first_epoch, steps_done = _resume_point(run_dir) if resuming else (0, 0)
    phases = [p for p in fine_tuning.phases(config) if p.end > first_epoch]  # the epochs to do
    train_ds, examples = input_pipeline.make_dataset(
        app, "train", config, strategy, training=True,
        epochs=(max(phases[0].start, first_epoch), phases[0].end), examples=train_examples)
    if train_ds is None:
        raise ConfigError("The training split is empty; raise data.limit or lower "
                          "data.validation_split")
    val_ds, val_examples = input_pipeline.make_dataset(app, "validation", config, strategy)
    resolve_restore_best(config, val_examples)
    if val_ds is None and config.data.validation_split > 0:
        print(f"warning: the validation split is empty (data.validation_split="
              f"{config.data.validation_split:g}): history has no val_* metrics and the best "
              "checkpoint is chosen by training loss; raise data.validation_split or data.limit",
              flush=True)
    test_ds, test_examples = input_pipeline.make_dataset(app, "test", config, strategy)
    if test_ds is None:
        print("warning: the test split is empty, so the run ends without test metrics (the "
              "model is exported as trained); give more data, or a test/ folder, or raise "
              "data.test_split where the app has it", flush=True)
    steps = input_pipeline.batches_per_epoch(examples, config, strategy)
    if resuming:
        print(f"Resuming {run_dir} after epoch {first_epoch} of {config.epochs}"
              + (f" and {steps_done} of {steps} steps of epoch {first_epoch + 1}" if steps_done
                 else ""), flush=True)
    data_line = app.describe_data()
    print(f"Data: {data_line + '; ' if data_line else ''}{examples:,} training, {val_examples:,} "
          f"validation, {test_examples:,} test examples", flush=True)

    options = compile_options(config, strategy, steps)
    with strategy.scope():
        save_yaml(config, run_dir / "config.yaml")
        if type(app).pretrain is not App.pretrain:
            claimed.started()  # the run dir holds work from here on: pretrained layers
        start = time.perf_counter()
        app.pretrain(str(run_dir), options)
        pretrain_seconds = time.perf_counter() - start
        model = app.build_model()
        check_features(app, model, train_ds.element_spec)
        if config.model.init_from and not resuming:  # a resume restores every weight
            fine_tuning.init_from(model, config.model.init_from, app.class_names())
    batch_norm = BatchNormStatistics(model, sample_batches(
        app, config, config.callbacks.batch_norm_batches,
        normalized_batch(config, strategy.num_replicas_in_sync)))
    best_value = _trim_history(run_dir, first_epoch, val_ds is not None) if resuming else None
    history, epoch_seconds, train_seconds = {}, [], 0.0
    claimed.started()  # the run dir holds work from here on: backups, checkpoints, history
    for phase in phases:
        start_epoch = max(phase.start, first_epoch)
        if config.model.freeze_backbone:
            fine_tuning.set_backbone_frozen(model, phase.frozen)
        with strategy.scope():
            compile_model(model, app, config, steps, options, phase)
        if len(phases) > 1:
            print(f"Epochs {start_epoch + 1}-{phase.end}: "
                  + ("backbone frozen, training the output layer" if phase.frozen else
                     f"every layer trains, learning rate {phase.optimizer.learning_rate:g}"),
                  flush=True)
        # A mid-epoch backup: the rest of its epoch is a fit of its own (Keras runs whole
        # epochs of one length), then the phase's other epochs.
        fits = [(start_epoch, phase.end, 0)]
        if steps_done and start_epoch == first_epoch:
            fits = [(start_epoch, start_epoch + 1, steps_done)]
            fits += [(start_epoch + 1, phase.end, 0)] if phase.end > start_epoch + 1 else []
        for begin, end, skip in fits:
            if (begin, end, skip) != (max(phases[0].start, first_epoch), phases[0].end, 0):
                train_ds, _ = input_pipeline.make_dataset(
                    app, "train", config, strategy, training=True, epochs=(begin, end),
                    examples=examples, skip_batches=skip)
            throughput, nan_guard, preemption, callbacks = standard_callbacks(
                config, str(run_dir), examples, val_ds is not None, begin > 0, best_value,
                test_ds, phase.index, phase is phases[-1] and end == phase.end, batch_norm,
                steps - skip, skip)
            callbacks += app.callbacks(str(run_dir)) + [preemption]
            start = time.perf_counter()
            try:
                fitted = model.fit(train_ds, validation_data=val_ds, initial_epoch=begin,
                                   epochs=end, steps_per_epoch=steps - skip, callbacks=callbacks,
                                   verbose=config.runtime.keras_verbose(),
                                   shuffle=False)  # the input pipeline shuffles, seeded per epoch
            except PreemptedStop:
                raise Preempted(f"Stopped by SIGTERM. The backup in {run_dir / 'backup'} holds "
                                f"{_backup_holds(run_dir, config, steps)}; resume by running the "
                                f"same command with --set run_dir={run_dir}") from None
            train_seconds += time.perf_counter() - start
            for key, values in fitted.history.items():
                history.setdefault(key, []).extend(values)
            epoch_seconds += throughput.epoch_seconds
            best_value = next(c.best for c in callbacks
                              if isinstance(c, keras.callbacks.ModelCheckpoint))
            if nan_guard.failure:
                raise TrainingDiverged(_diverged_message(nan_guard.failure, config, run_dir))

    best = run_dir / "checkpoints" / "best.weights.h5"
    if config.callbacks.restore_best and val_ds is not None and best.exists():
        load_weights_without_optimizer(model, best)  # it may be an earlier phase's
        # Its BatchNorm statistics are the ones recomputed before that epoch's validation.
        print(_restored_message(run_dir, monitored(True), best_value), flush=True)
    else:
        batch_norm.recompute()
    require_free_space(run_dir, saved_bytes(model), "the trained model (model.keras)")
    model.save(run_dir / "model.keras")
    test = model.evaluate(test_ds, return_dict=True, verbose=0) if test_ds is not None else {}

    metrics = {
        "app": config.app,
        "test": {k: float(v) for k, v in test.items()},
        "epochs_completed": first_epoch + len(epoch_seconds),
        "train_seconds": train_seconds,
        "train_examples_per_sec": steady_examples_per_sec(epoch_seconds, examples),
        "train_examples": examples,
        "validation_examples": val_examples,
        "test_examples": test_examples,
        "global_batch_size": input_pipeline.global_batch_size(config, strategy),
        "replicas": strategy.num_replicas_in_sync,
        "strategy": strategy_name(strategy),
        "backend": keras.backend.backend(),
        "params": model.count_params(),
    }
    if type(app).pretrain is not App.pretrain:  # the app has an unsupervised stage
        metrics["pretrain_seconds"] = pretrain_seconds
    metrics.update(write_report(app, model, history, test_ds, run_dir))
    metrics["warnings"] = _baseline_warnings(app, config, metrics, val_ds, run_dir,
                                             steps * metrics["epochs_completed"])
    if config.export.enabled:
        metrics["export"] = str(export_model(app, model, config, run_dir=run_dir))
    metrics["run_dir"] = str(run_dir)
    with open(run_dir / run_dirs.FINISHED_MARKER, "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def resolve_run_length(config):
    """`config` with `epochs`/`batch_size: auto`, the app's own `auto` options and
    `callbacks.restore_best: auto` resolved as a one-device run would (--print-config, tune)."""
    app = get_app(config.app)(config)
    if run_length.AUTO in (config.epochs, config.batch_size):
        run_length.resolve(config, input_pipeline.split_examples(app))
    app.resolve_auto()
    if config.callbacks.restore_best == run_length.AUTO:
        resolve_restore_best(config, input_pipeline.split_examples(app, "validation"))
    return config


def load_run(run_dir, overrides=()):
    """(config, app, model) of a finished run directory; `overrides` as in --set."""
    run_dir = Path(run_dir)
    for needed in ("config.yaml", "model.keras"):
        if not (run_dir / needed).exists():
            raise FileNotFoundError(f"{run_dir} is not a finished run: {needed} is missing "
                                    "(train first: python -m training train --app NAME)")
    config = load_config(None, run_dir / "config.yaml", overrides)
    app = get_app(config.app)(config)
    try:
        model = keras.saving.load_model(run_dir / "model.keras")
    except Exception as e:  # Keras reports a torn zip as "File not found", among others
        best = run_dir / "checkpoints" / "best.weights.h5"
        raise DataError(f"{run_dir / 'model.keras'} cannot be loaded "
                        f"({model_file_damage(run_dir / 'model.keras', e)}); it is damaged or was "
                        "not written completely. Train again into a new run_dir"
                        + (f" (the best weights are in {best})" if best.exists() else "")) from None
    return config, app, model


def evaluate(run_dir, overrides=(), artifact=None):
    """Test metrics of a finished run's saved model, or of `artifact` exported from it (a
    SavedModel version dir or a .tflite file), scored by the run's loss and metrics, with
    `examples`: how many test examples were scored."""
    config, app, model = load_run(run_dir, overrides)
    loaded = None
    if artifact is not None:
        loaded = artifacts.open_artifact(artifact)
        artifacts.check_fits(loaded, model, config.app)
    strategy = tf.distribute.get_strategy()
    test_ds, examples = input_pipeline.make_dataset(app, "test", config, strategy)
    if test_ds is None:
        raise ConfigError(f"App {config.app} has no test split to evaluate")
    if loaded is None:
        scores = model.evaluate(test_ds, return_dict=True, verbose=0)
        return {**{k: float(v) for k, v in scores.items()}, "examples": examples}
    if isinstance(loaded, artifacts.LiteRTModel):
        output = loaded.output_names[0]  # the model's own output, as Keras exported it
    else:
        output = app.serving_signature(model).scored
        if output is None or output not in loaded.fn.structured_outputs:
            raise ConfigError(f"{artifact}'s serving_default has no output that {config.app} "
                              "scores against its labels; evaluate the run itself (no --artifact)")
    return {**artifacts.score(loaded, output, test_ds, app.compile_args()), "examples": examples}


EXPORT_FORMATS = ("saved_model", "litert")


def export_run(run_dir, name=None, export_dir=None, format="saved_model", quantize=None,
               int8_io=False, per_tensor=False):
    """Export a finished run's saved model as a SavedModel (TF Serving) or a LiteRT model
    (`quantize`: litert.QUANTIZE); returns the version directory."""
    problem = model_name_problem(name) if name else None
    if problem:  # before the model loads
        raise ExportError(f"--name {name!r} {problem}")
    if format not in EXPORT_FORMATS:
        raise ExportError(f"--format {format!r} is not one of: {', '.join(EXPORT_FORMATS)}")
    if format == "saved_model" and (quantize not in (None, "none") or int8_io or per_tensor):
        raise ExportError("A SavedModel for TF Serving is exported in float; --quantize, "
                          "--int8-io and --per-tensor are for --format litert")
    if format == "litert" and quantize not in (None, *litert.QUANTIZE):
        raise ExportError(f"--quantize {quantize!r} is not one LiteRT takes; choose one of: "
                          f"{', '.join(litert.QUANTIZE)}")
    config, app, model = load_run(run_dir)
    if export_dir:
        config.export.dir = export_dir
    if format == "litert":
        return litert.export_litert(app, model, config, name, quantize or "none", int8_io,
                                    source=run_dir, per_tensor=per_tensor)
    return export_model(app, model, config, name, run_dir=run_dir)
