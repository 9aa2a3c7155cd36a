"""benchmarks/results/*.json -> benchmarks/RESULTS.md, PNG charts, and the README's table.

Run by `make bench` after the benchmarks; runnable alone to redraw from the
recorded results. A benchmark with no result file shows as "not run".

    .venv/bin/python benchmarks/report.py
"""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; works without a display
import matplotlib.pyplot as plt  # noqa: E402

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH.parent / "README.md"
# make bench's order, which is also the table's.
ORDER = ["input_pipeline", "hardware_efficiency", "fused_batch_norm", "mixed_precision",
         "rbm_vs_sklearn", "serving_latency", "serving_load", "serving_warmup_batching",
         "accuracy_vs_time", "forecast_vs_naive", "dbn_semi_supervised", "folder_vs_idx", "transfer",
         "small_data", "imbalance", "multi_label", "litert_int8", "backends"]
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def load():
    results = {}
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    return results


def table(results, with_command):
    head = "| benchmark | measured | against | ratio |" + (" command |" if with_command else "")
    lines = [head, "|" + " --- |" * head.count(" |")]
    for name in ORDER:
        if name not in results:
            lines.append(f"| `benchmarks/{name}.py` | not run | | |" + (" |" if with_command else ""))
            continue
        for row in results[name]["rows"]:
            line = (f"| {row['benchmark']} | {row['measured']} | {row['against']} | "
                    f"{row['ratio']:.3f} |")
            lines.append(line + (f" `{results[name]['command']}` |" if with_command else ""))
    return "\n".join(lines)


def chart_accuracy_vs_time(figures, path):
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for config, curve in figures.items():
        ax.plot(curve["wall_seconds"], [100 * a for a in curve["test_accuracy"]], marker="o",
                label=f"{config} ({curve['app']})")
    ax.set(xlabel="training wall time (s)", ylabel="test accuracy (%)",
           title="Test accuracy after each epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_hardware_efficiency(figures, path):
    peak, models = figures["matmul_peak_gflops"], figures["models"]
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(models)
    achieved = [models[n]["achieved_gflops"] for n in names]
    bars = ax.bar(names, achieved, color="tab:blue")
    for bar, n in zip(bars, names):
        ax.annotate(f"{models[n]['efficiency']:.0%}", (bar.get_x() + bar.get_width() / 2,
                                                       bar.get_height()), ha="center", va="bottom")
    ax.axhline(peak, color="black", linestyle="--", label=f"fp32 matmul peak {peak:.0f}")
    ax.axhline(0.25 * peak, color="tab:red", linestyle=":", label="25% of peak")
    ax.set(ylabel="training GFLOP/s", title="Training FLOP/s vs the matmul peak")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_input_pipeline(figures, path):
    ms = figures["step_ms"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(["tf.data pipeline", "plain fit\n(NumPy)", "cached batch"],
           [ms["pipeline"], ms["plain"], ms["cached"]], color="tab:blue")
    ax.set(ylabel="ms per training step", title="One training step, fed three ways")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_latencies(series, title, ylabel, path, log=False):
    """Bars of p50 with p99 on top: series = {label: {"p50_ms", "p99_ms"}}."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    labels = list(series)
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [series[k]["p50_ms"] for k in labels], 0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [series[k]["p99_ms"] for k in labels], 0.4, label="p99")
    ax.set_xticks(list(x), labels)
    ax.set(ylabel=ylabel, title=title)
    if log:
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def charts(results):
    """Draws what the results allow; returns [(title, file name)]."""
    drawn = []
    if "accuracy_vs_time" in results:
        chart_accuracy_vs_time(results["accuracy_vs_time"]["figures"],
                               RESULTS / "accuracy_vs_time.png")
        drawn.append(("Accuracy vs time", "accuracy_vs_time.png"))
    if "hardware_efficiency" in results:
        chart_hardware_efficiency(results["hardware_efficiency"]["figures"],
                                  RESULTS / "hardware_efficiency.png")
        drawn.append(("Hardware efficiency", "hardware_efficiency.png"))
    if "serving_latency" in results:
        f = results["serving_latency"]["figures"]
        chart_latencies({"SavedModel\nin-process": f["in_process"],
                         "Keras\npredict": f["keras_predict"], "local REST\nserver": f["server"]},
                        "Batch-1 prediction latency", "ms per request (log scale)",
                        RESULTS / "serving_latency.png", log=True)
        drawn.append(("Serving latency", "serving_latency.png"))
    if "input_pipeline" in results:
        chart_input_pipeline(results["input_pipeline"]["figures"], RESULTS / "input_pipeline.png")
        drawn.append(("Input pipeline", "input_pipeline.png"))
    return drawn


def machine_line(results):
    machines = {json.dumps(r["machine"], sort_keys=True) for r in results.values()}
    lines = []
    for m in map(json.loads, sorted(machines)):
        versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        gpus = ", ".join(m["gpus"]) or "no GPU"
        lines.append(f"- {m['cpu']}, {m['cores']} cores, {gpus}; {versions}")
    return "\n".join(lines)


def write_results_md(results, drawn):
    dates = sorted(r["date"] for r in results.values())
    when = f"{dates[0]} to {dates[-1]}" if dates else "never"
    text = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/report.py` from `benchmarks/results/*.json`); "
        f"measured {when} on:",
        "",
        machine_line(results) or "- (no results)",
        "",
        "Each row is measured side by side, in one process or one run. `ratio` is measured / "
        "against unless the row says otherwise (speed-ups: against / measured). This machine's "
        "speed drifts up to 2x, so ratios mean more than absolute times.",
        "",
        table(results, with_command=True),
        "",
    ]
    for title, file in drawn:
        text += [f"## {title}", "", f"![{title}](results/{file})", ""]
    (BENCH / "RESULTS.md").write_text("\n".join(text))


def update_readme(results):
    readme = README.read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the {START} ... {END} markers for the table")
    block = f"{START}\n{table(results, with_command=False)}\n{END}"
    README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, readme,
                             flags=re.S))


def main():
    results = load()
    drawn = charts(results)
    for stale in set(RESULTS.glob("*.png")) - {RESULTS / file for _, file in drawn}:
        stale.unlink()  # a chart of a benchmark that has no result now
    write_results_md(results, drawn)
    update_readme(results)
    missing = [name for name in ORDER if name not in results]
    print(f"wrote {BENCH / 'RESULTS.md'}, {len(drawn)} charts, README table"
          + (f"; not run: {', '.join(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
