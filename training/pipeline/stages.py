"""A training run in named stages over one RunState: `prepare` (the app, its data, the run
length, where a resume starts), `build` (config.yaml, pretraining, the model), `fit` (each
fine-tuning phase: a fit, or two when a backup resumes mid-epoch) and `finish` (the weights to
keep, model.keras, test, report, export, metrics.json). Each stage reads and fills the state;
a new stage (a statistics pass, a tracker) is one function added to STAGES."""

import dataclasses
import json
import time
from typing import Any, Optional

import keras

from training.app import App
from training.config import save_yaml
from training.contract import check_features, check_output_dtypes
from training.errors import ConfigError, Preempted, TrainingDiverged
from training.export.from_run import export_model
from training.pipeline import (
    class_balance,
    fine_tuning,
    inputs,
    multi_label,
    report_page,
    run_length,
)
from training.pipeline import history as run_history
from training.pipeline.batch_norm_statistics import (
    BatchNormStatistics,
    normalized_batch,
    sample_batches,
)
from training.pipeline.callbacks import (
    PreemptedStop,
    load_weights_without_optimizer,
    monitored,
    recover_backup,
    resolve_restore_best,
    standard_callbacks,
    steady_examples_per_sec,
)
from training.pipeline.compile import compile_model, compile_options
from training.pipeline.report import baseline_warnings, draw, write_report
from training.registry import get_app
from training.run_dir import Claim
from training.runtime.disk_space import require_free_space, saved_bytes
from training.runtime.strategy import strategy_name


@dataclasses.dataclass
class RunState:
    """What the stages share. Filled in order: prepare, build, fit, finish."""

    config: Any
    strategy: Any
    claim: Claim
    precision: Any  # runtime.precision.Choice
    app: Optional[App] = None
    # prepare
    examples: int = 0  # training examples per epoch
    val_examples: int = 0
    test_examples: int = 0
    steps: int = 0  # optimizer steps per epoch
    resuming: bool = False
    first_epoch: int = 0  # epochs the backup holds
    steps_done: int = 0  # ... and steps of the epoch after them
    phases: list = dataclasses.field(default_factory=list)  # fine_tuning.Phase's still to train
    balance: Any = None  # class_balance.Balance of the training stream
    train_ds: Any = None
    train_span: tuple = ()  # (first epoch, end epoch, skipped batches) train_ds streams
    val_ds: Any = None
    test_ds: Any = None
    options: dict = dataclasses.field(default_factory=dict)  # compile_options
    # build
    model: Any = None
    pretrain_seconds: float = 0.0
    batch_norm: Any = None
    best_value: Optional[float] = None  # the best monitored value so far (resumed runs too)
    # fit
    history: dict = dataclasses.field(default_factory=dict)
    epoch_seconds: list = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0
    # finish
    metrics: dict = dataclasses.field(default_factory=dict)

    @property
    def run_dir(self):
        return self.claim.run_dir

    def has_pretraining(self):
        return type(self.app).pretrain is not App.pretrain


def prepare(state):
    """The app, its run length and `auto` options, the resume point and the three splits."""
    config = state.config
    state.app = get_app(config.app)(config)
    train_examples = inputs.split_examples(state.app)
    run_length.resolve(config, train_examples, state.strategy.num_replicas_in_sync)
    state.app.resolve_auto()
    recover_backup(state.run_dir.backup)
    state.resuming = state.run_dir.backup.exists()
    if state.resuming:
        state.first_epoch, state.steps_done = run_history.resume_point(state.run_dir)
    state.phases = [p for p in fine_tuning.phases(config) if p.end > state.first_epoch]
    counts = class_balance.train_counts(state.app)
    state.balance = class_balance.Balance(config, counts)
    _make_splits(state, train_examples)
    state.steps = inputs.batches_per_epoch(state.examples, config, state.strategy)
    _announce(state)
    state.options = compile_options(config, state.strategy, state.steps)


def _make_splits(state, train_examples):
    config, app, strategy = state.config, state.app, state.strategy
    span = (max(state.phases[0].start, state.first_epoch), state.phases[0].end, 0)
    state.train_ds, state.examples = inputs.make_dataset(
        app, "train", config, strategy, training=True, epochs=span[:2], examples=train_examples,
        balance=state.balance)
    state.train_span = span
    if state.train_ds is None:
        raise ConfigError("The training split is empty; raise data.limit or lower "
                          "data.validation_split")
    state.val_ds, state.val_examples = inputs.make_dataset(app, "validation", config, strategy)
    resolve_restore_best(config, state.val_examples)
    if state.val_ds is None and config.data.validation_split > 0:
        print(f"warning: the validation split is empty (data.validation_split="
              f"{config.data.validation_split:g}): history has no val_* metrics and the best "
              "checkpoint is chosen by training loss; raise data.validation_split or data.limit",
              flush=True)
    state.test_ds, state.test_examples = inputs.make_dataset(app, "test", config, strategy)
    if state.test_ds is None:
        print("warning: the test split is empty, so the run ends without test metrics (the "
              "model is exported as trained); give more data, or a test/ folder, or raise "
              "data.test_split where the app has it", flush=True)


