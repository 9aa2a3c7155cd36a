"""The input pipeline's cost: the same model fed three ways, side by side in one process.

  * pipeline: training/pipeline/inputs.py's tf.data (cache, seeded shuffle, batch, prefetch);
  * plain: `model.fit(x, y)` on the same images as NumPy arrays;
  * cached: one batch of the pipeline repeated from memory (no input work at all).

Same config (the default app's), same initial weights, same number of steps;
the three alternate, one pass over the data each per round, so machine noise
hits all of them. Reports images/s and ms per step of each from its best
pass (the least disturbed by other load; all passes are in the JSON),
pipeline / plain throughput (goal >= 1: the pipeline adds nothing to Keras'
own fit) and pipeline / cached step time (1.0 = input costs nothing).

Seen on this machine: about half of the plain `model.fit(x, y)` calls spend
~10 s after training, on return from fit, in tearing down Keras' array
adapter iterator (no Python frame below fit; TF 2.21 / Keras 3.15.1).
Best-of keeps that out of the throughput; the JSON's `seconds` show it.

    .venv/bin/python benchmarks/input_pipeline.py [--examples 10240] [--rounds 4]
"""

import argparse
import time

import harness


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="presets/fashion_mnist_default.yaml")
    parser.add_argument("--examples", type=int, default=10240,
                        help="a multiple of the batch: every step of every variant is full")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    setup = harness.Configured(args.config, overrides=[f"data.limit={args.examples}",
                                                       "data.validation_split=0"])
    config, n, steps = setup.config, setup.examples, setup.steps
    images, labels = setup.app.source.idx_arrays("train")
    x, y = images[:n], labels[:n]
    pipeline_ds, (cached_ds, _) = setup.train_ds.repeat(), setup.cached_batches()

    def plain_fit(model):
        start = time.perf_counter()
        model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
        return time.perf_counter() - start

    runs = {"pipeline": lambda m: harness.epoch_seconds(m, pipeline_ds, steps, 1)[0],
            "plain": plain_fit,
            "cached": lambda m: harness.epoch_seconds(m, cached_ds, steps, 1)[0]}
    models = {name: setup.fresh_model() for name in runs}
    for name, run in runs.items():  # warm-up: tracing, and the pipeline's cache fill
        run(models[name])
    seconds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            seconds[name].append(run(models[name]))
    best = {name: min(s) for name, s in seconds.items()}
    per_sec = {name: n / s for name, s in best.items()}
    step_ms = {name: s / steps * 1000 for name, s in best.items()}
    model_name = f"{config.model.arch} x{config.model.width_multiplier}"
    rows = [
        {"benchmark": f"Pipeline fit vs plain `model.fit` on NumPy arrays ({model_name}, "
                      f"{n} images, images/s)",
         "measured": f"{per_sec['pipeline']:.1f} images/s",
         "against": f"{per_sec['plain']:.1f} images/s",
         "ratio": per_sec["pipeline"] / per_sec["plain"]},
        {"benchmark": "Step time: real tf.data pipeline vs a cached in-memory batch "
                      "(1.0 = input is free)",
         "measured": f"{step_ms['pipeline']:.1f} ms", "against": f"{step_ms['cached']:.1f} ms",
         "ratio": step_ms["pipeline"] / step_ms["cached"]},
    ]
    harness.record("input_pipeline", {"examples": n, "batch": config.batch_size,
                                      "steps_per_pass": steps, "images_per_sec": per_sec,
                                      "step_ms": step_ms, "seconds": seconds}, rows)


if __name__ == "__main__":
    main()
