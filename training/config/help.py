"""One row per config key (dotted key, value, help, choices or bounds) for `--help`, and the
keys a run still resolves from its data."""

import dataclasses
import typing

from training.config.keys import bounds_text, choices, key_meta
from training.config.sections import BoolOrAuto, IntOrAuto, Precision


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
    """The dotted keys still `auto` whose type is IntOrAuto, BoolOrAuto or Precision: numbers and
    switches a run chooses from its data or its hardware (not the `auto` choices of a Literal,
    e.g. strategy)."""
    return [key for key, value, _, _, tp in _leaves(config)
            if value == "auto" and tp in (IntOrAuto, BoolOrAuto, Precision)]


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
