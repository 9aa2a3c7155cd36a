"""Run configuration: dataclasses with defaults, optional YAML, `--set key=value`.

The package imports no TensorFlow (help and --print-config answer at once):
  sections.py  what a key is (`option()`) and the sections every app shares
  keys.py      values from YAML and --set: coercion, bounds, unknown keys
  files.py     the YAML files: strict parsing (strict_yaml.py), reading, writing
  help.py      one row per key for --help
Loading the config of an app by name is the registry's (training/registry.py).

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

from training.config.files import named_app, read_yaml, save_yaml, to_yaml
from training.config.help import describe, key_help, resolved_at_run
from training.config.keys import (
    bounds_text,
    choices,
    from_dict,
    key_meta,
    load,
    set_key,
    set_value,
    to_dict,
)
from training.config.sections import (
    BoolOrAuto,
    CallbacksConfig,
    Config,
    DataConfig,
    ExportConfig,
    IntOrAuto,
    LabelKind,
    ModelConfig,
    OptimizerConfig,
    OptimizerName,
    RuntimeConfig,
    Schedule,
    Strategy,
    label_separator,
    option,
)

__all__ = [
    "BoolOrAuto", "CallbacksConfig", "Config", "DataConfig", "ExportConfig", "IntOrAuto",
    "LabelKind", "ModelConfig", "OptimizerConfig", "OptimizerName", "RuntimeConfig", "Schedule",
    "Strategy", "bounds_text", "choices", "describe", "from_dict", "key_help", "key_meta",
    "label_separator", "load",
    "named_app", "option", "read_yaml", "resolved_at_run", "save_yaml", "set_key", "set_value",
    "to_dict", "to_yaml",
]
