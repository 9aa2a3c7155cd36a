"""Accuracy-vs-time curves: test accuracy after each epoch against training wall time.

Trains each config as `python -m training train` would, with
`callbacks.test_each_epoch=true` (training/pipeline/callbacks.py: TestEachEpoch, whose
evaluations are left out of the wall time), and reads the curve from the run's
history.csv. By default the image app's default config and the sequence app's
LSTM config. Reports per config the final test accuracy and how early the run
came within 1 point of it (a hint of how much shorter it could be).

    .venv/bin/python benchmarks/accuracy_vs_time.py [--configs a.yaml,b.yaml] [--set epochs=2]
"""

import argparse
import csv
import shutil
from pathlib import Path

import harness

from training.pipeline import train
from training.registry import load_config
from training.run_dir import RunDir

DEFAULT_CONFIGS = "presets/fashion_mnist_default.yaml,presets/sequence_fashion_mnist_lstm.yaml"


def curve(config_path, overrides):
    run_dir = harness.OUT / "accuracy_vs_time" / Path(config_path).stem
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, not a resume of the last one
    config = load_config(None, config_path, [
        "callbacks.test_each_epoch=true", "callbacks.tensorboard=false", "export.enabled=false",
        "runtime.verbose=0", f"run_dir={run_dir}", *overrides])
    metrics = train(config)
    with open(RunDir(run_dir).history) as f:
        history = list(csv.DictReader(f))
    number = lambda row, key: float(row.get(key) or "nan")  # noqa: E731
    return {"app": config.app, "epochs": len(history), "train_seconds": metrics["train_seconds"],
            "wall_seconds": [number(r, "wall_seconds") for r in history],
            "test_accuracy": [number(r, "test_accuracy") for r in history],
            "final_test_accuracy": metrics["test"].get("accuracy", float("nan"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated YAML files")
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    args = parser.parse_args()
    curves, rows = {}, []
    for path in args.configs.split(","):
        c = curves[Path(path).stem] = curve(path, args.set)
        last = c["test_accuracy"][-1]
        # The first epoch whose test accuracy is within 1 point of the last one.
        near = next((i for i, a in enumerate(c["test_accuracy"]) if a >= last - 0.01),
                    len(c["test_accuracy"]) - 1)
        rows.append({"benchmark": f"Accuracy vs time, `{path}`: time to within 1 point of the "
                                  "final test accuracy / whole run",
                     "measured": f"{c['test_accuracy'][near]:.2%} after epoch {near + 1}, "
                                 f"{c['wall_seconds'][near]:.0f} s",
                     "against": f"{last:.2%} after epoch {c['epochs']}, "
                                f"{c['wall_seconds'][-1]:.0f} s",
                     "ratio": c["wall_seconds"][near] / c["wall_seconds"][-1]})
    harness.record("accuracy_vs_time", curves, rows)


if __name__ == "__main__":
    main()
