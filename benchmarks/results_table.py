"""`make results`: re-run every preset of this project (presets/*.yaml, but the search spaces)
on the current code, record what each measured in presets/measured.json (which `kat presets`
shows, installed or not), and rewrite the README's "Measured results" table (and
benchmarks/RESULTS_TABLE.md) from that record.

Each row is one command, run as a user runs it, in a fresh process: `python -m training train
--preset NAME` (dbn_semi_supervised: benchmarks/dbn_semi_supervised.py, 3 seeds). The table
gives each row's command, the model as the run built it, epochs, test accuracy and time
(`pretrain_seconds` + `train_seconds`), then the date, machine and versions. It takes about
70 minutes on 2 CPU cores; `--rows` runs a subset (the other rows keep their last figures),
`--rows none` only rewrites the table.

    .venv/bin/python benchmarks/results_table.py [--rows fashion_mnist_default,...] [--set KEY=VALUE ...]
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

from training.presets import MEASURED, machine_text, minutes
from training.run_dir import RunDir

PRESETS = harness.ROOT / "presets"
# The rows, in the table's order: every preset that trains (a search space has no `app`).
ROWS = [p.stem for p in sorted(PRESETS.glob("*.yaml")) if "app" in (yaml.safe_load(p.read_text()) or {})]
SEMI_SUPERVISED = "dbn_semi_supervised"  # run by its benchmark: 3 seeds, against random weights
START, END = "<!-- results:start -->", "<!-- results:end -->"


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
    if name == SEMI_SUPERVISED:
        command = [sys.executable, "benchmarks/dbn_semi_supervised.py", "--out", str(out), *sets]
        _run(command, out)
        result = json.loads((harness.RESULTS / "dbn_semi_supervised.json").read_text())["figures"]
        first = out / f"seed_{result['seeds'][0]['seed']}"
        config = _yaml(RunDir(first).config)
        metrics = json.loads(RunDir(first).metrics.read_text())
        gains = ", ".join(f"{s['gain_points']:+.2f}" for s in result["seeds"])
        return {"model": _model(config, metrics)
                + f"; vs the same net from random weights, {config['data']['labeled']:,} labels",
                "epochs": config["epochs"],
                "accuracy": f"{result['mean_pretrained']:.2%} vs {result['mean_random_init']:.2%} "
                            f"(mean of {len(result['seeds'])} seeds; gain {gains} points)",
                "seconds": sum(json.loads(RunDir(out / f"seed_{s['seed']}").metrics.read_text())
                               ["train_seconds"] for s in result["seeds"]) / len(result["seeds"]),
                "per": f"per seed, after {metrics['pretrain_seconds']:.0f} s of pretraining once"}
    command = [sys.executable, "-m", "training", "train", "--preset", name,
               "--set", "runtime.verbose=2", "--set", f"run_dir={out / 'run'}",
               "--set", f"export.dir={out / 'export'}", *sets]
    _run(command, out)
    metrics = json.loads(RunDir(out / "run").metrics.read_text())
    config = _yaml(RunDir(out / "run").config)
    return {"model": _model(config, metrics), "epochs": metrics["epochs_completed"],
            "accuracy": f"{metrics['test']['accuracy']:.2%}",
            "seconds": metrics["train_seconds"] + metrics.get("pretrain_seconds", 0.0), "per": ""}


def command(name):
    """The row's command, as a user types it."""
    if name == SEMI_SUPERVISED:
        return "python benchmarks/dbn_semi_supervised.py"
    return f"python -m training train --preset {name}"


def table(rows, machine):
    """The README's table; rows measured on another day or machine than the last say which
    (timings from different machines are not comparable)."""
    lines = [f"Measured by `make results` on {machine_text(machine)}. Real Fashion-MNIST test set "
             "(10,000 images); time is training (and pretraining) from each run's metrics.json.",
             "", "| command | model | epochs | test accuracy | time |", "| --- | --- | --- | --- | --- |"]
    notes = []
    for name in ROWS:
        if name in rows:
            r = rows[name]
            time = minutes(r["seconds"]) + (f" {r['per']}" if r["per"] else "")
            if r.get("machine", machine) != machine:
                notes += [r["machine"]] * (r["machine"] not in notes)
                time += f" [{notes.index(r['machine']) + 1}]"
            lines.append(f"| `{command(name)}` | {r['model']} | {r['epochs']} | {r['accuracy']} | {time} |")
    lines += [""] * bool(notes) + [f"[{i}] measured on {machine_text(m)}" + "  " * (i < len(notes))
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
    parser.add_argument("--rows", default=",".join(ROWS), help="none, or of " + ", ".join(ROWS))
    parser.add_argument("--set", action="append", default=[], help="override for every run")
    parser.add_argument("--readme", default=str(harness.ROOT / "README.md"),
                        help="the file whose results markers get the table")
    parser.add_argument("--table", default=str(harness.ROOT / "benchmarks" / "RESULTS_TABLE.md"))
    parser.add_argument("--out", default=str(harness.OUT / "results_table"), help="the runs' dirs")
    parser.add_argument("--measured", default=str(PRESETS / MEASURED), help="the record of every row")
    args = parser.parse_args()
    measured = Path(args.measured)
    saved = json.loads(measured.read_text()) if measured.exists() else {"rows": {}}
    names = [] if args.rows == "none" else args.rows.split(",")
    unknown = [name for name in names if name not in ROWS]
    if unknown:
        sys.exit(f"unknown rows {', '.join(unknown)}; rows: {', '.join(ROWS)}")
    if names:  # the table's header names the machine of the latest measurement
        machine = harness.machine()
        saved["machine"] = {"date": datetime.date.today().isoformat(), "cpu": machine["cpu"],
                            "cores": machine["cores"], "tensorflow": machine["versions"]["tensorflow"],
                            "keras": machine["versions"]["keras"]}
    for name in names:
        saved["rows"][name] = {**run_row(name, args.set, Path(args.out) / name),
                               "machine": saved["machine"]}
        print(f"{name}: {json.dumps(saved['rows'][name])}", flush=True)
    saved["rows"] = dict(sorted(saved["rows"].items()))
    measured.write_text(json.dumps(saved, indent=2) + "\n")
    text = table(saved["rows"], saved["machine"])
    Path(args.table).write_text(
        f"# Measured results\n\nWritten by `make results` (benchmarks/results_table.py).\n\n{text}\n")
    write_between_markers(Path(args.readme), text)
    print(text)


if __name__ == "__main__":
    main()
