"""`kat tune`: a KerasTuner search whose trials are pipeline runs (search.py), over the
config keys a SPACE.yaml names (space.py), summarised in trials.csv, trials.png and
best.yaml (results.py)."""

from training.tuning.search import tune

__all__ = ["tune"]
