"""Batch-1 latency of the exported SavedModel in-process vs Keras `predict` vs the local server.

Exports a Fashion-MNIST classifier (the default app's architecture), serves it
with the stand-in on a free loopback port, and measures in one run, one image
per request, requests one after the other:
  * in-process: the SavedModel's serving_default called directly;
  * Keras predict: `model.predict` of the same Keras model;
  * server: `{"instances": [image]}` over HTTP to the REST stand-in.
then the server's throughput with 8 concurrent clients. Prints p50/p99 and
the p50 ratios against in-process.

    .venv/bin/python benchmarks/serving_latency.py [--requests 400] [--clients 8]
"""

import argparse
import json
import shutil
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import harness
import keras
import numpy as np
import tensorflow as tf

from serving.flags import add_flags
from serving.server import make_server_from_flags
from training.export import export_model
from training.registry import get_app, load_config


def summary(latencies, seconds):
    ms = np.array(latencies) * 1000
    return {"per_sec": len(ms) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def one_by_one(call, items):
    """summary() of calling `call` on each item in turn (after one warm-up call)."""
    call(items[0])
    latencies, start = [], time.perf_counter()
    for item in items:
        t = time.perf_counter()
        call(item)
        latencies.append(time.perf_counter() - t)
    return summary(latencies, time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    export_dir = tempfile.mkdtemp(prefix="bench-export-")
    config = load_config("image_classification", None, [f"export.dir={export_dir}",
                                                        "export.name=fashion"])
    app = get_app("image_classification")(config)
    keras.utils.set_random_seed(0)
    model = app.build_model()
    version_dir = export_model(app, model, config)
    images = np.random.default_rng(0).integers(0, 256, (args.requests, 1, 28, 28, 1), np.uint8)

    serve_fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    in_process = one_by_one(lambda image: serve_fn(image=tf.constant(image)), images)
    keras_predict = one_by_one(lambda image: model.predict(image, verbose=0), images)

    flags = argparse.ArgumentParser()
    add_flags(flags)
    server, _, _ = make_server_from_flags(flags.parse_args([
        "--model_name=fashion", f"--model_base_path={version_dir.parent}", "--rest_api_port=0",
        "--port=-1"]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1/models/fashion:predict"
    bodies = [json.dumps({"instances": image.tolist()}).encode() for image in images]
    failures = []

    def request(body):
        t = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60) as r:
            if r.status != 200 or "predictions" not in json.loads(r.read()):
                failures.append(r.status)
        return time.perf_counter() - t

    server_one = one_by_one(request, bodies)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        latencies = list(pool.map(request, bodies))
    server_many = summary(latencies, time.perf_counter() - start)
    server.shutdown()
    shutil.rmtree(export_dir)

    figures = {"requests": args.requests, "in_process": in_process, "keras_predict": keras_predict,
               "server": server_one, f"server_{args.clients}_clients": server_many,
               "failed_requests": len(failures)}
    p50 = lambda s: f"p50 {s['p50_ms']:.2f} ms (p99 {s['p99_ms']:.2f})"  # noqa: E731
    rows = [{"benchmark": "Batch-1 latency: Keras `predict` vs the exported SavedModel in-process",
             "measured": p50(keras_predict), "against": p50(in_process),
             "ratio": keras_predict["p50_ms"] / in_process["p50_ms"]},
            {"benchmark": "Batch-1 latency: local REST server vs the SavedModel in-process "
                          f"(server, {args.clients} clients: {server_many['per_sec']:.0f}/s)",
             "measured": p50(server_one), "against": p50(in_process),
             "ratio": server_one["p50_ms"] / in_process["p50_ms"]}]
    if failures:
        figures["failed_requests"] = float("nan")  # record() then exits non-zero
    harness.record("serving_latency", figures, rows)


if __name__ == "__main__":
    main()
