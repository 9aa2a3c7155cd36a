"""Data helpers every app shares: where a split lies in ordered data, and TFDS by name.

`split_range` is the one train / validation / test split (and `data.limit` cap) of
indexable data: arrays, a text, a time series. `tfds_load` is the one way apps read
TFDS, with one clear error when the data set is not available offline;
`tfds_labelled` reads (features, int64 label) pairs through it.
"""

import csv
from pathlib import Path
from typing import Optional

from training.errors import CommandError, ConfigError, DataError, DataNotFoundError, described

SPLITS = ("train", "validation", "test")


def _check(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of: {', '.join(SPLITS)}")


def input_list(features):
    """An example's (or batch's) features as the model's inputs, in order: a dict of named
    inputs gives its values, a single tensor a list of one."""
    return list(features.values()) if isinstance(features, dict) else [features]


def split_range(split, n, validation_split=0.0, test_split=0.0, limit: Optional[int] = None):
    """(start, stop) of `split` among `n` ordered examples.

    The order is train, validation, test: the test split is the last
    `test_split` of all (the most recent, for a series) and the validation
    split the last `validation_split` of what precedes it. `limit` caps the
    split's size, keeping its first examples.
    """
    _check(split)
    test_start = int(n * (1 - test_split))
    validation_start = int(test_start * (1 - validation_split))
    start, stop = {"train": (0, validation_start), "validation": (validation_start, test_start),
                   "test": (test_start, n)}[split]
    if limit is not None:
        stop = min(stop, start + int(limit))
    return start, stop


def tfds_info(name, data_dir=None):
    """TFDS' DatasetInfo of `name` (features, splits); no data is read or downloaded."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir).info
    except tfds.core.registered.DatasetNotFoundError as e:
        raise DataNotFoundError(f"{e}\n(`data.name` must be a TFDS data set name.)") from None


def _tfds_split(split, available, validation_split):
    """The TFDS split string of our `split`, or None for an empty validation split.

    Test is TFDS's "test" (else its "validation"); validation is TFDS's own
    "validation" when it has both, else carved from the end of "train" (TFDS
    slices in whole percents, so the hold-out is rounded to one).
    """
    if split == "test":
        return "test" if "test" in available or not available else "validation"
    if {"test", "validation"} <= set(available):
        return split
    keep = 100 - int(round(100 * validation_split))
    if split == "validation":
        return None if keep == 100 else f"train[{keep}%:]"
    return f"train[:{keep}%]"


def tfds_load(name, split, validation_split=0.0, data_dir=None, download=True, limit=None,
              how_to_fix="", **kwargs):
    """Our `split` ("train", "validation" or "test") of TFDS data set `name`, or None if empty.

    `kwargs` go to `tfds.load` (e.g. as_supervised=True). When TFDS cannot
    give the data (offline and not prepared, unknown name), raises
    DataNotFoundError with `how_to_fix`, or a generic way to prepare it, and
    TFDS' own first line.
    """
    import tensorflow_datasets as tfds

    _check(split)
    source = _tfds_split(split, tfds_info(name, data_dir).splits, validation_split)
    if source is None:
        return None
    try:
        ds = tfds.load(name, split=source, data_dir=data_dir, download=download, **kwargs)
    except ImportError as e:  # a module the data set's builder needs: not a data problem
        raise CommandError(f"TFDS data set {name!r} needs the Python module {e.name or e}: "
                           f"pip install it, then run again") from None
    except Exception as e:  # offline, TFDS raises many types (network, download, not prepared)
        fix = how_to_fix or (
            f"TFDS data set {name!r} is not prepared and could not be downloaded. Prepare it once "
            f"with internet access: python -c \"import tensorflow_datasets as tfds; tfds.load('{name}')\"")
        raise DataNotFoundError(f"{fix}\n(TFDS said: {described(e)})") from None
    return ds.take(int(limit)) if limit is not None else ds


def tfds_labelled(name, split, validation_split=0.0, data_dir=None, download=True, limit=None,
                  how_to_fix=""):
    """(features, int64 label) pairs of a supervised TFDS data set's `split`, or None if empty."""
    import tensorflow as tf

    ds = tfds_load(name, split, validation_split, data_dir, download, limit, how_to_fix,
                   as_supervised=True)
    if ds is None:
        return None
    return ds.map(lambda features, label: (features, tf.cast(label, tf.int64)),
                  num_parallel_calls=tf.data.AUTOTUNE)


# The csv module refuses fields over 131,072 characters; a long document in a text column is
# real data, so the limit is raised to a size no CSV cell of ours needs (a field this long
# is held in memory whole).
CSV_FIELD_LIMIT = 16 * 2**20


def csv_records(path):
    """(line number, fields) of each non-empty record of CSV file `path`, header included,
    read with a UTF-8 byte-order mark stripped (Excel writes one; it would cling to the first
    column's name). Bytes that are not UTF-8 come through as surrogate escapes: a bad row
    need not refuse the whole file. A malformed record is a DataError naming its line."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
            reader = csv.reader(f)
            try:
                for fields in reader:
                    if fields:
                        yield reader.line_num, fields
            except csv.Error as e:
                raise DataError(f"{path}, line {reader.line_num}, is not valid CSV ({e}); fix or "
                                "remove that line") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"Cannot read {path} as a CSV file ({e})") from None


def check_header(path, names):
    """DataError if a column name of CSV `path`'s header row is given twice: a reader by name
    would keep only one of them."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path} names the column(s) {', '.join(map(repr, repeated))} more than "
                        "once in its header row; give each column its own name")


def csv_rows(path, columns):
    """(line number, row) of each data row of CSV file `path`, which starts with a header row,
    once the file and `columns` ({config key: column name}) are checked (see csv_records)."""
    file = Path(path)
    if not file.is_file():
        raise DataNotFoundError(f"CSV file not found: {path} (set data.path to a CSV with a header)")
    records = csv_records(file)
    names = next(records, (1, []))[1]
    check_header(path, names)
    for key, column in columns.items():
        if column not in names:
            raise ConfigError(f"data.{key}={column!r} is not a column of {path}; its columns: "
                              + (", ".join(names) or "none (is the file empty?)"))
    rows = [(line, dict(zip(names, fields))) for line, fields in records]
    if not rows:
        raise DataError(f"{path} has a header row and no data rows; give a CSV with data")
    return rows


def numeric_column(path, column, rows):
    """float32 array of `column` of csv_rows' `rows`; a DataError names the first cell that
    is empty or not a number, so a text column is not read as NaN and mistaken for divergence."""
    import numpy as np

    values = np.empty(len(rows), np.float32)
    for i, (line, row) in enumerate(rows):
        text = (row.get(column) or "").strip()
        try:
            values[i] = float(text)
        except ValueError:
            what = "is empty" if not text else f"holds {text[:40]!r}, not a number"
            raise DataError(f"Column {column!r} of {path}, line {line}, {what}: encode it as numbers "
                            "(e.g. one 0/1 column per category), fill it, or drop the column or row"
                            ) from None
    return values
