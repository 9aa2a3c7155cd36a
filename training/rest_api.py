"""TF Serving's REST API for the models we export, as a WSGI app (Werkzeug).

    GET  /v1/models/NAME[/versions/N]            version status
    GET  /v1/models/NAME[/versions/N]/metadata   signature defs
    POST /v1/models/NAME[/versions/N]:predict    {"instances": [...]} or {"inputs": ...}

Responses and errors follow TF Serving: {"predictions": ...} / {"outputs": ...},
{"error": "..."} with 400 (bad request) or 404 (unknown model or version).
"""

import base64
import json
import re

import numpy as np
import tensorflow as tf
from werkzeug.wrappers import Request, Response

from training.serving_repository import NotFound

PATH_RE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                     r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?$")


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


def _rows(instances, specs):
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list")
    if len(specs) == 1:
        (name,) = specs
        values = [i[name] if isinstance(i, dict) and set(i) == {name} else i for i in instances]
        return {name: values}
    columns = {}
    for instance in instances:
        if not isinstance(instance, dict) or set(instance) != set(specs):
            raise BadRequest(f"Each instance must be an object with the inputs {sorted(specs)}")
        for name in specs:
            columns.setdefault(name, []).append(instance[name])
    return columns


def _columns(inputs, specs):
    if isinstance(inputs, dict) and not (set(inputs) == {"b64"}):
        missing = set(specs) - set(inputs)
        extra = set(inputs) - set(specs)
        if missing or extra:
            raise BadRequest(f"'inputs' must name exactly the inputs {sorted(specs)}")
        return inputs
    if len(specs) != 1:
        raise BadRequest(f"'inputs' must be an object with the inputs {sorted(specs)}")
    return {next(iter(specs)): inputs}


def _jsonable(name, array):
    array = np.asarray(array)
    if array.dtype == object:
        if name.endswith("_bytes"):
            encode = np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])
        else:
            encode = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])
        return encode(array).tolist() if array.size else []
    return array.tolist()


def predict(loaded, body):
    """TF Serving's predict response for a parsed JSON `body`."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise BadRequest("The request must have exactly one of 'instances' (row format) or "
                         "'inputs' (columnar format)")
    signature_name = body.get("signature_name", "serving_default")
    try:
        fn = loaded.signature(signature_name)
    except KeyError as e:
        raise BadRequest(str(e.args[0])) from None
    specs = fn.structured_input_signature[1]
    row_format = "instances" in body
    values = _rows(body["instances"], specs) if row_format else _columns(body["inputs"], specs)
    tensors = {name: tf.constant(to_array(name, values[name], spec)) for name, spec in specs.items()}
    if row_format:
        sizes = {t.shape[0] if t.shape.rank else None for t in tensors.values()}
        if len(sizes) != 1:
            raise BadRequest("All inputs must have the same number of instances")
    try:
        outputs = {k: v.numpy() for k, v in fn(**tensors).items()}
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
        raise BadRequest(str(e).splitlines()[0]) from None
    return format_outputs(outputs, row_format)


def format_outputs(outputs, row_format=True):
    """TF Serving's JSON for a dict of output arrays: row ("predictions") or columnar ("outputs")."""
    outputs = {k: _jsonable(k, v) for k, v in sorted(outputs.items())}
    if row_format:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}
    return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}


def status(loaded):
    return {"model_version_status": [{
        "version": str(loaded.version), "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}


def metadata(loaded):
    return {"model_spec": {"name": loaded.name, "signature_name": "", "version": str(loaded.version)},
            "metadata": {"signature_def": {"signature_def": loaded.signature_defs}}}


class RestApp:
    """WSGI application serving a ModelRepository over TF Serving's REST API."""

    def __init__(self, repository, max_body_bytes=16 * 1024 * 1024):
        self.repository = repository
        self.max_body_bytes = max_body_bytes

    def handle(self, request):
        match = PATH_RE.match(request.path)
        if not match:
            raise BadRequest(f"Malformed request: {request.method} {request.path}")
        loaded = self.repository.get(match["name"],
                                     int(match["version"]) if match["version"] else None)
        if request.method == "GET" and not match["verb"]:
            return metadata(loaded) if match["metadata"] else status(loaded)
        if request.method == "POST" and match["verb"] == "predict":
            if request.content_length and request.content_length > self.max_body_bytes:
                return 413, {"error": f"Request body exceeds {self.max_body_bytes} bytes"}
            raw = request.stream.read(self.max_body_bytes + 1)
            if len(raw) > self.max_body_bytes:
                return 413, {"error": f"Request body exceeds {self.max_body_bytes} bytes"}
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise BadRequest(f"JSON Parse error: {e}") from None
            return predict(loaded, body)
        if request.method == "POST" and match["verb"] in ("classify", "regress"):
            raise BadRequest(f":{match['verb']} is not supported by this stand-in; use :predict")
        raise BadRequest(f"Malformed request: {request.method} {request.path}")

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            result = self.handle(request)
            code, body = result if isinstance(result, tuple) else (200, result)
        except BadRequest as e:
            code, body = 400, {"error": str(e)}
        except NotFound as e:
            code, body = 404, {"error": str(e)}
        except Exception as e:  # keep serving; report what broke
            code, body = 500, {"error": f"{type(e).__name__}: {e}"}
        response = Response(json.dumps(body), code, mimetype="application/json")
        return response(environ, start_response)
