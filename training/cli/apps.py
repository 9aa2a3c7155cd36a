"""`list` the installed apps; scaffold a new one with `new-app`."""

from training.cli.text import apps_text


def add_list(sub):
    sub.add_parser("list", help="list the installed apps").set_defaults(handler=run_list)


def run_list(args):
    print(apps_text())
    return 0


def add_new_app(sub):
    new_app = sub.add_parser("new-app", help="scaffold apps/NAME.py, configs/NAME.yaml, "
                             "tests/test_NAME.py and its entry point in setup.cfg")
    new_app.set_defaults(handler=run_new_app)
    new_app.add_argument("name", help="app name, a lowercase identifier such as my_task")
    new_app.add_argument("--root", default=".", help="project root to write into (default: .)")


def run_new_app(args):
    from training.scaffold import new_app

    for path in new_app(args.name, args.root):
        print(f"wrote {path}")
    print(f"next: make test ARGS=tests/test_{args.name}.py (it reinstalls the project, which "
          f"registers the app's entry point), then replace build_data/build_model")
    return 0
