"""Train step time with TF's fused BatchNorm kernel vs Keras 3's own BatchNormalization.

Same config, same model and initial weights, same process: for each config the
model is built twice, once as the library builds it (layers.BatchNormalization,
fused on the TensorFlow backend) and once with every BatchNorm layer set to
``fused=False`` (Keras 3's computation: moments plus elementwise ops). Both fit
on one cached in-memory batch (input work excluded, as in
hardware_efficiency.py) and alternate, one timed epoch each per round, so
machine noise hits both. Step time is the median over rounds.

    .venv/bin/python benchmarks/fused_batch_norm.py [--steps 32] [--rounds 3]
"""

import argparse

import harness
import numpy as np
from hardware_efficiency import CONFIGS

from layers import BatchNormalization

GOAL = 1.3


def batch_norms(model):
    # Keras has no public recursive layer walk; _flatten_layers is what Model.summary uses.
    return [layer for layer in model._flatten_layers() if isinstance(layer, BatchNormalization)]


def step_ms(config_path, steps, rounds):
    setup = harness.Configured(config_path)
    dataset, _ = setup.cached_batches()
    models = {"fused": setup.fresh_model()}
    keras_bn = setup.fresh_model()
    layers = batch_norms(keras_bn)
    for layer in layers:
        layer.fused = False  # before the first call, so the traced step is Keras' own
    models["keras"] = keras_bn
    steps = -(-steps // keras_bn.steps_per_execution) * keras_bn.steps_per_execution
    for model in models.values():  # warm-up: tracing
        harness.epoch_seconds(model, dataset, keras_bn.steps_per_execution, 1)
    seconds = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            seconds[name].extend(harness.epoch_seconds(model, dataset, steps, 1))
    return {"batch_norm_layers": len(layers), "timed_steps": steps, "seconds": seconds,
            "step_ms": {name: float(np.median(s)) / steps * 1000 for name, s in seconds.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32,
                        help="steps per timed epoch (rounded up to whole executions)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(CONFIGS), help="of " + ", ".join(CONFIGS))
    args = parser.parse_args()
    figures, rows = {}, []
    for name in args.models.split(","):
        figures[name] = m = step_ms(CONFIGS[name], args.steps, args.rounds)
        speedup = m["step_ms"]["keras"] / m["step_ms"]["fused"]
        print(f"{name}: fused {m['step_ms']['fused']:.1f} ms/step, Keras BN "
              f"{m['step_ms']['keras']:.1f} ms/step: {speedup:.2f}x (goal {GOAL}x)")
        rows.append({"benchmark": f"Train step, {name} config: fused BatchNorm vs Keras 3's "
                                  f"(speedup, goal {GOAL}x)",
                     "measured": f"{m['step_ms']['fused']:.0f} ms/step",
                     "against": f"{m['step_ms']['keras']:.0f} ms/step", "ratio": speedup})
    harness.record("fused_batch_norm", figures, rows)


if __name__ == "__main__":
    main()
