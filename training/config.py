"""Run configuration: dataclasses with defaults, optional YAML, `--set key=value`.

Every app has a config dataclass that subclasses `Config` and sets its own
defaults (data set, model options). Each key is declared once: its type (a
`Literal[...]` names the choices) and `option(default, help, bounds...)`. That
one declaration drives coercion, validation when the config loads, before any
data is read (an unknown key, a choice or a value out of bounds is an error that
names the fix) and `train --app NAME --help`, so they cannot drift. A section
checks rules that tie keys together in its `check()` method.

Written by hand rather than with pydantic or jsonargparse: strict nested keys,
YAML and `--set` strings, choices and one help line per key take about a
hundred lines here, while either library would add a dependency and its own
error format for the same interface.
"""

import copy
import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

import yaml

from serving.layout import model_name_problem
from training import strict_yaml
from training.errors import ConfigError, quoted
from training.registry import get_app

BOUNDS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
          "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


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
Strategy = Literal["auto", "one_device", "mirrored", "multi_worker", "tpu"]
OptimizerName = Literal["auto", "adam", "adamw", "sgd", "rmsprop"]
Schedule = Literal["cosine", "constant"]


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

    mixed_precision: bool = option(False, "bfloat16 on CPU/TPU, float16 on GPU")
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


def choices(tp):
    """The values a `Literal[...]` annotation allows (inside Optional too), else None."""
    if typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def _type_name(tp):
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, key):
    """Return `value` as type `tp` (a field annotation) or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        words = [c for a in args for c in (typing.get_args(a) if typing.get_origin(a) is Literal else ())]
        if value in words:  # e.g. epochs: Union[int, Literal["auto"]]
            return value
        if type(None) in typing.get_args(tp) and (
                value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        plain = [a for a in args if typing.get_origin(a) is not Literal]
        if not plain:  # Optional[Literal[...]]: the Literal's own error
            return _coerce(value, args[0], key)
        try:
            return _coerce(value, plain[0], key)
        except ConfigError:
            if not words:
                raise
            raise ConfigError(f"Config key '{key}' must be {_type_name(plain[0])} or one of: "
                              f"{', '.join(words)}; got {quoted(value)}") from None
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed:
            return value
        raise ConfigError(f"Config key '{key}' must be one of: {', '.join(map(str, allowed))}; "
                          f"got {quoted(value)}")
    if tp is Any:
        return value
    if origin is list:  # e.g. List[int]: a YAML list, or "500,500,2000" from --set
        (item_type,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]  # --set model.hidden=500: YAML reads one number, not a list
        if isinstance(value, (list, tuple)):
            return [_coerce(strict_yaml.load(v) if isinstance(v, str) else v, item_type, f"{key}[{i}]")
                    for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"Config key '{key}' must be {_type_name(tp)}, got {quoted(value)}")


def from_dict(cls, values, prefix="", default=None):
    """Build dataclass `cls` from a nested dict; unknown keys are errors.

    Keys not in `values` keep their value in `default` (an instance of `cls`,
    by default `cls()`), so an app's defaults for a section survive overrides
    of some of its keys.
    """
    section_name = prefix.rstrip(".") or "<root>"
    if not isinstance(values, dict):
        raise ConfigError(f"Config section '{section_name}' must be a mapping of its keys (e.g. "
                          f"--set {prefix or ''}KEY=VALUE), got {quoted(values)}")
    default = cls() if default is None else default
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = f"under '{prefix.rstrip('.')}'" if prefix else "at the top level"
        raise ConfigError(
            f"Unknown config key '{prefix}{unknown[0]}'. Valid keys {where}: "
            + ", ".join(sorted(fields))
        )
    kwargs = {name: getattr(default, name) for name in fields}
    for name, value in values.items():
        tp = hints[name]
        if isinstance(value, str) and value.lower() == "none" and key_meta(cls, name, "none_is_text"):
            kwargs[name] = "none"
        elif dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.", getattr(default, name))
        else:
            kwargs[name] = _coerce(value, tp, prefix + name)
    for name, value in kwargs.items():
        if not dataclasses.is_dataclass(hints[name]):
            _validate(cls, name, value, prefix + name)
    section = cls(**kwargs)
    problem = section.check() if hasattr(section, "check") else None
    if problem:
        raise ConfigError(f"Config section '{section_name}': {problem}")
    return section


def key_meta(cls, name, what):
    """Metadata `what` ("help", "bounds", "check") of key `name` of dataclass `cls`, inherited
    from the parent class that declares it when `cls` only changes its default."""
    for klass in cls.__mro__:
        declared = vars(klass).get("__dataclass_fields__", {}).get(name)
        if declared is not None and declared.metadata.get(what):
            return declared.metadata[what]
    return None


def bounds_text(bounds):
    """E.g. ">= 0, < 1" for {"ge": 0, "lt": 1}."""
    return ", ".join(f"{BOUNDS[k][0]} {v:g}" for k, v in bounds.items())


def _validate(cls, name, value, key):
    """ConfigError naming the fix unless `value` of key `name` is within its declared bounds."""
    bounds = key_meta(cls, name, "bounds") or {}
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None or isinstance(item, (bool, str)):  # bounds are for numbers
            continue
        if not all(BOUNDS[k][1](item, b) for k, b in bounds.items()):
            raise ConfigError(f"Config key '{key}' must be {bounds_text(bounds)}; got {quoted(value)}")
    check = key_meta(cls, name, "check")
    problem = check(value) if check and value is not None else None
    if problem:
        raise ConfigError(f"Config key '{key}' {problem}; got {quoted(value)}")


def to_dict(config):
    """The config as a plain nested dict (for YAML and JSON)."""
    return dataclasses.asdict(config)


def set_key(values, assignment):
    """Apply one `key.sub=value` assignment to a nested dict in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {quoted(assignment)} (e.g. --set epochs=3)")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    try:
        value = strict_yaml.load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    set_value(values, key, value)


