"""The framework, by role (docs/architecture.md draws it; imports point down this list):

  cli/       the command line (`kat`, `python -m training`): one module per command group
  tuning/    `tune`: KerasTuner searches whose trials are pipeline runs
  pipeline/  `train` in named stages, and `evaluate`
  export/    SavedModel (TF Serving), LiteRT, reading exports back, predict
  runtime/   backend, tf.distribute strategy, dtype policy, disk space
  registry.py, presets.py, run_dir.py, contract.py: apps and presets by entry point, the run
             directory's files, the checks of what the hooks return
  scaffold.py: `new-app`; testing.py: what an app's tests import (train_tiny, ...)
  app.py, config/, datasets.py, folder_data.py, plots.py, errors.py: what an app imports

It never imports the apps; it finds them by entry point (registry.py).
"""

__version__ = "0.1.0"  # the one place: setup.cfg reads it (attr:), `kat --version` prints it
