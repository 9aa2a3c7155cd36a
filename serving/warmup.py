"""TF Serving's warm-up file: `<version>/assets.extra/tf_serving_warmup_requests`.

A TFRecord file of PredictionLog protos. TF Serving replays each request when it loads a
version, before it marks the version AVAILABLE, so the first real request does not pay for
the graph's first run (kernels chosen, memory allocated, Grappler run). The exporter writes
it (a few real test examples per signature) and the local stand-in replays it as TF Serving
does; a record that does not fit its signature fails the version's load, as in TF Serving.
"""

import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.inputs import BadRequest, check_array

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving refuses a version whose file holds more (kMaxNumRecords)
REPLAY_SECONDS = 30.0  # then the version is served with the rest not replayed: a load stays bounded
PROGRESS_SECONDS = 10.0  # a long replay says how far it got this often


class WarmupError(ValueError):
    """The warm-up file cannot be read or does not fit the model's signatures."""


def write_warmup(version_dir, model_name, requests):
    """Write `requests`, a list of (signature name, {input name: NumPy batch}), as
    PredictionLog records into `version_dir`'s warm-up file; return its path."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for name, array in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir):
    """The warm-up requests of `version_dir` as (signature name, {input: NumPy}), or [] when
    it has no warm-up file."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = Path(version_dir) / WARMUP_FILE
    if not path.exists():
        return []
    requests = []
    try:
        for number, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator(), 1):
            if number > MAX_RECORDS:
                raise WarmupError(f"{WARMUP_FILE} holds more than {MAX_RECORDS:,} records, TF "
                                  "Serving's limit; a few per signature warm a model up")
            log = prediction_log_pb2.PredictionLog.FromString(record)
            kind = log.WhichOneof("log_type")
            if kind != "predict_log":
                raise WarmupError(f"record {number} is a {kind or 'empty'} record; the stand-in "
                                  "replays predict_log records only")
            request = log.predict_log.request
            requests.append((request.model_spec.signature_name or "serving_default",
                             {k: tf.make_ndarray(v) for k, v in request.inputs.items()}))
    except (tf.errors.OpError, ValueError) as e:
        if isinstance(e, WarmupError):
            raise
        raise WarmupError(f"{WARMUP_FILE} is not a TFRecord file of PredictionLog protos "
                          f"({str(e).splitlines()[0]})") from None
    return requests


def replay(signatures, requests, run, log=None, max_seconds=REPLAY_SECONDS):
    """Run the warm-up requests through their signatures with `run(fn, arrays)` for at most
    `max_seconds` (logging progress with `log`); return (requests replayed, seconds). A
    request that does not fit its signature raises WarmupError."""
    start = last_report = time.perf_counter()
    for number, (name, inputs) in enumerate(requests, 1):
        now = time.perf_counter()
        if now - start > max_seconds:
            return number - 1, now - start
        if log is not None and now - last_report > PROGRESS_SECONDS:
            log(f"replaying warm-up requests: {number - 1} of {len(requests)} in {now - start:.0f} s")
            last_report = now
        if name not in signatures:
            raise WarmupError(f"warm-up request {number} asks for signature {name!r}, which the "
                              f"model does not have ({', '.join(sorted(signatures))})")
        fn = signatures[name]
        specs = fn.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise WarmupError(f"warm-up request {number} gives inputs {sorted(inputs)}, but "
                              f"signature {name!r} takes {sorted(specs)}")
        try:
            arrays = {k: check_array(k, np.asarray(v), specs[k]) for k, v in inputs.items()}
            run(fn, arrays)
        except (BadRequest, tf.errors.InvalidArgumentError) as e:
            raise WarmupError(f"warm-up request {number} does not fit signature {name!r}: "
                              f"{str(e).splitlines()[0]}") from None
    return len(requests), time.perf_counter() - start
