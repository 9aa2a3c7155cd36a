"""`serve` (the local TF Serving stand-in) and `predict` (with a run's model in process, or
by asking a server)."""

import importlib
import json

from serving.flags import add_flags as add_serving_flags
from training.errors import CommandError, ConfigError


def add(sub):
    serve = sub.add_parser(
        "serve", help="local stand-in for TF Serving (same flags as tensorflow_model_server)")
    serve.set_defaults(handler=run_serve)
    add_serving_flags(serve)

    predict = sub.add_parser("predict", help="predict with a run's model (--run) or ask a served "
                             "one (--model): image files, texts, CSV rows or .npy files")
    predict.set_defaults(handler=run_predict)
    predict.add_argument("items", nargs="+",
                         help="image files (.png/.jpg), text files or texts, CSV files, .npy arrays")
    predict.add_argument("--run", help="run directory: predict in process, no server needed")
    predict.add_argument("--text", action="store_true",
                         help="the items are texts, even where they look like file paths")
    predict.add_argument("--json", action="store_true",
                         help="with --run: print every output as JSON (default: top classes)")
    predict.add_argument("--top", type=int, default=3, help="with --run: classes shown per item")
    predict.add_argument("--model", help="model name on the server")
    predict.add_argument("--url", default="http://127.0.0.1:8501", help="REST base URL")
    predict.add_argument("--grpc", metavar="HOST:PORT", help="use gRPC (PredictionService) instead of REST")
    predict.add_argument("--version", type=int, help="a specific model version")
    predict.add_argument("--signature", default="serving_default",
                         help="signature_name; image_bytes sends image files as encoded bytes")


def _serving_module(name):
    """serving.`name`, or a CommandError naming the extra to install."""
    try:
        return importlib.import_module(f"serving.{name}")
    except ImportError as e:
        raise CommandError(f"This command needs the serving extra ({e}): run "
                           "`pip install -e .[serving]` (make serve installs it)") from None


def run_serve(args):
    server = _serving_module("server")
    try:
        return server.serve(args)
    except server.ServingError as e:  # serving does not know training's errors
        raise CommandError(str(e)) from None


def run_predict(args):
    if args.run:
        return _predict_in_process(args)
    if not args.model:
        raise ConfigError("Give --run DIR to predict with a run's model, or --model NAME to "
                          "ask a server (make serve)")
    client = _serving_module("client")
    try:
        if args.grpc:
            result = client.grpc_predict(args.grpc, args.model, args.items, args.version,
                                         args.signature, args.text)
        else:
            result = client.rest_predict(args.url, args.model, args.items, args.version,
                                         args.signature, args.text)
    except client.ClientError as e:  # serving does not know training's errors
        raise CommandError(str(e)) from None
    print(json.dumps(result, indent=2))
    return 0


def _predict_in_process(args):
    from training.export import predict  # imports TensorFlow
    from training.run_dir import load_run

    if args.model:
        raise ConfigError("Give --run DIR (predict in process) or --model NAME (ask a "
                          "server), not both")
    _, app, model = load_run(args.run)
    results = predict.predict(app, model, args.items, args.text)
    print(json.dumps(results, indent=2) if args.json else
          predict.as_text(results, app.class_names(), args.top))
    return 0
