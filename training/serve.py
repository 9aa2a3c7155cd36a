"""`python -m training serve`: a local stand-in for tensorflow_model_server (REST and gRPC).

It takes tensorflow_model_server's own flags, so the same command line works
with either, and speaks its REST API and gRPC PredictionService (Predict,
GetModelMetadata) for the models we export. It is for machines without TF
Serving (no pip package ships the server binary); use TF Serving itself in
production.
"""

import logging
from pathlib import Path

from werkzeug.serving import make_server

from training.rest_api import RestApp
from training.serving_repository import ModelRepository, parse_model_config_file


def add_flags(parser):
    """tensorflow_model_server's flags that apply to a REST-only stand-in, plus --host."""
    parser.add_argument("--model_name", default="default", help="name of a single model")
    parser.add_argument("--model_base_path", help="directory holding <int version>/ SavedModels")
    parser.add_argument("--model_config_file", help="model_config_list text proto (many models)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0: any free)")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free, -1: off)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for new versions")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default loopback only; 0.0.0.0 exposes it)")
    parser.add_argument("--max_body_bytes", type=int, default=16 * 1024 * 1024,
                        help="largest accepted request body")


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
        from training.serving_grpc import make_grpc_server

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

