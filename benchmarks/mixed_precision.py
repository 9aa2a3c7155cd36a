"""bfloat16 mixed precision (runtime.mixed_precision=true) vs float32, per app, on this machine.

For each case (an app's config, shortened by data.limit and epochs so all fit
in minutes; the tabular app has no real data offline and is left out) the
same run is trained twice from the same seed, once per precision, alternating
which goes first per case: same data, same epochs.
Reported: steady training throughput (`train_examples_per_sec`, which leaves
out the first epoch's tracing) and the test metric. Whether bfloat16 pays off
depends on the CPU: without AVX512_BF16 or AMX every bfloat16 op converts to
and from float32 (see the JSON's `cpu_flags`).

    .venv/bin/python benchmarks/mixed_precision.py [--cases image_resnet,lstm]
"""

import argparse

import harness
import keras

from training.pipeline import train
from training.registry import load_config

# name: (config, overrides, metric). One epoch of the image app's full data: its
# BatchNorm moving statistics (momentum 0.99) need a few hundred steps before
# inference means anything (200 steps of 12800 images gave 13% test accuracy in
# either precision). The other apps learn in fewer steps.
CASES = {
    "image_resnet": ("configs/fashion_mnist_default.yaml", ["epochs=1"], "accuracy"),
    "sequence_lstm": ("configs/sequence_fashion_mnist_lstm.yaml",
                      ["data.limit=12800", "epochs=2"], "accuracy"),
    "dbn": ("configs/dbn_fashion_mnist.yaml",
            ["data.limit=12800", "epochs=2", "pretrain.epochs=1"], "accuracy"),
}


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if "bf16" in f or "amx" in f or "vnni" in f)


def run(case, mixed, out):
    path, overrides, _ = CASES[case]
    config = load_config(None, path, [*overrides, f"runtime.mixed_precision={str(mixed).lower()}",
                                      "runtime.verbose=0", "callbacks.tensorboard=false",
                                      "export.enabled=false", f"run_dir={out}"])
    try:
        return train(config)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="of " + ", ".join(CASES))
    args = parser.parse_args()
    figures, rows = {"cpu_flags": cpu_flags()}, []
    for i, case in enumerate(args.cases.split(",")):
        metric = CASES[case][2]
        order = (False, True) if i % 2 == 0 else (True, False)
        results = {mixed: run(case, mixed, harness.OUT / "mixed_precision" / f"{case}_{mixed}")
                   for mixed in order}
        figures[case] = {
            name: {"examples_per_sec": m["train_examples_per_sec"],
                   "train_seconds": m["train_seconds"], "test": m["test"]}
            for name, m in (("float32", results[False]), ("bfloat16", results[True]))}
        f32, bf16 = figures[case]["float32"], figures[case]["bfloat16"]
        speed = bf16["examples_per_sec"] / f32["examples_per_sec"]
        print(f"{case}: bfloat16 {speed:.2f}x float32's speed; test {metric} "
              f"{bf16['test'][metric]:.4f} vs {f32['test'][metric]:.4f}", flush=True)
        rows.append({"benchmark": f"bfloat16 vs float32 training speed, {case} "
                                  f"(test {metric} {bf16['test'][metric]:.2%} vs "
                                  f"{f32['test'][metric]:.2%} at equal epochs)",
                     "measured": f"{bf16['examples_per_sec']:.0f} examples/s",
                     "against": f"{f32['examples_per_sec']:.0f} examples/s", "ratio": speed})
    harness.record("mixed_precision", figures, rows)


if __name__ == "__main__":
    main()
