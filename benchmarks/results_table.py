"""`make results`: re-run every config of the README's "Measured results" table on the current
code and rewrite that table (and benchmarks/RESULTS_TABLE.md) from the runs' own metrics.json.

Each row is one command, run as a user runs it, in a fresh process: `python -m training train
--config FILE` (the semi-supervised row: benchmarks/dbn_semi_supervised.py, 3 seeds). The
table gives each row's command, the model as the run built it, epochs, test accuracy and time
(`pretrain_seconds` + `train_seconds`), then the date, machine and versions. It takes about
70 minutes on 2 CPU cores; `--rows` runs a subset (the other rows keep their last figures, from
benchmarks/results/results_table.json).

    .venv/bin/python benchmarks/results_table.py [--rows default,lstm] [--set KEY=VALUE ...]
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import harness
import yaml

from training.run_dir import RunDir

ROWS = {  # name: config; the table's order
    "default": "configs/fashion_mnist_default.yaml",
    "resnet_small": "configs/fashion_mnist_resnet_small.yaml",
    "mobilenet_small": "configs/fashion_mnist_mobilenet_small.yaml",
    "dbn": "configs/dbn_fashion_mnist.yaml",
    "lstm": "configs/sequence_fashion_mnist_lstm.yaml",
    "gru": "configs/sequence_fashion_mnist_gru.yaml",
    "simple_rnn": "configs/sequence_fashion_mnist_simple_rnn.yaml",
    "semi_supervised": "configs/dbn_semi_supervised.yaml",
}
START, END = "<!-- results:start -->", "<!-- results:end -->"
SAVED = harness.RESULTS / "results_table.json"


def _yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _run(command, out):
    """Run `command` (a list) from the project root; its output goes to out/log.txt."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "log.txt", "w") as log:
        done = subprocess.run(command, cwd=harness.ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed; see {out / 'log.txt'}")


def _model(config, metrics):
    """What the run built, from its own config.yaml and metrics.json."""
    m = config["model"]
    params = f"{metrics['params']:,} params"
    if config["app"] == "image_classification":
        extra = ", augmented" if m.get("augment") else ""
        return f"{m['arch']} x{m['width_multiplier']:g}{extra}, {params}"
    if config["app"] == "sequence_modeling":
        return f"{m['cell']} {m['units']} over 28 rows of 28 pixels, {params}"
    hidden = "-".join(str(h) for h in m["hidden"])
    pretrain = config["pretrain"]
    return f"DBN 784-{hidden}, CD-{pretrain['cd_k']} {pretrain['epochs']} epochs per RBM, {params}"


def run_row(name, overrides, out):
    """{command, model, epochs, accuracy, seconds} of one row, from a fresh run in `out`."""
    shutil.rmtree(out, ignore_errors=True)  # a new run, never a resume of the last one
    sets = [a for s in overrides for a in ("--set", s)]
    if name == "semi_supervised":
        command = [sys.executable, "benchmarks/dbn_semi_supervised.py", "--out", str(out), *sets]
        _run(command, out)
        result = json.loads((harness.RESULTS / "dbn_semi_supervised.json").read_text())["figures"]
        first = out / f"seed_{result['seeds'][0]['seed']}"
        config = _yaml(RunDir(first).config)
        metrics = json.loads(RunDir(first).metrics.read_text())
        gains = ", ".join(f"{s['gain_points']:+.2f}" for s in result["seeds"])
        return {"command": "python benchmarks/dbn_semi_supervised.py", "model": _model(config, metrics)
                + f"; vs the same net from random weights, {config['data']['labeled']:,} labels",
                "epochs": config["epochs"],
                "accuracy": f"{result['mean_pretrained']:.2%} vs {result['mean_random_init']:.2%} "
                            f"(mean of {len(result['seeds'])} seeds; gain {gains} points)",
                "seconds": sum(json.loads(RunDir(out / f"seed_{s['seed']}").metrics.read_text())
                               ["train_seconds"] for s in result["seeds"]) / len(result["seeds"]),
                "per": f"per seed, after {metrics['pretrain_seconds']:.0f} s of pretraining once"}
    command = [sys.executable, "-m", "training", "train", "--config", ROWS[name],
               "--set", "runtime.verbose=2", "--set", f"run_dir={out / 'run'}",
               "--set", f"export.dir={out / 'export'}", *sets]
    _run(command, out)
    metrics = json.loads(RunDir(out / "run").metrics.read_text())
    config = _yaml(RunDir(out / "run").config)
    return {"command": f"python -m training train --config {ROWS[name]}",
            "model": _model(config, metrics), "epochs": metrics["epochs_completed"],
            "accuracy": f"{metrics['test']['accuracy']:.2%}",
            "seconds": metrics["train_seconds"] + metrics.get("pretrain_seconds", 0.0), "per": ""}


def _minutes(seconds):
    return f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def _machine_text(machine):
    return (f"{machine['date']}: {machine['cpu']}, {machine['cores']} cores, "
            f"TF {machine['tensorflow']}, Keras {machine['keras']}")


def table(rows, machine):
    """The README's table; rows measured on another day or machine than the last say which
    (timings from different machines are not comparable)."""
    lines = [f"Measured by `make results` on {_machine_text(machine)}. Real Fashion-MNIST test set "
             "(10,000 images); time is training (and pretraining) from each run's metrics.json.",
             "", "| command | model | epochs | test accuracy | time |", "| --- | --- | --- | --- | --- |"]
    notes = []
    for name in ROWS:
        if name in rows:
            r = rows[name]
            time = _minutes(r["seconds"]) + (f" {r['per']}" if r["per"] else "")
            if r.get("machine", machine) != machine:
                notes += [r["machine"]] * (r["machine"] not in notes)
                time += f" [{notes.index(r['machine']) + 1}]"
            lines.append(f"| `{r['command']}` | {r['model']} | {r['epochs']} | {r['accuracy']} | {time} |")
    lines += [""] * bool(notes) + [f"[{i}] measured on {_machine_text(m)}" + "  " * (i < len(notes))
                                  for i, m in enumerate(notes, 1)]
    return "\n".join(lines)


def write_between_markers(path, text):
    content = path.read_text()
    if START not in content or END not in content:
        sys.exit(f"{path} has no {START} ... {END} markers for the table")
    head, rest = content.split(START, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{rest.split(END, 1)[1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="of " + ", ".join(ROWS))
    parser.add_argument("--set", action="append", default=[], help="override for every run")
    parser.add_argument("--readme", default=str(harness.ROOT / "README.md"),
                        help="the file whose results markers get the table")
    parser.add_argument("--table", default=str(harness.ROOT / "benchmarks" / "RESULTS_TABLE.md"))
    parser.add_argument("--out", default=str(harness.OUT / "results_table"), help="the runs' dirs")
    args = parser.parse_args()
    saved = json.loads(SAVED.read_text()) if SAVED.exists() else {"rows": {}}
    for row in saved["rows"].values():  # rows saved before each row recorded its machine
        row.setdefault("machine", saved["machine"])
    machine = harness.machine()
    saved["machine"] = {"date": datetime.date.today().isoformat(), "cpu": machine["cpu"],
                        "cores": machine["cores"], "tensorflow": machine["versions"]["tensorflow"],
                        "keras": machine["versions"]["keras"]}
    for name in args.rows.split(","):
        if name not in ROWS:
            sys.exit(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
        saved["rows"][name] = {**run_row(name, args.set, Path(args.out) / name),
                               "machine": saved["machine"]}
        print(f"{name}: {json.dumps(saved['rows'][name])}", flush=True)
    SAVED.parent.mkdir(parents=True, exist_ok=True)
    SAVED.write_text(json.dumps(saved, indent=2))
    text = table(saved["rows"], saved["machine"])
    Path(args.table).write_text(
        f"# Measured results\n\nWritten by `make results` (benchmarks/results_table.py).\n\n{text}\n")
    write_between_markers(Path(args.readme), text)
    print(text)


if __name__ == "__main__":
    main()
