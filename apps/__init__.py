"""Task templates. Each module defines one `apps.base.App` subclass."""

from apps.base import App, ServingSignature
from apps.registry import available_apps, get_app, register_app

__all__ = ["App", "ServingSignature", "available_apps", "get_app", "register_app"]
