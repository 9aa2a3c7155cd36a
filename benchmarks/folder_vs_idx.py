"""Your own images: a folder of 70,000 Fashion-MNIST PNGs against the IDX files they came from.

Writes the IDX files as PNGs in the train/ and test/ layout (`DIR/<split>/<class>/<n>.png`),
then trains the default config (`make train-app`'s) twice in this process's machine: from
the IDX arrays in memory and from the folder through tf.data (read, decode, no resize).
Reports both test accuracies (goal: within 0.3 points) and both training step times
(goal: the folder's within 10% of the in-memory source's), steady and first epoch: the
first epoch reads and decodes every file; later ones read the pipeline's cache, and a third
run with data.cache=false shows the stream from disk on every epoch.

    .venv/bin/python benchmarks/folder_vs_idx.py [--dir benchmarks/out/fashion_mnist_png] [--stamp S]
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import harness
import numpy as np
from PIL import Image

from apps.image_classification.data import FASHION_MNIST_CLASSES, ImageSource
from training.run_dir import RunDir

CONFIG = "presets/fashion_mnist_default.yaml"


def write_png_folder(target):
    """The IDX train and test files as `target/<split>/<class>/<n>.png`; returns the file count."""
    source, written = ImageSource("fashion_mnist"), 0
    for split in ("train", "test"):
        images, labels = source.idx_arrays(split)
        folders = [target / split / name.replace("/", "_") for name in FASHION_MNIST_CLASSES]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image[..., 0]).save(folders[label] / f"{i:05d}.png")
            written += 1
    return written


def train(run_dir, overrides):
    """metrics.json, the per-epoch seconds and the wall time of one `python -m training train`
    of CONFIG; a run dir that holds a finished run is read, not trained again (--stamp)."""
    wall = float("nan")
    if not RunDir(run_dir).metrics.exists():
        wall = _train(run_dir, overrides)
    metrics = json.loads(RunDir(run_dir).metrics.read_text())
    with open(RunDir(run_dir).history, newline="") as f:
        seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(f)]
    return metrics, seconds, wall


def _train(run_dir, overrides):
    command = [sys.executable, "-m", "training", "train", "--config", CONFIG,
               "--set", f"run_dir={run_dir}", "--set", "export.enabled=false",
               "--set", "runtime.verbose=2"] + [a for o in overrides for a in ("--set", o)]
    start = time.perf_counter()
    subprocess.run(command, cwd=harness.ROOT, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=harness.OUT / "fashion_mnist_png")
    parser.add_argument("--stamp", default=time.strftime("%Y%m%d-%H%M%S"),
                        help="name of the runs under benchmarks/out/folder_vs_idx/; finished ones "
                             "are read again, not retrained")
    args = parser.parse_args()
    if not (args.dir / "test").is_dir():
        start = time.perf_counter()
        count = write_png_folder(args.dir)
        print(f"wrote {count} PNGs to {args.dir} in {time.perf_counter() - start:.0f} s")
    stamp = args.stamp
    runs = {
        "idx": [],
        "folder": [f"data.dir={args.dir}"],
        "folder_streamed": [f"data.dir={args.dir}", "data.cache=false"],
    }
    results = {name: train(harness.OUT / "folder_vs_idx" / f"{stamp}-{name}", overrides)
               for name, overrides in runs.items()}
    steps = results["idx"][0]["train_examples"] / results["idx"][0]["global_batch_size"]
    figures = {}
    for name, (metrics, seconds, wall) in results.items():
        steady = float(np.mean(seconds[1:])) if len(seconds) > 1 else seconds[0]
        figures[f"{name}_test_accuracy"] = metrics["test"]["accuracy"]
        figures[f"{name}_step_ms"] = 1000 * steady / np.ceil(steps)
        figures[f"{name}_first_epoch_step_ms"] = 1000 * seconds[0] / np.ceil(steps)
        figures[f"{name}_epoch_seconds"] = seconds
        if wall == wall:  # not NaN: trained by this command
            figures[f"{name}_wall_seconds"] = wall
    rows = []
    for name in ("folder", "folder_streamed"):
        gap = 100 * (figures[f"{name}_test_accuracy"] - figures["idx_test_accuracy"])
        ratio = figures[f"{name}_step_ms"] / figures["idx_step_ms"]
        figures[f"{name}_accuracy_gap_points"], figures[f"{name}_step_time_ratio"] = gap, ratio
        rows += [{"benchmark": f"{name} of PNGs: test accuracy (goal within 0.3 points of IDX)",
                  "measured": f"{100 * figures[f'{name}_test_accuracy']:.2f}%",
                  "against": f"IDX {100 * figures['idx_test_accuracy']:.2f}%",
                  "ratio": figures[f"{name}_test_accuracy"] / figures["idx_test_accuracy"]},
                 {"benchmark": f"{name} of PNGs: train step time (goal within 10% of IDX)",
                  "measured": f"{figures[f'{name}_step_ms']:.1f} ms",
                  "against": f"IDX {figures['idx_step_ms']:.1f} ms", "ratio": ratio}]
    harness.record("folder_vs_idx", figures, rows)


if __name__ == "__main__":
    main()
