"""Task templates, one package (or module) each, subclassing `training.app.App`.

Each app is declared in setup.cfg's entry-point group `keras_app_templates.apps`,
the way apps of other packages are, so the framework finds them without
knowing this package. Keep this file and the app packages' `__init__.py` free of
imports: listing apps reads them.
"""
