"""Tabular regression from a CSV file (app.py), its keys in config.py: the first worked example
of docs/adding_a_task.md."""
