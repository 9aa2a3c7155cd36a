"""Images of your own: class folders of JPEG/PNG/BMP/GIF files, streamed from disk by tf.data.

Every file is checked once per run by the same decode the training stream uses; the ones
that do not decode (corrupt, empty, truncated, not images) are skipped with one line of
report, so a bad file never stops a run. `decode_image` is also what the exported model's
image-bytes signature runs, so served bytes and training images go through one decoder.
"""

import os

import numpy as np
import tensorflow as tf

from apps.image_classification.data import ImageDataInfo
from serving.image_header import DEFAULT_MAX_PIXELS, file_declared_size
from training.errors import DataError
from training.folder_data import list_labelled_files, multi_hot, skipped_report

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CACHE_SHARE = 0.25  # of the machine's memory: the most the decoded images may take in data.cache
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # ITU-R 601, as tf.image.rgb_to_grayscale
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHOWN_KINDS = 5  # image sizes and modes listed by `kat data`
CONSTANT_SHARE = 0.01  # a split with more constant (blank) images than this is warned about


def _composited_png(data, background):
    """A PNG's RGB over a `background` gray level, by its alpha (an alpha channel, or a
    palette's or a colour's transparency, which decode_png turns into alpha); opaque pixels
    stay exact."""
    rgba = tf.cast(tf.io.decode_png(data, channels=4), tf.float32)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + float(background) * (1.0 - alpha)
    return tf.cast(tf.clip_by_value(tf.round(rgb), 0, 255), tf.uint8)


def decode_image(data, size, channels, background=255):
    """Encoded image bytes -> uint8 [height, width, channels] at `size`.

    Decoded to RGB first: TF's decoders refuse 1 channel for CMYK JPEGs, BMPs and GIFs.
    A PNG's transparent pixels become `background` (0-255 gray; data.background): decoding to
    RGB drops alpha, and symbolic icons, drawn in alpha alone over RGB 0, came out blank.
    Gray is rounded (a gray PNG comes back exact); an image already at `size` is not
    resampled, so its pixels stay exact too.
    """
    is_png = tf.equal(tf.strings.substr(data, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE)
    image = tf.cond(is_png, lambda: _composited_png(data, background),
                    lambda: tf.io.decode_image(data, channels=3, expand_animations=False))  # GIF: frame 1
    image.set_shape([None, None, 3])
    if channels == 1:
        gray = tf.tensordot(tf.cast(image, tf.float32), tf.constant(GRAY_WEIGHTS), axes=1)
        image = tf.cast(tf.round(gray), tf.uint8)[..., None]

    def resized():
        scaled = tf.image.resize(image, size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(scaled), 0, 255), tf.uint8)

    at_size = tf.reduce_all(tf.shape(image)[:2] == tf.constant(size, tf.int32))
    image = tf.cond(at_size, lambda: image, resized)
    image.set_shape(list(size) + [channels])
    return image


