"""What the commands print about apps and config keys, and the flags that name a config."""

import sys
from pathlib import Path

from training import config as config_lib
from training import registry
from training.errors import ConfigError

PROG = "kat" if Path(sys.argv[0]).name == "kat" else "python -m training"
KEYS_HINT = (f"Each app's config keys, with its defaults and choices:\n  {PROG} train --app NAME --help\n"
             f"The resolved config of a run, without running it:\n"
             f"  {PROG} train --config FILE [--set KEY=VALUE ...] --print-config\n"
             f"Tuned configs shipped with the installed apps:\n  {PROG} presets")


def apps_text(indent=""):
    """The installed apps, a line each: name and description."""
    names = registry.app_names()
    if not names:
        return f"{indent}none installed: run `make setup` (or `pip install -e .`)"
    return "\n".join(f"{indent}{name:26s}{_description(name)}" for name in names)


def _description(name):
    """App `name`'s description, or why it cannot be loaded (the other apps still list)."""
    try:
        return registry.describe(name)
    except ConfigError as e:
        return f"(broken) {e}"


def keys_text(config, defaults=True):
    """One line per config key of `config`: `key = default` (or the key alone), help, and its
    choices or bounds."""
    rows = config_lib.describe(config)
    left = [f"{key} = {value!r}" if defaults else key for key, value, _, _ in rows]
    width = min(max(map(len, left)), 44)
    lines = []
    for text, (_, _, help_text, allowed) in zip(left, rows):
        if isinstance(allowed, tuple):
            allowed = " | ".join(map(str, allowed))
        note = help_text + (f" [{allowed}]" if allowed else "")
        if len(text) > width:  # a long default gets a line of its own
            lines += [f"  {text}", f"  {'':{width}s}  {note}"]
        else:
            lines.append(f"  {text:{width}s}  {note}".rstrip())
    return "\n".join(lines)


def add_config_flags(parser, app_help, config_help, set_help):
    """--app, --config or --preset, and --set: the commands that load a config (train, tune,
    data). `main` turns --preset into --config (preset_as_config)."""
    parser.add_argument("--app", help=app_help)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help=config_help)
    source.add_argument("--preset", help="a config shipped in an installed package, by name "
                        f"(`{PROG} presets` lists them)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)


def preset_as_config(args):
    """--preset NAME becomes --config with that preset's file, so each command reads one flag."""
    if getattr(args, "preset", None):
        from training import presets

        preset = presets.get(args.preset)
        if preset.is_search_space():
            raise ConfigError(f"Preset {preset.name} is a search space, not a config: `{PROG} tune "
                              f"--preset CONFIG --space {preset.name}` searches it")
        args.config = str(preset.path)