def set_value(values, key, value):
    """Set dotted `key` (e.g. "optimizer.learning_rate") of a nested dict to `value` in place."""
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"Config key '{key}': '{part}' is not a section")
    node[parts[-1]] = value


def read_yaml(path):
    """The mapping in YAML file `path` ({} when empty), or a ConfigError naming the problem
    (strict_yaml: no repeated keys, bounded aliases and size)."""
    try:
        with open(path, encoding="utf-8") as f:
            size = os.fstat(f.fileno()).st_size
            if size > strict_yaml.MAX_FILE_BYTES:
                raise ConfigError(f"Config file {path} is {size:,} bytes; a config or search space "
                                  f"is a few KB (at most {strict_yaml.MAX_FILE_BYTES:,}): is it the "
                                  "right file?")
            values = strict_yaml.load(f)
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Config file {path} cannot be read: {getattr(e, 'strerror', None) or e}; "
                          "--config takes a UTF-8 YAML file (see configs/)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"Config file {path} is not valid YAML{where}: {problem}") from None
    return values if values is not None else {}


def load(cls, values=None, overrides=()):
    """Config of type `cls` from its defaults, then `values` (a YAML file's mapping), then
    `overrides` (`key=value` strings, as --set gives them)."""
    values = copy.deepcopy(values) if values is not None else {}
    for assignment in overrides:
        set_key(values, assignment)
    return from_dict(cls, values)


def named_app(app_name, path=None):
    """(app name, YAML file's values): `app_name`, else the app the file at `path` names."""
    values = read_yaml(path) if path else {}
    if app_name is None and isinstance(values, dict):
        app_name = values.get("app")
    if not app_name:
        raise ConfigError("Name the app: --app NAME (see `python -m training list`)")
    return app_name, values


def load_config(app_name, path=None, overrides=()):
    """The resolved config of app `app_name` (its defaults < YAML file `path` < `overrides`);
    without `app_name`, the app the file names."""
    app_name, values = named_app(app_name, path)
    config = load(get_app(app_name).config_class, values, overrides)
    config.app = app_name
    return config


def to_yaml(config):
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def save_yaml(config, path):
    with open(path, "w") as f:
        f.write(to_yaml(config))


def key_help(cls, name):
    """The help of key `name` of dataclass `cls` (see key_meta)."""
    return key_meta(cls, name, "help") or ""


def _leaves(config, prefix=""):
    """(dotted key, value, its section's class, field name, type) of every key of `config`, in
    declaration order."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, value, type(config), f.name, hints[f.name]


def resolved_at_run(config):
    """The dotted keys still `auto` whose type is IntOrAuto or BoolOrAuto: numbers and switches a
    run chooses from its data (not the `auto` choices of a Literal, e.g. strategy)."""
    return [key for key, value, _, _, tp in _leaves(config)
            if value == "auto" and tp in (IntOrAuto, BoolOrAuto)]


def describe(config):
    """(key, value, help, allowed values or None) of every key of the config instance `config`,
    sections flattened to dotted keys, in declaration order. Allowed values are a Literal's
    choices (a tuple) or the bounds as text (">= 1")."""
    rows = []
    for key, value, cls, name, tp in _leaves(config):
        bounds = key_meta(cls, name, "bounds")
        rows.append((key, value, key_help(cls, name), choices(tp) or (bounds_text(bounds) if bounds
                                                                      else None)))
    return rows
