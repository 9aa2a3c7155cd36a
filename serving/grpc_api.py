"""gRPC PredictionService (Predict, GetModelMetadata) for the local TF Serving stand-in.

Uses tensorflow-serving-api's generated servicer, so a client written for
TF Serving (PredictionServiceStub) talks to it unchanged.
"""

from concurrent import futures

import grpc
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

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
            tensors = {k: tf.constant(tf.make_ndarray(v), dtype=specs[k].dtype)
                       for k, v in request.inputs.items()}
            outputs = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e).splitlines()[0])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = loaded.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = name
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
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


def make_grpc_server(repository, host, port, workers=8):
    """A started-on-demand gRPC server; returns (server, bound port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repository), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, bound
