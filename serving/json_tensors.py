"""Tensors in TF Serving's REST JSON: request values to arrays, output arrays to responses.

Shared by the REST server (`rest_api.py`) and the client (`client.py`), so the two agree on the
encoding: bytes as {"b64": ...}, row ("instances" / "predictions") and columnar ("inputs" /
"outputs") formats.
"""

import base64
import json

import numpy as np
import tensorflow as tf


class BadRequest(ValueError):
    """The request is malformed (HTTP 400)."""


def _decode_b64(value):
    if isinstance(value, dict):
        if set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise BadRequest("Invalid base64 in a {\"b64\": ...} value") from None
        raise BadRequest(f"Unexpected object {json.dumps(value)[:80]} in tensor values")
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def to_array(name, value, spec):
    """The JSON `value` of input `name` as a NumPy array matching TensorSpec `spec`."""
    if spec.dtype == tf.string:
        value = _decode_b64(value)
        array = np.array(value, dtype=object)
        array = np.vectorize(lambda v: v.encode() if isinstance(v, str) else v, otypes=[object])(array) \
            if array.size else array
    else:
        try:
            array = np.asarray(value)
        except ValueError:
            raise BadRequest(f"Input '{name}' is ragged: every instance must have the same shape") from None
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise BadRequest(f"Input '{name}' must be numbers of type {spec.dtype.name}")
        if spec.dtype.is_integer:
            info = np.iinfo(spec.dtype.as_numpy_dtype)
            if array.size and (np.any(array != np.round(array)) or array.min() < info.min
                               or array.max() > info.max):
                raise BadRequest(f"Input '{name}' must be integers in [{info.min}, {info.max}] "
                                 f"({spec.dtype.name})")
        array = array.astype(spec.dtype.as_numpy_dtype)
    if not spec.shape.is_compatible_with(array.shape):
        raise BadRequest(f"Input '{name}' has shape {list(array.shape)}, but the signature expects "
                         f"{spec.shape.as_list()} (None = any size)")
    return array


def _jsonable(name, array):
    array = np.asarray(array)
    if array.dtype == object:
        if name.endswith("_bytes"):
            encode = np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])
        else:
            encode = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])
        return encode(array).tolist() if array.size else []
    return array.tolist()


def format_outputs(outputs, row_format=True):
    """TF Serving's JSON for a dict of output arrays: row ("predictions") or columnar ("outputs")."""
    outputs = {k: _jsonable(k, v) for k, v in sorted(outputs.items())}
    if row_format:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}
    return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
