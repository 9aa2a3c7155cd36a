"""Sequence data: text from TFDS or a local file, and numeric series from a CSV column.

Image sets read row by row come from apps.image_data.ImageSource.
"""

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.base import DataNotFoundError
from apps.image_data import tfds_train_slice
from training.config import ConfigError


def _tfds_load(name, split, data_dir, download, **kwargs):
    import tensorflow_datasets as tfds

    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=download, **kwargs)
    except Exception as e:  # TFDS raises many types offline; all mean "no data"
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataNotFoundError(
            f"TFDS data set {name!r} ({split}) is not available: {first_line}. Prepare it with "
            f"internet access (`python -c \"import tensorflow_datasets as tfds; tfds.load('{name}')\"`) "
            f"or pass a local file with --set data.path=FILE.") from None


def tfds_text_classification(name, split, validation_split, data_dir, download, limit):
    """Unbatched (string text, int64 label) pairs of a TFDS text set such as imdb_reviews."""
    source = "test" if split == "test" else tfds_train_slice(split, validation_split)
    if source is None:
        return None
    ds = _tfds_load(name, source, data_dir, download, as_supervised=True)
    if limit is not None:
        ds = ds.take(int(limit))
    return ds.map(lambda text, label: (text, tf.cast(label, tf.int64)))


def text_corpus(split, path, name, validation_split, data_dir, download):
    """One string: a split of a local text file (last 10% / 10% as validation / test by
    default) or of a TFDS text set whose examples have a `text` feature (tiny_shakespeare)."""
    if path:
        file = Path(path)
        if not file.is_file():
            raise DataNotFoundError(f"Text file not found: {path} (set data.path to a UTF-8 text file)")
        text = file.read_text(encoding="utf-8", errors="replace")
        n = len(text)
        cuts = [0, int(n * (1 - 2 * validation_split)), int(n * (1 - validation_split)), n]
        start, stop = {"train": cuts[0:2], "validation": cuts[1:3], "test": cuts[2:4]}[split]
        return text[start:stop]
    if not name:
        raise ConfigError("Language modeling needs data.path=FILE or data.name=TFDS text set")
    ds = _tfds_load(name, split, data_dir, download)
    return "".join(ex["text"].numpy().decode("utf-8", errors="replace") for ex in ds)


def char_windows(text, length, vectorize, limit=None):
    """(length-char string, ids of the next `length` chars) pairs, non-overlapping."""
    chars = tf.strings.unicode_split(text, "UTF-8")
    ds = tf.data.Dataset.from_tensor_slices(chars).batch(length + 1, drop_remainder=True)
    if limit is not None:
        ds = ds.take(int(limit))
    return ds.map(lambda w: (tf.strings.reduce_join(w[:-1]), vectorize(tf.strings.reduce_join(w[1:]))))


def csv_column(path, column):
    """The numeric values of one CSV column, in file order."""
    file = Path(path)
    if not file.is_file():
        raise DataNotFoundError(f"CSV file not found: {path!r} (set data.path to a CSV with a header)")
    with open(file, newline="") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise ConfigError(f"data.column={column!r} is not a column of {path}; columns: "
                              + ", ".join(reader.fieldnames or []))
        values = [row[column] for row in reader]
    try:
        return np.array([float(v) for v in values], np.float32)
    except ValueError as e:
        raise ConfigError(f"Column {column!r} of {path} is not numeric: {e}") from None


def series_split(values, split, validation_split, test_split):
    """Chronological split: train first, then validation, then test (the most recent)."""
    n = len(values)
    test_start = int(n * (1 - test_split))
    val_start = int(test_start * (1 - validation_split))
    return {"train": values[:val_start], "validation": values[val_start:test_start],
            "test": values[test_start:]}[split]


def next_step_windows(values, window):
    """(window of `window` values, the next value) pairs, stride 1; None if too short."""
    if len(values) <= window:
        return None
    ds = tf.data.Dataset.from_tensor_slices(values).window(window + 1, shift=1, drop_remainder=True)
    return ds.flat_map(lambda w: w.batch(window + 1)).map(lambda w: (w[:-1], w[-1]))