class FolderImages:
    """One image classification data set from class folders (see training/folder_data.py)."""

    multi_label = False  # each example's label is a class id (ManifestImages: a set of them)

    def __init__(self, data_dir, image_size=None, channels=None, validation_split=0.1,
                 test_split=0.2, limit=None, classes=None, background=255,
                 max_pixels=DEFAULT_MAX_PIXELS, listing=None):
        self.data_dir = data_dir
        self.limit = limit
        self.background = background
        self._listing = listing or list_labelled_files(data_dir, IMAGE_SUFFIXES, validation_split,
                                                       test_split, classes, what="images")
        self._drop_undecodable_headers(max_pixels)
        self.class_names = self._listing.class_names
        self.size, self.channels = self._shape_defaults(image_size, channels)
        self._good = None
        self._warned = False

    def _drop_undecodable_headers(self, max_pixels):
        """Leave out the files whose header declares more than `max_pixels` pixels (never
        decoded: a decompression bomb takes gigabytes) or that no header of IMAGE_FORMATS
        starts (the decode pass would fail on them; TF would also decode other formats)."""
        too_large, unreadable = [], []
        for split, files in self._listing.splits.items():
            kept = []
            for rel, label in files:
                try:
                    size = file_declared_size(self._path(rel))
                except OSError:
                    size = None
                if size is None:
                    unreadable.append(rel)
                elif size[0] * size[1] > max_pixels:
                    too_large.append(f"{rel} ({size[0]}x{size[1]})")
                else:
                    kept.append((rel, label))
            self._listing.splits[split] = kept
        self._listing.skipped += unreadable
        self._listing.too_large = sorted(too_large)
        if too_large:
            print(skipped_report(self._listing.too_large, self._listing.total(),
                                 f"images larger than data.max_image_pixels={max_pixels:,}"),
                  flush=True)

    def info(self) -> ImageDataInfo:
        return ImageDataInfo((*self.size, self.channels), len(self.class_names), self.class_names)

    def where(self):
        """Where the examples come from, for the line that starts a run."""
        return f"from the class folders in {self.data_dir}"

    def file_summary(self):
        """One line: the image sizes and modes (PIL's: L, RGB, RGBA, P, ...) of the files found,
        the commonest first, read from the files' headers."""
        from collections import Counter

        from PIL import Image

        sizes, modes = Counter(), Counter()
        for files in self._listing.splits.values():
            for rel, _ in files:
                try:
                    with Image.open(self._path(rel)) as image:
                        sizes[f"{image.width}x{image.height}"] += 1
                        modes[image.mode] += 1
                except (OSError, ValueError, Image.DecompressionBombError):
                    continue  # the decode pass reports it as skipped

        def common(counter):
            shown = ", ".join(f"{k} ({n:,})" for k, n in counter.most_common(SHOWN_KINDS))
            return shown + (f", ... {len(counter) - SHOWN_KINDS} more" if len(counter) > SHOWN_KINDS
                            else "")

        return (f"Files: {sum(sizes.values()):,} images; sizes (width x height): {common(sizes)}; "
                f"modes: {common(modes)}; each is decoded to {self.size[0]}x{self.size[1]}x"
                f"{self.channels}")

    def _path(self, rel):
        return os.path.join(self._listing.root, rel)

    def _shape_defaults(self, image_size, channels):
        """The configured size and channels; unset, those of the first training image that decodes."""
        if image_size and channels:
            return tuple(image_size), channels
        for rel, _ in self._listing.splits["train"]:
            try:
                image = tf.io.decode_image(tf.io.read_file(self._path(rel)), expand_animations=False)
            except (tf.errors.OpError, ValueError):
                continue
            native = 1 if image.shape[-1] in (1, 2) else 3  # gray (+alpha), else colour
            return tuple(image_size or image.shape[:2]), channels or native
        raise DataError(f"No training image in {self.data_dir} can be decoded; the folders must "
                        f"hold {', '.join(IMAGE_SUFFIXES)} files")

    def fits_in_memory(self, split):
        """Do all splits' decoded images fit in CACHE_SHARE of memory? If not, each epoch
        streams them from disk (said once): never the whole folder in memory."""
        if self._good is None:
            self._check_all()
        needed = sum(len(files) for files in self._good.values()) * int(np.prod(self.size)) * self.channels
        budget = CACHE_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if needed > budget and not self._warned:
            self._warned = True
            print(f"data.cache: the decoded images would take {needed / 2**30:.1f} GiB, more than "
                  f"{CACHE_SHARE:.0%} of this machine's memory; they stream from disk every epoch",
                  flush=True)
        return needed <= budget

    def _load(self, path, label):
        return decode_image(tf.io.read_file(path), self.size, self.channels, self.background), label

    def _check_all(self):
        """The files of each split that decode, found by one pass of the training decode (tf.data,
        in parallel); prints the one-line report of the files skipped."""
        listing = self._listing
        items = [(split, rel, label) for split, files in listing.splits.items()
                 for rel, label in files]
        paths = [self._path(rel) for _, rel, _ in items]
        found = tf.data.Dataset.from_tensor_slices((paths, tf.range(len(paths), dtype=tf.int64)))

        def constant(path, i):  # also keeps the decode from being pruned as unused
            image = self._load(path, i)[0]
            return i, tf.reduce_max(image) == tf.reduce_min(image)

        found = found.map(constant, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
        checked = dict(found.as_numpy_iterator())
        ok = set(checked)
        self._good = {split: [] for split in listing.splits}
        for i, (split, rel, label) in enumerate(items):
            if i in ok:
                self._good[split].append((self._path(rel), label))
        bad = listing.skipped + [rel for i, (_, rel, _) in enumerate(items) if i not in ok]
        if bad:
            print(skipped_report(sorted(bad), listing.total(), "files that are not readable "
                                 "images (damaged, other types, not regular files, names that "
                                 "are not UTF-8)"), flush=True)
        for split, files in self._good.items():
            blank = sum(1 for i, (s, _, _) in enumerate(items) if s == split and checked.get(i))
            if blank > CONSTANT_SHARE * len(files):
                print(f"warning: {blank} of {len(files)} {split} images are one flat colour once "
                      f"decoded (transparent ones are drawn on data.background={self.background}); "
                      "check that the folders hold what you expect", flush=True)
        found = {i for _, label in self._good["train"]
                 for i in (label if self.multi_label else (label,))}
        empty = [c for i, c in enumerate(self.class_names) if i not in found]
        if len(empty) > len(self.class_names) - 2:
            raise DataError(f"Fewer than two classes of {self.data_dir} have a readable training "
                            f"image (none in: {', '.join(empty)})")

    def _files(self, split):
        """(path, label) of `split`'s readable files, in the dataset's order."""
        if self._good is None:
            self._check_all()
        return self._good[split][:self.limit] if self.limit else self._good[split]

    def names(self, split):
        """The paths of `split`'s examples, in the dataset's order."""
        return [path for path, _ in self._files(split)]

    def labels(self, split):
        """The class ids of `split`'s examples, in the dataset's order (multi-label: a 0/1
        float per label)."""
        return self._label_array([label for _, label in self._files(split)])

    def _label_array(self, labels):
        if not self.multi_label:
            return np.array(labels, np.int64)
        return multi_hot(labels, len(self.class_names))

    def dataset(self, split):
        """Unbatched (uint8 image HxWxC, int64 label) examples read from disk, or None if empty;
        multi-label: (image, float32 0/1 per label)."""
        files = self._files(split)
        if not files:
            return None
        paths, labels = zip(*files)
        ds = tf.data.Dataset.from_tensor_slices((list(paths), self._label_array(labels)))
        return ds.map(self._load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

