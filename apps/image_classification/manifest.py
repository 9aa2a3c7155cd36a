"""Multi-label images from a CSV manifest (data.labels=multi, data.manifest=FILE.csv):

    file,labels
    photos/0001.jpg,cat;dog
    photos/0002.jpg,dog

A file's path is relative to the CSV's folder (or absolute); its labels are separated by
data.label_separator. An optional `split` column puts a row in train, validation or test (as
the class folders' train/ and test/ do: once a row names test, no other row is held out for
it; likewise validation); a row without one is placed by its path alone
(training/folder_data.py's hash), so adding rows moves no other image. The label set is the
training rows' labels, sorted. Rows that cannot be used are skipped and counted in one line,
never a traceback: a file that does not exist, no labels, a label no training row has, a path
listed twice, an unknown split, a row whose fields do not match the header. The images then
go through the class folders' reader (folders.py): the same decode check, size limit, stream.
"""

import csv
from collections import defaultdict
from pathlib import Path

from apps.image_classification.folders import IMAGE_SUFFIXES, FolderImages
from serving.image_header import DEFAULT_MAX_PIXELS
from training.datasets import SPLITS
from training.errors import DataError, DataNotFoundError
from training.folder_data import LabelledFiles, hash_split, index_label_sets, skipped_report

COLUMNS = ("file", "labels")


def _rows(path):
    """(line number, {column: value}) of the manifest's rows; a DataError without the columns."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError:
        raise DataError(f"data.manifest={path} is not UTF-8 text; save it as a UTF-8 CSV") from None
    except OSError as e:
        raise DataNotFoundError(f"data.manifest={path} cannot be read ({e.strerror})") from None
    header = [name.strip() for name in lines[0]] if lines else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"data.manifest={path} needs a header row with the columns "
                        f"{','.join(COLUMNS)} (it has: {','.join(header) or 'nothing'})")
    return header, [(n, row) for n, row in enumerate(lines[1:], 2) if any(f.strip() for f in row)]


def read_manifest(path, separator, validation_split, test_split) -> LabelledFiles:
    """The manifest's usable rows as LabelledFiles whose labels are tuples of label ids."""
    path = Path(path)
    root = path.parent
    header, rows = _rows(path)
    problems = defaultdict(list)  # why -> the rows' files (or line numbers)
    named = {row[header.index("split")].strip() for _, row in rows
             if "split" in header and len(row) == len(header)}
    kept, seen = [], set()
    for number, fields in rows:
        if len(fields) != len(header):
            problems["whose fields do not match the header"].append(f"line {number}")
            continue
        row = dict(zip(header, fields))
        file = row["file"].strip()
        labels = sorted({name.strip() for name in row["labels"].split(separator) if name.strip()})
        if not file.lower().endswith(IMAGE_SUFFIXES) or not (root / file).is_file():
            problems["naming no image file that exists"].append(file or f"line {number}")
        elif not labels:
            problems["without labels"].append(file)
        elif file in seen:
            problems["listing a file again"].append(file)
        elif row.get("split", "").strip() not in ("", *SPLITS):
            problems[f"whose split is not one of {', '.join(SPLITS)}"].append(file)
        else:
            seen.add(file)
            split = row.get("split", "").strip() or hash_split(
                file, validation_split, test_split, "test" not in named, "validation" not in named)
            kept.append((file, labels, split))
    names, splits, unseen = index_label_sets(kept)
    if len(names) < 2:
        raise DataError(f"data.manifest={path}: its training rows name {len(names)} label(s) "
                        f"({', '.join(names) or 'none'}); a multi-label model needs at least two")
    for file, unknown in unseen:
        problems[f"with a label no training row has ({', '.join(unknown)})"].append(file)
    skipped = sum(len(v) for v in problems.values())
    for why, files in problems.items():
        print(skipped_report(files, len(rows), f"manifest rows {why}"), flush=True)
    if skipped:
        print(f"Kept {len(rows) - skipped:,} of {len(rows):,} rows of {path}", flush=True)
    return LabelledFiles(root, names, splits)


class ManifestImages(FolderImages):
    """Multi-label images from a manifest: each example's label is a 0/1 float per label."""

    multi_label = True

    def __init__(self, manifest, separator=";", image_size=None, channels=None,
                 validation_split=0.1, test_split=0.2, limit=None, background=255,
                 max_pixels=DEFAULT_MAX_PIXELS):
        listing = read_manifest(manifest, separator, validation_split, test_split)
        super().__init__(str(Path(manifest).parent), image_size, channels, validation_split,
                         test_split, limit, background=background, max_pixels=max_pixels,
                         listing=listing)
        self.manifest = manifest

    def where(self):
        return f"listed in {self.manifest}"
