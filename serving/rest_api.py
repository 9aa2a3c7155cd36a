"""TF Serving's REST API for the models we export, as a WSGI app (Werkzeug).

    GET  /v1/models/NAME[/versions/N]            version status
    GET  /v1/models/NAME[/versions/N]/metadata   signature defs
    POST /v1/models/NAME[/versions/N]:predict    {"instances": [...]} or {"inputs": ...}

Responses and errors follow TF Serving: {"predictions": ...} / {"outputs": ...},
{"error": "..."} with 400 (bad request) or 404 (unknown model or version).
"""

import gc
import json
import re

import tensorflow as tf
from werkzeug.wrappers import Request, Response

from serving.batching import QueueFull
from serving.inputs import BadRequest, op_error_line
from serving.json_tensors import format_outputs, parse_body, to_array
from serving.repository import NotFound

PATH_RE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                     r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?$")


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _rows(instances, specs):
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list")
    if len(specs) == 1:
        (name,) = specs
        # TF Serving: with one input, an instance is its value; {"b64": ...} is a bytes value.
        named = [isinstance(i, dict) and not (_is_b64(i) and name != "b64") for i in instances]
        for instance, is_named in zip(instances, named):
            if is_named and set(instance) != {name}:
                raise BadRequest(f"An instance object must have exactly the input '{name}'; got "
                                 f"the keys {sorted(instance)[:5]}")
        return {name: [i[name] if is_named else i for i, is_named in zip(instances, named)]}
    columns = {}
    for instance in instances:
        if not isinstance(instance, dict) or set(instance) != set(specs):
            raise BadRequest(f"Each instance must be an object with the inputs {sorted(specs)}")
        for name in specs:
            columns.setdefault(name, []).append(instance[name])
    return columns


def _columns(inputs, specs):
    if isinstance(inputs, dict) and not _is_b64(inputs):
        missing = set(specs) - set(inputs)
        extra = set(inputs) - set(specs)
        if missing or extra:
            raise BadRequest(f"'inputs' must name exactly the inputs {sorted(specs)}")
        return inputs
    if len(specs) != 1:
        raise BadRequest(f"'inputs' must be an object with the inputs {sorted(specs)}")
    return {next(iter(specs)): inputs}


def _parse(raw):
    try:
        return parse_body(raw)
    except ValueError as e:
        raise BadRequest(f"JSON Parse error: {e}") from None
    except RecursionError:
        raise BadRequest("JSON Parse error: nested too deeply") from None


def predict(loaded, body):
    """TF Serving's predict response for a parsed JSON `body`."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise BadRequest("The request must have exactly one of 'instances' (row format) or "
                         "'inputs' (columnar format)")
    signature_name = body.get("signature_name", "serving_default")
    if not isinstance(signature_name, str):
        raise BadRequest(f"'signature_name' must be a string, got {json.dumps(signature_name)[:40]}")
    try:
        fn = loaded.signature(signature_name)
    except KeyError as e:
        raise BadRequest(str(e.args[0])) from None
    specs = fn.structured_input_signature[1]
    row_format = "instances" in body
    values = _rows(body["instances"], specs) if row_format else _columns(body["inputs"], specs)
    arrays = {name: to_array(name, values[name], spec) for name, spec in specs.items()}
    if row_format:
        sizes = {a.shape[0] if a.ndim else None for a in arrays.values()}
        if len(sizes) != 1:
            raise BadRequest("All inputs must have the same number of instances")
    try:
        outputs = loaded.run(fn, arrays)
    except tf.errors.InvalidArgumentError as e:
        raise BadRequest(op_error_line(e)) from None
    except (ValueError, TypeError) as e:
        raise BadRequest(str(e).splitlines()[0]) from None
    return format_outputs(outputs, row_format)


def status(loaded):
    return {"model_version_status": [{
        "version": str(loaded.version), "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}


def metadata(loaded):
    return {"model_spec": {"name": loaded.name, "signature_name": "", "version": str(loaded.version)},
            "metadata": {"signature_def": {"signature_def": loaded.signature_defs}}}


class RestApp:
    """WSGI application serving a ModelRepository over TF Serving's REST API."""

    def __init__(self, repository, max_body_bytes=16 * 1024 * 1024, large_body_bytes=2**20):
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        # JSON decodes to Python objects many times its size, so bodies over
        # large_body_bytes are decoded and run one at a time.
        self.large_body_bytes = large_body_bytes

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
            if len(raw) <= self.large_body_bytes:
                return predict(loaded, _parse(raw))
            with self.repository.heavy:  # shared with requests of big images to decode
                # Millions of new lists would set off full garbage collections, each holding
                # the GIL for up to a second; the lists die by reference count anyway.
                gc.disable()
                try:
                    return predict(loaded, _parse(raw))
                finally:
                    gc.enable()
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
        except QueueFull as e:
            code, body = 503, {"error": str(e)}
        except Exception as e:  # keep serving; report what broke
            code, body = 500, {"error": f"{type(e).__name__}: {e}"}
        response = Response(json.dumps(body), code, mimetype="application/json")
        return response(environ, start_response)
