"""Images/sec of the pipeline's fit vs a plain `model.fit` on in-memory NumPy arrays.

Same model, same data (real Fashion-MNIST), same batch size, same process,
alternating the two so machine noise hits both. Prints the ratio
pipeline / plain; the goal is >= 1.0 (the pipeline adds no overhead).

    .venv/bin/python benchmarks/pipeline_vs_plain_fit.py [--examples 20000] [--rounds 3]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from apps.registry import get_app  # noqa: E402
from training import input_pipeline  # noqa: E402
from training.run import compile_model, compile_options, load_config  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arch", default="resnet_small")
    args = parser.parse_args()

    config = load_config("image_classification", None, [
        f"data.limit={args.examples}", f"model.arch={args.arch}", "data.validation_split=0"])
    strategy = tf.distribute.get_strategy()
    app = get_app("image_classification")(config)
    pipeline_ds, n = input_pipeline.make_dataset(app, "train", config, strategy, training=True)
    images, labels = app.source.idx_arrays("train")
    x, y = images[:n], labels[:n]

    def fresh_model():
        keras.utils.set_random_seed(0)
        model = app.build_model()
        compile_model(model, app, config, input_pipeline.steps_per_epoch(pipeline_ds),
                      compile_options(config, strategy))
        return model

    pipeline_model, plain_model = fresh_model(), fresh_model()
    # Warm-up epoch each: tracing and the pipeline's cache fill are not throughput.
    pipeline_model.fit(pipeline_ds, epochs=1, verbose=0, shuffle=False)
    plain_model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
    rates = {"pipeline": [], "plain": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        pipeline_model.fit(pipeline_ds, epochs=1, verbose=0, shuffle=False)
        rates["pipeline"].append(n / (time.perf_counter() - start))
        start = time.perf_counter()
        plain_model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
        rates["plain"].append(n / (time.perf_counter() - start))
    pipeline, plain = np.median(rates["pipeline"]), np.median(rates["plain"])
    if not (np.isfinite(pipeline) and np.isfinite(plain)):
        print("error: a throughput is missing or NaN", file=sys.stderr)
        return 1
    print(f"model {args.arch} (width {config.model.width_multiplier}), {n} images, "
          f"batch {config.batch_size}, median of {args.rounds} epochs each")
    print(f"pipeline fit : {pipeline:8.1f} images/s")
    print(f"plain fit    : {plain:8.1f} images/s  (model.fit on NumPy arrays)")
    print(f"ratio        : {pipeline / plain:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
