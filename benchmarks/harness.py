"""What the benchmarks share: a configured model, epoch timing, and one result file each.

Each benchmark ends with `record(name, figures, rows)`: it writes
benchmarks/results/<name>.json (figures, table rows, machine and versions)
and exits non-zero when a figure is missing or NaN. `benchmarks/report.py`
turns the files into benchmarks/RESULTS.md, the charts and the README table.
Runs' own files (models, histories) go to benchmarks/out/, which git ignores.
$KAT_BENCH_RESULTS points the result files elsewhere (the tests do).
"""

import datetime
import importlib.metadata
import json
import math
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from training.pipeline import inputs as input_pipeline  # noqa: E402
from training.pipeline.callbacks import Throughput  # noqa: E402
from training.pipeline.compile import compile_model, compile_options  # noqa: E402
from training.registry import get_app, load_config  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
RESULTS = Path(os.environ.get("KAT_BENCH_RESULTS", ROOT / "benchmarks" / "results"))


class Configured:
    """A config's app, model (compiled as `training.pipeline.train` compiles it, so with
    the steps_per_execution a run over all its data uses) and training data."""

    def __init__(self, config_path, overrides=()):
        self.config = load_config(None, config_path, list(overrides))
        self.strategy = tf.distribute.get_strategy()
        self.app = get_app(self.config.app)(self.config)
        self.train_ds, self.examples = input_pipeline.make_dataset(
            self.app, "train", self.config, self.strategy, training=True)
        self.steps = input_pipeline.batches_per_epoch(self.examples, self.config, self.strategy)

    def fresh_model(self):
        keras.utils.set_random_seed(self.config.seed)
        model = self.app.build_model()
        compile_model(model, self.app, self.config, self.steps,
                      compile_options(self.config, self.strategy, self.steps))
        return model

    def cached_batches(self):
        """The pipeline's first batch, as an endless dataset of in-memory tensors."""
        batch = next(iter(self.train_ds))
        return tf.data.Dataset.from_tensors(batch).repeat(), batch


def epoch_seconds(model, dataset, steps, epochs):
    """Seconds of each of `epochs` fit epochs of `steps` steps (the first one traces).

    Keras runs whole executions of `model.steps_per_execution` steps on an endless
    dataset, so `steps` must be a multiple of it for the time to be of `steps` steps.
    """
    if steps % model.steps_per_execution:
        raise ValueError(f"{steps} steps is not a multiple of steps_per_execution="
                         f"{model.steps_per_execution}; Keras would run more steps than timed")
    timer = Throughput(steps)
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False,
              callbacks=[timer])
    return timer.epoch_seconds


def train_run(run_dir, *settings, app="image_classification"):
    """metrics.json of `python -m training train --app APP --set S ...` run in a fresh process
    into `run_dir` (no export, one line per epoch); a finished run is read, not trained again
    (the benchmarks' --out)."""
    import subprocess

    from training.run_dir import RunDir

    if not RunDir(run_dir).metrics.exists():
        command = [sys.executable, "-m", "training", "train", "--app", app]
        for setting in (f"run_dir={run_dir}", "export.enabled=false", "runtime.verbose=2",
                        *settings):
            command += ["--set", setting]
        subprocess.run(command, check=True, cwd=ROOT)
    return json.loads(RunDir(run_dir).metrics.read_text())


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        # "AMD EPYC" names machines 5x apart in conv speed: the widest vector unit tells them apart.
        flags = set(next(line for line in lines if line.startswith("flags")).split())
        cpu += ", " + next((isa for isa in ("avx512f", "avx2", "avx") if isa in flags), "no AVX")
    except (OSError, StopIteration):
        pass
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    versions = {"python": platform.python_version(), "tensorflow": tf.__version__,
                "keras": keras.__version__}
    for package in ("scikit-learn", "statsmodels"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus, "versions": versions}


def _finite(value):
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def record(name, figures, rows, command=None):
    """Write results/<name>.json and print it; exit 1 if a figure is missing or NaN.

    rows: table rows, each {"benchmark", "measured", "against", "ratio"}
    (ratio a float: measured over against, in the row's own sense).
    """
    result = {"name": name, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": command or "python " + " ".join(["benchmarks/" + Path(sys.argv[0]).name,
                                                          *sys.argv[1:]]),
              "machine": machine(), "figures": figures, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}.json", "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"figures": figures, "rows": rows}, indent=2))
    ratios = [row.get("ratio") for row in rows]
    if not figures or not rows or not _finite(figures) or not all(
            isinstance(r, float) and math.isfinite(r) for r in ratios):
        sys.exit(f"{name}: a result is missing or NaN (see {RESULTS / (name + '.json')})")
