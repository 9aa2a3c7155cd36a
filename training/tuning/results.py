"""What a search leaves in runs/tune/<stamp>/, rebuilt from KerasTuner's trial records after
every trial: trials.csv, trials.png, best.yaml, and summary.json once the search is over."""

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import yaml
from keras_tuner.engine.trial import Trial

from training import plots
from training.errors import ConfigError
from training.pipeline import history as run_history
from training.pipeline.callbacks import monitored
from training.run_dir import RunDir

CSV_FILE = "trials.csv"
PLOT_FILE = "trials.png"
BEST_FILE = "best.yaml"
SUMMARY_FILE = "summary.json"  # written last: the search is over
ORACLE_DIR = "keras_tuner"  # KerasTuner's project dir: the oracle's state, one trial_<id>/ a trial


def objective_value(config, name):
    """Metric `name` of the epoch the finished run of `config` kept: the best checkpoint's
    epoch when the run restored it (the model it tested and would export), else the last."""
    run_dir = config.run_dir
    rows = run_history.read(RunDir(run_dir))
    if not rows or name not in rows[0]:
        found = ", ".join(k for k in (rows[0] if rows else {}) if k != "epoch")
        raise ConfigError(f"--objective {name} is not in the trials' history.csv (it has: "
                          f"{found}); choose one of those")
    watched = monitored(config, "val_loss" in rows[0])
    kept = run_history.numbers(RunDir(run_dir), watched.name, rows)
    if config.callbacks.restore_best and watched.name.startswith("val_") and kept:
        rows = [kept[watched.best([value for _, value in kept])][0]]
    return float(rows[-1][name])


def load_trials(tune_dir):
    """KerasTuner's trial records of the search in `tune_dir`, in trial order."""
    paths = sorted(Path(tune_dir, ORACLE_DIR).glob("trial_*/trial.json"))
    return [Trial.load(str(p)) for p in paths]


def _metric(trial, name):
    return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None


def _error(trial):
    """The last line of a failed trial's traceback, without the exception's type."""
    lines = [line for line in (trial.message or "").splitlines() if line.strip()]
    return lines[-1].split(": ", 1)[-1] if lines else ""


def rows(tune_dir, trials, dimensions, objective):
    """One dict a trial: id, status, the searched keys, epochs, objective, test metrics,
    seconds, run dir, error."""
    test_names = sorted({n for t in trials for n in t.metrics.metrics if n.startswith("test_")})
    table = []
    for trial in trials:
        values = trial.hyperparameters.values
        row = {"trial": trial.trial_id, "status": trial.status.lower()}
        row.update({d.key: d.value(trial.hyperparameters) for d in dimensions})
        epochs = _metric(trial, "epochs") or values.get("tuner/epochs")
        row["epochs"] = int(epochs) if epochs is not None else None
        row[objective.name] = _metric(trial, objective.name)
        row.update({name: _metric(trial, name) for name in test_names})
        row["seconds"] = _metric(trial, "seconds")
        row["run_dir"] = str(Path(tune_dir) / "trials" / trial.trial_id)
        row["error"] = _error(trial) if trial.status != "COMPLETED" else ""
        table.append(row)
    return table


def _replace(path, text):
    """Write `path` whole or not at all: workers of a distributed search write it too."""
    temp = Path(f"{path}.{os.getpid()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def write_csv(table, path):
    if not table:
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in table)
    _replace(path, out.getvalue())


def scored(table, objective):
    """The completed trials' rows whose objective is a number, best first."""
    done = [r for r in table if r["status"] == "completed" and r[objective.name] is not None
            and np.isfinite(r[objective.name])]
    return sorted(done, key=lambda r: r[objective.name], reverse=objective.direction == "max")


def importance(table, dimensions, objective):
    """{key: share of the objective's variance that the key's value explains} (the correlation
    ratio: choices group by value, ranges by thirds of their sampled values), over the trials
    that trained longest when there are three of them, else over all. Empty below 3 trials."""
    done = scored(table, objective)
    longest = [r for r in done if r["epochs"] == max((r["epochs"] or 0) for r in done)]
    done = longest if len(longest) >= 3 else done
    if len(done) < 3:
        return {}
    y = np.array([r[objective.name] for r in done], float)
    total = float(((y - y.mean()) ** 2).sum())
    shares = {}
    for d in dimensions:
        if d.kind == "choice":
            keys = [repr(r[d.key]) for r in done]
        else:
            order = np.argsort([r[d.key] for r in done], kind="stable")
            keys = np.empty(len(done), int)
            for group, members in enumerate(np.array_split(order, 3)):
                keys[members] = group
            keys = list(keys)
        between = sum(len(m) * (y[m].mean() - y.mean()) ** 2
                      for m in (np.flatnonzero(np.array(keys) == k) for k in set(keys)))
        shares[d.key] = float(between / total) if total > 0 else 0.0
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


def write_best(tune_dir, best, export_enabled):
    """best.yaml: the best trial's own config.yaml, its run dir cleared and export as the
    search's config had it, so `train --config best.yaml` trains it again as is."""
    values = yaml.safe_load(RunDir(best["run_dir"]).config.read_text())
    values["run_dir"] = ""
    values["export"]["enabled"] = export_enabled
    header = (f"# The best trial ({best['trial']}) of the search in {tune_dir}; train it again:\n"
              f"#   python -m training train --config {Path(tune_dir) / BEST_FILE}\n")
    _replace(Path(tune_dir) / BEST_FILE, header + yaml.safe_dump(values, sort_keys=False))


def write(tune_dir, dimensions, objective, export_enabled, finished=False):
    """Rewrite the search's results from its trial records; returns the summary."""
    tune_dir = Path(tune_dir)
    table = rows(tune_dir, load_trials(tune_dir), dimensions, objective)
    write_csv(table, tune_dir / CSV_FILE)
    ranked = scored(table, objective)
    shares = importance(table, dimensions, objective)
    if ranked:
        write_best(tune_dir, ranked[0], export_enabled)
        plots.search_trials(table, dimensions, objective, shares, tune_dir / PLOT_FILE)
    statuses = [r["status"] for r in table]
    summary = {
        "dir": str(tune_dir), "objective": objective.name, "direction": objective.direction,
        "trials": len(table), "completed": statuses.count("completed"),
        "failed": len(table) - statuses.count("completed") - statuses.count("running"),
        "best": ranked[0] if ranked else None, "importance": shares,
        "best_config": str(tune_dir / BEST_FILE) if ranked else None,
    }
    if finished:
        _replace(tune_dir / SUMMARY_FILE, json.dumps(summary, indent=2))
    return summary
