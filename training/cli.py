"""The command line, `python -m training` or `kat`: train, tune, evaluate, export, generate,
list, data, serve, predict, new-app.

Nothing is imported here that loads TensorFlow: `--help` and `list` answer at once, and each
command imports what it runs. `train --app NAME --help` lists that app's config keys, their
defaults and choices, from its config classes.
"""

import argparse
import contextlib
import importlib.abc
import importlib.util
import json
import os
import sys
from pathlib import Path

# TensorFlow's C++ start-up lines, unless the user asks for them (KAT_TF_LOGS=1): on a machine
# without a GPU they include "E0000 ... failed call to cuInit: INTERNAL: CUDA error", which
# reads like a failure. TF_CPP_MIN_LOG_LEVEL silences what TF logs once its logging is set
# up; what it writes before (CUDA probing while its libraries load) goes to file descriptor 2
# directly, so TensorFlow is imported with that descriptor on /dev/null (QuietImport).
TF_LOGS = os.environ.get("KAT_TF_LOGS", "") not in ("", "0")


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, and loads it with file descriptor 2 on /dev/null (an
    error still raises; only what TF's C++ libraries print is dropped)."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: find the real spec without this finder
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def quietly(module):
                with _stderr_to_devnull():
                    load(module)

            spec.loader.exec_module = quietly
        return spec


if not TF_LOGS:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, QuietImport())

from serving.flags import add_flags as add_serving_flags  # noqa: E402
from training import (  # noqa: E402
    backend,  # noqa: E402
    registry,  # noqa: E402
)
from training import config as config_lib  # noqa: E402
from training.errors import USER_ERRORS, CommandError, ConfigError, Preempted  # noqa: E402

PROG = "kat" if Path(sys.argv[0]).name == "kat" else "python -m training"
KEYS_HINT = (f"Each app's config keys, with its defaults and choices:\n  {PROG} train --app NAME --help\n"
             f"The resolved config of a run, without running it:\n"
             f"  {PROG} train --config FILE [--set KEY=VALUE ...] --print-config")


def apps_text(indent=""):
    """The installed apps, a line each: name and description."""
    names = registry.app_names()
    if not names:
        return f"{indent}none installed: run `make setup` (or `pip install -e .`)"
    return "\n".join(f"{indent}{name:26s}{registry.describe(name)}" for name in names)


def keys_text(config, defaults=True):
    """One line per config key of `config`: `key = default` (or the key alone), help, and its
    choices or bounds."""
    rows = config_lib.describe(config)
    left = [f"{key} = {value!r}" if defaults else key for key, value, _, _ in rows]
    width = min(max(map(len, left)), 44)
    lines = []
    for text, (_, _, help_text, allowed) in zip(left, rows):
        if isinstance(allowed, tuple):
            allowed = " | ".join(map(str, allowed))
        note = help_text + (f" [{allowed}]" if allowed else "")
        if len(text) > width:  # a long default gets a line of its own
            lines += [f"  {text}", f"  {'':{width}s}  {note}"]
        else:
            lines.append(f"  {text:{width}s}  {note}".rstrip())
    return "\n".join(lines)


