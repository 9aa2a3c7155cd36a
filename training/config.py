"""Run configuration: dataclasses with defaults, optional YAML, `--set key=value`.

Every app has a config dataclass that subclasses `Config` and sets its own
defaults (data set, model options). Keys are strict: an unknown key is an
error that lists the valid ones, and values are coerced to the field's type.
"""

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml


class ConfigError(ValueError):
    """A config file, key or value the user can fix."""


@dataclass
class DataConfig:
    """Where examples come from and how many."""

    name: str = ""  # data set name (TFDS name, or one the app reads offline)
    dir: Optional[str] = None  # local data directory; the app says what it holds
    limit: Optional[int] = None  # cap on examples per split, for smoke runs
    validation_split: float = 0.1  # fraction of train held out for validation
    shuffle_buffer: int = 60000
    cache: bool = True  # cache decoded examples in memory after the first epoch
    download: bool = True  # let TFDS download when the data is not prepared


@dataclass
class ModelConfig:
    """Model options; each app subclasses this with its own fields."""

    arch: str = ""


@dataclass
class OptimizerConfig:
    """Optimizer and learning-rate schedule."""

    name: str = "auto"  # auto (the app's default) | adam | adamw | sgd | rmsprop
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # cosine | constant
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0  # decoupled weight decay (adamw, sgd)
    momentum: float = 0.9  # sgd / rmsprop
    clipnorm: Optional[float] = None


@dataclass
class CallbacksConfig:
    """What is saved and watched during fit."""

    early_stopping_patience: int = 0  # epochs without improvement; 0 = off
    save_freq: str = "epoch"  # BackupAndRestore: "epoch" or a step count
    tensorboard: bool = True
    restore_best: bool = True  # evaluate the best validation checkpoint
    test_each_epoch: bool = False  # test metrics + wall time per epoch in history.csv


@dataclass
class RuntimeConfig:
    """How the computation runs."""

    mixed_precision: bool = False
    jit_compile: bool = False
    steps_per_execution: int = 16
    logical_cpus: int = 0  # split the CPU into N logical devices (mirrored tests)
    verbose: int = 1  # Keras progress bar: 0 silent, 1 bar, 2 one line per epoch


@dataclass
class ExportConfig:
    """SavedModel export in TF Serving's layout `<dir>/<name>/<version>/`."""

    enabled: bool = True
    dir: str = "export"
    name: str = ""  # defaults to the app name


@dataclass
class Config:
    """Everything one run needs. Apps subclass it to set their defaults."""

    app: str = ""
    epochs: int = 10
    batch_size: int = 128  # per replica; global batch = batch_size x replicas
    strategy: str = "auto"  # auto | one_device | mirrored | multi_worker | tpu
    run_dir: str = ""  # default runs/<app>/<timestamp>
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def _type_name(tp):
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, key):
    """Return `value` as type `tp` (a field annotation) or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, args[0], key)
    if tp is Any:
        return value
    if origin is list:  # e.g. List[int]: a YAML list, or "500,500,2000" from --set
        (item_type,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return [_coerce(yaml.safe_load(v) if isinstance(v, str) else v, item_type, f"{key}[{i}]")
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
    raise ConfigError(f"Config key '{key}' must be {_type_name(tp)}, got {value!r}")


def from_dict(cls, values, prefix=""):
    """Build dataclass `cls` from a nested dict; unknown keys are errors."""
    if not isinstance(values, dict):
        raise ConfigError(f"Config section '{prefix or '<root>'}' must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = f"under '{prefix.rstrip('.')}'" if prefix else "at the top level"
        raise ConfigError(
            f"Unknown config key '{prefix}{unknown[0]}'. Valid keys {where}: "
            + ", ".join(sorted(fields))
        )
    kwargs = {}
    for name, value in values.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, prefix + name)
    default = cls()
    for name in fields:
        if name not in kwargs:
            kwargs[name] = getattr(default, name)
    return cls(**kwargs)


def to_dict(config):
    """The config as a plain nested dict (for YAML and JSON)."""
    return dataclasses.asdict(config)


def set_key(values, assignment):
    """Apply one `key.sub=value` assignment to a nested dict in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r} (e.g. --set epochs=3)")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"Config key '{key}': '{part}' is not a section")
    node[parts[-1]] = value


def load(cls, path=None, overrides=()):
    """Config of type `cls` from defaults, then YAML file `path`, then overrides."""
    values = {}
    if path:
        try:
            with open(path) as f:
                values = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise ConfigError(f"Config file not found: {path}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"Config file {path} is not valid YAML: {e}") from None
    for assignment in overrides:
        set_key(values, assignment)
    return from_dict(cls, values)


def save_yaml(config, path):
    with open(path, "w") as f:
        yaml.safe_dump(to_dict(config), f, sort_keys=False)


def describe(cls, prefix=""):
    """Lines `key = default` for every key of `cls`, for --help."""
    lines = []
    default = cls()
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            lines += describe(type(value), f"{prefix}{f.name}.")
        else:
            lines.append(f"{prefix}{f.name} = {value!r}")
    return lines
