"""`train`: one run of an app, or its help (the app's keys) or its resolved config."""

import argparse
import contextlib
import os
import sys

from training import config as config_lib
from training import registry
from training.cli.text import PROG, add_config_flags, apps_text, keys_text
from training.runtime import backend


def add(sub):
    # add_help=False: --help is answered after parsing, once --app or --config is known.
    train = sub.add_parser("train", help="train, evaluate and export an app", add_help=False,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.set_defaults(handler=run, train_parser=train)
    train.add_argument("-h", "--help", action="store_true",
                       help="show this help; with --app or --config, that app's keys and defaults")
    add_config_flags(
        train, "app name (see `list`); optional when --config names one",
        "YAML file of config keys (`presets` lists the shipped ones)",
        "override one config key, e.g. --set epochs=3 --set model.arch=mobilenet_small")
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved config (defaults < --config < --set) as YAML and exit")
    train.add_argument("--workers", metavar="HOST:PORT,HOST:PORT",
                       help="multi-worker training: every worker's address, same list on each")
    train.add_argument("--task-index", type=int, default=0,
                       help="this worker's position in --workers (0 is the chief)")


def run(args):
    overrides = list(args.set)
    if args.help:
        print(train_help(args.train_parser, args))
        return 0
    if args.workers:
        from training.runtime.strategy import worker_tf_config

        os.environ["TF_CONFIG"] = worker_tf_config(args.workers, args.task_index)
        overrides.append("strategy=multi_worker")
    config = registry.load_config(args.app, args.config, overrides)
    backend.select(config)  # before anything imports Keras
    if args.print_config:
        print(config_lib.to_yaml(config, resolve_for_print(config)), end="")
        return 0
    from training import pipeline  # imports TensorFlow

    print_results(pipeline.train(config))
    return 0


def resolve_for_print(config):
    """Resolve the keys a run would choose (`auto` numbers, switches and the compute type) as
    it would; their lines go to stderr, so stdout stays YAML. Returns config.yaml's comments."""
    if not config_lib.resolved_at_run(config):
        return {}
    from training.pipeline import resolve_run_length  # imports TensorFlow
    from training.runtime import precision

    comments = {}
    with contextlib.redirect_stdout(sys.stderr):
        if config.runtime.mixed_precision == precision.AUTO:
            choice = precision.resolve(config, tpu=config.strategy == "tpu")
            comments["runtime.mixed_precision"] = choice.comment()
        resolve_run_length(config)
    return comments


def train_help(train_parser, args):
    """`train --help`: the options, then the keys of the app named by --app or --config (with
    its defaults), or else the keys every app shares."""
    parts = [train_parser.format_help().rstrip()]
    if args.app or args.config:
        name, _ = config_lib.named_app(args.app, args.config)
        parts.append(f"config keys of {name} (--set KEY=VALUE), with its defaults:\n"
                     + keys_text(registry.config_class(name)()))
    else:
        parts.append("config keys every app has (--set KEY=VALUE); each app sets its own defaults "
                     f"and adds keys:\n  {PROG} train --app NAME --help\n"
                     + keys_text(config_lib.Config(), defaults=False))
        parts.append("apps:\n" + apps_text("  "))
    return "\n\n".join(parts)


def print_results(metrics):
    """The end of `train`: each test metric (the task's headline among them: accuracy,
    perplexity, MAE), the app's own scalar figures, the example counts and where things are."""
    from training.pipeline.report import report_scalars

    test = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
    baseline = metrics.get("baseline", {}).get("test")
    if test and baseline:
        test += (f" (majority-class baseline: accuracy {baseline['accuracy']:.4f}, always "
                 f"{baseline['class']!r})")
    if test:
        print(f"\nTest on {metrics['test_examples']:,} examples: {test}")
    if metrics.get("per_class"):
        print(per_class_table(metrics))
    if metrics.get("multi_label"):
        from training.pipeline.multi_label import table

        print(table(metrics))
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


SHOWN_CLASS_ROWS = 20


def per_class_table(metrics):
    """The test split's per-class figures, weakest F1 first (at most SHOWN_CLASS_ROWS rows),
    then the averages, balanced accuracy and calibration."""
    from training.pipeline.diagnostics import weakest_first  # imports TensorFlow, loaded by now

    rows = weakest_first(metrics["per_class"])
    width = min(max(12, *(len(name) for name, _ in rows)), 28)
    lines = [f"Per class on the test split, weakest F1 first:\n  {'class':{width}s}  precision  recall"
             "     f1  support"]
    for name, r in rows[:SHOWN_CLASS_ROWS]:
        shown = name if len(name) <= width else name[:width - 1] + "\u2026"
        lines.append(f"  {shown:{width}s}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:5.3f}  "
                     f"{r['support']:7,d}")
    if len(rows) > SHOWN_CLASS_ROWS:
        lines.append(f"  ... {len(rows) - SHOWN_CLASS_ROWS} more in metrics.json (per_class)")
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        a = metrics[key]
        lines.append(f"  {label:{width}s}  {a['precision']:9.3f}  {a['recall']:6.3f}  {a['f1']:5.3f}")
    mistakes = metrics.get("mistakes", 0)
    lines.append(f"  balanced accuracy {metrics['balanced_accuracy']:.4f}; expected calibration error "
                 f"{metrics['calibration']['ece']:.4f} (calibration.png); "
                 + (f"{mistakes:,} mistakes, the most confident first in mistakes.csv" if mistakes
                    else "no mistakes on the test split"))
    return "\n".join(lines)
