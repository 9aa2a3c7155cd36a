"""Find apps by name: built-ins register with a decorator."""

_APPS = {}


def register_app(cls):
    """Class decorator: make an App subclass available under `cls.name`."""
    if not getattr(cls, "name", ""):
        raise TypeError(f"{cls.__name__} needs a class attribute `name` to be registered")
    if cls.name in _APPS and _APPS[cls.name] is not cls:
        raise ValueError(f"Two apps are registered as {cls.name!r}: "
                         f"{_APPS[cls.name].__module__} and {cls.__module__}")
    _APPS[cls.name] = cls
    return cls


def _load_builtins():
    # Importing the modules runs their @register_app decorators.
    import apps.image_classification  # noqa: F401


def available_apps():
    """{name: App class} of every registered app."""
    _load_builtins()
    return dict(sorted(_APPS.items()))


def get_app(name):
    """The App class registered as `name`, or a ValueError listing the choices."""
    found = available_apps()
    if name not in found:
        raise ValueError(f"Unknown app {name!r}. Available apps: {', '.join(found)}")
    return found[name]
