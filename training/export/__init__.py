"""A run's model for serving and devices: the SavedModel in TF Serving's layout
(saved_model.py, with warm-up requests), LiteRT (litert.py), reading either back to score or
compare it (artifacts.py), and predicting with a run's model in process (predict.py).
from_run.py is the entry point: export_model after training, export_run for a finished run."""

from training.export.from_run import export_model, export_run

__all__ = ["export_model", "export_run"]
