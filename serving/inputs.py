"""Request inputs checked against a signature's TensorSpecs: the one validator of the REST and
gRPC APIs, so both refuse the same bad tensors with the same messages (HTTP 400 /
INVALID_ARGUMENT) before the model sees them."""

import re

import numpy as np
import tensorflow as tf

from serving.image_header import IMAGE_BYTES, check_image

ERROR_LINE = re.compile(r"^\s+\w*Error: (.*)$")  # the error inside a traced function's message


class BadRequest(ValueError):
    """The request is malformed (HTTP 400, gRPC INVALID_ARGUMENT)."""


def _strings(name, array):
    if array.size and array.dtype.kind not in "OSU":
        raise BadRequest(f"Input '{name}' must be strings (DT_STRING), got {array.dtype.name} values")
    if array.dtype.kind == "O" and array.size:
        if not all(isinstance(v, (str, bytes)) for v in array.flat):
            raise BadRequest(f"Input '{name}' must be strings (DT_STRING)")
    return np.vectorize(lambda v: v.encode() if isinstance(v, str) else v, otypes=[object])(array) \
        if array.size else array.astype(object)


def _numbers(name, array, dtype):
    kinds = "biuf" if dtype.is_bool else "iuf"
    if array.size and array.dtype.kind not in kinds:
        raise BadRequest(f"Input '{name}' must be numbers of type {dtype.name}"
                         + (" (not booleans)" if array.dtype.kind == "b" else ""))
    if dtype.is_integer and array.size:
        info = np.iinfo(dtype.as_numpy_dtype)
        if (array.dtype.kind == "f" and not np.all(np.isfinite(array))) or \
                np.any(array != np.round(array)) or array.min() < info.min or array.max() > info.max:
            raise BadRequest(f"Input '{name}' must be integers in [{info.min}, {info.max}] "
                             f"({dtype.name})")
    return array.astype(dtype.as_numpy_dtype)


def check_array(name, array, spec):
    """`array` (NumPy, as decoded from JSON or a TensorProto) as input `name` of TensorSpec
    `spec`: the right kind of values, in the dtype's range, of a compatible shape."""
    array = np.asarray(array)
    array = _strings(name, array) if spec.dtype == tf.string else _numbers(name, array, spec.dtype)
    if not spec.shape.is_compatible_with(array.shape):
        raise BadRequest(f"Input '{name}' has shape {list(array.shape)}, but the signature expects "
                         f"{spec.shape.as_list()} (None = any size)")
    return array


def op_error_line(error):
    """The words of a TensorFlow error that say what went wrong, in one line: a graph's error
    starts with "Graph execution error:" or "in user code:" and the Python stack of the
    failing node, and names the kernel in {{...}} and [...] around the message."""
    lines = str(error).splitlines()
    named = [m.group(1) for m in map(ERROR_LINE.match, lines) if m]
    candidates = named or [line for line in lines if line.strip() and not line.startswith(
        (" ", "\t", "Graph execution error", "Detected at node", "in user code"))]
    if not candidates:
        return lines[0] if lines else type(error).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", candidates[-1])
    return re.split(r"\s+\[\[|\s+\[Op:", text)[0].strip()


def check_images(arrays, max_pixels):
    """Read the declared size of each encoded image of input IMAGE_BYTES in `arrays` before
    anything decodes it; BadRequest for bytes that are not an image or that declare more than
    `max_pixels` pixels. Returns the pixels declared in all."""
    images = arrays.get(IMAGE_BYTES)
    if images is None or images.dtype != object:
        return 0
    total = 0
    for i, data in enumerate(images.flat):
        try:
            width, height = check_image(bytes(data), max_pixels, f"Input '{IMAGE_BYTES}' item {i}",
                                        "the server's --max_image_pixels")
        except ValueError as e:
            raise BadRequest(str(e)) from None
        total += width * height
    return total