def train_help(train_parser, args):
    """`train --help`: the options, then the keys of the app named by --app or --config (with
    its defaults), or else the keys every app shares."""
    parts = [train_parser.format_help().rstrip()]
    if args.app or args.config:
        name, _ = config_lib.named_app(args.app, args.config)
        parts.append(f"config keys of {name} (--set KEY=VALUE), with its defaults:\n"
                     + keys_text(registry.get_app(name).config_class()))
    else:
        parts.append("config keys every app has (--set KEY=VALUE); each app sets its own defaults "
                     f"and adds keys:\n  {PROG} train --app NAME --help\n"
                     + keys_text(config_lib.Config(), defaults=False))
        parts.append("apps:\n" + apps_text("  "))
    return "\n\n".join(parts)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train, evaluate and export Keras application templates.",
        epilog="apps:\n" + apps_text("  ") + "\n\n" + KEYS_HINT,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # add_help=False: --help is answered after parsing, once --app or --config is known.
    train = sub.add_parser("train", help="train, evaluate and export an app", add_help=False,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.set_defaults(train_parser=train)
    train.add_argument("-h", "--help", action="store_true",
                       help="show this help; with --app or --config, that app's keys and defaults")
    train.add_argument("--app", help="app name (see `list`); optional when --config names one")
    train.add_argument("--config", help="YAML file of config keys (see configs/)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config key, e.g. --set epochs=3 --set model.arch=mobilenet_small")
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved config (defaults < --config < --set) as YAML and exit")
    train.add_argument("--workers", metavar="HOST:PORT,HOST:PORT",
                       help="multi-worker training: every worker's address, same list on each")
    train.add_argument("--task-index", type=int, default=0,
                       help="this worker's position in --workers (0 is the chief)")

    tune = sub.add_parser(
        "tune", help="hyperparameter search with KerasTuner: every trial a training run",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=TUNE_EPILOG)
    tune.add_argument("--app", help="app name; optional when --config names one")
    tune.add_argument("--config", help="YAML file of config keys: the config each trial starts from")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override one config key of every trial")
    tune.add_argument("--space", required=True, metavar="SPACE.yaml",
                      help="config keys and their ranges or choices (see configs/tune_*.yaml)")
    tune.add_argument("--algorithm", default="hyperband", metavar="hyperband|bayesian|random",
                      help="KerasTuner's oracle (default hyperband: trials of up to the config's "
                           "epochs, the most promising trained longest)")
    tune.add_argument("--max-trials", type=int, help="stop after this many trials (default: "
                      "one Hyperband iteration, or 10 trials of the others)")
    tune.add_argument("--budget-minutes", type=float,
                      help="start no trial after this much wall time (counted across resumes)")
    tune.add_argument("--objective", default="val_loss", metavar="METRIC[:min|max]",
                      help="the history.csv column trials are ranked by (default val_loss)")
    tune.add_argument("--dir", help="the search's directory (default runs/tune/<stamp>, or the "
                      "unfinished search of the same command); needed for a distributed search")

    evaluate = sub.add_parser("evaluate", help="test metrics of a finished run")
    evaluate.add_argument("--run", required=True,
                          help="run directory, e.g. runs/image_classification/<stamp>")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a data key, e.g. --set data.limit=1000")
    evaluate.add_argument("--artifact", metavar="PATH",
                          help="score this export of the run instead of its model: a SavedModel "
                               "version dir (export/NAME/1) or a .tflite file")

    export = sub.add_parser("export", help="export a finished run: a SavedModel for TF Serving, "
                            "or a LiteRT model for devices")
    export.add_argument("--run", required=True, help="run directory")
    export.add_argument("--name", help="model name under the export dir (default: the app name)")
    export.add_argument("--export-dir", help="export root (default: config export.dir)")
    export.add_argument("--format", default="saved_model", metavar="saved_model|litert",
                        help="saved_model: EXPORT_DIR/NAME/VERSION (TF Serving); litert: "
                             "EXPORT_DIR/NAME/litert/VERSION/model.tflite")
    export.add_argument("--quantize", metavar="none|dynamic|float16|int8",
                        help="litert only: none (float32), dynamic (int8 weights), float16, or "
                             "int8 (full integer, calibrated on training examples)")
    export.add_argument("--int8-io", action="store_true",
                        help="with --quantize int8: int8 inputs and outputs too (default: float)")
    export.add_argument("--per-tensor", action="store_true",
                        help="with --quantize int8: one weight scale per tensor, not per output "
                             "channel: smaller files (mobilenet_small: a fifth smaller)")

    generate = sub.add_parser("generate", help="sample text from a language-model run")
    generate.add_argument("--run", required=True, help="run directory of a sequence_modeling "
                          "task=language_model run")
    generate.add_argument("--prompt", default="", help="text to continue")
    generate.add_argument("--length", type=int, default=300, help="characters to sample")
    generate.add_argument("--temperature", type=float, default=0.8,
                          help="< 1 sharper, > 1 more random, 0 always the likeliest character")
    generate.add_argument("--seed", type=int, help="seed for reproducible samples")

    sub.add_parser("list", help="list the installed apps")

    data = sub.add_parser("data", help="what a run would train on: examples and classes per "
                          "split, files found and skipped, samples per class (data_preview.png)")
    data.add_argument("--app", help="app name; optional when --config names one")
    data.add_argument("--config", help="YAML file of config keys, as for train")
    data.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override one config key, as for train (e.g. --set data.dir=photos)")
    data.add_argument("--out", default=".", help="where data_preview.png goes (default: .)")

    serve = sub.add_parser(
        "serve", help="local stand-in for TF Serving (same flags as tensorflow_model_server)")
    add_serving_flags(serve)

    predict = sub.add_parser("predict", help="predict with a run's model (--run) or ask a served "
                             "one (--model): image files, texts, CSV rows or .npy files")
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

    new_app = sub.add_parser("new-app", help="scaffold apps/NAME.py, configs/NAME.yaml, "
                             "tests/test_NAME.py and its entry point in setup.cfg")
    new_app.add_argument("name", help="app name, a lowercase identifier such as my_task")
    new_app.add_argument("--root", default=".", help="project root to write into (default: .)")
    return parser


TUNE_EPILOG = """SPACE.yaml maps config keys to ranges or choices, e.g.
  optimizer.learning_rate: {log_uniform: [1e-4, 1e-2]}
  model.width_multiplier: [0.5, 0.75, 1.0]
  batch_size: {int: [32, 256]}
Results in the search's dir: trials.csv, trials.png, best.yaml (train --config best.yaml).
Killed, the same command resumes it. Several machines: KerasTuner's distributed mode, the same
command and --dir everywhere, with KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT and
KERASTUNER_TUNER_ID (chief on the one that holds the oracle, tuner0, tuner1, ... on workers)."""


def print_search(summary):
    """The end of `tune`: counts, the best trial and where its config is."""
    print(f"\nSearch {summary['dir']}: {summary['completed']} trials completed, "
          f"{summary['failed']} failed")
    best = summary["best"]
    if best is None:
        print("No trial completed; see trials.csv for the errors")
        return
    name = summary["objective"]
    shown = {k: v for k, v in best.items() if k not in ("trial", "status", "run_dir", "error", name)}
    print(f"Best trial {best['trial']} ({name} {best[name]:.4f}): "
          + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in shown.items()))
    if summary["importance"]:
        print("Share of the variance of " + name + " each key explains: "
              + ", ".join(f"{k} {v:.0%}" for k, v in summary["importance"].items()))
    print(f"Train it: {PROG} train --config {summary['best_config']}")


