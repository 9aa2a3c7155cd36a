"""The local TF Serving stand-in with the export's warm-up file, and with server-side batching.

Exports the default Fashion-MNIST network (as `train` does, warm-up file included) and a copy
of it without its warm-up file, then:

1. Warm-up: --trials times for each, starts `python -m training serve`, waits until the
   model's status answers (the version is AVAILABLE), and times the first one-image request,
   then --steady more on the same connection. Goal (issue 16): with the warm-up file, the
   first request within 2x of the steady p50.
2. Batching: --clients threads each send one-image requests back to back for --seconds,
   against the server with `--enable_batching --batching_parameters_file=
   serving/batching_parameters.txt` and without, alternating for --rounds; both with
   --rest_api_num_threads equal to the clients, so every request reaches the model at once.
   Reports throughput, p50 and p99 of the median round. The clients run on the same 2 cores.

    .venv/bin/python benchmarks/serving_warmup_batching.py [--trials 3] [--clients 32] [--rounds 3]
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import harness
import numpy as np
from serving_load import Small, export_model, free_port, percentile, wait_ready

from serving.warmup import WARMUP_FILE

BATCHING_FILE = harness.ROOT / "serving" / "batching_parameters.txt"


def start_server(base, port, *flags):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    server = subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--model_name=fashion",
         f"--model_base_path={base}", f"--rest_api_port={port}", "--port=-1", *flags],
        cwd=harness.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_ready(port, server)
    return server


def stop(server):
    server.terminate()
    server.wait(timeout=60)
    return server.stdout.read()


def first_and_steady(base, body, steady):
    """(first request's seconds, steady requests' seconds, server log) on a fresh server."""
    port = free_port()
    server = start_server(base, port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        times = []
        for _ in range(1 + steady):
            start = time.perf_counter()
            conn.request("POST", "/v1/models/fashion:predict", body,
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"the server answered {response.status}")
            times.append(time.perf_counter() - start)
    finally:
        log = stop(server)
    return times[0], times[1:], log


def load(base, body, clients, seconds, *flags):
    port = free_port()
    server = start_server(base, port, f"--rest_api_num_threads={clients}", *flags)
    try:
        halt = threading.Event()
        threads = [Small(port, halt, body) for _ in range(clients)]
        start = time.time()
        for t in threads:
            t.start()
        time.sleep(seconds)
        halt.set()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.time() - start
    finally:
        stop(server)
    latencies = [x for t in threads for x in t.latencies]
    return {"requests_per_second": len(latencies) / elapsed, "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99), "requests": len(latencies),
            "errors": sum(len(t.errors) for t in threads)}


def described(load_figures):
    return (f"{load_figures['requests_per_second']:.0f}/s (p50 {load_figures['p50_ms']:.0f} ms, "
            f"p99 {load_figures['p99_ms']:.0f} ms)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--steady", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batching-file", type=Path, default=BATCHING_FILE)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="kat-warmup-"))
    with_file = export_model(root / "with")
    without = root / "without" / "fashion"
    shutil.copytree(with_file, without)
    for version in without.iterdir():
        (version / WARMUP_FILE).unlink()
    body = json.dumps({"instances": np.random.default_rng(0).integers(0, 256, (1, 28, 28, 1)).tolist()})

    warm = {"with": [], "without": []}
    log_line = ""
    for _ in range(args.trials):
        for name, base in (("with", with_file), ("without", without)):
            first, steady, log = first_and_steady(base, body, args.steady)
            warm[name].append({"first_ms": first * 1000, "steady_p50_ms": percentile(steady, 50)})
            log_line = next((line for line in log.splitlines() if "warm-up" in line), log_line)
    summary = {name: {"first_ms": float(np.median([t["first_ms"] for t in trials])),
                      "steady_p50_ms": float(np.median([t["steady_p50_ms"] for t in trials]))}
               for name, trials in warm.items()}
    # Off and on alternate, --rounds times: this machine's speed drifts, so each round's
    # ratio compares runs a few seconds apart; the median round is reported.
    rounds = []
    for _ in range(args.rounds):
        rounds.append({"off": load(with_file, body, args.clients, args.seconds),
                       "on": load(with_file, body, args.clients, args.seconds, "--enable_batching",
                                  f"--batching_parameters_file={args.batching_file}")})
    ratios = [r["on"]["requests_per_second"] / r["off"]["requests_per_second"] for r in rounds]
    batching = rounds[int(np.argsort(ratios)[len(ratios) // 2])]
    shutil.rmtree(root, ignore_errors=True)
    figures = {"warmup_trials": warm, "warmup": summary, "server_warmup_log": log_line,
               "batching": batching, "batching_rounds": rounds, "batching_ratios": ratios,
               "clients": args.clients, "seconds": args.seconds,
               "batching_parameters": args.batching_file.read_text()}
    if any(r[k]["errors"] for r in rounds for k in r):
        figures["batching_errors"] = float("nan")  # record() then exits non-zero
    w, wo, on, off = summary["with"], summary["without"], batching["on"], batching["off"]
    rows = [
        {"benchmark": f"First request after AVAILABLE, with the export's warm-up file, vs the "
                      f"steady p50 (median of {args.trials} server starts; goal: within 2x)",
         "measured": f"{w['first_ms']:.1f} ms",
         "against": f"p50 {w['steady_p50_ms']:.1f} ms",
         "ratio": w["first_ms"] / w["steady_p50_ms"]},
        {"benchmark": "First request after AVAILABLE, the same export without its warm-up file, "
                      "vs the steady p50",
         "measured": f"{wo['first_ms']:.1f} ms",
         "against": f"p50 {wo['steady_p50_ms']:.1f} ms",
         "ratio": wo["first_ms"] / wo["steady_p50_ms"]},
        {"benchmark": f"{args.clients} concurrent one-image clients: throughput with server "
                      f"batching on vs off (serving/batching_parameters.txt; median of "
                      f"{args.rounds} alternating rounds of {args.seconds:g} s)",
         "measured": described(on), "against": described(off),
         "ratio": on["requests_per_second"] / off["requests_per_second"]},
    ]
    harness.record("serving_warmup_batching", figures, rows)


if __name__ == "__main__":
    main()
