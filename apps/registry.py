"""Find apps by name.

Built-in apps are the modules of this package that decorate an App subclass
with `@register_app`. Apps that live in other packages are found through the
entry-point group `keras_app_templates.apps`, e.g. in their setup.cfg:

    [options.entry_points]
    keras_app_templates.apps =
        my_task = my_package.my_module:MyTaskApp
"""

import importlib
import pkgutil
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "keras_app_templates.apps"
_APPS = {}


class UnknownAppError(ValueError):
    """No app is registered under the requested name."""


def register_app(cls):
    """Class decorator: make an App subclass available under `cls.name`."""
    if not getattr(cls, "name", ""):
        raise TypeError(f"{cls.__name__} needs a class attribute `name` to be registered")
    if cls.name in _APPS and _APPS[cls.name].__qualname__ != cls.__qualname__:
        raise ValueError(f"Two apps are registered as {cls.name!r}: "
                         f"{_APPS[cls.name].__module__} and {cls.__module__}")
    _APPS[cls.name] = cls
    return cls


def _load_builtins():
    # Importing a module of this package runs its @register_app decorators.
    import apps

    for module in pkgutil.iter_modules(apps.__path__):
        importlib.import_module(f"apps.{module.name}")


def _load_entry_points():
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _APPS:
            cls = ep.load()
            if getattr(cls, "name", "") != ep.name:
                raise ValueError(f"Entry point {ep.name!r} ({ep.value}) must point to an App "
                                 f"class whose name is {ep.name!r}")
            register_app(cls)


def available_apps():
    """{name: App class} of every registered app, built-in and installed."""
    _load_builtins()
    _load_entry_points()
    return dict(sorted(_APPS.items()))


def get_app(name):
    """The App class registered as `name`, or an UnknownAppError listing the choices."""
    found = available_apps()
    if name not in found:
        raise UnknownAppError(f"Unknown app {name!r}. Available apps: {', '.join(found)}")
    return found[name]
