"""What a config key is (`option()`: default, help, bounds) and the sections every app's
config has; an app subclasses them to set its defaults and add keys."""

import copy
import sys
from dataclasses import dataclass, field
from typing import Dict, Literal, Optional, Union

from serving.layout import model_name_problem


def option(default, help="", *, ge=None, gt=None, le=None, lt=None, check=None, none_is_text=False):
    """A config key: its default, one line of help, and what values it allows.

    ge/gt/le/lt bound a number (each item of a list); `check(value)` returns an
    error message for values the bounds cannot express, else None. `none_is_text`: the
    word "none" is one of the key's values (model.weights=none), not null as for other
    optional keys. Mutable defaults are copied per instance.
    """
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    metadata = {"help": help, "bounds": bounds, "check": check, "none_is_text": none_is_text}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _steps_or_epoch(value):
    if value != "epoch" and not (value.isdigit() and int(value) > 0):
        return "must be 'epoch' or a whole number of steps >= 1"
    return None


def _not_empty(value):
    return "must not be empty" if not value.strip() else None


def _model_name(value):
    return model_name_problem(value) if value else None


IntOrAuto = Union[int, Literal["auto"]]  # "auto": training/run_length.py
BoolOrAuto = Union[bool, Literal["auto"]]  # "auto": chosen from the data when the run starts
Precision = Union[bool, Literal["auto", "bfloat16", "float16"]]  # training/runtime/precision.py
Strategy = Literal["auto", "one_device", "mirrored", "multi_worker", "tpu"]
OptimizerName = Literal["auto", "adam", "adamw", "sgd", "rmsprop"]
Schedule = Literal["cosine", "constant"]
ClassWeight = Union[Literal["none", "balanced"], Dict[str, float]]  # training/pipeline/class_balance.py


def _class_weights(value):
    if isinstance(value, dict):
        bad = {name: weight for name, weight in value.items() if weight < 0}
        if bad:
            return f"must give each class a weight >= 0 ({', '.join(f'{k}: {v:g}' for k, v in bad.items())})"
        if value and not any(value.values()):
            return "must give some class a weight above 0"
    return None


LabelKind = Literal["single", "multi"]  # an example has one class, or a set of labels


def label_separator(value):
    """The check of a key naming what separates a CSV field's labels."""
    return "must be one character other than a comma" if len(value) != 1 or value == "," else None


def _monitor(value):
    if value.startswith("val_"):
        return "names the metric without val_ (the validation one is watched when there is a split)"
    return None


@dataclass
class DataConfig:
    """Where examples come from and how many."""

    name: str = option("", "data set: a TFDS name, or one the app reads offline")
    dir: Optional[str] = option(None, "local data directory; the app says what it holds")
    limit: Optional[int] = option(None, "cap on examples per split, for smoke runs", ge=1)
    validation_split: float = option(0.1, "fraction of the training data held out for validation",
                                    ge=0, lt=1)
    shuffle_buffer: int = option(60000, "examples in the training shuffle buffer", ge=1)
    cache: bool = option(True, "cache decoded examples in memory after the first epoch")
    download: bool = option(True, "let TFDS download a data set that is not prepared")
    class_weight: ClassWeight = option(
        "none", "classification: weight each training example by its class; balanced: n / "
        "(classes x the class's count), as scikit-learn; or a mapping {class_name: weight} "
        "(others 1)", check=_class_weights)
    sampling: Literal["none", "balanced"] = option(
        "none", "classification: balanced draws every class about equally often in training "
        "(oversampling the rare ones; the epoch keeps its length)")

    def check(self):
        if self.sampling == "balanced" and self.class_weight != "none":
            return ("data.sampling=balanced and data.class_weight both correct for imbalance; "
                    "choose one (the other none)")
        # An app's data.labels (image, text classification): multi-label data has no classes
        # to weigh or draw.
        if getattr(self, "labels", "single") == "multi" and (
                self.class_weight != "none" or self.sampling != "none"):
            return ("data.class_weight and data.sampling are for single-label classes; "
                    "data.labels=multi takes neither")
        return None


@dataclass
class ModelConfig:
    """Model options; each app subclasses this with its own keys. These start from a trained
    model (training/fine_tuning.py)."""

    init_from: Optional[str] = option(None, "a finished run dir, .keras or .weights.h5 file: load "
                                      "its layers that match (name and shapes)", check=_not_empty)
    freeze_backbone: bool = option(False, "train only the output layer (frozen BatchNorm runs in "
                                   "inference mode)")
    unfreeze_after_epochs: Optional[int] = option(
        None, "with freeze_backbone: after N epochs train every layer, at "
        "optimizer.fine_tune_learning_rate", ge=1)

    def check(self):
        if self.unfreeze_after_epochs is not None and not self.freeze_backbone:
            return "unfreeze_after_epochs needs freeze_backbone=true (there is nothing to unfreeze)"
        return None