def generation_progress(done, total):
    """`generate`'s progress on stderr (the text goes to stdout): redrawn on a terminal, a line
    per quarter in a log."""
    if sys.stderr.isatty():
        print(f"\rgenerating: {done}/{total} characters", end="\n" if done == total else "",
              file=sys.stderr, flush=True)
    elif done * 4 // total != (done - 1) * 4 // total:
        print(f"generating: {done}/{total} characters", file=sys.stderr, flush=True)


def print_results(metrics):
    """The end of `train`: each test metric (the task's headline among them: accuracy,
    perplexity, MAE), the app's own scalar figures, the example counts and where things are."""
    from training.run import report_scalars

    test = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
    baseline = metrics.get("baseline", {}).get("test")
    if test and baseline:
        test += (f" (majority-class baseline: accuracy {baseline['accuracy']:.4f}, always "
                 f"{baseline['class']!r})")
    if test:
        print(f"\nTest on {metrics['test_examples']:,} examples: {test}")
    extra = report_scalars(metrics)
    if extra:
        print("Reported: " + ", ".join(f"{k} {v:.4g}" for k, v in extra.items()))
    validated = (f", validated on {metrics['validation_examples']:,}"
                 if metrics["validation_examples"] else ", no validation split")
    print(f"Trained on {metrics['train_examples']:,} examples{validated}; "
          f"{metrics['epochs_completed']} epoch(s) in {metrics['train_seconds']:.0f} s")
    print(f"Run directory: {metrics['run_dir']}")
    if "export" in metrics:
        print(f"Exported SavedModel: {metrics['export']}")
    for warning in metrics.get("warnings", []):
        print(warning)


