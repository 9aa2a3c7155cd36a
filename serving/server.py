"""A local stand-in for tensorflow_model_server (REST and gRPC): `python -m training serve`.

It takes tensorflow_model_server's own flags, so the same command line works
with either, and speaks its REST API and gRPC PredictionService (Predict,
GetModelMetadata) for the models we export. It is for machines without TF
Serving (no pip package ships the server binary); use TF Serving itself in
production. Its flags are declared in flags.py.
"""

import logging
from pathlib import Path

from werkzeug.serving import make_server

from serving.layout import parse_model_config_file
from serving.repository import ModelRepository
from serving.rest_api import RestApp


def models_from_flags(args):
    if args.model_config_file:
        return parse_model_config_file(args.model_config_file)
    if not args.model_base_path:
        raise FileNotFoundError("Give --model_base_path=DIR (with --model_name=NAME) or "
                                "--model_config_file=FILE, e.g. export/models.config")
    return {args.model_name: str(Path(args.model_base_path).resolve())}


def make_server_from_flags(args):
    """(werkzeug REST server, gRPC server or None, repository), not yet serving."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request, like TF Serving
    repository = ModelRepository(models_from_flags(args), args.file_system_poll_wait_seconds)
    server = make_server(args.host, args.rest_api_port, RestApp(repository, args.max_body_bytes),
                         threaded=True)
    grpc_server = None
    if args.port >= 0:
        from serving.grpc_api import make_grpc_server

        grpc_server, args.port = make_grpc_server(repository, args.host, args.port)
    return server, grpc_server, repository


def serve(args):
    server, grpc_server, repository = make_server_from_flags(args)
    repository.start_polling()
    if grpc_server is not None:
        grpc_server.start()
    grpc_note = f", gRPC on {args.host}:{args.port}" if grpc_server is not None else ""
    print(f"Local TF Serving stand-in: REST on http://{args.host}:{server.server_port}{grpc_note}; "
          f"serving {', '.join(repository.names())}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        repository.stop()
        if grpc_server is not None:
            grpc_server.stop(grace=1)
        server.server_close()
    return 0

