"""Transfer on real data: a backbone trained on Fashion-MNIST classes 0-4 helps classes 5-9.

1. Trains the default config (`make train-app`'s) on the five classes T-shirt/top, Trouser,
   Pullover, Dress, Coat: all their training images, from the PNG folder that
   benchmarks/folder_vs_idx.py writes (written here if missing), through data.classes.
2. For 3 seeds: picks 50 training images per class of the other five classes (Sandal,
   Shirt, Sneaker, Bag, Ankle boot) and trains on them twice, the same epochs each:
   from the trained backbone (model.init_from: every layer but the head, new because the
   classes differ; backbone frozen for the first half of the epochs, then all layers at
   fine_tune_learning_rate) and from random weights. Both are tested on all 5,000 test
   images of those classes.

Goal: the trained backbone wins by at least 3 points of mean test accuracy.

    .venv/bin/python benchmarks/transfer.py [--png benchmarks/out/fashion_mnist_png] [--seeds 3]
"""

import argparse
import os
import random
import time
from pathlib import Path

import harness
import numpy as np
from folder_vs_idx import write_png_folder

from training.pipeline import train
from training.registry import load_config

CONFIG = "presets/fashion_mnist_default.yaml"
FIRST = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat"]
SECOND = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# 250 images: batches of 16 and 30 epochs make 480 steps. Fixed (not epochs=auto) so that
# figures stay comparable across changes; chosen when BatchNorm's moving statistics still
# needed that many steps (160 left the random init near chance), before "precise BN".
FEW = ["epochs=30", "batch_size=16", "data.validation_split=0", "export.enabled=false",
       "runtime.verbose=0", "callbacks.tensorboard=false"]


def few_labels_folder(png, target, per_class, seed):
    """`target`/train/<class>/ with `per_class` random training images of each SECOND class,
    and `target`/test/<class>/ with all their test images (symbolic links into `png`)."""
    rng = random.Random(seed)
    for name in SECOND:
        files = sorted((png / "train" / name).iterdir())
        for split, chosen in (("train", rng.sample(files, per_class)),
                              ("test", sorted((png / "test" / name).iterdir()))):
            folder = target / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for path in chosen:
                os.symlink(path.resolve(), folder / path.name)
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, default=harness.OUT / "fashion_mnist_png")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=50)
    args = parser.parse_args()
    if not (args.png / "test").is_dir():
        write_png_folder(args.png)
    out = harness.OUT / "transfer" / time.strftime("%Y%m%d-%H%M%S")

    start = time.perf_counter()
    base = train(load_config(None, CONFIG, [
        f"data.dir={args.png}", f"data.classes=[{','.join(FIRST)}]", f"run_dir={out / 'base'}",
        "export.enabled=false", "runtime.verbose=2"]))
    base_seconds = time.perf_counter() - start
    print(f"backbone: classes 0-4, test accuracy {base['test']['accuracy']:.4f}")

    accuracy = {"trained_backbone": [], "random_init": []}
    for seed in range(args.seeds):
        data = few_labels_folder(args.png, out / f"few-{seed}", args.per_class, seed)
        runs = {"trained_backbone": [f"model.init_from={out / 'base'}", "model.freeze_backbone=true",
                                     "model.unfreeze_after_epochs=15"],
                "random_init": []}
        for name, extra in runs.items():
            metrics = train(load_config(None, CONFIG, FEW + extra + [
                f"data.dir={data}", f"seed={seed}", f"run_dir={out / f'{name}-{seed}'}"]))
            accuracy[name].append(metrics["test"]["accuracy"])
            print(f"seed {seed}, {name}: test accuracy {metrics['test']['accuracy']:.4f}")
    means = {name: float(np.mean(values)) for name, values in accuracy.items()}
    gain = 100 * (means["trained_backbone"] - means["random_init"])
    figures = {"backbone_test_accuracy_classes_0_4": base["test"]["accuracy"],
               "backbone_train_seconds": base_seconds,
               "trained_backbone_accuracies": accuracy["trained_backbone"],
               "random_init_accuracies": accuracy["random_init"],
               "trained_backbone_mean_accuracy": means["trained_backbone"],
               "random_init_mean_accuracy": means["random_init"],
               "gain_points": gain, "labels_per_class": args.per_class, "seeds": args.seeds}
    rows = [{"benchmark": f"transfer 0-4 -> 5-9, {args.per_class} labels/class, mean of "
                          f"{args.seeds} seeds (goal: +3 points)",
             "measured": f"{100 * means['trained_backbone']:.2f}% from the trained backbone",
             "against": f"{100 * means['random_init']:.2f}% from random weights",
             "ratio": means["trained_backbone"] / means["random_init"]}]
    harness.record("transfer", figures, rows)


if __name__ == "__main__":
    main()
