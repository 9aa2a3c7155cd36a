"""Predict without a server: `python -m training predict --run DIR FILE...`.

The run's model answers through the signatures its export serves (`app.serving_signature`
and `app.extra_signatures`, built in process from model.keras), so the answers are the
server's. What an item is depends on the model's input:

- images (uint8 pixels): image files, sent as encoded bytes to `image_bytes` when the app
  exports it (decoded as in training), else decoded here; or `.npy` arrays;
- strings: a text file's contents, or the item itself as the text (an item that looks like a
  path and does not exist is an error; with --text every item is a text);
- rows of numbers: CSV files, one prediction per row (a header row names the columns;
  `App.feature_columns` picks the model's), or `.npy` arrays.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.client import IMAGE_SUFFIXES, ClientError, decode_pixels, example_kind
from serving.image_header import DEFAULT_MAX_PIXELS, IMAGE_BYTES, check_image
from serving.inputs import op_error_line
from training.datasets import check_header, csv_records
from training.errors import ConfigError, DataError


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def numeric_rows(path, columns=None):
    """The numeric rows of CSV `path`, as float32; with a header row and `columns`, only
    those columns, in that order."""
    rows = [fields for _, fields in csv_records(path)]
    if rows and not all(map(_is_number, rows[0])):
        header, rows = rows[0], rows[1:]
        check_header(path, header)
        if columns:
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(f"{path} has no column {', '.join(missing)}; the model takes "
                                f"{', '.join(columns)}")
            rows = [[r[header.index(c)] for c in columns] for r in rows]
    try:
        return np.array(rows, np.float32)
    except ValueError:
        raise DataError(f"{path} has rows that are not all numbers of the same length") from None


def _items(item, spec, columns, text=False):
    """(label, example) pairs of one command-line item for input `spec`."""
    try:
        kind = example_kind(item, spec.dtype == tf.string, text)
    except ClientError as e:
        raise DataError(str(e)) from None
    path = Path(item)
    if spec.dtype == tf.string:
        return [(item, path.read_text(errors="replace") if kind == "file" else item)]
    if path.suffix.lower() == ".npy":
        try:
            return [(item, np.load(path).astype(spec.dtype.as_numpy_dtype))]
        except (ValueError, OSError) as e:
            raise DataError(f"{item} is not a readable .npy array of numbers ({e})") from None
    if spec.shape.rank == 2 and path.suffix.lower() in (".csv", ".txt"):
        return [(f"{item} row {i}", row) for i, row in enumerate(numeric_rows(path, columns), 1)]
    if spec.shape.rank == 4 and path.suffix.lower() in IMAGE_SUFFIXES:
        return [(item, path.read_bytes())]
    raise DataError(f"{item}: this model takes {spec.dtype.name} {spec.shape.as_list()[1:]}; give "
                    + ("image files (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")" if spec.shape.rank == 4
                       else "CSV files") + " or .npy arrays")


def predict(app, model, items, text=False):
    """[{"input": label, output name: value, ...}] for each example of `items`; with `text`,
    each item is a text even where it looks like a path. Image files are checked before they
    decode: bytes that are not an image, or declare more than data.max_image_pixels, are a
    DataError."""
    signatures = {"serving_default": app.serving_signature(model), **app.extra_signatures(model)}
    signature = signatures["serving_default"]
    if len(signature.inputs) != 1:
        raise ConfigError("predict sends one input; this model's signature takes "
                          f"{[s.name for s in signature.inputs]}: call it over the server")
    spec = signature.inputs[0]
    max_pixels = getattr(app.config.data, "max_image_pixels", DEFAULT_MAX_PIXELS)
    examples = [pair for item in items for pair in _items(item, spec, app.feature_columns(), text)]
    results = []
    for label, example in examples:
        if isinstance(example, bytes):  # an image file
            try:
                if IMAGE_BYTES in signatures:
                    check_image(example, max_pixels, label, "data.max_image_pixels")
                    fn, value = signatures[IMAGE_BYTES].fn, tf.constant([example])
                else:
                    fn, value = signature.fn, tf.constant(decode_pixels(
                        example, spec.shape.as_list(), spec.dtype.as_numpy_dtype, label,
                        max_pixels, "data.max_image_pixels")[None])
            except ValueError as e:
                raise DataError(str(e)) from None
        else:
            fn, value = signature.fn, tf.constant(np.asarray(example)[None])
        try:
            outputs = fn(value)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            what = ("is not a readable image" if isinstance(example, bytes) else
                    "cannot be taken by the model")
            raise DataError(f"{label} {what} ({op_error_line(e)})") from None
        results.append({"input": label, **{k: _plain(v.numpy()[0]) for k, v in outputs.items()}})
    return results


def _plain(value):
    """A JSON-ready value: strings decoded, arrays as lists."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value.tolist() if isinstance(value, np.ndarray) else value.item()


def as_text(results, class_names, top=3):
    """One line per result: the `top` classes with their probabilities (multi-label: the labels
    above their thresholds, with theirs), or the outputs."""
    lines = []
    for result in results:
        if class_names and "above_threshold" in result:
            p = np.asarray(result["probabilities"])
            chosen = [i for i in np.argsort(-p) if result["above_threshold"][i]]
            answer = (", ".join(f"{class_names[i]} {p[i]:.3f}" for i in chosen)
                      or f"no label above its threshold (the likeliest: "
                         f"{class_names[int(np.argmax(p))]} {p.max():.3f})")
        elif class_names and "probabilities" in result:
            p = np.asarray(result["probabilities"])
            best = np.argsort(-p)[:top]
            answer = ", ".join(f"{class_names[i]} {p[i]:.3f}" for i in best)
        else:
            answer = ", ".join(f"{k} {v!r}" if isinstance(v, str) else
                               f"{k} {np.round(v, 4).tolist()}" for k, v in result.items() if k != "input")
        lines.append(f"{result['input']}: {answer}")
    return "\n".join(lines)


def explain(run_dir, files, out):
    """Grad-CAM of the run's model on image `files`, drawn into `out` (a PNG); returns a line
    per file: its predicted class and probability. A run whose model takes no images, has no
    convolutional feature map, or a file that is not an image: one ConfigError or DataError."""
    from training import plots
    from training.pipeline import gradcam
    from training.run_dir import load_run

    _, app, model = load_run(run_dir)
    parts = gradcam.split(model)  # the model's own error when it is not an image model
    dims = list(model.inputs[0].shape)
    max_pixels = getattr(app.config.data, "max_image_pixels", DEFAULT_MAX_PIXELS)
    images = []
    for name in files:
        try:
            data = Path(name).read_bytes()
        except OSError as e:
            raise DataError(f"{name} cannot be read ({e.strerror or e})") from None
        try:
            images.append(decode_pixels(data, [None, *dims[1:]], np.uint8, name, max_pixels,
                                        "data.max_image_pixels"))
        except ValueError as e:
            raise DataError(str(e)) from None
    maps, probabilities = gradcam.heatmaps(model, np.stack(images), parts=parts)
    names = app.class_names() or [str(i) for i in range(probabilities.shape[-1])]
    predicted = probabilities.argmax(-1)
    lines = [f"{name}: {names[c]} ({p[c]:.2f})" for name, c, p in zip(files, predicted, probabilities)]
    titles = [f"{plots.short(Path(name).name)}: {plots.short(names[c])} ({p[c]:.2f})"
              for name, c, p in zip(files, predicted, probabilities)]
    plots.gradcam(images, maps, titles, out)
    return lines
