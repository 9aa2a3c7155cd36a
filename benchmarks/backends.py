"""The same runs under TensorFlow and under JAX (runtime.backend), back to back on this machine.

Cases: `tabular` (the tabular app on 60,000 generated rows of 8 features, batch 128, 3 epochs:
the per-step cost of the pipeline around a tiny model) and `image` (the default config,
presets/fashion_mnist_default.yaml, as `make train-app` runs it). Each backend runs in its own
process (Keras reads KERAS_BACKEND once), the order alternating per case; JAX runs twice, the
second time with the first run's compiled steps in its compilation cache
(runtime.compilation_cache, a fresh one per case), as a repeated run has them. Reported per
run: the step time of the first and of the later epochs (from history.csv's epoch_seconds) and
the test metrics; for the image case under JAX, the largest difference between the local REST
server's answers for 64 test images and the in-process Keras model's.

    .venv/bin/python benchmarks/backends.py [--cases tabular,image]
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import harness
import numpy as np

from training.run_dir import RunDir

CASES = {
    "tabular": (["--app", "tabular_regression", "--set", "data.target=y", "--set", "batch_size=128",
                 "--set", "epochs=3"], "mae"),
    "image": (["--config", "presets/fashion_mnist_default.yaml"], "accuracy"),
}


def table(path, rows=60000, features=8):
    """A CSV of `rows` rows: y a noisy linear rule of `features` normal features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features))
    y = x @ rng.normal(size=features) + 0.1 * rng.normal(size=rows)
    np.savetxt(path, np.column_stack([x, y]), fmt="%.5f", delimiter=",", comments="",
               header=",".join([f"f{i}" for i in range(features)] + ["y"]))
    return path


def served_difference(metrics, count=64):
    """Largest |REST answer - Keras model| over `count` test examples, through the local server."""
    from serving_load import free_port, wait_ready

    from training.run_dir import load_run

    _, app, model = load_run(metrics["run_dir"])
    features = np.asarray(next(iter(app.build_data("test").batch(count)))[0])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--model_name=fashion",
         f"--model_base_path={Path(metrics['export']).parent}", f"--rest_api_port={port}", "--port=-1"],
        cwd=harness.ROOT, env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, server)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/fashion:predict",
            data=json.dumps({"instances": features.tolist()}).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            answers = json.load(response)["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=60)
    served = np.array([a["probabilities"] for a in answers])
    return float(np.max(np.abs(served - np.asarray(model(features)))))


def child(case, out, cache):
    """One run under this process's backend; prints its figures as JSON."""
    from training.cli import main as cli
    from training.runtime import backend

    args, _ = CASES[case]
    sets = ["runtime.verbose=2", "callbacks.tensorboard=false", f"run_dir={out}/run",
            f"export.dir={out}/export", "export.name=fashion", f"runtime.compilation_cache={cache}"]
    if case == "tabular":
        sets.append(f"data.path={table(Path(out) / 'table.csv')}")
    code = cli(["train", *args, *[a for s in sets for a in ("--set", s)]])
    if code:
        sys.exit(code)
    metrics = json.loads(RunDir(Path(out) / "run").metrics.read_text())
    with open(RunDir(Path(out) / "run").history) as f:
        seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(f)]
    steps = -(-metrics["train_examples"] // metrics["global_batch_size"])
    result = {"backend": backend.resolve("auto"), "test": metrics["test"],
              "first_epoch_ms_per_step": 1000 * seconds[0] / steps,
              "later_epochs_ms_per_step": 1000 * float(np.mean(seconds[1:])) / steps,
              "first_over_later": seconds[0] / float(np.mean(seconds[1:])),
              "steps_per_epoch": steps, "train_seconds": metrics["train_seconds"]}
    if case == "image" and result["backend"] != "tensorflow":
        result["rest_vs_keras_max_abs_diff"] = served_difference(metrics)
    print(json.dumps(result))


def run(case, name, cache):
    with tempfile.TemporaryDirectory(prefix=f"kat-{case}-{name}-") as out:
        done = subprocess.run([sys.executable, __file__, "--child", case, "--out", out,
                               "--cache", cache],
                              cwd=harness.ROOT, capture_output=True, text=True,
                              env={**os.environ, "KERAS_BACKEND": name})
    if done.returncode:
        sys.exit(f"{case} under {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{case} {name}: {json.dumps(result)}", flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="of " + ", ".join(CASES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.out, args.cache)
    figures, rows = {}, []
    for i, case in enumerate(args.cases.split(",")):
        order = ("tensorflow", "jax") if i % 2 == 0 else ("jax", "tensorflow")
        with tempfile.TemporaryDirectory(prefix="kat-jax-cache-") as cache:
            figures[case] = {name: run(case, name, cache) for name in order}
            figures[case]["jax_cached"] = run(case, "jax", cache)
        tf_run, jax_run = figures[case]["tensorflow"], figures[case]["jax"]
        metric = CASES[case][1]
        rows.append({
            "benchmark": f"JAX vs TF step time, {case} (later epochs; first epoch "
                         f"{jax_run['first_over_later']:.1f}x a later one under JAX, "
                         f"{figures[case]['jax_cached']['first_over_later']:.1f}x with its "
                         f"compiled steps cached, {tf_run['first_over_later']:.1f}x under TF; test {metric} "
                         f"{jax_run['test'][metric]:.4f} vs {tf_run['test'][metric]:.4f})",
            "measured": f"{jax_run['later_epochs_ms_per_step']:.2f} ms/step",
            "against": f"{tf_run['later_epochs_ms_per_step']:.2f} ms/step",
            "ratio": jax_run["later_epochs_ms_per_step"] / tf_run["later_epochs_ms_per_step"]})
    harness.record("backends", figures, rows)


if __name__ == "__main__":
    main()
