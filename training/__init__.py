"""The framework: the App contract and its registry, config, the shared fit/evaluate pipeline,
export, and the command line (`python -m training --help`, or `kat --help`). It never imports
the apps; it finds them by entry point (registry.py)."""
