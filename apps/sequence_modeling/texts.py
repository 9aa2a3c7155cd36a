"""Labelled texts of your own: class folders of .txt files (aclImdb's layout) or a CSV file.

Texts are small next to images, so they are read once into memory; the ones that cannot
be used (empty, not UTF-8, a CSV row without a label) are skipped with one line of report.
Test and validation are held out by a hash (of the path, or of a CSV row's text), so they
do not change when data is added; training/folder_data.py has the folder layouts.
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import tensorflow as tf

from training.errors import ConfigError, DataError, DataNotFoundError
from training.folder_data import SPLITS, hash_fraction, list_labelled_files, skipped_report

TEXT_SUFFIXES = (".txt",)


@dataclass
class LabelledTexts:
    class_names: List[str]
    splits: Dict[str, Tuple[List[str], List[int]]]  # split -> (texts, labels)

    def dataset(self, split, limit=None):
        """Unbatched (string, int64 label) examples of `split`, or None if it is empty."""
        texts, labels = self.splits[split]
        if limit is not None:
            texts, labels = texts[:limit], labels[:limit]
        if not texts:
            return None
        return tf.data.Dataset.from_tensor_slices((texts, tf.constant(labels, tf.int64)))


def _usable(raw):
    """The text of `raw` bytes, or None when it is not UTF-8 or holds only whitespace."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.strip() else None


def text_folders(root, validation_split, test_split, classes=None) -> LabelledTexts:
    """Texts from DIR/<class>/*.txt or DIR/train|test[|validation]/<class>/*.txt."""
    listing = list_labelled_files(root, TEXT_SUFFIXES, validation_split, test_split, classes,
                                  what=".txt files")
    splits, bad = {}, list(listing.skipped)
    for split, files in listing.splits.items():
        texts, labels = [], []
        for rel, label in files:
            text = _usable((listing.root / rel).read_bytes())
            if text is None:
                bad.append(rel)
            else:
                texts.append(text)
                labels.append(label)
        splits[split] = (texts, labels)
    if bad:
        print(skipped_report(sorted(bad), listing.total(), "files that are empty, not UTF-8 text "
                             "or not .txt"), flush=True)
    return LabelledTexts(listing.class_names, splits)


def _class_order(names):
    """Label values sorted as numbers when they all are (0, 1, 2, 10), else as text."""
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def csv_texts(path, text_column, label_column, validation_split, test_split) -> LabelledTexts:
    """Texts and labels from two columns of a CSV file with a header row."""
    file = Path(path)
    if not file.is_file():
        raise DataNotFoundError(f"CSV file not found: {path} (set data.path to a CSV with a header)")
    rows, bad, total = [], [], 0
    # surrogateescape: one undecodable row is skipped, not the whole file refused.
    with open(file, newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for key, column in (("text_column", text_column), ("label_column", label_column)):
            if column not in columns:
                raise ConfigError(f"data.{key}={column!r} is not a column of {path}; its columns: "
                                  + (", ".join(columns) or "none (is the file empty?)"))
        for line, row in enumerate(reader, start=2):
            total += 1
            text, label = row.get(text_column) or "", (row.get(label_column) or "").strip()
            if not text.strip() or not label or _undecodable(text + label):
                bad.append(f"line {line}")
            else:
                rows.append((text, label))
    if bad:
        print(skipped_report(bad, total, "rows with an empty text, no label or bytes that are not "
                             "UTF-8"), flush=True)
    names = _class_order({label for _, label in rows})
    if len(names) < 2:
        raise DataError(f"{path} has {len(names)} label value(s) in column {label_column!r} "
                        f"({', '.join(names) or 'none'}); a classifier needs at least two")
    index = {name: i for i, name in enumerate(names)}
    splits = {split: ([], []) for split in SPLITS}
    for text, label in rows:
        u = hash_fraction(text)
        split = ("test" if u < test_split else
                 "validation" if (u - test_split) / (1 - test_split) < validation_split else "train")
        splits[split][0].append(text)
        splits[split][1].append(index[label])
    return LabelledTexts(names, splits)


def _undecodable(text):
    """Did surrogateescape stand in for bytes that are not UTF-8?"""
    return any("\udc80" <= c <= "\udcff" for c in text)
