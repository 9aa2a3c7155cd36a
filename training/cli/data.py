"""`data`: what a run would train on, without training."""

from training import registry
from training.cli.text import add_config_flags
from training.runtime import backend


def add(sub):
    data = sub.add_parser("data", help="what a run would train on: examples and classes per "
                          "split, files found and skipped, samples per class (data_preview.png)")
    data.set_defaults(handler=run)
    add_config_flags(data, "app name; optional when --config names one",
                     "YAML file of config keys, as for train",
                     "override one config key, as for train (e.g. --set data.dir=photos)")
    data.add_argument("--out", default=".", help="where data_preview.png goes (default: .)")


def run(args):
    config = registry.load_config(args.app, args.config, args.set)
    backend.select(config)
    from training.pipeline.data_preview import inspect  # imports TensorFlow

    inspect(config, args.out)
    return 0
