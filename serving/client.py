"""Ask a TF Serving model (REST or gRPC) about files or texts: `python -m training predict`.

Inputs are shaped from the model's own signature: images are decoded with
the model's channel count and resized to its height and width, or sent as
their encoded bytes to a signature that takes strings (the image app's
`image_bytes`: `{"b64": ...}` over REST); `.npy` files are sent as they are; to a
string input, a text file's contents, or the item itself when it is no file (with
`--text`, always the item). Only regular files are read: a FIFO would block, a device
never ends. An item that looks like a path (a known suffix, or a separator and no space)
and does not exist is an error, not a text to classify.
"""

import base64
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.image_header import DEFAULT_MAX_PIXELS, NotAnImage, check_image
from serving.inputs import op_error_line
from serving.json_tensors import format_outputs

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp"}
FILE_SUFFIXES = IMAGE_SUFFIXES | {".npy"}  # what is read from disk; anything else is a text
PATH_SUFFIXES = FILE_SUFFIXES | {".txt", ".csv", ".json", ".webp"}  # an item ending so is a path
FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
              (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
              (stat.S_ISSOCK, "a socket"))
DTYPES = {"DT_UINT8": np.uint8, "DT_FLOAT": np.float32, "DT_INT64": np.int64,
          "DT_INT32": np.int32, "DT_STRING": object, "DT_DOUBLE": np.float64}


class ClientError(ValueError):
    """The server could not be reached or refused the request."""


def _http(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise ClientError(f"{e.code} from {url}: {e.read().decode(errors='replace')}") from None
    except urllib.error.URLError as e:
        raise ClientError(f"Cannot reach {url} ({e.reason}); is the server running (make serve)?") from None


def _signature(signature_defs, name):
    if name not in signature_defs:
        raise ClientError(f"The model has no signature {name!r}; it has: {', '.join(sorted(signature_defs))}")
    return signature_defs[name]


def input_spec(signature_def):
    """(name, numpy dtype, shape with -1 for any) of a single-input signature."""
    inputs = signature_def["inputs"]
    if len(inputs) != 1:
        raise ClientError(f"The signature has inputs {sorted(inputs)}; this client sends one")
    name, info = next(iter(inputs.items()))
    dims = [int(d["size"]) for d in info.get("tensor_shape", {}).get("dim", [])]
    return name, DTYPES.get(info["dtype"], object), dims


def looks_like_path(item):
    """Does command-line `item` name a file rather than give a text?"""
    return (Path(item).suffix.lower() in PATH_SUFFIXES
            or (os.sep in item and not any(c.isspace() for c in item)))


def file_problem(item):
    """Why `item` cannot be read as a file (missing, or not a regular file), or None."""
    try:
        mode = os.stat(item).st_mode
    except OSError:
        return f"No such file: {item}"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in FILE_KINDS if test(mode)), "not a regular file")
    return f"{item} is {kind}, not a regular file; give image, text, CSV or .npy files"


def example_kind(item, takes_text, text=False):
    """"text" (the item itself is the text of a model that `takes_text`), or "file" (a
    regular file to read); ClientError (a ValueError) for a path that is missing or not a
    regular file. With `text`, every item of a text model is a text."""
    if takes_text and text:
        return "text"
    if os.path.lexists(item) or looks_like_path(item) or not takes_text:
        problem = file_problem(item)
        if problem:
            raise ClientError(problem + (" (to send the item itself as a text, pass --text)"
                                         if takes_text and problem.startswith("No such") else ""))
        return "file"
    return "text"


