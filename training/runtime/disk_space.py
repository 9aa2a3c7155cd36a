"""Free-space checks before saves: h5py crashes the process (SIGSEGV) when the disk fills
mid-write, so each save first checks that it fits, and fails with a clear error instead."""

import math
import shutil

import numpy as np

from training.errors import DiskFull

MARGIN = 2.0  # h5py and .keras archives hold more than the raw arrays; leave room for both
SLACK = 16 * 2**20


def saved_bytes(model):
    """About how many bytes saving `model` takes: its weights and its optimizer's state."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return sum(math.prod(v.shape) * _itemsize(v.dtype) for v in variables)


def _itemsize(dtype):
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # a dtype NumPy does not name (bfloat16): at most 4 bytes
        return 4


def require_free_space(directory, needed, what):
    """DiskFull unless the file system of `directory` has room for `needed` bytes of `what`."""
    wanted = int(needed * MARGIN) + SLACK
    free = shutil.disk_usage(directory).free
    if free < wanted:
        raise DiskFull(f"Only {free / 2**20:.0f} MiB free under {directory}, but saving {what} "
                       f"needs about {wanted / 2**20:.0f} MiB. Nothing was overwritten: free some "
                       "space, then run the same command again (it resumes from the last backup)")
