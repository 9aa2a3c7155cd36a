"""gRPC PredictionService (Predict, GetModelMetadata) for the local TF Serving stand-in.

Uses tensorflow-serving-api's generated servicer, so a client written for
TF Serving (PredictionServiceStub) talks to it unchanged.
"""

from concurrent import futures

import grpc
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from serving.batching import QueueFull
from serving.errors import ServingError
from serving.inputs import BadRequest, check_array, op_error_line
from serving.repository import NotFound


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repository):
        self.repository = repository

    def _loaded(self, spec, context):
        version = spec.version.value if spec.HasField("version") else None
        try:
            return self.repository.get(spec.name, version)
        except NotFound as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))

    def Predict(self, request, context):
        loaded = self._loaded(request.model_spec, context)
        name = request.model_spec.signature_name or "serving_default"
        try:
            fn = loaded.signature(name)
        except KeyError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e.args[0]))
        specs = fn.structured_input_signature[1]
        if set(request.inputs) != set(specs):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Request inputs {sorted(request.inputs)} "
                                                            f"do not match the signature's {sorted(specs)}")
        try:
            arrays = {k: check_array(k, _ndarray(k, v), specs[k]) for k, v in request.inputs.items()}
            outputs = loaded.run(fn, arrays)
        except tf.errors.InvalidArgumentError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, op_error_line(e))
        except (BadRequest, ValueError, TypeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e).splitlines()[0])
        except QueueFull as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = loaded.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = name
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        loaded = self._loaded(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be ['signature_def']")
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in loaded.signature_defs.items():
            json_format.ParseDict(signature, sigmap.signature_def[key])
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = loaded.name
        response.model_spec.version.value = loaded.version
        response.metadata["signature_def"].Pack(sigmap)
        return response


def _ndarray(name, proto):
    """The TensorProto of input `name` as NumPy, or BadRequest if it is malformed."""
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as e:
        raise BadRequest(f"Input '{name}' is not a valid TensorProto ({e})") from None


def make_grpc_server(repository, host, port, workers=4, max_message_bytes=16 * 2**20):
    """A gRPC server, not yet started; returns (server, bound port).

    At most `workers` calls run at once and as many wait; more get RESOURCE_EXHAUSTED.
    SO_REUSEPORT is off (grpc turns it on), so a port in use is an error, not a port
    shared with another server.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers), maximum_concurrent_rpcs=2 * workers,
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", max_message_bytes)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repository), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpc >= 1.60 raises where older ones returned 0
        bound = 0
    if not bound:
        raise ServingError(f"gRPC port {host}:{port} is in use (or not bindable); stop the other "
                        "server or pass another --port (0: any free port, -1: no gRPC)")
    return server, bound
