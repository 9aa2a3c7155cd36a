"""Small data: the default command on class folders of 50, 100 and 500 Fashion-MNIST images per class.

For each size and seed: a folder of that many training images per class, chosen (seeded) from
the training IDX files, with the full 10,000-image test set as test/; then the default command
with only data.dir (and the seed) set, `python -m training train --app image_classification
--set data.dir=DIR`. Reported per size, mean over the seeds: the test accuracy (inference mode,
the model as exported), the same weights scored with batch statistics (training mode, batches
of batch_size: what the BatchNorm statistics should match), the training time, and scikit-learn's
LogisticRegression(C=0.1) on the same training pixels (every image of train/).
Goals: beat it by 3 points; inference within 1 point of batch statistics; <= 5 min per run.

    .venv/bin/python benchmarks/small_data.py [--sizes 50,100,500] [--seeds 3]
"""

import argparse
import json
import time
from pathlib import Path

import harness
import keras
import numpy as np
import yaml
from PIL import Image
from sklearn.linear_model import LogisticRegression

import layers  # noqa: F401  (registers the custom layers model.keras holds)
from apps.image_classification.data import FASHION_MNIST_CLASSES, ImageSource
from training.run_dir import RunDir

TEST_BATCH = 128  # batch statistics over batches of this size (auto's largest batch)


def _folder_name(class_name):
    return class_name.replace("/", "_")  # "T-shirt/top" is no folder name


def write_folder(target, per_class, seed):
    """train/<class>/ with `per_class` seeded training images per class, test/<class>/ with all
    10,000 test images (once); returns the training (pixels, labels)."""
    source = ImageSource("fashion_mnist")
    images, labels = source.idx_arrays("train")
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                             for c in range(len(FASHION_MNIST_CLASSES))])
    if (target / "test").is_dir():
        return images[chosen], labels[chosen]
    for split, indices, (pixels, classes) in (("train", chosen, (images, labels)),
                                              ("test", None, source.idx_arrays("test"))):
        for name in FASHION_MNIST_CLASSES:
            (target / split / _folder_name(name)).mkdir(parents=True, exist_ok=True)
        for i in (indices if indices is not None else range(len(pixels))):
            name = _folder_name(FASHION_MNIST_CLASSES[classes[i]])
            Image.fromarray(pixels[i][..., 0]).save(target / split / name / f"{i:05d}.png")
    return images[chosen], labels[chosen]


def logistic_regression(train_pixels, train_labels):
    test_pixels, test_labels = ImageSource("fashion_mnist").idx_arrays("test")
    flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
    model = LogisticRegression(C=0.1, max_iter=1000).fit(flat(train_pixels), train_labels)
    return float(model.score(flat(test_pixels), test_labels))


def _without_augmentation(run_dir):
    """The run's model.keras rebuilt without its augmentation layers, the same weights: called
    with training=True, BatchNorm uses its batch's statistics and nothing shifts or flips."""
    from apps.image_classification.model import build_classifier

    trained = keras.saving.load_model(RunDir(run_dir).model)
    config = yaml.safe_load(RunDir(run_dir).config.read_text())["model"]
    model = build_classifier(config["arch"], trained.inputs[0].shape[1:],
                             trained.outputs[0].shape[-1],
                             width_multiplier=config["width_multiplier"], dropout=config["dropout"])
    for layer in model.layers:
        layer.set_weights(trained.get_layer(layer.name).get_weights())
    return model


def batch_statistics_accuracy(run_dir):
    """The run's model on the test set with BatchNorm in training mode (its batches' statistics)."""
    model = _without_augmentation(run_dir)
    images, labels = ImageSource("fashion_mnist").idx_arrays("test")
    folders = [_folder_name(name) for name in FASHION_MNIST_CLASSES]
    labels = np.array([sorted(folders).index(name) for name in folders])[labels]  # the run's order
    order = np.random.default_rng(0).permutation(len(images))  # batches of mixed classes
    correct = 0
    for start in range(0, len(images), TEST_BATCH):
        batch = order[start:start + TEST_BATCH]
        probabilities = keras.ops.convert_to_numpy(model(images[batch], training=True))
        correct += int(np.sum(np.argmax(probabilities, -1) == labels[batch]))
    return correct / len(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,500", help="images per class, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="an earlier run's directory: its finished runs "
                        "are read, not trained again (default: a new benchmarks/out/small_data/STAMP)")
    args = parser.parse_args()
    out = args.out or harness.OUT / "small_data" / time.strftime("%Y%m%d-%H%M%S")
    figures, rows = {}, []
    for per_class in [int(s) for s in args.sizes.split(",")]:
        runs = []
        for seed in range(args.seeds):
            data = out / f"{per_class}-{seed}" / "data"
            train_pixels, train_labels = write_folder(data, per_class, seed)
            run_dir = out / f"{per_class}-{seed}" / "run"
            metrics = harness.train_run(run_dir, f"data.dir={data}", f"seed={seed}")
            runs.append({"seed": seed, "test_accuracy": metrics["test"]["accuracy"],
                         "batch_statistics_accuracy": batch_statistics_accuracy(run_dir),
                         "logistic_regression": logistic_regression(train_pixels, train_labels),
                         "train_seconds": metrics["train_seconds"],
                         "epochs": metrics["epochs_completed"]})
            print(json.dumps({"per_class": per_class, **runs[-1]}), flush=True)
        mean = {key: float(np.mean([r[key] for r in runs])) for key in runs[0] if key != "seed"}
        figures[f"{per_class}_per_class"] = {"runs": runs, "mean": mean}
        gap = 100 * abs(mean["test_accuracy"] - mean["batch_statistics_accuracy"])
        rows.append({
            "benchmark": f"small data, {per_class} images/class, default command, "
                         + (f"mean of {args.seeds} seeds" if args.seeds > 1 else "1 seed")
                         + " (goal: +3 points over LogisticRegression)",
            "measured": f"{100 * mean['test_accuracy']:.2f}% in {mean['train_seconds']:.0f} s "
                        f"({mean['epochs']:.0f} epochs; batch statistics: "
                        f"{100 * mean['batch_statistics_accuracy']:.2f}%, {gap:.2f} points apart)",
            "against": f"{100 * mean['logistic_regression']:.2f}% LogisticRegression(C=0.1)",
            "ratio": mean["test_accuracy"] / mean["logistic_regression"]})
    harness.record("small_data", figures, rows)


if __name__ == "__main__":
    main()
