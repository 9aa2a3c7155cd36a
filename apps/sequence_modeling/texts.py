"""Labelled texts of your own: class folders of .txt files (aclImdb's layout) or a CSV file.

Texts are small next to images, so they are read once into memory; the ones that cannot
be used (empty, not UTF-8, a CSV row without a label) are skipped with one line of report.
Test and validation are held out by a hash (of the path, or of a CSV row's text), so they
do not change when data is added; training/folder_data.py has the folder layouts.
"""

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from apps.sequence_modeling.config import LENGTH_PERCENTILE, MAX_TEXT_LENGTH
from training.datasets import SPLITS, csv_rows
from training.errors import DataError
from training.folder_data import (
    hash_split,
    index_label_sets,
    list_labelled_files,
    multi_hot,
    skipped_report,
)

TEXT_SUFFIXES = (".txt",)


def length_from_data(texts):
    """Words to keep per text, from a dataset of the training texts (data.text_length=0), said
    in one line: most texts are kept whole, and one very long text no longer sets every step's
    length."""
    counts = np.concatenate(list(texts.map(lambda text: tf.size(tf.strings.split(text)))
                                 .batch(4096).as_numpy_iterator()))
    found = max(1, int(np.ceil(np.percentile(counts, LENGTH_PERCENTILE))))
    length = min(found, MAX_TEXT_LENGTH)
    cut = int(np.sum(counts > length))
    print(f"data.text_length={length}: {LENGTH_PERCENTILE}% of the {len(counts):,} training texts "
          f"have at most {found} words" + (f" (capped at {MAX_TEXT_LENGTH})" if found > length else "")
          + f"; longer texts ({cut:,}) are cut to it (set data.text_length to choose)", flush=True)
    return length


@dataclass
class LabelledTexts:
    class_names: List[str]
    splits: Dict[str, Tuple[List[str], list]]  # split -> (texts, labels)
    multi_label: bool = False  # each label a tuple of label ids, not one class id

    def labels(self, split, limit=None):
        """`split`'s labels: int64 class ids, or (multi-label) a 0/1 float32 row per text."""
        labels = self.splits[split][1][:limit]
        if not self.multi_label:
            return np.array(labels, np.int64)
        return multi_hot(labels, len(self.class_names))

    def dataset(self, split, limit=None):
        """Unbatched (string, int64 label) examples of `split` (multi-label: a 0/1 float per
        label), or None if it is empty."""
        texts = self.splits[split][0][:limit]
        if not texts:
            return None
        return tf.data.Dataset.from_tensor_slices((texts, self.labels(split, limit)))


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


def csv_texts(path, text_column, label_column, validation_split, test_split,
              separator=None) -> LabelledTexts:
    """Texts and labels from two columns of a CSV file with a header row; with `separator`,
    each label field is a set of labels (multi_label_texts)."""
    lines = csv_rows(path, {"text_column": text_column, "label_column": label_column})
    if separator is not None:
        return multi_label_texts(path, lines, text_column, label_column, separator,
                                 validation_split, test_split)
    rows, bad = [], []
    for line, row in lines:
        text, label = row.get(text_column) or "", (row.get(label_column) or "").strip()
        if not text.strip() or not label or _undecodable(text + label):
            bad.append(f"line {line}")
        else:
            rows.append((text, label))
    if bad:
        print(skipped_report(bad, len(lines), "rows with an empty text, no label or bytes that are "
                             "not UTF-8"), flush=True)
    names = _class_order({label for _, label in rows})
    if len(names) < 2:
        raise DataError(f"{path} has {len(names)} label value(s) in column {label_column!r} "
                        f"({', '.join(names) or 'none'}); a classifier needs at least two")
    index = {name: i for i, name in enumerate(names)}
    splits = {split: ([], []) for split in SPLITS}
    for text, label in rows:
        split = hash_split(text, validation_split, test_split)
        splits[split][0].append(text)
        splits[split][1].append(index[label])
    return LabelledTexts(names, splits)


def multi_label_texts(path, lines, text_column, label_column, separator, validation_split,
                      test_split) -> LabelledTexts:
    """Texts whose label field holds labels separated by `separator`; the label set is the
    training rows' (sorted); a row with an empty text or label set, bytes that are not UTF-8,
    or a label no training row has is skipped and counted."""
    rows, bad = [], []
    for line, row in lines:
        text = row.get(text_column) or ""
        labels = sorted({name.strip() for name in (row.get(label_column) or "").split(separator)
                         if name.strip()})
        if not text.strip() or not labels or _undecodable(text + "".join(labels)):
            bad.append(f"line {line}")
        else:
            rows.append((text, labels, hash_split(text, validation_split, test_split)))
    names, by_split, unseen = index_label_sets(rows)
    if len(names) < 2:
        raise DataError(f"{path}: its training rows name {len(names)} label(s) in column "
                        f"{label_column!r} ({', '.join(names) or 'none'}); a multi-label model "
                        "needs at least two")
    splits = {split: ([text for text, _ in items], [ids for _, ids in items])
              for split, items in by_split.items()}
    unseen = [", ".join(unknown) for _, unknown in unseen]
    if bad:
        print(skipped_report(bad, len(lines), "rows with an empty text, no label or bytes that are "
                             "not UTF-8"), flush=True)
    if unseen:
        print(skipped_report(unseen, len(lines), "rows with a label no training row has"), flush=True)
    return LabelledTexts(names, splits, multi_label=True)


def _undecodable(text):
    """Did surrogateescape stand in for bytes that are not UTF-8?"""
    return any("\udc80" <= c <= "\udcff" for c in text)
