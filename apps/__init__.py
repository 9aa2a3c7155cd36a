"""Task templates. Each module defines one `apps.base.App` subclass."""

from apps.base import App, DataNotFoundError, ServingSignature
from apps.registry import available_apps, get_app, register_app

__all__ = ["App", "DataNotFoundError", "ServingSignature", "available_apps", "get_app", "register_app"]
