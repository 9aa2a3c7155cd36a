"""Semi-supervised DBN: pretrained vs randomly initialised net on the same N labels, over seeds.

Pretrains the RBM stack once (or reuses one: --pretrained-from RUN_DIR), then for
each seed fine-tunes on a different random subset of N labels and trains the same
net from random weights on the same subset (presets/dbn_semi_supervised.yaml).
Prints JSON with each seed's accuracies and the mean gain in points; exits
non-zero if a figure is missing or NaN.
"""

import argparse
import json
import shutil
from pathlib import Path

import harness

from training.pipeline import train
from training.registry import load_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="presets/dbn_semi_supervised.yaml")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--pretrained-from", help="a run dir whose pretraining/ to reuse")
    parser.add_argument("--out", default=str(harness.OUT / "dbn_semi_supervised"))
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    args = parser.parse_args()
    out = Path(args.out)
    pretrained = Path(args.pretrained_from) / "pretraining" if args.pretrained_from else None
    seeds = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        run_dir = out / f"seed_{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, not a resume of the last one
        if pretrained is not None:  # the app loads RBMs it finds in run_dir/pretraining
            shutil.copytree(pretrained, run_dir / "pretraining", dirs_exist_ok=True)
        config = load_config(None, args.config, [f"seed={seed}", f"run_dir={run_dir}",
                                                 "export.enabled=false", *args.set])
        metrics = train(config)
        seeds.append({"seed": seed, "pretrained": metrics["test"]["accuracy"],
                     "random_init": metrics["random_init_test"]["accuracy"],
                     "gain_points": metrics["pretraining_gain_points"]})
        pretrained = pretrained or run_dir / "pretraining"
        print(json.dumps(seeds[-1]), flush=True)
    mean = lambda key: sum(r[key] for r in seeds) / len(seeds)  # noqa: E731
    result = {"labeled": config.data.labeled, "seeds": seeds,
              "mean_pretrained": mean("pretrained"), "mean_random_init": mean("random_init"),
              "mean_gain_points": mean("gain_points")}
    rows = [{"benchmark": f"DBN with {config.data.labeled} labels ({len(seeds)} seeds), pretrained "
                          "vs the same net from random weights, mean test accuracy",
             "measured": f"{result['mean_pretrained']:.2%}",
             "against": f"{result['mean_random_init']:.2%}",
             "ratio": result["mean_pretrained"] / result["mean_random_init"]}]
    harness.record("dbn_semi_supervised", result, rows)


if __name__ == "__main__":
    main()
