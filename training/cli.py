"""`python -m training train|evaluate|export|list`: the command line of the pipeline."""

import argparse
import json
import os
import sys

from apps.base import DataNotFoundError
from apps.registry import UnknownAppError, available_apps
from training import config as config_lib
from training.callbacks import Preempted, TrainingDiverged
from training.export import ExportError

# Errors a user causes and can fix: print the message alone, no traceback.
# Anything else is a bug and keeps its traceback.
USER_ERRORS = (config_lib.ConfigError, DataNotFoundError, TrainingDiverged, ExportError,
               UnknownAppError, FileNotFoundError)


def _apps_epilog():
    lines = ["apps:"]
    for name, cls in available_apps().items():
        lines.append(f"  {name:24s} {cls.description}")
    lines.append("")
    lines.append("config keys (--set key=value; defaults of the first app shown, each app sets its own):")
    first = next(iter(available_apps().values()))
    lines += ["  " + line for line in config_lib.describe(first.config_class)]
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train, evaluate and export Keras application templates.",
        epilog=_apps_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train, evaluate and export an app",
                           epilog=_apps_epilog(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--app", help="app name (see `list`); optional when --config names one")
    train.add_argument("--config", help="YAML file of config keys (see configs/)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config key, e.g. --set epochs=3 --set model.arch=mobilenet_small")
    train.add_argument("--workers", metavar="HOST:PORT,HOST:PORT",
                       help="multi-worker training: every worker's address, same list on each")
    train.add_argument("--task-index", type=int, default=0,
                       help="this worker's position in --workers (0 is the chief)")

    evaluate = sub.add_parser("evaluate", help="test metrics of a finished run")
    evaluate.add_argument("--run", required=True, help="run directory, e.g. runs/image_classification/<stamp>")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a data key, e.g. --set data.limit=1000")

    export = sub.add_parser("export", help="export a finished run as a SavedModel for TF Serving")
    export.add_argument("--run", required=True, help="run directory")
    export.add_argument("--name", help="model name under the export dir (default: the app name)")
    export.add_argument("--export-dir", help="export root (default: config export.dir)")

    generate = sub.add_parser("generate", help="sample text from a language-model run")
    generate.add_argument("--run", required=True, help="run directory of a sequence_modeling "
                          "task=language_model run")
    generate.add_argument("--prompt", default="", help="text to continue")
    generate.add_argument("--length", type=int, default=300, help="characters to sample")
    generate.add_argument("--temperature", type=float, default=0.8,
                          help="< 1 sharper, > 1 more random, 0 always the likeliest character")
    generate.add_argument("--seed", type=int, help="seed for reproducible samples")

    sub.add_parser("list", help="list the available apps")

    serve = sub.add_parser(
        "serve", help="local stand-in for TF Serving's REST API (same flags as tensorflow_model_server)")
    from training.serve import add_flags

    add_flags(serve)

    predict = sub.add_parser("predict", help="ask a served model about image files, .npy files or texts")
    predict.add_argument("items", nargs="+", help="image paths (.png/.jpg), .npy arrays, or texts")
    predict.add_argument("--model", required=True, help="model name on the server")
    predict.add_argument("--url", default="http://127.0.0.1:8501", help="REST base URL")
    predict.add_argument("--grpc", metavar="HOST:PORT", help="use gRPC (PredictionService) instead of REST")
    predict.add_argument("--version", type=int, help="a specific model version")

    new_app = sub.add_parser("new-app", help="scaffold apps/NAME.py, configs/NAME.yaml, tests/test_NAME.py")
    new_app.add_argument("name", help="app name, a lowercase identifier such as my_task")
    new_app.add_argument("--root", default=".", help="project root to write into (default: .)")
    return parser


def run(args):
    from training import run as pipeline  # imports TensorFlow: only when needed

    if args.command == "list":
        for name, cls in available_apps().items():
            print(f"{name:24s} {cls.description}")
    elif args.command == "train":
        overrides = list(args.set)
        if args.workers:
            from training.strategy import worker_tf_config

            os.environ["TF_CONFIG"] = worker_tf_config(args.workers, args.task_index)
            overrides.append("strategy=multi_worker")
        config = pipeline.load_config(args.app, args.config, overrides)
        metrics = pipeline.train(config)
        test = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
        print(f"\nTest: {test}")
        print(f"Run directory: {metrics['run_dir']}")
        if "export" in metrics:
            print(f"Exported SavedModel: {metrics['export']}")
    elif args.command == "evaluate":
        print(json.dumps(pipeline.evaluate(args.run, args.set), indent=2))
    elif args.command == "export":
        print(pipeline.export_run(args.run, args.name, args.export_dir))
    elif args.command == "generate":
        _, app, model = pipeline.load_run(args.run)
        if not hasattr(app, "generate"):
            raise config_lib.ConfigError(f"App {app.name} does not generate text; train "
                                         "sequence_modeling with --set task=language_model")
        print(app.generate(model, args.prompt, args.length, args.temperature, args.seed))
    elif args.command == "serve":
        from training.serve import serve

        return serve(args)
    elif args.command == "predict":
        from training import client

        if args.grpc:
            result = client.grpc_predict(args.grpc, args.model, args.items, args.version)
        else:
            result = client.rest_predict(args.url, args.model, args.items, args.version)
        print(json.dumps(result, indent=2))
    elif args.command == "new-app":
        from training.scaffold import new_app

        for path in new_app(args.name, args.root):
            print(f"wrote {path}")
        print(f"next: python -m pytest tests/test_{args.name}.py, then replace build_data/build_model")


def main(argv=None):
    args = build_parser().parse_args(argv)
    from training.client import ClientError

    try:
        return run(args) or 0
    except Preempted as e:
        print(f"preempted: {e}", file=sys.stderr)
        return 128 + 15  # the conventional status of a SIGTERM
    except USER_ERRORS + (ClientError,) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
