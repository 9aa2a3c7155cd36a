"""PNG figures of RBM pretraining: filters and per-layer learning curves (reconstructions are
training/plots.py's, shared with any task that rebuilds its inputs)."""

import math

import matplotlib

matplotlib.use("Agg")  # files only; works without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def filters_grid(kernel, image_shape, path, max_filters=100):
    """The first RBM's weight vectors into its first hidden units, one image each."""
    kernel = np.asarray(kernel)
    count = min(max_filters, kernel.shape[1])
    side = math.ceil(math.sqrt(count))
    fig, axes = plt.subplots(side, side, figsize=(side, side), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            w = kernel[:, i].reshape(image_shape)
            limit = np.abs(w).max() or 1.0
            ax.imshow(w, cmap="seismic", vmin=-limit, vmax=limit)
    fig.suptitle("first-layer RBM filters (red +, blue -)")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def pretraining_curves(histories, path):
    """Per-epoch monitor values of each RBM layer, one panel per quantity."""
    keys = ["reconstruction_error", "val_reconstruction_error", "free_energy_gap",
            "pseudo_log_likelihood"]
    keys = [k for k in keys if any(k in h for h in histories)]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for layer, history in enumerate(histories):
            if key in history:
                ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o",
                        label=f"RBM {layer + 1}")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
