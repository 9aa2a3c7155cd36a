"""Tensors in TF Serving's REST JSON: request values to arrays, output arrays to responses.

Shared by the REST server (`rest_api.py`) and the client (`client.py`), so the two agree on the
encoding: bytes as {"b64": ...}, row ("instances" / "predictions") and columnar ("inputs" /
"outputs") formats.
"""

import base64
import json
import re

import numpy as np
import tensorflow as tf

from serving.inputs import BadRequest, check_array

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text, index):
    return _SPACE.match(text, index).end()


def _expect(text, index, chars):
    if not text.startswith(chars, index):
        raise json.JSONDecodeError(f"Expecting {chars!r}", text, index)


def _list(text, index):
    """The JSON list at `index`, element by element; (list, index after it)."""
    items, index = [], _skip(text, index + 1)
    if text.startswith("]", index):
        return items, index + 1
    while True:
        item, index = _DECODER.raw_decode(text, index)
        items.append(item)
        index = _skip(text, index)
        if text.startswith("]", index):
            return items, index + 1
        _expect(text, index, ",")
        index = _skip(text, index + 1)


def parse_body(raw):
    """json.loads of a request body (bytes), but list values of the top-level object (the
    instances or inputs) are decoded an element at a time.

    Written by hand because json.loads of a 15 MB body holds the GIL for over a second,
    and every other request waits that long; decoding element by element lets the other
    threads run in between. The result, and the errors (ValueError), are json.loads'.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    index = _skip(text, 0)
    if not text.startswith("{", index):
        return json.loads(text)
    body, index = {}, _skip(text, index + 1)
    if not text.startswith("}", index):
        while True:
            _expect(text, index, '"')
            key, index = _DECODER.raw_decode(text, index)
            index = _skip(text, index)
            _expect(text, index, ":")
            index = _skip(text, index + 1)
            if text.startswith("[", index):
                body[key], index = _list(text, index)
            else:
                body[key], index = _DECODER.raw_decode(text, index)
            index = _skip(text, index)
            if text.startswith("}", index):
                break
            _expect(text, index, ",")
            index = _skip(text, index + 1)
    index = _skip(text, index + 1)
    if index != len(text):
        raise json.JSONDecodeError("Extra data", text, index)
    return body


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


def _stack_rows(name, rows):
    """np.array(rows), converted a row at a time: one call on a big request would hold the GIL
    for seconds, and every other request would wait."""
    arrays = [np.asarray(row) for row in rows]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("ragged")
    kinds = {a.dtype.kind for a in arrays}
    if "b" in kinds and kinds != {"b"}:  # stacking would turn the booleans into numbers
        raise BadRequest(f"Input '{name}' must be numbers (not booleans)")
    return np.stack(arrays)


def to_array(name, value, spec):
    """The JSON `value` of input `name` as a NumPy array matching TensorSpec `spec`."""
    if spec.dtype == tf.string:
        value = _decode_b64(value)
    try:
        if spec.dtype != tf.string and isinstance(value, list) and len(value) > 1 and \
                all(isinstance(v, list) for v in value):
            array = _stack_rows(name, value)
        else:
            array = np.array(value, dtype=object if spec.dtype == tf.string else None)
    except (ValueError, RecursionError):  # ragged, or nested deeper than NumPy's 64 dims
        raise BadRequest(f"Input '{name}' is ragged or too deeply nested: every instance must "
                         f"have the signature's shape {spec.shape.as_list()[1:]}") from None
    if spec.dtype == tf.string and array.dtype == object and array.ndim and \
            any(isinstance(v, list) for v in array.flat):
        raise BadRequest(f"Input '{name}' is ragged: every instance must have the same shape")
    return check_array(name, array, spec)


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
