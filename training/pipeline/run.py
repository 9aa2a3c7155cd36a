"""`train`: one run of an app as configured, start to end: the runtime (backend, seed,
strategy, dtype policy), the claimed run directory, then the stages (stages.py)."""

import tempfile
from pathlib import Path

from training.errors import ConfigError
from training.pipeline import fine_tuning, inputs, run_length
from training.pipeline.callbacks import resolve_restore_best
from training.pipeline.stages import STAGES, RunState
from training.registry import get_app
from training.run_dir import TRAIN_OPTION, claim
from training.runtime.start import start


def train(config):
    """Train, evaluate and export one app as configured; returns metrics.json's content."""
    with start(config) as (strategy, precision):
        # tf.distribute names the chief (worker 0 without a "chief" task); the other
        # workers keep their files (backups too) out of the run dir.
        if not strategy.extended.should_checkpoint:
            config.run_dir = tempfile.mkdtemp(prefix="kat-worker-")
            config.export.enabled = False
        _check_init_from(config)  # before the run dir is made
        with claim(config.run_dir, config.app) as claimed:
            state = RunState(config, strategy, claimed, precision)
            for stage in STAGES:
                stage(state)
            return state.metrics


def _check_init_from(config):
    if not config.model.init_from:
        return
    source = fine_tuning.source_path(config.model.init_from).resolve()
    if config.run_dir and Path(config.run_dir).resolve() in source.parents:
        raise ConfigError(f"model.init_from={config.model.init_from} lies in run_dir "
                          f"{config.run_dir}, which this run writes; choose another "
                          f"{TRAIN_OPTION}")


def resolve_run_length(config):
    """`config` with `epochs`/`batch_size: auto`, the app's own `auto` options and
    `callbacks.restore_best: auto` resolved as a one-device run would (--print-config, tune)."""
    app = get_app(config.app)(config)
    if run_length.AUTO in (config.epochs, config.batch_size):
        run_length.resolve(config, inputs.split_examples(app))
    app.resolve_auto()
    if config.callbacks.restore_best == run_length.AUTO:
        resolve_restore_best(config, inputs.split_examples(app, "validation"))
    return config
