"""PNG figures of a run: training curves, the confusion matrix, the worst mistakes, the
reliability diagram, image reconstructions and a search's trials."""

import matplotlib

matplotlib.use("Agg")  # files only; works without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def training_curves(history, path):
    """One panel per metric (loss, accuracy, ...), train and validation per epoch."""
    metrics = [k for k in history if not k.startswith("val_")
               and k not in ("epoch", "epoch_seconds", "examples_per_sec", "learning_rate")]
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        epochs = np.arange(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, len(epochs) + 0.5)  # whole epochs, a lone one in the middle
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sample_grid(images_per_class, class_names, path):
    """One row per class: its name, then its sample images (uint8 HxWxC, C 1 or 3)."""
    columns = max(len(images) for images in images_per_class)
    fig, axes = plt.subplots(len(class_names), columns, squeeze=False,
                             figsize=(1.2 * columns + 1.5, 1.2 * len(class_names)))
    for row, (images, name) in zip(axes, zip(images_per_class, class_names)):
        row[0].set_ylabel(name, rotation=0, ha="right", va="center")
        for ax, image in zip(row, images):
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


MATRIX_INCHES = 14  # the largest confusion matrix figure: 1,400 px at 100 dpi, for any class count
LABELLED_CLASSES = 60  # beyond this many classes the axes are not labelled by name


def confusion_matrix(matrix, class_names, path):
    """Row-normalised confusion matrix with counts, true class on rows. The figure grows with
    the classes up to MATRIX_INCHES (a 300-class figure sized per class took 12 GB to draw)."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(min(1 + 0.7 * n, MATRIX_INCHES), min(1 + 0.6 * n, MATRIX_INCHES)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    if n <= LABELLED_CLASSES:
        size = 10 if n <= 20 else 6
        ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=size)
        ax.set_yticks(range(n), class_names, fontsize=size)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    else:
        ax.set_xlabel(f"predicted (classes 0-{n - 1} in metrics.json's class_names order)")
        ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"test accuracy {accuracy:.4f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def short(name, characters=18):
    """`name` cut to `characters`, with an ellipsis where cut."""
    return name if len(name) <= characters else name[:characters - 1] + "…"


def image_grid(images, titles, heading, path, columns, heat=None):
    """Images (uint8 HxWxC) in rows of `columns`, each titled; with `heat`, each under its map
    (0-1, jet, half transparent)."""
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image, title) in enumerate(zip(axes.flat, images, titles)):
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        if heat is not None:
            ax.imshow(heat[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    fig.suptitle(heading)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def mistakes(images, titles, path):
    """The misclassified images, most confident first, titled "true -> predicted (p)"."""
    return image_grid(images, titles, "test images misclassified with the highest confidence "
                      "(true -> predicted)", path, columns=5)


def gradcam(images, maps, titles, path):
    """Each image under its Grad-CAM map."""
    return image_grid(images, titles, "Grad-CAM: where the predicted class's score comes from "
                      "(red: most)", path, columns=4, heat=maps)


def reliability_diagram(calibration, path):
    """Accuracy against confidence per confidence bin (a calibrated model lies on the diagonal),
    above how many test examples each bin holds."""
    bins = [b for b in calibration["bins"] if b["examples"]]
    width = calibration["bins"][0]["high"] - calibration["bins"][0]["low"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="calibrated")
    top.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=width, align="edge",
            edgecolor="black", alpha=0.7, label="accuracy")
    top.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="tab:red",
             label="mean confidence")
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
            title=f"expected calibration error {calibration['ece']:.4f}")
    top.legend(loc="lower right")
    bottom.bar([b["low"] for b in bins], [b["examples"] for b in bins], width=width, align="edge",
               color="tab:gray")
    bottom.set(xlabel="confidence (probability of the predicted class)", ylabel="examples")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def reconstructions(inputs, outputs, image_shape, path, title="inputs (top) and reconstructions (bottom)"):
    """Images (top row) above what a model rebuilt from them (bottom row): an RBM's mean-field
    reconstructions, an autoencoder's outputs."""
    n = len(inputs)
    fig, axes = plt.subplots(2, n, figsize=(n, 2.2), squeeze=False)
    for i in range(n):
        for row, images in enumerate((inputs, outputs)):
            axes[row][i].imshow(np.asarray(images[i]).reshape(image_shape), cmap="gray")
            axes[row][i].axis("off")
    fig.suptitle(title)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def search_trials(table, dimensions, objective, importance, path):
    """A search's trials: the objective per trial (failed ones marked at the bottom) with the
    best so far, then against each of the two most important keys (tuning_results.importance)."""
    name = objective.name
    by_key = {d.key: d for d in dimensions}
    keys = [k for k in importance if k in by_key][:2] or [d.key for d in dimensions[:2]]
    fig, axes = plt.subplots(1, 1 + len(keys), figsize=(5 * (1 + len(keys)), 4), squeeze=False)
    ax = axes[0][0]
    done = [(i, r) for i, r in enumerate(table) if r["status"] == "completed"
            and r[name] is not None and np.isfinite(r[name])]
    failed = [i for i, r in enumerate(table) if r["status"] not in ("completed", "running")]
    x = np.array([i for i, _ in done])
    y = np.array([r[name] for _, r in done], float)
    epochs = [r["epochs"] or 0 for _, r in done]
    points = ax.scatter(x, y, c=epochs, cmap="viridis", zorder=3)
    if len(set(epochs)) > 1:
        fig.colorbar(points, ax=ax, label="epochs")
    best = np.minimum.accumulate(y) if objective.direction == "min" else np.maximum.accumulate(y)
    ax.step(x, best, where="post", color="gray", label="best so far")
    if failed:
        ax.scatter(failed, [y.min() if len(y) else 0] * len(failed), marker="x", color="red",
                   label="failed", zorder=3)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{name} per trial")
    ax.grid(alpha=0.3)
    ax.legend()
    for ax, key in zip(axes[0][1:], keys):
        values = [r[key] for _, r in done]
        if by_key[key].kind == "choice":
            labels = [str(v) for v in by_key[key].values]
            ax.set_xticks(range(len(labels)), labels)
            values = [labels.index(str(v)) for v in values]
        elif by_key[key].log_scale:
            ax.set_xscale("log")
        ax.scatter(values, y, c=epochs, cmap="viridis", zorder=3)
        share = importance.get(key)
        ax.set_title(f"{name} vs {key}" + (f" ({share:.0%} of its variance)" if share is not None
                                           else ""), fontsize=9)
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
