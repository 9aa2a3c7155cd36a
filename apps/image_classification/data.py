"""Image classification data: real IDX files offline, any TFDS data set by name, your folders.

Fashion-MNIST is read from the IDX files that Debian's `dataset-fashion-mnist`
installs (the same files TFDS downloads), so training works with no internet.
Any other name (mnist, cifar10, ...) goes through TFDS. A data.dir of class folders
is read by apps/image_classification/folders.py; sources.py picks one of the two.
"""

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from training.datasets import split_range, tfds_info, tfds_labelled
from training.errors import DataError, DataNotFoundError
from training.folder_data import has_class_folders

DATA_DIR_ENV = "KAT_DATA_DIR"
IDX_DIRS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist"}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
REPLACE_HINT = ("replace it with a complete copy (reinstall dataset-fashion-mnist, or copy the "
                "files again), or point data.dir elsewhere")
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageDataInfo:
    shape: Tuple[int, int, int]
    num_classes: int
    class_names: List[str]


def read_idx(path):
    """Read an IDX file (optionally .gz) into a NumPy array.

    Written by hand because neither Keras nor TFDS exposes an IDX reader
    for local files; the format is a 4-byte magic (dtype, rank), then
    big-endian int32 dimensions, then the data. A file that is not one, or
    is cut short, is a DataError naming it.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip: "Not a gzipped file", a truncated stream
        raise DataError(f"{path} cannot be read ({e}); {REPLACE_HINT}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); {REPLACE_HINT}")
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its header; {REPLACE_HINT}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=rank, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    found = (len(raw) - header) // dtype.itemsize
    if found != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: its header says {dims}, but it holds {found} "
                        f"values; {REPLACE_HINT}")
    data = np.frombuffer(raw, dtype, count=found, offset=header)
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def _idx_path(directory, stem):
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _explicit_dir(data_dir):
    """The directory the user named (data.dir, else $KAT_DATA_DIR), or None."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


def find_idx_dir(name, data_dir=None) -> Optional[Path]:
    """The directory holding `name`'s IDX files: the one the user named (data.dir, else
    $KAT_DATA_DIR), else the Debian path; None if it holds none (the data comes from TFDS).

    A named directory is never passed over for the system copy: if it does not exist, that
    is a DataNotFoundError, so a typo cannot silently train on other data.
    """
    explicit = _explicit_dir(data_dir)
    if explicit is not None and not Path(explicit).is_dir():
        source = "data.dir" if data_dir else DATA_DIR_ENV
        raise DataNotFoundError(
            f"{source}={explicit} is not a directory. Point it at a directory holding class folders of "
            f"images, the train-/t10k- IDX files, or a TFDS data dir, or leave it unset to use "
            f"{IDX_DIRS.get(name) or 'TFDS'}")
    directory = Path(explicit or IDX_DIRS.get(name) or "")
    if directory.parts and all(_idx_path(directory, stem) for pair in IDX_FILES.values()
                               for stem in pair):
        return directory
    return None


def is_folder_of_classes(data):
    """data.format=auto: is `data.dir` a folder of class folders (not IDX files, nor a TFDS data dir)?"""
    if not data.dir or not Path(data.dir).is_dir():
        return False
    directory = Path(data.dir)
    tfds_dir = bool(data.name) and (directory / data.name).is_dir()  # "": the folder itself
    return (not any(_idx_path(directory, stem) for pair in IDX_FILES.values() for stem in pair)
            and not tfds_dir and has_class_folders(directory))



