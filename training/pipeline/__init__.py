"""The shared training pipeline: `train` one run of any app, `evaluate` a finished one.

  run.py       train(config): runtime, run dir, then the stages
  stages.py    prepare -> build -> fit (phases) -> finish, over one RunState
  inputs.py    tf.data: cache, shuffle seeded per epoch, global batches, prefetch
  compile.py   model.compile: loss/metrics, optimizer (optimizers.py), steps per execution
  callbacks.py checkpoints, atomic backup and exact resume, NaN guard, SIGTERM, throughput
  history.py   resume point and history.csv of an interrupted run
  fine_tuning.py, batch_norm_statistics.py, run_length.py: init_from and phases, precise
               BatchNorm, `auto` epochs and batch size
  report.py, baselines.py: figures, the majority-class baseline, metrics.json's keys
  evaluate.py  test metrics of a finished run or of its export
  data_preview.py  `kat data`
"""

from training.pipeline.evaluate import evaluate
from training.pipeline.run import resolve_run_length, train

__all__ = ["evaluate", "resolve_run_length", "train"]