@dataclass
class OptimizerConfig:
    """Optimizer and learning-rate schedule."""

    name: OptimizerName = option("auto", "optimizer; auto is the app's choice")
    learning_rate: float = option(1e-3, "peak learning rate", gt=0)
    schedule: Schedule = option("cosine", "cosine decay to 0 over the run, or constant")
    warmup_epochs: float = option(0.0, "linear warm-up before the cosine decay, in epochs", ge=0)
    weight_decay: float = option(0.0, "decoupled weight decay (adamw, sgd)", ge=0)
    momentum: float = option(0.9, "momentum (sgd, rmsprop)", ge=0, lt=1)
    clipnorm: Optional[float] = option(None, "clip each gradient to this norm", gt=0)
    fine_tune_learning_rate: Optional[float] = option(
        None, "peak rate once model.unfreeze_after_epochs unfreezes the backbone; default "
        "learning_rate / 10", gt=0)


@dataclass
class CallbacksConfig:
    """What is saved and watched during fit."""

    early_stopping_patience: int = option(0, "stop after this many epochs without improvement; 0 = off",
                                          ge=0)
    save_freq: str = option("epoch", "backup for resuming: every 'epoch', or every N steps",
                            check=_steps_or_epoch)
    tensorboard: bool = option(True, "write TensorBoard logs")
    restore_best: BoolOrAuto = option(
        "auto", "evaluate and export the best validation checkpoint; auto: when the validation "
        "split has 1,000 examples or more (fewer make the choice noise)")
    monitor: str = option(
        "loss", "the metric restore_best and early stopping watch (the val_ one when there is "
        "validation): loss (lower is better), or e.g. balanced_accuracy, macro_f1, accuracy "
        "(higher is better)", check=_monitor)
    test_each_epoch: bool = option(False, "test metrics and wall time per epoch in history.csv")
    # Test accuracy of two trained runs after recomputing over 4/8/16/32 batches, mean of 3
    # samples: batches of 64, 86.48/86.39/86.54/86.51%; of 16, 80.66/81.58/81.70/81.72% (29).
    # 16 is the knee; 32 cost 12-33% of a small-data epoch.
    batch_norm_batches: int = option(
        16, "recompute BatchNorm statistics with the current weights over this many training "
        "batches before each validation and before test and export ('precise BN'); 0 = keep "
        "Keras' moving averages", ge=0)


@dataclass
class RuntimeConfig:
    """How the computation runs."""

    mixed_precision: Precision = option(
        "auto", "compute type; auto: bfloat16 on a TPU or a CPU with bfloat16 units (avx512_bf16, "
        "amx_bf16), float16 on CUDA GPUs with tensor cores, else float32; true: float16 on a GPU, "
        "bfloat16 elsewhere; bfloat16, float16: that type; false: float32 "
        "(training/runtime/precision.py)")
    jit_compile: bool = option(False, "compile the train step with XLA")
    steps_per_execution: int = option(16, "train steps per call into the graph", ge=1)
    logical_cpus: int = option(0, "split the CPU into N logical devices (mirrored on CPU)", ge=0)
    backend: Literal["auto", "tensorflow", "jax", "torch"] = option(
        "auto", "Keras backend; auto: $KERAS_BACKEND, else tensorflow (training/backend.py)")
    compilation_cache: str = option(
        "~/.cache/keras-app-templates/jax", "JAX: keep compiled steps here, so a run that "
        "compiles the same step again loads it instead; '' = JAX's own settings")
    verbose: int = option(1, "Keras progress: 0 silent, 1 bar (one line per epoch when output "
                          "is not a terminal), 2 one line per epoch", ge=0, le=2)

    def keras_verbose(self):
        """`verbose` for Keras' fit: a bar redrawn in a log file is ANSI codes and every epoch
        twice, so without a terminal 1 means one line per epoch."""
        if self.verbose == 1 and not sys.stdout.isatty():
            return 2
        return self.verbose


@dataclass
class ExportConfig:
    """SavedModel export in TF Serving's layout `<dir>/<name>/<version>/`."""

    enabled: bool = option(True, "export after training")
    dir: str = option("export", "export root (TF Serving's model base path)", check=_not_empty)
    name: str = option("", "model name under the export root; default: the app name",
                       check=_model_name)


@dataclass
class Config:
    """Everything one run needs. Apps subclass it to set their defaults."""

    app: str = option("", "app name (from --app or the config file)")
    epochs: IntOrAuto = option(
        10, "passes over the training split; auto: from the data, about 1,500 optimizer steps "
        "(training/run_length.py)", ge=1)
    batch_size: IntOrAuto = option(128, "per replica; the global batch is batch_size x replicas; "
                                "auto: 128, smaller for small data (training/run_length.py)", ge=1)
    strategy: Strategy = option("auto", "tf.distribute strategy; auto: TPU, else all GPUs, else one device")
    run_dir: str = option("", "where the run's files go; default runs/<app>/<timestamp>")
    seed: int = option(42, "seed of weights, shuffling and augmentation", ge=0, lt=2**32)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def check(self):
        unfreeze = getattr(self.model, "unfreeze_after_epochs", None)
        if unfreeze is not None and isinstance(self.epochs, int) and unfreeze >= self.epochs:
            return (f"model.unfreeze_after_epochs={unfreeze} leaves no epoch to fine-tune in; "
                    f"raise epochs above it (epochs={self.epochs})")
        return None

