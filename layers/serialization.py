"""The package name every layer here registers under for `.keras` files."""

SERIALIZATION_PACKAGE = "keras_app_templates"
