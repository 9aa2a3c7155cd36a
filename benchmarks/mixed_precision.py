"""bfloat16 mixed precision (runtime.mixed_precision=bfloat16) vs float32, per app, on this machine.

For each case (an app's config, shortened by data.limit and epochs so all fit
in minutes; the tabular app has no real data offline and is left out) the
same run is trained twice from the same seed, once per precision, alternating
which goes first per case: same data, same epochs.
Reported: steady training throughput (`train_examples_per_sec`, which leaves
out the first epoch's tracing) and the test metric. Whether bfloat16 pays off
depends on the CPU: without AVX512_BF16 or AMX every bfloat16 op converts to
and from float32. The rows name the CPU and whether it has bfloat16 units, and
the JSON records what `runtime.mixed_precision: auto` picks here.

    .venv/bin/python benchmarks/mixed_precision.py [--cases image_resnet,lstm]
"""

import argparse

import harness

from training.pipeline import train
from training.registry import load_config
from training.runtime import precision

# name: (config, overrides, metric). One epoch of the image app's full data: its
# BatchNorm moving statistics (momentum 0.99) need a few hundred steps before
# inference means anything (200 steps of 12800 images gave 13% test accuracy in
# either precision). The other apps learn in fewer steps.
CASES = {
    "image_resnet": ("presets/fashion_mnist_default.yaml", ["epochs=1"], "accuracy"),
    "sequence_lstm": ("presets/sequence_fashion_mnist_lstm.yaml",
                      ["data.limit=12800", "epochs=2"], "accuracy"),
    "dbn": ("presets/dbn_fashion_mnist.yaml",
            ["data.limit=12800", "epochs=2", "pretrain.epochs=1"], "accuracy"),
}


def run(case, mixed, out):
    path, overrides, _ = CASES[case]
    config = load_config(None, path, [*overrides, f"runtime.mixed_precision={mixed}",
                                      "runtime.verbose=0", "callbacks.tensorboard=false",
                                      "export.enabled=false", f"run_dir={out}"])
    return train(config)


def cpu_text():
    """The CPU's name and whether it has bfloat16 units, for the rows."""
    flags = precision.cpu_flags() or frozenset()
    units = [f for f in precision.CPU_BFLOAT16_FLAGS if f in flags]
    return f"{harness.machine()['cpu']}, " + (f"with {units[0]}" if units else "no bfloat16 units")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="of " + ", ".join(CASES))
    args = parser.parse_args()
    auto = precision.choose("auto", precision.probe("tensorflow"))
    figures, rows = {"cpu": cpu_text(), "auto_picks": auto.as_dict()}, []
    print(auto.line(), flush=True)
    for i, case in enumerate(args.cases.split(",")):
        metric = CASES[case][2]
        order = ("false", "bfloat16") if i % 2 == 0 else ("bfloat16", "false")
        results = {mixed: run(case, mixed, harness.OUT / "mixed_precision" / f"{case}_{mixed}")
                   for mixed in order}
        figures[case] = {
            name: {"examples_per_sec": m["train_examples_per_sec"],
                   "train_seconds": m["train_seconds"], "test": m["test"]}
            for name, m in (("float32", results["false"]), ("bfloat16", results["bfloat16"]))}
        f32, bf16 = figures[case]["float32"], figures[case]["bfloat16"]
        speed = bf16["examples_per_sec"] / f32["examples_per_sec"]
        print(f"{case}: bfloat16 {speed:.2f}x float32's speed; test {metric} "
              f"{bf16['test'][metric]:.4f} vs {f32['test'][metric]:.4f}", flush=True)
        rows.append({"benchmark": f"bfloat16 vs float32 training speed, {case} on {figures['cpu']} "
                                  f"(test {metric} {bf16['test'][metric]:.2%} vs "
                                  f"{f32['test'][metric]:.2%} at equal epochs)",
                     "measured": f"{bf16['examples_per_sec']:.0f} examples/s",
                     "against": f"{f32['examples_per_sec']:.0f} examples/s", "ratio": speed})
    harness.record("mixed_precision", figures, rows)


if __name__ == "__main__":
    main()
