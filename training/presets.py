"""Presets: tuned configs shipped inside installed packages, found by name.

A package declares a folder of YAML configs under the entry-point group
`keras_app_templates.presets`, as it declares apps (registry.py):

    [project.entry-points."keras_app_templates.presets"]
    my_package = "my_package.presets"

Each `NAME.yaml` there is the preset NAME (`kat presets`, `kat train --preset NAME`). The folder
may hold `measured.json`, what was measured for its presets; this project's is written by
`make results` (benchmarks/results_table.py), which also makes the README's table from it.
Nothing here loads TensorFlow.
"""

import functools
import importlib.util
import json
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from training.config.files import read_yaml
from training.errors import ConfigError

ENTRY_POINT_GROUP = "keras_app_templates.presets"
MEASURED = "measured.json"


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    package: str  # the distribution that ships it
    measured: dict | None  # its row of the folder's measured.json, if any

    def values(self):
        """The file's mapping, read as --config reads it (ConfigError if it is not one)."""
        values = read_yaml(self.path)
        if not isinstance(values, dict):
            raise ConfigError(f"Preset {self.name} ({self.path}) is not a mapping of config keys")
        return values

    def is_search_space(self):
        """A `tune --space` file (dotted keys and their ranges), not a config to train."""
        return _is_search_space(self.values())

    def line(self):
        """One line: name, app, model, and what was measured (or that nothing was)."""
        values = self.values()
        if _is_search_space(values):
            return f"{self.name:34s} {'(kat tune --space)':24s} search space over {len(values)} keys"
        if self.measured:
            m = self.measured
            what = (f"{m['model']}; test accuracy {m['accuracy']}; {minutes(m['seconds'])} on "
                    f"{m['machine']['cores']} cores of {m['machine']['cpu']} ({m['machine']['date']})")
        else:
            model = ", ".join(f"{k}={v}" for k, v in (values.get("model") or {}).items())
            what = f"{model or 'the app default model'}: not measured"
        return f"{self.name:34s} {values.get('app', '(--app NAME)'):24s} {what}"


def _is_search_space(values):
    return "app" not in values and any("." in str(key) for key in values)


def minutes(seconds):
    return f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def machine_text(machine):
    return (f"{machine['date']}: {machine['cpu']}, {machine['cores']} cores, "
            f"TF {machine['tensorflow']}, Keras {machine['keras']}")


def _folder(ep):
    """The folder of entry point `ep`'s package, found without importing it (its parents are
    imported when it is a subpackage), or ConfigError."""
    try:
        spec = importlib.util.find_spec(ep.value)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ConfigError(f"Package {ep.dist.name if ep.dist else '?'} declares its presets in "
                          f"{ep.value!r}, which is not an installed package folder: fix "
                          f"`{ep.name} = ...` under {ENTRY_POINT_GROUP} in its setup, then reinstall it")
    return Path(locations[0])


@functools.cache  # the installed packages do not change while a command runs
def installed():
    """{name: Preset} of every installed package's presets, sorted by name."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        folder = _folder(ep)
        measured = folder / MEASURED
        rows = json.loads(measured.read_text())["rows"] if measured.is_file() else {}
        for path in sorted(folder.glob("*.yaml")):
            package = ep.dist.name if ep.dist else ep.value
            if path.stem in found and found[path.stem].path != path:
                raise ConfigError(f"Two installed packages ship the preset {path.stem!r}: "
                                  f"{found[path.stem].package} ({found[path.stem].path}) and {package} "
                                  f"({path}); uninstall one, or rename one of the files")
            found[path.stem] = Preset(path.stem, path, package, rows.get(path.stem))
    return dict(sorted(found.items()))


def get(name):
    """The installed preset `name`, or ConfigError listing them."""
    presets = installed()
    if name not in presets:
        listed = ", ".join(presets) or "none (install the project: `pip install -e .`)"
        raise ConfigError(f"Unknown preset {name!r}. Installed presets: {listed} (`kat presets` "
                          "describes each; --config takes a YAML file instead)")
    return presets[name]
