"""Run in a fresh process by tests/test_distribution.py: one replica vs two, same global batch.

Trains the same app twice in this process over 2 logical CPUs, once with
OneDeviceStrategy (global batch 16) and once with MirroredStrategy (8 per
replica, 2 replicas), same seed and data order, and prints JSON: the largest
relative weight difference and both first-epoch losses.
"""

import csv
import json
import sys
import tempfile

import keras
import numpy as np

from training.pipeline import train
from training.registry import load_config


def run(app, strategy, batch_size, out, extra):
    config = load_config(app, None, [
        f"strategy={strategy}", "runtime.logical_cpus=2", f"batch_size={batch_size}",
        "data.limit=128", "epochs=2", "runtime.verbose=0", "callbacks.tensorboard=false",
        "runtime.steps_per_execution=1", "export.enabled=false", "optimizer.schedule=constant",
        "callbacks.restore_best=false", f"run_dir={out}",
        # float32 on every machine: the weights are compared to 1e-4, and a CPU with bfloat16
        # units would compute in bfloat16 under auto (a 0.19 relative difference, seen)
        "runtime.mixed_precision=false", *extra])
    metrics = train(config)
    model = keras.saving.load_model(f"{out}/model.keras")
    with open(f"{out}/history.csv") as f:
        metrics["first_epoch_loss"] = float(next(csv.DictReader(f))["loss"])
    return model.get_weights(), metrics


def main():
    app, extra = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        one, m1 = run(app, "one_device", 16, f"{tmp}/one", extra)
        two, m2 = run(app, "mirrored", 8, f"{tmp}/two", extra)
    rel = max(float(np.max(np.abs(a - b) / (np.abs(a) + 1e-3))) for a, b in zip(one, two))
    print(json.dumps({"max_rel_diff": rel, "replicas": [m1["replicas"], m2["replicas"]],
                      "global_batch": [m1["global_batch_size"], m2["global_batch_size"]],
                      "train_loss": [m1["first_epoch_loss"], m2["first_epoch_loss"]],
                      "test_loss": [m1["test"]["loss"], m2["test"]["loss"]]}))


if __name__ == "__main__":
    main()
