"""`model.compile` as every run does it: the app's loss and metrics, the configured optimizer
and schedule, and the runtime options (steps per execution, XLA)."""

import keras

from layers.class_metrics import BalancedAccuracy, MacroF1
from training.errors import AppContractError
from training.pipeline.callbacks import check_monitor
from training.pipeline.optimizers import build_optimizer
from training.runtime import backend


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


SPARSE_LOSSES = ("sparse_categorical_crossentropy",)


def is_single_label(compile_args, model, num_classes):
    """Does the app train a softmax over `num_classes` classes with class-id labels: one output
    (batch, num_classes), a sparse categorical loss? (Not a language model's per-token one.)"""
    loss = compile_args.get("loss")
    name = loss if isinstance(loss, str) else type(loss).__name__
    sparse = name in SPARSE_LOSSES or isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    return (sparse and len(model.outputs) == 1 and len(model.outputs[0].shape) == 2
            and model.outputs[0].shape[-1] == num_classes)


def class_metrics(app, model, compile_args):
    """[BalancedAccuracy, MacroF1] for an app whose model is a single-label classifier, else []."""
    names = app.class_names()
    if not names or not is_single_label(compile_args, model, len(names)):
        return []
    return [BalancedAccuracy(len(names)), MacroF1(len(names))]


def run_compile_args(app, model):
    """The app's compile_args with what the pipeline adds: a single-label classifier's balanced
    accuracy and macro F1 (what a run's model was compiled with, so an export is scored alike)."""
    args = dict(app.compile_args())
    metrics = args.get("metrics") or []
    if isinstance(metrics, (list, tuple)):  # not a dict of each output's metrics
        args["metrics"] = list(metrics) + class_metrics(app, model, args)
    return args


def metric_name(metric):
    """The history.csv name of a compile_args metric (a name, a function or a Metric)."""
    return metric if isinstance(metric, str) else getattr(metric, "name", None) or metric.__name__


def compile_model(model, app, config, steps_per_epoch, options, phase=None):
    """model.compile with the app's loss/metrics (a single-label classifier's with balanced
    accuracy and macro F1 added), the configured optimizer and schedule (over the epochs of
    `phase`, a fine_tuning.Phase, if given), and the run's `compile_options`."""
    args = run_compile_args(app, model)
    if isinstance(args.get("metrics"), list):
        check_monitor(config, ["loss"] + [metric_name(m) for m in args["metrics"]])
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
