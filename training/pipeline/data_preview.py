"""`kat data`: what a run would train on, without building a model.

Per split: the examples and the examples per class; the app's own description of its data
(classes, image size and where from, or the text length it resolved); for class folders the
image sizes and modes found and the files that would be skipped; and, for image apps, a grid
of training samples per class (data_preview.png). It reads the data through the app's own
`build_data`, so it shows exactly what `train` would see.
"""

import numpy as np

from training import plots
from training.datasets import SPLITS
from training.pipeline.class_balance import ClassCounts
from training.registry import get_app

SHOWN_CLASSES = 20  # classes listed per split; the rest are counted
PREVIEW_PER_CLASS = 8  # sample images per class in data_preview.png
PREVIEW_CLASSES = 20


def _labels_and_samples(ds, num_classes, keep_samples):
    """(examples, examples per class, up to PREVIEW_PER_CLASS image samples per class) of a
    split; a multi-label split's labels are a 0/1 float per label (an image counts for each)."""
    counts = np.zeros(num_classes, np.int64)
    samples, examples = {}, 0
    for features, labels in ds.batch(1024).as_numpy_iterator():
        labels = np.asarray(labels)
        examples += len(labels)
        if labels.ndim == 2 and labels.shape[1] == num_classes:  # multi-label
            counts += (labels > 0.5).sum(axis=0)
            classes = [np.flatnonzero(row > 0.5) for row in labels]
        else:
            labels = labels.reshape(-1)
            counts += np.bincount(labels, minlength=num_classes)[:num_classes]
            classes = [[label] for label in labels]
        if keep_samples:
            for image, ids in zip(features, classes):
                for label in ids:
                    kept = samples.setdefault(int(label), [])
                    if len(kept) < PREVIEW_PER_CLASS:
                        kept.append(image)
    return examples, counts, samples


def _counts_text(counts, names):
    order = np.argsort(-counts, kind="stable")
    shown = ", ".join(f"{names[i]} {counts[i]:,}" for i in order[:SHOWN_CLASSES])
    more = len(names) - SHOWN_CLASSES
    return shown + (f", ... {more} more" if more > 0 else "")


def inspect(config, out_dir="."):
    """Print what `config`'s run would read; returns the report as a dict (examples and class
    counts per split, the preview's path or None)."""
    from pathlib import Path

    app = get_app(config.app)(config)
    names = app.class_names()
    described = app.describe_data()
    if described:
        print(f"Data: {described}")
    report = {"splits": {}, "preview": None}
    samples = {}
    for split in SPLITS:
        ds = app.build_data(split)
        if ds is None:
            print(f"{split}: no examples")
            report["splits"][split] = {"examples": 0}
            continue
        if not names:
            examples = int(ds.reduce(0, lambda n, *_: n + 1))
            report["splits"][split] = {"examples": examples}
            print(f"{split}: {examples:,} examples")
            continue
        images = split == "train" and len(ds.element_spec[0].shape) == 3
        examples, counts, found = _labels_and_samples(ds, len(names), images)
        samples = found or samples
        report["splits"][split] = {"examples": examples,
                                   "class_counts": dict(zip(names, counts.tolist()))}
        # The training split's balance is what training learns from.
        balance = ClassCounts(names, counts, app.is_multi_label())
        print(f"{split}: {examples:,} examples; per class: {_counts_text(counts, names)}"
              + (f" (largest/smallest class: {balance.ratio:.1f}x"
                 + ("" if balance.multi_label else "; data.class_weight=balanced or "
                    "data.sampling=balanced weighs them alike") + ")"
                 if split == "train" and balance.is_imbalanced() else ""))
    files = getattr(getattr(app, "source", None), "file_summary", None)
    if files is not None:
        print(files())
    if samples:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        path = Path(out_dir) / "data_preview.png"
        shown = sorted(samples)[:PREVIEW_CLASSES]
        plots.sample_grid([samples[c] for c in shown], [names[c] for c in shown], path)
        report["preview"] = str(path)
        print(f"Samples of each class: {path}")
    return report
