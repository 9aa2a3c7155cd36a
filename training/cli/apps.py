"""`list` the installed apps and `presets` their tuned configs; scaffold a new app with
`new-app`."""

from training.cli.text import PROG, apps_text
from training.errors import ConfigError


def add_list(sub):
    sub.add_parser("list", help="list the installed apps").set_defaults(handler=run_list)


def run_list(args):
    print(apps_text())
    return 0


def add_presets(sub):
    presets = sub.add_parser("presets", help="the tuned configs the installed packages ship, a line "
                             "each; with NAME, that one's file")
    presets.set_defaults(handler=run_presets)
    presets.add_argument("name", nargs="?", help="print this preset's YAML (to copy and edit)")


def run_presets(args):
    from training import presets

    if args.name:
        preset = presets.get(args.name)
        print(f"# preset {preset.name} of {preset.package}: {preset.path}\n# {preset.line()}")
        print(preset.path.read_text(encoding="utf-8"), end="")
        return 0
    for name, preset in presets.installed().items():
        try:
            print(preset.line())
        except ConfigError as e:  # one broken file does not hide the others
            print(f"{name:34s} (broken) {e}")
    print(f"\nrun one: {PROG} train --preset NAME [--set KEY=VALUE ...]; its file: {PROG} presets NAME")
    return 0


def add_new_app(sub):
    new_app = sub.add_parser(
        "new-app", help="scaffold an app, its preset and its test: as a package of its own "
        "(--package DIR, or anywhere outside a clone), or into this project's clone")
    new_app.set_defaults(handler=run_new_app)
    new_app.add_argument("name", help="app name, a lowercase identifier such as my_task")
    new_app.add_argument("--package", metavar="DIR", help="write an installable package there "
                         "(a new or empty directory): pyproject.toml, NAME/app.py, NAME/presets/, "
                         "README.md, tests/")
    new_app.add_argument("--root", default=".", help="where to write (default: .): into the project "
                         "when it is a clone of this one, else into ROOT/NAME as a package")


def run_new_app(args):
    from pathlib import Path

    from training.scaffold import is_project, new_app, new_package

    if args.package or not is_project(args.root):
        package = Path(args.package or Path(args.root) / args.name)
        for path in new_package(args.name, package):
            print(f"wrote {path}")
        print(f"next: pip install -e {package} (registers the app and its preset), then `{PROG} list`, "
              f"`pytest {package / 'tests'}` and `{PROG} train --preset {args.name}`; replace "
              "build_data/build_model with the real task")
        return 0
    for path in new_app(args.name, args.root):
        print(f"wrote {path}")
    print(f"next: make test ARGS=tests/test_{args.name}.py (it reinstalls the project, which "
          f"registers the app's entry point), then replace build_data/build_model")
    return 0
