"""Batch-1 image predictions: the local server (8 concurrent REST clients) vs in-process calls.

Exports a Fashion-MNIST classifier (the default app's architecture), serves it
with the stand-in on a free loopback port, and measures in one run:
  * in-process: the SavedModel's serving_default called directly, one image at a time;
  * server: 8 client threads sending `{"instances": [image]}` over HTTP.
Prints throughput and p50/p99 latency of both and the throughput ratio.

    .venv/bin/python benchmarks/serving_latency.py [--requests 800] [--clients 8]
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from apps.registry import get_app  # noqa: E402
from training.run import export_model, load_config  # noqa: E402
from training.serve import add_flags, make_server_from_flags  # noqa: E402


def summary(latencies, seconds):
    ms = np.array(latencies) * 1000
    return {"per_sec": len(ms) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    export_dir = tempfile.mkdtemp(prefix="bench-export-")
    config = load_config("image_classification", None, [f"export.dir={export_dir}",
                                                        "export.name=fashion"])
    app = get_app("image_classification")(config)
    keras.utils.set_random_seed(0)
    version_dir = export_model(app, app.build_model(), config)
    images = np.random.default_rng(0).integers(0, 256, (args.requests, 1, 28, 28, 1), np.uint8)

    serve_fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    serve_fn(image=tf.constant(images[0]))  # warm-up
    latencies, start = [], time.perf_counter()
    for image in images:
        t = time.perf_counter()
        serve_fn(image=tf.constant(image))
        latencies.append(time.perf_counter() - t)
    in_process = summary(latencies, time.perf_counter() - start)

    flags = argparse.ArgumentParser()
    add_flags(flags)
    server, _, repository = make_server_from_flags(flags.parse_args([
        "--model_name=fashion", f"--model_base_path={version_dir.parent}", "--rest_api_port=0",
        "--port=-1"]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1/models/fashion:predict"
    bodies = [json.dumps({"instances": image.tolist()}).encode() for image in images]

    def call(body):
        t = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60) as r:
            ok = r.status == 200 and "predictions" in json.loads(r.read())
        return time.perf_counter() - t, ok

    call(bodies[0])  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        results = list(pool.map(call, bodies))
    served = summary([r[0] for r in results], time.perf_counter() - start)
    server.shutdown()
    failures = sum(not ok for _, ok in results)

    print(f"batch-1 Fashion-MNIST predictions, {args.requests} requests")
    print(f"in-process SavedModel : {in_process['per_sec']:8.1f}/s  p50 {in_process['p50_ms']:6.2f} ms"
          f"  p99 {in_process['p99_ms']:6.2f} ms")
    print(f"local server, {args.clients} clients: {served['per_sec']:8.1f}/s  p50 {served['p50_ms']:6.2f} ms"
          f"  p99 {served['p99_ms']:6.2f} ms")
    print(f"throughput ratio server / in-process: {served['per_sec'] / in_process['per_sec']:.3f}")
    values = list(in_process.values()) + list(served.values())
    if failures or not all(np.isfinite(values)):
        print(f"error: {failures} failed requests or a missing figure", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