def missing_data_message(name, data_dir):
    looked = _explicit_dir(data_dir) or IDX_DIRS.get(name) or "nowhere"
    return (
        f"Data set {name!r} was not found (looked for IDX files in: {looked}; "
        "TFDS has no prepared copy and could not download it).\nGet it one of two ways:\n"
        "  1. offline: `sudo apt-get install dataset-fashion-mnist` (installs the IDX files in "
        "/usr/share/datasets/fashion-mnist), or put train-/t10k- IDX files in a directory and pass "
        f"`--set data.dir=DIR` (or set {DATA_DIR_ENV}=DIR);\n"
        f"  2. online: let TFDS download it: `--set data.download=true` with internet access "
        f"(`python -c \"import tensorflow_datasets as tfds; tfds.load('{name}')\"`)."
    )


class ImageSource:
    """One image classification data set, split into train / validation / test."""

    def __init__(self, name, data_dir=None, validation_split=0.1, limit=None, download=True):
        self.name = name
        self.data_dir = _explicit_dir(data_dir)  # IDX files, or else TFDS' data dir
        self.validation_split = validation_split
        self.limit = limit
        self.download = download
        self.idx_dir = find_idx_dir(name, data_dir)
        self._arrays = {}

    # -- metadata -------------------------------------------------------------
    def info(self) -> ImageDataInfo:
        if self.idx_dir is not None:
            images, labels = self.idx_arrays("train")
            num_classes = int(labels.max()) + 1
            names = FASHION_MNIST_CLASSES if self.name == "fashion_mnist" else [
                str(i) for i in range(num_classes)]
            return ImageDataInfo(images.shape[1:], num_classes, names)
        info = tfds_info(self.name, self.data_dir)
        label = info.features["label"]
        return ImageDataInfo(tuple(info.features["image"].shape), label.num_classes,
                             list(label.names))

    def fits_in_memory(self, split):
        """IDX arrays are in memory already; TFDS sets by name are cached as they always were."""
        return True

    def where(self):
        """Where the examples come from, for the line that starts a run."""
        if self.idx_dir is not None:
            return f"from the IDX files in {self.idx_dir}"
        return f"from TFDS {self.name}"

    # -- examples -------------------------------------------------------------
    def dataset(self, split) -> Optional[tf.data.Dataset]:
        """Unbatched (uint8 image HxWxC, int64 label) examples, or None if the split is empty."""
        if self.idx_dir is not None:
            return self._idx_dataset(split)
        return self._tfds_dataset(split)

    def idx_arrays(self, source_split):
        """NumPy (uint8 images NHWC, int64 labels) of the IDX files' "train" or "test" split,
        read once and kept (offline data only; the pipeline's train/validation are slices)."""
        if source_split not in self._arrays:
            image_stem, label_stem = IDX_FILES[source_split]
            images = read_idx(_idx_path(self.idx_dir, image_stem))
            labels = read_idx(_idx_path(self.idx_dir, label_stem)).astype(np.int64)
            if images.ndim == 3:
                images = images[..., None]
            if len(images) != len(labels):
                raise ValueError(f"{self.idx_dir}: {len(images)} images but {len(labels)} labels")
            self._arrays[source_split] = (images, labels)
        return self._arrays[source_split]

    def _idx_split(self, split):
        """(images, labels) of `split`, slices of the IDX arrays."""
        if split == "test":  # the test files are all test
            images, labels = self.idx_arrays("test")
            start, stop = split_range("test", len(images), test_split=1.0, limit=self.limit)
        else:
            images, labels = self.idx_arrays("train")
            start, stop = split_range(split, len(images), self.validation_split, limit=self.limit)
        return images[start:stop], labels[start:stop]

    def labels(self, split):
        """The class ids of `split`'s examples from the IDX files (TFDS: None)."""
        return self._idx_split(split)[1] if self.idx_dir is not None else None

    def _idx_dataset(self, split):
        images, labels = self._idx_split(split)
        if not len(images):
            return None
        return tf.data.Dataset.from_tensor_slices((images, labels))

    def _tfds_dataset(self, split):
        return tfds_labelled(self.name, split, self.validation_split, self.data_dir, self.download,
                             self.limit, how_to_fix=missing_data_message(self.name, self.data_dir))