def load_example(item, dtype, dims, text=False):
    """One example (without the batch dim) from a path, or a text (for a string input)."""
    path = Path(item)
    suffix = path.suffix.lower()
    if dtype is not object and not looks_like_path(item) and not os.path.lexists(item):
        raise ClientError(f"{item!r} is not an image or .npy file, and this model takes "
                          f"numbers: pass image files ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                          "or .npy arrays")
    if example_kind(item, dtype is object, text) == "text":
        return item
    if suffix in IMAGE_SUFFIXES and dtype is object:  # the server decodes: send the file's bytes
        return path.read_bytes()
    if dtype is object:
        return path.read_text(errors="replace")
    if suffix not in FILE_SUFFIXES:
        raise ClientError(f"{item} is not an image or .npy file, and this model takes numbers: "
                          f"pass image files ({', '.join(sorted(IMAGE_SUFFIXES))}) or .npy arrays")
    if suffix == ".npy":
        try:
            return np.load(path).astype(dtype)
        except (ValueError, OSError) as e:
            raise ClientError(f"{item} is not a readable .npy array of numbers ({e})") from None
    try:
        return decode_pixels(path.read_bytes(), dims, dtype, item)
    except ValueError as e:
        raise ClientError(str(e)) from None


def decode_pixels(data, dims, dtype, what="the image", max_pixels=DEFAULT_MAX_PIXELS,
                  limit_name="the pixel limit"):
    """Encoded image bytes as pixels for an input of shape `dims` ([batch, height, width,
    channels]; -1 or None: any size): decoded to its channels, resized to its height and width
    when they differ. Bytes that are not an image, or that declare more than `max_pixels`
    pixels, raise a ValueError that names `what` (image_header.check_image)."""
    check_image(data, max_pixels, what, limit_name)
    known = [d is not None and d > 0 for d in dims]
    channels = dims[-1] if len(dims) == 4 and known[-1] else 0
    try:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    except tf.errors.InvalidArgumentError as e:
        raise NotAnImage(f"{what} is not a readable image ({op_error_line(e)})") from None
    if len(dims) == 4 and known[1] and known[2] and tuple(image.shape[:2]) != tuple(dims[1:3]):
        image = tf.image.resize(image, dims[1:3], antialias=True)
    return np.clip(np.round(image.numpy()), 0, 255).astype(dtype)


def rest_signature(url, model, signature="serving_default"):
    meta = _http(f"{url.rstrip('/')}/v1/models/{model}/metadata")
    return _signature(meta["metadata"]["signature_def"]["signature_def"], signature)


def _json_value(example):
    if isinstance(example, bytes):
        return {"b64": base64.b64encode(example).decode()}
    return example.tolist() if isinstance(example, np.ndarray) else example


def rest_predict(url, model, items, version=None, signature="serving_default", text=False):
    name, dtype, dims = input_spec(rest_signature(url, model, signature))
    instances = [_json_value(load_example(i, dtype, dims, text)) for i in items]
    where = f"/versions/{version}" if version else ""
    return _http(f"{url.rstrip('/')}/v1/models/{model}{where}:predict",
                 {"signature_name": signature, "instances": instances})


def grpc_predict(target, model, items, version=None, signature="serving_default", text=False):
    """Same request over gRPC with tensorflow-serving-api's PredictionServiceStub."""
    import grpc
    from google.protobuf import json_format
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        model_pb2,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    spec = model_pb2.ModelSpec(name=model, signature_name=signature)
    if version:
        spec.version.value = int(version)
    meta_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    meta_request.model_spec.CopyFrom(spec)
    try:
        meta = stub.GetModelMetadata(meta_request, timeout=60)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        meta.metadata["signature_def"].Unpack(sigmap)
        signature_def = json_format.MessageToDict(_signature(sigmap.signature_def, signature),
                                                  preserving_proto_field_name=True)
        name, dtype, dims = input_spec(signature_def)
        examples = [load_example(i, dtype, dims, text) for i in items]
        batch = (np.array(examples, dtype=object) if dtype is object
                 else np.stack([np.asarray(e, dtype=dtype) for e in examples]))
        request = predict_pb2.PredictRequest(model_spec=spec)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(batch))
        response = stub.Predict(request, timeout=60)
    except grpc.RpcError as e:
        raise ClientError(f"gRPC {e.code().name} from {target}: {e.details()}") from None
    return format_outputs({k: tf.make_ndarray(v) for k, v in response.outputs.items()})
