"""The shared training pipeline. Run `python -m training --help`."""
