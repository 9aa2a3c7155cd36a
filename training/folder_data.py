"""Labelled files in class folders: the layout, the class names, and splits that stay put.

Two layouts, the ones Keras' `*_dataset_from_directory` and torchvision's ImageFolder read:

    DIR/<class>/...                         test and validation held out by a hash of the path
    DIR/train/<class>/...  DIR/test/<class>/...  [DIR/validation/<class>/...]

Written by hand rather than with `keras.utils.image_dataset_from_directory` /
`text_dataset_from_directory`: those split by a seeded shuffle of the whole listing (one
added file moves others between train and test), and a bad file stops the run. Here a
file's split depends only on its own path, and the files of other types are counted so the
apps can skip them with one line of report.
"""

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from training.datasets import SPLITS
from training.errors import DataError, DataNotFoundError

LAYOUTS = ("DIR/<class>/<files>, or DIR/train/<class>/<files> plus DIR/test/<class>/<files> "
           "(and optionally DIR/validation/<class>/<files>)")
SHOWN_SKIPPED = 5  # paths named in the one-line report of skipped files


@dataclass
class LabelledFiles:
    """Paths (relative to `root`) and int labels of each split, and the files left out."""

    root: Path
    class_names: List[str]
    splits: Dict[str, List[Tuple[str, int]]]
    skipped: List[str] = field(default_factory=list)  # other file types, inside class folders
    too_large: List[str] = field(default_factory=list)  # over a size limit: never read whole

    def total(self):
        return sum(len(v) for v in self.splits.values()) + len(self.skipped) + len(self.too_large)


def hash_fraction(relative_path):
    """A number in [0, 1) fixed by the path alone: the same file always lands in the same split."""
    digest = hashlib.sha1(relative_path.encode("utf-8")).hexdigest()
    return int(digest[:12], 16) / 16**12


def hash_split(key, validation_split, test_split, test=True, validation=True):
    """The split of the example named `key` (a path, a text), which depends on it alone: the
    first `test_split` of hash values is test (when `test`), the first `validation_split` of
    the rest validation (when `validation`), the rest train."""
    u = hash_fraction(key)
    if test:
        if u < test_split:
            return "test"
        u = (u - test_split) / (1 - test_split)  # uniform again over the rest
    return "validation" if validation and u < validation_split else "train"


def is_split_layout(root):
    return (Path(root) / "train").is_dir()


def has_class_folders(root):
    root = Path(root)
    return root.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())


def _is_utf8(name):
    """Is a file name (as os gives it, undecodable bytes as surrogate escapes) valid UTF-8?
    Other names cannot be hashed, printed or stored in config.yaml and labels.txt as text."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def shown(name):
    """`name` printable: bytes that are not UTF-8 shown as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _class_dirs(split_dir, unreadable):
    """The class folders of `split_dir`; those whose names are not UTF-8 go to `unreadable`."""
    found = sorted(p for p in Path(split_dir).iterdir() if p.is_dir() and not p.name.startswith("."))
    unreadable += [str(p) for p in found if not _is_utf8(p.name)]
    return [p for p in found if _is_utf8(p.name)]


def _files(class_dir, root, suffixes):
    """(wanted, other) files under `class_dir`, relative to `root`, each sorted."""
    wanted, other = [], []
    for directory, subdirs, names in os.walk(class_dir):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            # Only regular files: reading a FIFO named x.png would wait for a writer forever.
            wanted_file = (name.lower().endswith(suffixes) and os.path.isfile(path)
                           and _is_utf8(name))
            (wanted if wanted_file else other).append(rel)
    return wanted, other


