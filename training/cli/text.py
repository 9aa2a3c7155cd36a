"""What the commands print about apps and config keys, and the flags that name a config."""

import sys
from pathlib import Path

from training import config as config_lib
from training import registry

PROG = "kat" if Path(sys.argv[0]).name == "kat" else "python -m training"
KEYS_HINT = (f"Each app's config keys, with its defaults and choices:\n  {PROG} train --app NAME --help\n"
             f"The resolved config of a run, without running it:\n"
             f"  {PROG} train --config FILE [--set KEY=VALUE ...] --print-config")


def apps_text(indent=""):
    """The installed apps, a line each: name and description."""
    names = registry.app_names()
    if not names:
        return f"{indent}none installed: run `make setup` (or `pip install -e .`)"
    return "\n".join(f"{indent}{name:26s}{registry.describe(name)}" for name in names)


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
    """--app, --config and --set: the commands that load a config (train, tune, data)."""
    parser.add_argument("--app", help=app_help)
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
