"""Config values from YAML and `--set`: each coerced to its key's declared type, checked
against its bounds, an unknown key an error that lists the valid ones."""

import copy
import dataclasses
import typing
from typing import Any, Literal

import yaml

from training.config import strict_yaml
from training.errors import ConfigError, quoted

BOUNDS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
          "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


def choices(tp):
    """The values a `Literal[...]` annotation allows (inside Optional too), else None."""
    if typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def _type_name(tp):
    if typing.get_origin(tp) is dict:
        key_type, value_type = typing.get_args(tp)
        return f"a mapping {{{_type_name(key_type)}: {_type_name(value_type)}}}"
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
    if origin is dict:  # e.g. Dict[str, float]: a YAML mapping, or "{a: 1, b: 2}" from --set
        key_type, value_type = typing.get_args(tp)
        if isinstance(value, dict):
            return {_coerce(k, key_type, key): _coerce(v, value_type, f"{key}.{k}")
                    for k, v in value.items()}
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
    if value in ("", None) and raw.strip() not in ("", "null", "~", "Null", "NULL"):
        value = raw  # a YAML indicator alone ("|", ">": data.label_separator=|) is that character
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



def load(cls, values=None, overrides=()):
    """Config of type `cls` from its defaults, then `values` (a YAML file's mapping), then
    `overrides` (`key=value` strings, as --set gives them)."""
    values = copy.deepcopy(values) if values is not None else {}
    for assignment in overrides:
        set_key(values, assignment)
    return from_dict(cls, values)

