"""`tune`: a hyperparameter search, every trial a training run."""

import argparse
from pathlib import Path

from training import presets, registry
from training.cli.text import PROG, add_config_flags
from training.runtime import backend

EPILOG = """SPACE.yaml maps config keys to ranges or choices, e.g.
  optimizer.learning_rate: {log_uniform: [1e-4, 1e-2]}
  model.width_multiplier: [0.5, 0.75, 1.0]
  batch_size: {int: [32, 256]}
Results in the search's dir: trials.csv, trials.png, best.yaml (train --config best.yaml).
Killed, the same command resumes it. Several machines: KerasTuner's distributed mode, the same
command and --dir everywhere, with KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT and
KERASTUNER_TUNER_ID (chief on the one that holds the oracle, tuner0, tuner1, ... on workers)."""


def add(sub):
    tune = sub.add_parser(
        "tune", help="hyperparameter search with KerasTuner: every trial a training run",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    tune.set_defaults(handler=run)
    add_config_flags(tune, "app name; optional when --config names one",
                     "YAML file of config keys: the config each trial starts from",
                     "override one config key of every trial")
    tune.add_argument("--space", required=True, metavar="SPACE.yaml",
                      help="config keys and their ranges or choices: a YAML file, or a shipped search "
                      "space by name (`presets` lists them, e.g. tune_fashion_mnist)")
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


def run(args):
    config = registry.load_config(args.app, args.config, args.set)
    backend.select(config)
    from training.tuning import tune  # imports TensorFlow

    print_search(tune(config, space_file(args.space), args.algorithm, args.max_trials,
                      args.budget_minutes, args.objective, args.dir))
    return 0


def space_file(value):
    """--space: a YAML file, or the name of a preset that is a search space."""
    if Path(value).is_file() or "/" in value or value.endswith((".yaml", ".yml")):
        return value
    return str(presets.get(value).path)


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
