"""Sequence data: text from TFDS or a local file, CSV rows, and numeric series from a CSV column.

Image sets read row by row come from apps.image_classification.data.ImageSource.
"""

from pathlib import Path

import tensorflow as tf

from training.datasets import csv_rows, numeric_column, split_range, tfds_load
from training.errors import ConfigError, DataNotFoundError


def text_corpus(split, path, name, validation_split, data_dir, download):
    """One string: a split of a local text file (the last `validation_split` is the test
    split, the same fraction of the rest the validation split) or of a TFDS text set whose
    examples have a `text` feature (tiny_shakespeare)."""
    if path:
        file = Path(path)
        if not file.is_file():
            raise DataNotFoundError(f"Text file not found: {path} (set data.path to a UTF-8 text file)")
        text = file.read_text(encoding="utf-8", errors="replace")
        start, stop = split_range(split, len(text), validation_split, test_split=validation_split)
        return text[start:stop]
    if not name:
        raise ConfigError("Language modeling needs data.path=FILE or data.name=TFDS text set")
    ds = tfds_load(name, split, validation_split, data_dir, download, how_to_fix=(
        f"TFDS text set {name!r} is not prepared and could not be downloaded: prepare it once with "
        f"internet access (python -c \"import tensorflow_datasets as tfds; tfds.load('{name}')\"), "
        "or train on a local UTF-8 text file: --set data.path=FILE"))
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
    return numeric_column(path, column, csv_rows(path, {"column": column}))


def next_step_windows(values, window):
    """(window of `window` values, the next value) pairs, stride 1; None if too short."""
    if len(values) <= window:
        return None
    ds = tf.data.Dataset.from_tensor_slices(values).window(window + 1, shift=1, drop_remainder=True)
    return ds.flat_map(lambda w: w.batch(window + 1)).map(lambda w: (w[:-1], w[-1]))
