"""Find apps by name through the entry-point group `keras_app_templates.apps`.

Built-in apps are declared in this project's setup.cfg, and apps of other
packages in theirs, the same way:

    [options.entry_points]
    keras_app_templates.apps =
        my_task = my_package.my_module:MyTaskApp

Installing the package (`pip install -e .`, or `make setup` here) registers
them. The framework imports an app's module only when the app is asked for by
name; `describe` reads the one-line `description` from the module's source
without importing it (as setuptools reads `attr:` versions), so listing apps
does not load TensorFlow. `config_class` likewise imports only the module that
declares the app's config, where the app's source names it, so `--help` and
`--print-config` load no TensorFlow either.
"""

import ast
import functools
import importlib
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

from training import config as config_lib
from training.errors import ConfigError, UnknownAppError

ENTRY_POINT_GROUP = "keras_app_templates.apps"
_loaded = {}


@functools.cache  # the installed packages do not change while a command runs
def _declared():
    """{name: entry point} of every installed app, sorted by name."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            raise ConfigError(f"Two installed packages declare the app {ep.name!r}: "
                              f"{_package(found[ep.name])} ({found[ep.name].value}) and {_package(ep)} "
                              f"({ep.value}); uninstall one (`pip uninstall NAME`)")
        found[ep.name] = ep
    return dict(sorted(found.items()))


def _class_assignments(tree, attribute, class_name=None):
    """(class name, assigned expression) for each class in module `tree` (named `class_name`,
    if given) whose body assigns to `attribute`, in source order."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and class_name in (None, node.name):
            for statement in node.body:
                if (isinstance(statement, ast.Assign)
                        and any(getattr(t, "id", None) == attribute for t in statement.targets)):
                    yield node.name, statement.value


def _class_literal(tree, attribute, value=None, class_name=None):
    """(class name, literal) of the first class in module `tree` (named `class_name`, if given)
    whose body assigns a string literal to `attribute` (equal to `value`, if given), or None."""
    for name, assigned in _class_assignments(tree, attribute, class_name):
        if (isinstance(assigned, ast.Constant) and isinstance(assigned.value, str)
                and value in (None, assigned.value)):
            return name, assigned.value
    return None


def _undeclared_hint(name):
    """Why an app the working directory holds is not found: its setup.cfg line is missing, or
    it is there but the project was not reinstalled since. "" if neither applies."""
    root = Path.cwd()
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file() and any(line.split("=")[0].strip() == name and "=" in line
                                   and ":" in line for line in setup_cfg.read_text().splitlines()):
        return (f" {setup_cfg} declares it, but this environment has not registered it: "
                "reinstall the project (`pip install -e .`; make does it when setup.cfg changes)")
    for path in sorted((root / "apps").rglob("*.py")) if (root / "apps").is_dir() else ():
        try:
            found = _class_literal(ast.parse(path.read_text(encoding="utf-8")), "name", name)
        except (SyntaxError, UnicodeDecodeError):
            continue
        if found:
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            return (f" {path.relative_to(root)} defines it ({found[0]}) but nothing declares it: "
                    f"add `{name} = {module}:{found[0]}` under `{ENTRY_POINT_GROUP} =` in "
                    "setup.cfg, then reinstall (`pip install -e .`)")
    return ""


def _unknown(name, declared):
    hint = _undeclared_hint(name)
    if hint:
        return f"Unknown app {name!r}:{hint}"
    if not declared:
        return (f"Unknown app {name!r}: no apps are installed in this Python environment. "
                "Install the project first: `make setup` (or `pip install -e .`)")
    return (f"Unknown app {name!r}. Installed apps: {', '.join(declared)}. New ones: "
            f"`kat new-app NAME` (declared under {ENTRY_POINT_GROUP}), then `pip install -e` it")


def _package(ep):
    """The name of the installed distribution that declares entry point `ep`."""
    return ep.dist.name if ep.dist is not None else "?"


def _load(ep):
    from training.app import App

    try:
        cls = ep.load()
    except (ImportError, AttributeError) as e:  # a module or class the package does not have
        raise ConfigError(f"App {ep.name!r} of package {_package(ep)} cannot be loaded from its entry "
                          f"point {ep.value}: {e}. Fix the entry point in that package's "
                          "pyproject.toml (or setup.cfg), then reinstall it") from None
    if not (isinstance(cls, type) and issubclass(cls, App)) or cls.name != ep.name:
        raise ConfigError(f"Entry point {ep.name!r} ({ep.value}) must point to an App subclass "
                          f"whose name is {ep.name!r}")
    return cls


def app_names():
    """Names of the installed apps, sorted; imports none of them."""
    return list(_declared())


def _entry_point(name):
    """The entry point of the app installed as `name`, or UnknownAppError."""
    declared = _declared()
    if name not in declared:
        raise UnknownAppError(_unknown(name, declared))
    return declared[name]


def get_app(name):
    """The App class installed as `name` (imports its module), or UnknownAppError."""
    if name not in _loaded:
        _loaded[name] = _load(_entry_point(name))
    return _loaded[name]


def _source_tree(ep):
    """The parsed source of entry point `ep`'s module (found, not imported), or None."""
    try:
        spec = importlib.util.find_spec(ep.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not (spec.origin or "").endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


def _config_module(ep):
    """(module, name) of the class the App's body assigns to `config_class` when the app's
    module imports it from another module (`from apps.x.config import XConfig`), else None."""
    tree = _source_tree(ep)
    if tree is None:
        return None
    assigned = [value.id for _, value in _class_assignments(tree, "config_class", ep.attr)
                if isinstance(value, ast.Name)]
    for node in tree.body if assigned else ():
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == assigned[0]:
                    return node.module, alias.name
    return None


def config_class(name):
    """App `name`'s config class; imports the app's module only when its config is declared
    there (see _config_module)."""
    if name in _loaded:
        return _loaded[name].config_class
    found = _config_module(_entry_point(name))
    if found is None:
        return get_app(name).config_class
    cls = getattr(importlib.import_module(found[0]), found[1])
    if not (isinstance(cls, type) and issubclass(cls, config_lib.Config)):
        raise ConfigError(f"App {name!r}: config_class {found[0]}.{found[1]} must subclass "
                          "training.config.Config")
    return cls


def _literal_description(ep):
    """The string literal assigned to `description` in the class body, or None."""
    tree = _source_tree(ep)
    if tree is None:
        return None
    found = _class_literal(tree, "description", class_name=ep.attr)
    return found[1] if found else None


def describe(name):
    """App `name`'s one-line description, read from its source when it is a literal there
    (no import), else from the imported class."""
    ep = _entry_point(name)
    if name in _loaded:
        return _loaded[name].description
    found = _literal_description(ep)
    return found if found is not None else get_app(name).description


def load_config(app_name, path=None, overrides=()):
    """The resolved config of app `app_name` (its defaults < YAML file `path` < `overrides`);
    without `app_name`, the app the file names."""
    app_name, values = config_lib.named_app(app_name, path)
    config = config_lib.load(config_class(app_name), values, overrides)
    config.app = app_name
    return config
