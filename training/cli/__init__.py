"""The command line, `python -m training` or `kat`: train, tune, evaluate, export, generate,
list, presets, data, serve, predict, new-app. Each command's module declares its flags (`add`) beside
its handler; `main` builds the parser from them and turns user errors into one line.

Nothing is imported here that loads TensorFlow: `--help`, `list`, `train --app NAME --help`
and `--print-config` (of a config without `auto` numbers) answer at once, and each command
imports what it runs. TensorFlow's own start-up lines are silenced (quiet_tf.py).
"""

import argparse
import sys

from training.cli import quiet_tf

quiet_tf.install()  # before anything below can import TensorFlow

from training import __version__  # noqa: E402
from training.cli import apps, data, finished_run, serving, train, tune  # noqa: E402
from training.cli.text import KEYS_HINT, PROG, apps_text, preset_as_config  # noqa: E402
from training.errors import USER_ERRORS, Preempted  # noqa: E402

# In the order `--help` lists them.
COMMANDS = (train.add, tune.add, finished_run.add, apps.add_list, apps.add_presets, data.add,
            serving.add, apps.add_new_app)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train, evaluate and export Keras application templates.",
        epilog="apps:\n" + apps_text("  ") + "\n\n" + KEYS_HINT,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"keras-app-templates {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)  # the epilog lists the installed apps
        preset_as_config(args)
        return args.handler(args) or 0
    except Preempted as e:
        print(f"preempted: {e}", file=sys.stderr)
        return 128 + 15  # the conventional status of a SIGTERM
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
