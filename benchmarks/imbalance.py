"""Imbalanced classes: the default command on Fashion-MNIST with classes 0-4 cut to 5% of their
training images, without a remedy, with data.class_weight=balanced and with data.sampling=balanced.

The data: IDX files a user could have made, train- with every image of classes 5-9 and a
seeded 5% of classes 0-4 (300 of 6,000 each: 20:1), t10k- the full test set; then
`python -m training train --app image_classification --set data.dir=DIR --set seed=S` plus the
remedy. Reported per remedy, mean over the seeds: the test balanced accuracy (the mean recall,
the test set being balanced: its accuracy too), macro F1, and each class's recall.
Goal: balanced accuracy >= 3 points over no remedy for class_weight or sampling.

    .venv/bin/python benchmarks/imbalance.py [--seeds 3] [--keep 0.05]
"""

import argparse
import gzip
import json
import shutil
import time
from pathlib import Path

import harness
import numpy as np

from apps.image_classification.data import FASHION_MNIST_CLASSES, IDX_DIRS, IDX_FILES, ImageSource

RARE = range(5)  # the classes cut
REMEDIES = {"none": [], "class_weight": ["data.class_weight=balanced"],
            "sampling": ["data.sampling=balanced"]}


def _write_idx(path, array):
    """An IDX file of uint8 `array` (gzip), as the Debian package ships them."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_data(target, keep, seed):
    """DIR with the cut training IDX files and the whole test set; returns its class counts."""
    images, labels = ImageSource("fashion_mnist").idx_arrays("train")
    rng = np.random.default_rng(seed)
    chosen = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(labels == c), int(round(keep * np.sum(labels == c))),
                   replace=False) if c in RARE else np.flatnonzero(labels == c)
        for c in range(len(FASHION_MNIST_CLASSES))]))
    chosen = rng.permutation(chosen)  # the validation split is the files' last 10%: all classes
    target.mkdir(parents=True, exist_ok=True)
    image_file, label_file = IDX_FILES["train"]
    _write_idx(target / f"{image_file}.gz", images[chosen][..., 0])
    _write_idx(target / f"{label_file}.gz", labels[chosen])
    for name in IDX_FILES["test"]:
        source = Path(IDX_DIRS["fashion_mnist"])
        found = next(p for p in (source / name, source / f"{name}.gz") if p.exists())
        shutil.copy(found, target / found.name)
    return np.bincount(labels[chosen], minlength=len(FASHION_MNIST_CLASSES)).tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--keep", type=float, default=0.05, help="share of classes 0-4 kept")
    parser.add_argument("--remedies", default=",".join(REMEDIES))
    parser.add_argument("--out", type=Path, help="an earlier run's directory: its finished runs "
                        "are read, not trained again (default: a new benchmarks/out/imbalance/STAMP)")
    args = parser.parse_args()
    out = args.out or harness.OUT / "imbalance" / time.strftime("%Y%m%d-%H%M%S")
    figures = {}
    for remedy in args.remedies.split(","):
        runs = []
        for seed in range(args.seeds):
            counts = write_data(out / f"data-{seed}", args.keep, seed)
            metrics = harness.train_run(out / f"{remedy}-{seed}", f"data.dir={out / f'data-{seed}'}",
                                        f"seed={seed}", *REMEDIES[remedy])
            runs.append({"seed": seed, "balanced_accuracy": metrics["test"]["balanced_accuracy"],
                         "macro_f1": metrics["test"]["macro_f1"],
                         "recall": {name: metrics["per_class"][name]["recall"]
                                    for name in FASHION_MNIST_CLASSES},
                         "train_seconds": metrics["train_seconds"],
                         "epochs": metrics["epochs_completed"], "train_counts": counts})
            print(json.dumps({"remedy": remedy, **runs[-1]}), flush=True)
        mean = {key: float(np.mean([r[key] for r in runs]))
                for key in ("balanced_accuracy", "macro_f1", "train_seconds", "epochs")}
        mean["recall"] = {name: float(np.mean([r["recall"][name] for r in runs]))
                          for name in FASHION_MNIST_CLASSES}
        figures[remedy] = {"runs": runs, "mean": mean}
    rows = []
    base = figures.get("none", {}).get("mean")
    for remedy, found in figures.items():
        if remedy == "none" or base is None:
            continue
        mean = found["mean"]
        rare = np.mean([mean["recall"][FASHION_MNIST_CLASSES[c]] for c in RARE])
        base_rare = np.mean([base["recall"][FASHION_MNIST_CLASSES[c]] for c in RARE])
        rows.append({
            "benchmark": f"imbalance: classes 0-4 cut to {args.keep:.0%}, data.{remedy}=balanced, "
                         f"mean of {args.seeds} seeds (goal: +3 points of balanced accuracy)",
            "measured": f"{100 * mean['balanced_accuracy']:.2f}% balanced accuracy, macro F1 "
                        f"{mean['macro_f1']:.4f}, recall of classes 0-4 {100 * rare:.1f}%",
            "against": f"{100 * base['balanced_accuracy']:.2f}% (macro F1 {base['macro_f1']:.4f}, "
                       f"recall of classes 0-4 {100 * base_rare:.1f}%) without",
            "ratio": mean["balanced_accuracy"] / base["balanced_accuracy"]})
    harness.record("imbalance", figures, rows)


if __name__ == "__main__":
    main()
