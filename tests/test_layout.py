"""The layout is the architecture: dependencies point one way, apps arrive by entry point,
declared choices match the code that uses them, and listing apps loads no TensorFlow."""

import ast
import configparser
import importlib.metadata
import subprocess
import sys
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN_APPS = {"image_classification", "sequence_modeling", "tabular_regression",
                 "unsupervised_pretraining"}


def _imported_modules(package):
    """{(file, module)} of every import in `package`, at any depth (functions included)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(path.relative_to(ROOT), alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add((path.relative_to(ROOT), node.module))
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("training", ("apps",)), ("serving", ("apps", "training")), ("layers", ("apps", "training"))])
def test_dependencies_point_one_way(package, forbidden):
    wrong = sorted(f"{file}: {module}" for file, module in _imported_modules(package)
                   if module.split(".")[0] in forbidden)
    assert wrong == []


def _module_names():
    """{dotted module name: path} of every module of the project's packages."""
    names = {}
    for package in ("apps", "layers", "serving", "training"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _import_graph():
    """{module: the project's modules it imports}, at any depth (functions included); `from
    package import name` counts as the submodule when `name` is one, else the package."""
    modules = _module_names()

    def ours(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {ours(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets |= {ours(f"{base}.{a.name}") if f"{base}.{a.name}" in modules
                            else ours(base) for a in node.names}
        graph[module] = targets - {None, module}
    return graph


def test_no_source_file_of_a_package_is_ignored_by_git():
    """.gitignore's `export/` (the models' default export root) once hid training/export/'s new
    modules: the tree here passed and a clean clone could not import the pipeline."""
    result = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard",
                             "--", "apps", "layers", "serving", "training"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    assert [f for f in result.stdout.splitlines() if f.endswith(".py")] == []


def test_no_package_has_an_import_cycle():
    graph = _import_graph()
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert [" -> ".join(cycle) for cycle in cycles] == []


def test_only_run_dir_names_the_files_of_a_run_directory():
    """training/run_dir.py's RunDir names them; the framework, tests and benchmarks ask it."""
    from training.run_dir import RunDir

    probe = RunDir("run")
    paths = [getattr(probe, name).relative_to(probe.path).as_posix() for name, value in
             vars(RunDir).items() if isinstance(value, property) and name != "path"]
    names = set(paths) | {p.rsplit("/", 1)[-1] for p in paths}
    assert {probe.model.name, probe.best_weights.name, probe.backup_metadata.name} <= names
    found = []
    for package in ("training", "tests", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "training" / "run_dir.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def _fresh(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_command_that_loads_tensorflow_prints_only_our_lines(tmp_path):
    import os

    (tmp_path / "t.csv").write_text("y,x,x\n1,2,3\n")  # read after TensorFlow has loaded
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KAT_TF_LOGS")}
    result = subprocess.run(
        [sys.executable, "-m", "training", "train", "--app", "tabular_regression", "--set",
         f"data.path={tmp_path / 't.csv'}", "--set", "data.target=y"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 't.csv'} names the column(s) 'x' more than once in its header row; "
        "give each column its own name"]


def test_the_framework_loads_an_app_only_when_asked_for_it_by_name():
    _fresh(
        "import sys\n"
        "import training, training.cli, training.config, training.pipeline, training.registry as r\n"
        "assert set(r.app_names()) >= " + repr(BUILT_IN_APPS) + "\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'apps'], sys.modules.keys()\n"
        "r.get_app('tabular_regression')\n"
        "assert 'apps.tabular_regression' in sys.modules\n"
        "assert 'apps.image_classification.app' not in sys.modules\n")


def test_help_and_list_load_no_tensorflow_and_print_no_noise():
    result = _fresh(
        "import sys\n"
        "from training.cli import main\n"
        "for argv in (['--help'], ['train', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
        "assert main(['list']) == 0\n"
        "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not loaded, loaded\n")
    assert result.stderr == ""
    for name in BUILT_IN_APPS:
        assert name in result.stdout


def test_every_built_in_app_is_declared_in_setup_cfg_and_installed():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = dict(line.split(" = ") for line in
                    setup["options.entry_points"]["keras_app_templates.apps"].strip().splitlines())
    assert BUILT_IN_APPS <= set(declared)  # and the ones `make new-app` adds
    group = importlib.metadata.entry_points(group="keras_app_templates.apps")
    installed = {ep.name: ep.value for ep in group}
    assert {name: installed.get(name) for name in declared} == declared, "reinstall: pip install -e ."


def test_declared_choices_match_the_code_that_uses_them():
    from apps.image_classification import config as image_config
    from apps.image_classification import keras_applications
    from apps.image_classification.backbones import BACKBONES
    from apps.sequence_modeling.config import Cell
    from apps.sequence_modeling.model import CELLS

    assert set(typing.get_args(Cell)) == set(CELLS)
    assert set(image_config.ARCHS) == set(BACKBONES)
    assert image_config.APPLICATIONS == keras_applications.PREFIX


def test_an_apps_help_and_config_load_no_tensorflow():
    """The config keys are declared in modules without TensorFlow (registry.config_class), so
    `train --app NAME --help` and --print-config (of numbers given, not `auto`) answer at once."""
    apps = sorted(BUILT_IN_APPS)
    given = ["--set", "epochs=2", "--set", "batch_size=32", "--set", "callbacks.restore_best=false",
             "--set", "model.augment=false", "--set", "runtime.mixed_precision=false"]
    result = _fresh(
        "import sys, yaml\n"
        "from training.cli import main\n"
        f"for name in {apps!r}:\n"
        "    main(['train', '--app', name, '--help'])\n"
        "    sys.stdout.write('---\\n')\n"
        f"main(['train', '--app', 'image_classification', '--print-config', *{given!r}])\n"
        "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not loaded, loaded\n")
    helps = result.stdout.split("---\n")
    for name, text in zip(apps, helps):
        assert f"config keys of {name}" in text and "model." in text
    assert "arch: resnet_small" in helps[-1] and "epochs: 2" in helps[-1]


@pytest.mark.parametrize("app", sorted(BUILT_IN_APPS))
def test_every_key_of_every_app_has_a_line_of_help(app):
    from training import config as config_lib
    from training.registry import get_app

    rows = config_lib.describe(get_app(app).config_class())
    assert [key for key, _, help_text, _ in rows if not help_text] == []


def _declared_distributions():
    """Distribution names (lowercase) in install_requires and each extra of setup.cfg."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")

    def names(text):
        return {line.split(">")[0].split("=")[0].split("<")[0].strip().lower()
                for line in text.strip().splitlines() if line.strip()}

    extras = {k: names(v) for k, v in setup["options.extras_require"].items()}
    return names(setup["options"]["install_requires"]), extras


def _distributions_of(module):
    """The installed distributions that provide `module` (namespace packages by their subpackage)."""
    top = module.split(".")[0]
    candidates = importlib.metadata.packages_distributions().get(top, [])
    if len(candidates) > 1 and "." in module:  # e.g. google.protobuf among google.* packages
        prefix = "/".join(module.split(".")[:2]) + "/"
        candidates = [d for d in candidates if any(str(f).startswith(prefix)
                                                   for f in importlib.metadata.distribution(d).files)]
    return {d.lower() for d in candidates}


@pytest.mark.parametrize("package, extra", [
    ("layers", None), ("apps", None), ("training", None), ("serving", "serving")])
def test_every_third_party_import_is_declared(package, extra):
    required, extras = _declared_distributions()
    declared = required | extras.get(extra, set())
    ours = {"apps", "layers", "serving", "training"}
    undeclared = set()
    for file, module in _imported_modules(package):
        top = module.split(".")[0]
        if top in ours or top in sys.stdlib_module_names:
            continue
        provided = _distributions_of(module)
        if not provided & declared:
            undeclared.add(f"{file}: {module} ({', '.join(sorted(provided)) or 'not installed'})")
    assert sorted(undeclared) == []


@pytest.mark.parametrize("app", sorted(BUILT_IN_APPS))
def test_every_numeric_key_declares_its_bounds(app):
    """Bounds are checked when the config loads; a number without them is never checked."""
    import dataclasses

    from training import config as config_lib
    from training.registry import get_app

    def numeric(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        return any(a in (int, float) or typing.get_args(a) in ((int,), (float,)) for a in args)

    def unbounded(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from unbounded(hints[f.name], f"{prefix}{f.name}.")
            elif numeric(hints[f.name]) and not config_lib.key_meta(cls, f.name, "bounds"):
                yield prefix + f.name

    assert list(unbounded(get_app(app).config_class)) == []
