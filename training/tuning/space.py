"""The search space of `python -m training tune`: SPACE.yaml's config keys and their ranges or
choices, checked against the app's config before any trial runs, then declared as KerasTuner
hyperparameters.

SPACE.yaml maps a config key (as --set names it) to what the search may try:

    optimizer.learning_rate: {log_uniform: [1e-4, 1e-2]}   # a float, sampled on a log scale
    optimizer.weight_decay: {uniform: [0.0, 1e-3]}         # a float, sampled linearly
    batch_size: {int: [32, 256]}                           # a whole number, both ends included
    model.width_multiplier: [0.5, 0.75, 1.0]               # a list: one of these values
    model.augment: {choice: [false, true]}                 # the same, spelled out
"""

import dataclasses
import difflib

from training import config as config_lib
from training.errors import ConfigError, quoted

RANGES = ("uniform", "log_uniform", "int")
FORMS = ("[a, b, ...]", "{choice: [a, b, ...]}", "{uniform: [low, high]}",
         "{log_uniform: [low, high]}", "{int: [low, high]}")
# Keys a search cannot vary: the app and where the trials go are the search's own choice.
FIXED_KEYS = {"app": "the app is the config's", "run_dir": "each trial gets its own run dir",
              "strategy": "every trial runs on the search's strategy"}


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One config key of the search: `kind` is "choice" (`values` are the choices) or one of
    RANGES (`values` is (low, high))."""

    key: str
    kind: str
    values: tuple

    def declare(self, hp):
        """Declare this key on KerasTuner's HyperParameters `hp`; returns its value there."""
        if self.kind == "choice":
            return hp.Choice(self.key, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return hp.Int(self.key, low, high)
        return hp.Float(self.key, low, high, sampling="log" if self.kind == "log_uniform" else "linear")

    def value(self, hp):
        """This key's value in the trial's HyperParameters `hp`, as the config takes it
        (KerasTuner keeps a choice of booleans as 0 and 1)."""
        value = hp.get(self.key)
        if self.kind == "choice":
            return next(v for v in self.values if v == value)
        return value

    @property
    def log_scale(self):
        return self.kind == "log_uniform"


def with_values(config, values):
    """A copy of `config` with `values` ({dotted key: value}) set and the whole config checked
    again, as `--set` would; ConfigError names the key and the rule it breaks."""
    tree = config_lib.to_dict(config)
    for key, value in values.items():
        config_lib.set_value(tree, key, value)
    return config_lib.from_dict(type(config), tree)


def _problem(path, key, text):
    return ConfigError(f"Search space {path}: '{key}' {text}")


def _unknown_key(path, key, keys, app):
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"Search space {path}: unknown config key '{key}'; {hint}`train --app "
                       f"{app} --help` lists the app's keys")


def _number(value):
    """`value`, or the float a string such as "1e-4" spells."""
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _scalar(value):
    return isinstance(value, (bool, int, float, str))


def _dimension(path, key, spec):
    """The Dimension `spec` (a list or a one-entry mapping) describes, or a ConfigError."""
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise _problem(path, key, f"must be one of {', '.join(FORMS)}; got {quoted(spec)}. A single "
                       "value is not a search: set it with --set or in the config")
    (kind, values), = spec.items()
    if kind == "choice":
        if not isinstance(values, list) or not values or not all(map(_scalar, values)):
            raise _problem(path, key, f"choice needs a non-empty list of values; got {quoted(values)}")
        if len(set(map(repr, values))) != len(values):
            raise _problem(path, key, f"lists a choice twice: {quoted(values)}")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            if not all(isinstance(v, int) for v in values):
                values = [float(v) for v in values]  # KerasTuner wants one type per choice
        elif len({type(v) for v in values}) > 1:
            raise _problem(path, key, f"mixes types in its choices: {quoted(values)}")
        return Dimension(key, "choice", tuple(values))
    if kind not in RANGES:
        raise _problem(path, key, f"has an unknown range {quoted(kind)}; use one of {', '.join(FORMS)}")
    if isinstance(values, list):  # YAML reads 1e-4 (no dot) as a string
        values = [_number(v) for v in values]
    numbers = (isinstance(values, list) and len(values) == 2
               and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values))
    if not numbers:
        raise _problem(path, key, f"{kind} needs [low, high], two numbers; got {quoted(values)}")
    low, high = values
    if not low < high:
        raise _problem(path, key, f"{kind} needs low < high; got [{low}, {high}]")
    if kind == "log_uniform" and low <= 0:
        raise _problem(path, key, f"log_uniform needs low > 0 (a log scale); got {low}")
    if kind == "int":
        if not all(float(v).is_integer() for v in values):
            raise _problem(path, key, f"int needs whole numbers; got [{low}, {high}]")
        return Dimension(key, "int", (int(low), int(high)))
    return Dimension(key, kind, (float(low), float(high)))


def read_space(path, config, tuner_sets_epochs=False):
    """The Dimensions of SPACE.yaml at `path` for `config` (a resolved app config), each value
    it can take checked against the app's config keys and their bounds."""
    values = config_lib.read_yaml(path)
    if not isinstance(values, dict) or not values:
        raise ConfigError(f"Search space {path} must map config keys to ranges or choices, e.g. "
                          "optimizer.learning_rate: {log_uniform: [1e-4, 1e-2]}")
    keys = [key for key, *_ in config_lib.describe(config)]
    dimensions = []
    for key, spec in values.items():
        key = str(key)
        if key not in keys:
            raise _unknown_key(path, key, keys, config.app)
        if key in FIXED_KEYS:
            raise _problem(path, key, f"cannot be searched: {FIXED_KEYS[key]}")
        if key == "epochs" and tuner_sets_epochs:
            raise _problem(path, key, "is Hyperband's to set (up to the config's epochs="
                           f"{config.epochs}); remove it, or choose --algorithm random or bayesian")
        dimension = _dimension(path, key, spec)
        ends = dimension.values
        for value in ends:  # a range's ends, or every choice
            try:
                with_values(config, {key: value})
            except ConfigError as e:
                raise _problem(path, key, f"cannot take {quoted(value)}: {e}") from None
        dimensions.append(dimension)
    return dimensions