def _serving_module(name):
    """serving.`name`, or a CommandError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(f"serving.{name}")
    except ImportError as e:
        raise CommandError(f"This command needs the serving extra ({e}): run "
                           "`pip install -e .[serving]` (make serve installs it)") from None


def run(args):
    if args.command == "list":
        print(apps_text())
    elif args.command == "train":
        overrides = list(args.set)
        if args.help:
            print(train_help(args.train_parser, args))
            return 0
        if args.workers:
            from training.strategy import worker_tf_config

            os.environ["TF_CONFIG"] = worker_tf_config(args.workers, args.task_index)
            overrides.append("strategy=multi_worker")
        config = config_lib.load_config(args.app, args.config, overrides)
        backend.select(config)  # before anything imports Keras
        if args.print_config:
            if config_lib.resolved_at_run(config):  # the numbers the run would use
                from training.run import resolve_run_length

                with contextlib.redirect_stdout(sys.stderr):  # its line; stdout stays YAML
                    resolve_run_length(config)
            print(config_lib.to_yaml(config), end="")
            return 0
        from training import run as pipeline  # imports TensorFlow

        print_results(pipeline.train(config))
    elif args.command == "data":
        config = config_lib.load_config(args.app, args.config, args.set)
        backend.select(config)
        from training.data_preview import inspect  # imports TensorFlow

        inspect(config, args.out)
    elif args.command == "tune":
        config = config_lib.load_config(args.app, args.config, args.set)
        backend.select(config)
        from training.tuning import tune  # imports TensorFlow

        print_search(tune(config, args.space, args.algorithm, args.max_trials,
                          args.budget_minutes, args.objective, args.dir))
    elif args.command == "evaluate":
        from training import run as pipeline

        print(json.dumps(pipeline.evaluate(args.run, args.set, args.artifact), indent=2))
    elif args.command == "export":
        from training import run as pipeline

        print(pipeline.export_run(args.run, args.name, args.export_dir, args.format, args.quantize,
                                  args.int8_io, args.per_tensor))
    elif args.command == "generate":
        from training import run as pipeline

        _, app, model = pipeline.load_run(args.run)
        if not hasattr(app, "generate"):
            raise ConfigError(f"App {app.name} does not generate text; train "
                                         "sequence_modeling with --set task=language_model")
        print(app.generate(model, args.prompt, args.length, args.temperature, args.seed,
                           progress=generation_progress))
    elif args.command == "serve":
        server = _serving_module("server")
        try:
            return server.serve(args)
        except server.ServingError as e:  # serving does not know training's errors
            raise CommandError(str(e)) from None
    elif args.command == "predict" and args.run:
        from training import predict
        from training.run import load_run

        if args.model:
            raise ConfigError("Give --run DIR (predict in process) or --model NAME (ask a "
                              "server), not both")
        _, app, model = load_run(args.run)
        results = predict.predict(app, model, args.items, args.text)
        print(json.dumps(results, indent=2) if args.json else
              predict.as_text(results, app.class_names(), args.top))
    elif args.command == "predict":
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
    elif args.command == "new-app":
        from training.scaffold import new_app

        for path in new_app(args.name, args.root):
            print(f"wrote {path}")
        print(f"next: make test ARGS=tests/test_{args.name}.py (it reinstalls the project, which "
              f"registers the app's entry point), then replace build_data/build_model")


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)  # the epilog lists the installed apps
        return run(args) or 0
    except Preempted as e:
        print(f"preempted: {e}", file=sys.stderr)
        return 128 + 15  # the conventional status of a SIGTERM
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