def list_labelled_files(root, suffixes, validation_split, test_split,
                        classes: Optional[List[str]] = None, what="files") -> LabelledFiles:
    """The labelled files under `root` (one of LAYOUTS) with a name ending in one of `suffixes`.

    Without a test/ (validation/) folder, a file is a test (validation) example when the hash
    of its path falls in the first `test_split` (the next `validation_split` of the rest).
    A class whose every file would be held out keeps one (its highest hash) for training. Each
    split is in hash order, so `data.limit` keeps a sample of every class. `classes` keeps only
    those class folders. Fewer than two non-empty classes is a DataError.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(f"data.dir={root} is not a directory; it must hold {what} as {LAYOUTS}")
    split_layout = is_split_layout(root)
    split_dirs = ({s: root / s for s in SPLITS if (root / s).is_dir()} if split_layout
                  else {"train": root})
    per_split, skipped, unreadable = {}, [], []
    for split, directory in split_dirs.items():
        per_split[split] = {}
        for class_dir in _class_dirs(directory, unreadable):
            if classes and class_dir.name not in classes:
                continue
            wanted, other = _files(class_dir, root, suffixes)
            skipped += other
            if wanted:
                per_split[split][class_dir.name] = wanted
    if unreadable:
        print(f"Skipped {len(unreadable)} class folder(s) whose names are not valid UTF-8 (rename "
              f"them to train on them): {_first([shown(p) for p in unreadable])}", flush=True)
    names = sorted(per_split["train"])
    where = f"{root / 'train'}" if split_layout else f"{root}"
    if len(names) < 2:
        raise DataError(
            f"{where} holds {len(names)} class folder(s) with {what} ({', '.join(names) or 'none'}); "
            f"a classifier needs at least two. Lay the data out as {LAYOUTS}"
            + (f" (data.classes keeps only {', '.join(classes)})" if classes else ""))
    missing = [c for c in (classes or []) if c not in names]
    if missing:
        raise DataError(f"data.classes names {', '.join(missing)}, but {where} has no such class "
                        f"folder with {what}; it has: {', '.join(names)}")
    for split in ("validation", "test"):
        unknown = sorted(set(per_split.get(split, {})) - set(names))
        if unknown:
            raise DataError(f"{root / split} has class folder(s) {', '.join(unknown)} that "
                            f"{root / 'train'} lacks; every class needs training examples")
    label = {name: i for i, name in enumerate(names)}
    splits = {s: [] for s in SPLITS}
    kept = []
    for split, by_class in per_split.items():
        for name, files in by_class.items():
            places = {rel: hash_split(rel, validation_split, test_split, "test" not in split_dirs,
                                      "validation" not in split_dirs) if split == "train" else split
                      for rel in files}  # a train folder's files may be held out, the others stay put
            if split == "train" and "train" not in places.values():
                places[max(files, key=hash_fraction)] = "train"
                kept.append(name)
            for rel, place in places.items():
                splits[place].append((rel, label[name]))
    if kept:
        print(f"Too few files to hold any out in {len(kept)} class(es) ({_first(kept)}): the "
              f"hash split (data.test_split={test_split:g}, data.validation_split="
              f"{validation_split:g}) put them all in test or validation; one of each is kept "
              "for training", flush=True)
    for split in SPLITS:
        splits[split].sort(key=lambda item: hash_fraction(item[0]))
    return LabelledFiles(root, names, splits, skipped)


def index_label_sets(items):
    """Multi-label examples, `items` = [(key, label names, split)], as label ids: (the training
    items' label names, sorted; {split: [(key, tuple of ids)]}; [(key, names no training item
    has)] for the items left out for them)."""
    names = sorted({name for _, labels, split in items if split == "train" for name in labels})
    index = {name: i for i, name in enumerate(names)}
    splits, unseen = {split: [] for split in SPLITS}, []
    for key, labels, split in items:
        unknown = [name for name in labels if name not in index]
        if unknown:
            unseen.append((key, unknown))
        else:
            splits[split].append((key, tuple(index[name] for name in labels)))
    return names, splits, unseen


def multi_hot(label_sets, count):
    """A 0/1 float32 row of `count` per tuple of label ids."""
    import numpy as np

    hot = np.zeros((len(label_sets), count), np.float32)
    for row, ids in enumerate(label_sets):
        hot[row, list(ids)] = 1.0
    return hot


def _first(names):
    return ", ".join(names[:SHOWN_SKIPPED]) + (", ..." if len(names) > SHOWN_SKIPPED else "")


def skipped_report(skipped, total, what):
    """One line: how many of `total` were skipped, and the first few of them; e.g.
    what="files that are not readable images"."""
    return f"Skipped {len(skipped)} of {total} {what}: {_first([shown(p) for p in skipped])}"