def _announce(state):
    if state.resuming:
        print(f"Resuming {state.run_dir.path} after epoch {state.first_epoch} of "
              f"{state.config.epochs}" + (f" and {state.steps_done} of {state.steps} steps of "
                                          f"epoch {state.first_epoch + 1}" if state.steps_done
                                          else ""), flush=True)
    data_line = state.app.describe_data()
    print(f"Data: {data_line + '; ' if data_line else ''}{state.examples:,} training, "
          f"{state.val_examples:,} validation, {state.test_examples:,} test examples", flush=True)
    state.balance.announce()


def build(state):
    """config.yaml, the app's pretraining, the model (checked against the data, started from
    model.init_from), and the BatchNorm statistics pass."""
    config, app, run_dir = state.config, state.app, state.run_dir
    with state.strategy.scope():
        save_yaml(config, run_dir.config, {"runtime.mixed_precision": state.precision.comment()})
        if state.has_pretraining():
            state.claim.started()  # the run dir holds work from here on: pretrained layers
        start = time.perf_counter()
        app.pretrain(run_dir.path, state.options)
        state.pretrain_seconds = time.perf_counter() - start
        state.model = app.build_model()
        check_features(app, state.model, state.train_ds.element_spec)
        check_output_dtypes(app, state.model)
        if config.model.init_from and not state.resuming:  # a resume restores every weight
            fine_tuning.init_from(state.model, config.model.init_from, app.class_names(),
                                  app.is_multi_label())
    state.batch_norm = BatchNormStatistics(state.model, sample_batches(
        app, config, config.callbacks.batch_norm_batches,
        normalized_batch(config, state.strategy.num_replicas_in_sync)))
    if state.resuming:
        state.best_value = run_history.trim(run_dir, state.first_epoch,
                                            monitored(config, state.val_ds is not None))
    state.claim.started()  # the run dir holds work from here on: backups, checkpoints, history


def fit(state):
    """Every fine-tuning phase still to train (one, unless the backbone unfreezes)."""
    for phase in state.phases:
        _fit_phase(state, phase)


def _fit_phase(state, phase):
    config = state.config
    start_epoch = max(phase.start, state.first_epoch)
    if config.model.freeze_backbone:
        fine_tuning.set_backbone_frozen(state.model, phase.frozen)
    with state.strategy.scope():
        compile_model(state.model, state.app, config, state.steps, state.options, phase)
    if len(state.phases) > 1:
        print(f"Epochs {start_epoch + 1}-{phase.end}: "
              + ("backbone frozen, training the output layer" if phase.frozen else
                 f"every layer trains, learning rate {phase.optimizer.learning_rate:g}"),
              flush=True)
    # A mid-epoch backup: the rest of its epoch is a fit of its own (Keras runs whole
    # epochs of one length), then the phase's other epochs.
    fits = [(start_epoch, phase.end, 0)]
    if state.steps_done and start_epoch == state.first_epoch:
        fits = [(start_epoch, start_epoch + 1, state.steps_done)]
        fits += [(start_epoch + 1, phase.end, 0)] if phase.end > start_epoch + 1 else []
    for begin, end, skip in fits:
        _fit_once(state, phase, begin, end, skip)


def _training_data(state, begin, end, skip):
    """The training stream of epochs [begin, end) without its first `skip` batches: the one
    `prepare` made when it is that, else a new one."""
    if (begin, end, skip) != state.train_span:
        state.train_ds, _ = inputs.make_dataset(
            state.app, "train", state.config, state.strategy, training=True, epochs=(begin, end),
            examples=state.examples, skip_batches=skip, balance=state.balance)
        state.train_span = (begin, end, skip)
    return state.train_ds


