"""`model.compile` as every run does it: the app's loss and metrics, the configured optimizer
and schedule, and the runtime options (steps per execution, XLA)."""

import keras

from training.errors import AppContractError
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
