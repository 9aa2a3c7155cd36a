"""Achieved training FLOP/s of the small ResNet and MobileNet configs over the measured fp32 matmul peak.

In one process: the machine's float32 matmul peak (best of square matmuls of
1024-4096, measured before and after the models, the higher taken), then for
each config the median step time of `model.fit` on one cached in-memory
batch (so the input pipeline is not part of it; see input_pipeline.py) at
the steps_per_execution a run of the config uses, and the FLOPs of one
training step counted from its graph (benchmarks/flops.py: convolutions,
matmuls and their gradients).

    .venv/bin/python benchmarks/hardware_efficiency.py [--steps 40] [--rounds 3] [--profile DIR]

--profile DIR also records a TensorBoard profiler trace of two executions per
model (`tensorboard --logdir DIR`, Profile tab, with tensorboard-plugin-profile)
and reads it back (profile_ops.py): the top five kernels by self time, and the
FLOP/s of the convolution kernels alone, over the same peak: the ceiling of
the step's efficiency while convolutions take most of it.
"""

import argparse
import time

import harness
import numpy as np
import tensorflow as tf
from flops import train_step_flops
from profile_ops import kernel_seconds, summary

CONFIGS = {"resnet_small": "presets/fashion_mnist_resnet_small.yaml",
           "mobilenet_small": "presets/fashion_mnist_mobilenet_small.yaml"}


def matmul_peak(sizes=(1024, 2048, 4096), repeats=4):
    """Best float32 GFLOP/s of tf.matmul over square sizes (the first call of each warms up)."""
    best = 0.0
    for n in sizes:
        a = tf.random.normal([n, n], seed=1)
        b = tf.random.normal([n, n], seed=2)
        tf.matmul(a, b).numpy()
        for _ in range(repeats):
            start = time.perf_counter()
            tf.matmul(a, b).numpy()  # eager on CPU returns when the product is done
            best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def model_rate(config_path, steps, rounds, profile_dir=None):
    setup = harness.Configured(config_path)
    dataset, (x, y) = setup.cached_batches()
    model = setup.fresh_model()
    per_execution = model.steps_per_execution
    steps = -(-steps // per_execution) * per_execution  # whole executions
    seconds = harness.epoch_seconds(model, dataset, steps, rounds + 1)[1:]
    by_op = train_step_flops(model, x, y)
    profile = None
    if profile_dir:
        tf.profiler.experimental.start(profile_dir)
        harness.epoch_seconds(model, dataset, 2 * per_execution, 1)
        tf.profiler.experimental.stop()
        profile = summary(kernel_seconds(profile_dir), 2 * per_execution,
                          {op: f / 1e9 for op, f in by_op.items()})
    step_seconds = float(np.median(seconds)) / steps
    flops = float(sum(by_op.values()))
    return {"profile": profile, "batch": int(x.shape[0]), "params": model.count_params(),
            "steps_per_execution": per_execution, "timed_steps": steps,
            "train_gflop_per_step": flops / 1e9,
            "gflop_by_op": {k: v / 1e9 for k, v in sorted(by_op.items())},
            "step_ms": step_seconds * 1000, "images_per_sec": x.shape[0] / step_seconds,
            "achieved_gflops": flops / step_seconds / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40,
                        help="steps per timed epoch (rounded up to whole executions)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs (after one warm-up)")
    parser.add_argument("--models", default=",".join(CONFIGS), help="of " + ", ".join(CONFIGS))
    parser.add_argument("--profile", help="write a profiler trace per model under this directory")
    args = parser.parse_args()
    peak_before = matmul_peak()
    models = {name: model_rate(CONFIGS[name], args.steps, args.rounds,
                               args.profile and f"{args.profile}/{name}")
              for name in args.models.split(",")}
    peak_after = matmul_peak()
    peak = max(peak_before, peak_after)
    rows = []
    for name, m in models.items():
        m["efficiency"] = m["achieved_gflops"] / peak
        print(f"{name}: {m['train_gflop_per_step']:.2f} GFLOP/step, {m['step_ms']:.1f} ms/step, "
              f"{m['achieved_gflops']:.1f} GFLOP/s = {m['efficiency']:.1%} of {peak:.1f}")
        if m["profile"]:
            profile = m["profile"]
            profile["counted_kernels_efficiency"] = profile["counted_kernels_gflops"] / peak
            # Kernels overlap on the cores, so their summed time exceeds the step's; the
            # convolutions' share of it still bounds what removing every other kernel could give.
            share = profile["counted_share"]
            profile["efficiency_ceiling"] = m["efficiency"] / share
            print(f"  kernel time {profile['op_ms_per_step']:.1f} ms/step, {share:.0%} of it in "
                  f"convolutions; with every other kernel free the step would reach "
                  f"{profile['efficiency_ceiling']:.1%} of the peak; top ops:")
            for op in profile["top_ops"]:
                print(f"    {op['op']:<45} {op['ms_per_step']:7.1f} ms/step {op['share']:6.1%}")
        rows.append({"benchmark": f"Training FLOP/s, {name} config vs fp32 matmul peak",
                     "measured": f"{m['achieved_gflops']:.1f} GFLOP/s "
                                 f"({m['step_ms']:.0f} ms per batch of {m['batch']})",
                     "against": f"{peak:.1f} GFLOP/s", "ratio": m["efficiency"]})
    harness.record("hardware_efficiency", {"matmul_peak_gflops": peak,
                                           "matmul_peak_before": peak_before,
                                           "matmul_peak_after": peak_after, "models": models}, rows)


if __name__ == "__main__":
    main()