def _fit_once(state, phase, begin, end, skip):
    """One model.fit over epochs [begin, end); a NaN loss or a SIGTERM ends the run here."""
    config, run_dir, steps = state.config, state.run_dir, state.steps
    train_ds = _training_data(state, begin, end, skip)
    throughput, nan_guard, preemption, callbacks = standard_callbacks(
        config, run_dir, state.examples, state.val_ds is not None, begin > 0, state.best_value,
        state.test_ds, phase.index, phase is state.phases[-1] and end == phase.end,
        state.batch_norm, steps - skip, skip)
    callbacks += state.app.callbacks(run_dir.path) + [preemption]
    start = time.perf_counter()
    try:
        fitted = state.model.fit(
            train_ds, validation_data=state.val_ds, initial_epoch=begin, epochs=end,
            steps_per_epoch=steps - skip, callbacks=callbacks,
            verbose=config.runtime.keras_verbose(),
            shuffle=False)  # the input pipeline shuffles, seeded per epoch
    except PreemptedStop:
        raise Preempted(f"Stopped by SIGTERM. The backup in {run_dir.backup} holds "
                        f"{run_history.backup_holds(run_dir, config, steps)}; resume by running "
                        f"the same command with --set run_dir={run_dir.path}") from None
    state.train_seconds += time.perf_counter() - start
    for key, values in fitted.history.items():
        state.history.setdefault(key, []).extend(values)
    state.epoch_seconds += throughput.epoch_seconds
    state.best_value = next(c.best for c in callbacks
                            if isinstance(c, keras.callbacks.ModelCheckpoint))
    if nan_guard.failure:
        raise TrainingDiverged(_diverged_message(nan_guard.failure, config, run_dir))


def _diverged_message(failure, config, run_dir):
    epoch, batch, loss = failure
    lr = config.optimizer.learning_rate
    return (f"Training diverged: the loss became {loss} in epoch {epoch} near batch {batch}. "
            f"Lower the learning rate (--set optimizer.learning_rate={lr / 10:g}, now {lr:g}) "
            f"or clip gradients (--set optimizer.clipnorm=1.0). Checkpoints of the last good "
            f"epochs are in {run_dir.checkpoints}.")


def finish(state):
    """The weights to keep, model.keras, the test metrics, the report, the export, and
    metrics.json last (it marks the run finished)."""
    config, run_dir, model = state.config, state.run_dir, state.model
    best = run_dir.best_weights
    if config.callbacks.restore_best and state.val_ds is not None and best.exists():
        load_weights_without_optimizer(model, best)  # it may be an earlier phase's
        # Its BatchNorm statistics are the ones recomputed before that epoch's validation.
        print(run_history.restored_message(run_dir, monitored(config, True),
                                                    state.best_value), flush=True)
    else:
        state.batch_norm.recompute()
    if state.app.is_multi_label():
        state.app.thresholds = multi_label.thresholds_from_validation(state.app, model, state.val_ds)
    require_free_space(run_dir.path, saved_bytes(model), "the trained model (model.keras)")
    model.save(run_dir.model)
    test = (model.evaluate(state.test_ds, return_dict=True, verbose=0)
            if state.test_ds is not None else {})
    state.metrics = metrics = _run_metrics(state, test)
    metrics.update(write_report(state.app, model, state.history, state.test_ds, run_dir))
    metrics["warnings"] = baseline_warnings(state.app, config, metrics, state.val_ds, run_dir,
                                            state.steps * metrics["epochs_completed"])
    if config.export.enabled:
        metrics["export"] = str(export_model(state.app, model, config, run_dir=run_dir.path))
    metrics["run_dir"] = str(run_dir.path)
    with open(run_dir.metrics, "w") as f:
        json.dump(metrics, f, indent=2)
    draw(lambda path: report_page.write(run_dir, metrics), run_dir.report)


def _run_metrics(state, test):
    """metrics.json's figures of the run itself (report.PIPELINE_KEYS)."""
    metrics = {
        "app": state.config.app,
        "test": {k: float(v) for k, v in test.items()},
        "epochs_completed": state.first_epoch + len(state.epoch_seconds),
        "train_seconds": state.train_seconds,
        "train_examples_per_sec": steady_examples_per_sec(state.epoch_seconds, state.examples),
        "train_examples": state.examples,
        "validation_examples": state.val_examples,
        "test_examples": state.test_examples,
        "global_batch_size": inputs.global_batch_size(state.config, state.strategy),
        "replicas": state.strategy.num_replicas_in_sync,
        "strategy": strategy_name(state.strategy),
        "backend": keras.backend.backend(),
        "precision": state.precision.as_dict(),
        "params": state.model.count_params(),
    }
    if state.has_pretraining():  # the app has an unsupervised stage
        metrics["pretrain_seconds"] = state.pretrain_seconds
    return metrics


STAGES = (prepare, build, fit, finish)
