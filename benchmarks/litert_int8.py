"""LiteRT int8 vs the float SavedModel: test accuracy, file size and batch-1 latency in process.

For the default config and mobilenet_small: trains the config into benchmarks/out/litert/<name>
(kept: a finished run there is reused), exports that run as a SavedModel, as LiteRT float and as
LiteRT int8 (calibrated on 300 training images; weights scaled per channel, and per tensor),
scores each on all 10,000 test images with
`evaluate --artifact`'s scoring, and times --calls batch-1 calls of each on test images, the
four interleaved in one process so the machine's drift hits them alike.

Goals (issue 16): int8 within 0.5 points of the float SavedModel's accuracy; the int8 file at
most 30% of the float model's (LiteRT float, like for like; the SavedModel's bytes are shown
too); int8 batch-1 latency no worse than the SavedModel's.

    .venv/bin/python benchmarks/litert_int8.py [--calls 500] [--models default mobilenet_small]
"""

import argparse
import time
from pathlib import Path

import harness
import numpy as np
import tensorflow as tf

from training.export import artifacts, export_run
from training.pipeline import inputs as input_pipeline
from training.pipeline import train
from training.registry import load_config
from training.run_dir import RunDir, load_run

CONFIGS = {"default": "presets/fashion_mnist_default.yaml",
           "mobilenet_small": "presets/fashion_mnist_mobilenet_small.yaml"}


def finished_run(name):
    run_dir = harness.OUT / "litert" / name
    if not RunDir(run_dir).metrics.exists():
        train(load_config(None, CONFIGS[name], [f"run_dir={run_dir}", "export.enabled=false",
                                                "runtime.verbose=2"]))
    return run_dir


def dir_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def p50_ms(seconds):
    return float(np.percentile(seconds, 50) * 1000)


def measure(name, calls):
    run_dir = finished_run(name)
    export_dir = harness.OUT / "litert" / f"{name}-export"
    saved = export_run(run_dir, export_dir=export_dir)
    litert_float = export_run(run_dir, export_dir=export_dir, format="litert") / "model.tflite"
    litert_int8 = export_run(run_dir, export_dir=export_dir, format="litert",
                             quantize="int8") / "model.tflite"
    per_tensor = export_run(run_dir, export_dir=export_dir, format="litert", quantize="int8",
                            per_tensor=True) / "model.tflite"
    config, app, model = load_run(run_dir)
    test_ds, _ = input_pipeline.make_dataset(app, "test", config, tf.distribute.get_strategy())
    kinds = {"saved_model": artifacts.open_artifact(saved),
             "litert_float": artifacts.open_artifact(litert_float),
             "litert_int8": artifacts.open_artifact(litert_int8),
             "litert_int8_per_tensor": artifacts.open_artifact(per_tensor)}
    accuracy = {}
    for kind, artifact in kinds.items():
        output = "probabilities" if kind == "saved_model" else artifact.output_names[0]
        accuracy[kind] = artifacts.score(artifact, output, test_ds, app.compile_args())["accuracy"]
    images = np.concatenate([x.numpy() for x, _ in test_ds.take(4)])[:calls]
    seconds = {kind: [] for kind in kinds}
    for artifact in kinds.values():  # first calls (graph set-up) are not timed
        artifact({"image": images[:1]})
    for image in images:
        for kind, artifact in kinds.items():
            start = time.perf_counter()
            artifact({"image": image[None]})
            seconds[kind].append(time.perf_counter() - start)
    return {"run_dir": str(run_dir),
            "accuracy": accuracy,
            "bytes": {"saved_model": dir_bytes(saved), "litert_float": litert_float.stat().st_size,
                      "litert_int8": litert_int8.stat().st_size,
                      "litert_int8_per_tensor": per_tensor.stat().st_size},
            "batch1_p50_ms": {k: p50_ms(v) for k, v in seconds.items()},
            "batch1_p99_ms": {k: float(np.percentile(v, 99) * 1000) for k, v in seconds.items()},
            "calls": len(images)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    figures, rows = {}, []
    for name in args.models:
        f = figures[name] = measure(name, args.calls)
        a, b, ms = f["accuracy"], f["bytes"], f["batch1_p50_ms"]
        rows += [
            {"benchmark": f"LiteRT int8 ({name}): test accuracy vs the float SavedModel (goal: "
                          "within 0.5 points)",
             "measured": f"{100 * a['litert_int8']:.2f}%",
             "against": f"{100 * a['saved_model']:.2f}% (LiteRT float {100 * a['litert_float']:.2f}%)",
             "ratio": a["litert_int8"] / a["saved_model"]},
            {"benchmark": f"LiteRT int8 ({name}): file size vs LiteRT float (goal: at most 30%)",
             "measured": f"{b['litert_int8'] / 1024:.0f} KiB",
             "against": f"{b['litert_float'] / 1024:.0f} KiB (SavedModel {b['saved_model'] / 1024:.0f} KiB)",
             "ratio": b["litert_int8"] / b["litert_float"]},
            {"benchmark": f"LiteRT int8 --per-tensor ({name}): test accuracy vs the float "
                          "SavedModel (goal: within 0.5 points)",
             "measured": f"{100 * a['litert_int8_per_tensor']:.2f}%",
             "against": f"{100 * a['saved_model']:.2f}%",
             "ratio": a["litert_int8_per_tensor"] / a["saved_model"]},
            {"benchmark": f"LiteRT int8 --per-tensor ({name}): file size vs LiteRT float (goal: at "
                          "most 30%)",
             "measured": f"{b['litert_int8_per_tensor'] / 1024:.0f} KiB",
             "against": f"{b['litert_float'] / 1024:.0f} KiB",
             "ratio": b["litert_int8_per_tensor"] / b["litert_float"]},
            {"benchmark": f"LiteRT int8 ({name}): batch-1 latency in process vs the SavedModel "
                          f"(p50 of {f['calls']} interleaved calls; goal: no worse)",
             "measured": f"p50 {ms['litert_int8']:.2f} ms",
             "against": f"p50 {ms['saved_model']:.2f} ms (LiteRT float {ms['litert_float']:.2f} ms)",
             "ratio": ms["litert_int8"] / ms["saved_model"]},
        ]
    harness.record("litert_int8", figures, rows)


if __name__ == "__main__":
    main()
