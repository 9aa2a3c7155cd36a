"""`python -m training tune`: KerasTuner searches over the pipeline, on tiny real data."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SMOKE, free_port, one_line_error

from training.registry import load_config
from training.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]
# The checks of the search space run on the image app (its keys); they stop before any trial.
SEARCH = ["--app", "image_classification", *[a for s in SMOKE for a in ("--set", s)]]


def tabular_search(tmp_path, rows=200):
    """The searches that train: the tabular app (any app works; its tiny MLP traces and trains
    in a fraction of the image app's time) on a CSV of `rows` rows, y = 2a - b + noise."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, rows))
    np.savetxt(tmp_path / "t.csv", np.stack([a, b, 2 * a - b + rng.normal(0, 0.1, rows)], 1),
               delimiter=",", header="a,b,y", comments="", fmt="%.6f")
    return ["--app", "tabular_regression", "--set", f"data.path={tmp_path / 't.csv'}",
            "--set", "data.target=y", "--set", "runtime.verbose=0",
            "--set", "callbacks.tensorboard=false"]


def write_space(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return str(path)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("space, expected", [
    ("model.widht_multiplier: [0.5, 1.0]", ["unknown config key 'model.widht_multiplier'",
                                            "did you mean 'model.width_multiplier'"]),
    ("optimizer.learning_rate: {log_uniform: [0, 0.01]}", ["log_uniform needs low > 0"]),
    ("optimizer.learning_rate: {uniform: [0.01]}", ["uniform needs [low, high], two numbers"]),
    ("optimizer.learning_rate: {uniform: [0.1, 0.01]}", ["uniform needs low < high"]),
    ("optimizer.learning_rate: {normal: [0.1, 0.01]}", ["unknown range 'normal'", "log_uniform"]),
    ("optimizer.learning_rate: 0.01", ["A single value is not a search: set it with --set"]),
    ("model.width_multiplier: []", ["choice needs a non-empty list"]),
    ("model.augment: [true, 1.5]", ["mixes types"]),
    ("model.depth: {int: [1.5, 3]}", ["unknown config key 'model.depth'"]),
    ("batch_size: {int: [1.5, 3]}", ["int needs whole numbers"]),
    ("model.width_multiplier: [0, 1.0]", ["'model.width_multiplier' cannot take 0",
                                          "must be > 0"]),
    ("optimizer.name: [adam, lamb]", ["cannot take 'lamb'", "must be one of: auto, adam"]),
    ("epochs: [1, 3]", ["is Hyperband's to set", "--algorithm random"]),
    ("run_dir: [a, b]", ["cannot be searched"]),
    ("[1, 2]", ["must map config keys to ranges or choices"]),
    ("model.width_multiplier: [0.5, 1.0]\nmodel.width_multiplier: [0.25]", ["given twice"]),
    ("model.width_multiplier: [&a [1,1,1,1,1,1,1,1,1,1], "
     + ", ".join(f"&{b} [{','.join(['*' + a] * 10)}]" for a, b in zip("abcdefg", "bcdefgh")) + "]",
     ["its aliases (*name) expand to more than 10,000 values"]),
])
def test_bad_search_space_is_one_clear_error_before_any_trial(cli, tmp_path, space, expected):
    result = cli("tune", *SEARCH, "--space", write_space(tmp_path, space), cwd=tmp_path)
    one_line_error(result, *expected)
    assert not (tmp_path / "runs").exists()  # no trial ran, no search dir was left


@pytest.mark.parametrize("args, expected", [
    (["--algorithm", "grid"], ["--algorithm 'grid' is not one of: hyperband, bayesian, random"]),
    (["--objective", "val_kappa"], ["--objective val_kappa: say whether lower or higher is better",
                                   "val_kappa:min"]),
    (["--max-trials", "0"], ["--max-trials must be > 0"]),
])
def test_bad_search_options_name_the_fix(cli, tmp_path, args, expected):
    space = write_space(tmp_path, "optimizer.learning_rate: {log_uniform: [1e-4, 1e-2]}")
    one_line_error(cli("tune", *SEARCH, "--space", space, *args, cwd=tmp_path), *expected)


def test_hyperband_search_records_a_diverged_trial_and_best_yaml_trains_it_again(cli, tmp_path):
    """Two trials: learning rate 1e30 diverges (recorded as failed, the search goes on), the
    other completes; Hyperband gives both its first round's epoch (epochs=3 / 3)."""
    space = write_space(tmp_path, "optimizer.learning_rate: [1.0e+30, 0.003]\n"
                                  "callbacks.restore_best: [true]\n")
    result = cli("tune", *tabular_search(tmp_path), "--set", "epochs=3",
                 "--set", "optimizer.name=sgd", "--set", "optimizer.schedule=constant",
                 "--space", space, "--max-trials", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (search,) = (tmp_path / "runs" / "tune").iterdir()
    rows = {float(r["optimizer.learning_rate"]): r for r in read_csv(search / "trials.csv")}
    assert set(rows) == {1e30, 0.003}
    failed, good = rows[1e30], rows[0.003]
    assert failed["status"] == "failed" and "Training diverged" in failed["error"]
    assert good["status"] == "completed" and good["epochs"] == "1" and good["error"] == ""
    assert good["callbacks.restore_best"] == "True"
    assert np.isfinite(float(good["val_loss"])) and float(good["seconds"]) > 0
    summary = json.loads((search / "summary.json").read_text())
    assert (summary["completed"], summary["failed"]) == (1, 1)
    assert (search / "trials.png").stat().st_size > 0
    assert f"Best trial {good['trial']}" in result.stdout

    best = load_config(None, search / "best.yaml")
    trial = load_config(None, RunDir(good["run_dir"]).config)
    assert (best.epochs, best.optimizer.learning_rate, best.run_dir) == (1, 0.003, "")
    assert best.export.enabled and not trial.export.enabled
    retrain = cli("train", "--config", str(search / "best.yaml"), "--set",
                  f"run_dir={tmp_path / 'again'}", "--set", "export.enabled=false", cwd=tmp_path)
    assert retrain.returncode == 0, retrain.stderr[-3000:]
    again = json.loads(RunDir(tmp_path / "again").metrics.read_text())
    assert again["test"]["loss"] == pytest.approx(float(good["test_loss"]), rel=1e-6)


def _tune_process(tmp_path, args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "training", "tune", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(env or {})})


def test_a_killed_search_resumes_without_redoing_finished_trials(tmp_path):
    space = write_space(tmp_path, "model.hidden_units: [8, 16]")
    # 16,000 rows in batches of 8: an epoch lasts long enough for the second trial to be killed in
    args = [*tabular_search(tmp_path, rows=16000), "--set", "batch_size=8", "--set", "epochs=2",
            "--space", space, "--algorithm", "random", "--max-trials", "2"]

    def second_trial_backed_up():
        finished = {p.parent for p in tmp_path.glob("runs/tune/*/trials/*/metrics.json")}
        backups = {p.parents[1] for p in
                   tmp_path.glob("runs/tune/*/trials/*/backup/training_metadata.json")}
        return finished and backups - finished

    first = _tune_process(tmp_path, args)
    deadline = time.monotonic() + 300
    while not second_trial_backed_up() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    output, _ = first.communicate()
    (killed,) = second_trial_backed_up() or [None]
    assert killed is not None, "the second trial was not killed after its first epoch:\n" + output[-3000:]
    (done,) = (p for p in killed.parent.glob("*/metrics.json"))
    kept, mtime = done.read_text(), done.stat().st_mtime_ns

    second = _tune_process(tmp_path, args)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output[-3000:]
    search = killed.parents[1]
    assert f"Resuming the search in runs/tune/{search.name}" in output
    assert f"Resuming runs/tune/{search.name}/trials/{killed.name} after epoch 1 of 2" in output
    assert done.read_text() == kept and done.stat().st_mtime_ns == mtime  # not redone
    rows = read_csv(search / "trials.csv")
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert sorted(r["model.hidden_units"] for r in rows) == ["16", "8"]
    with open(RunDir(killed).history) as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1"]


def test_two_localhost_workers_share_one_oracle(tmp_path):
    """KerasTuner's distributed mode: a chief holding the oracle, two workers running trials."""
    space = write_space(tmp_path, "model.hidden_units: [8, 16]")
    args = [*tabular_search(tmp_path), "--space", space, "--algorithm", "random",
            "--max-trials", "2", "--dir", str(tmp_path / "search")]
    port = str(free_port())
    common = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    procs = [_tune_process(tmp_path, args, {**common, "KERASTUNER_TUNER_ID": name})
             for name in ("chief", "tuner0", "tuner1")]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    rows = read_csv(tmp_path / "search" / "trials.csv")
    assert sorted(r["model.hidden_units"] for r in rows) == ["16", "8"]
    assert all(r["status"] == "completed" for r in rows)
    assert (tmp_path / "search" / "summary.json").exists()
    ran = [out.count(f"({name}): model.hidden_units=")
           for name, out in zip(("chief", "tuner0", "tuner1"), outputs)]
    assert ran == [0, 1, 1], outputs  # the chief holds the oracle, each worker ran one trial


def test_a_distributed_search_needs_a_shared_dir(cli, tmp_path, monkeypatch):
    for name, value in {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1",
                        "KERASTUNER_TUNER_ID": "tuner0"}.items():
        monkeypatch.setenv(name, value)
    space = write_space(tmp_path, "model.width_multiplier: [0.25, 0.5]")
    one_line_error(cli("tune", *SEARCH, "--space", space, "--algorithm", "random", cwd=tmp_path),
                   "A distributed search needs --dir DIR")


def test_a_choice_of_booleans_reaches_the_config_as_booleans():
    import keras_tuner

    from training.tuning.space import Dimension, with_values

    dimension = Dimension("model.augment", "choice", (False, True))
    hp = keras_tuner.HyperParameters()
    dimension.declare(hp)
    hp.values["model.augment"] = 1  # how KerasTuner keeps True
    config = load_config("image_classification", None, ["model.augment=false"])
    changed = with_values(config, {"model.augment": dimension.value(hp)})
    assert changed.model.augment is True and config.model.augment is False


def test_a_finished_search_is_not_run_again(cli, tmp_path):
    space = write_space(tmp_path, "model.width_multiplier: [0.25, 0.5]")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "summary.json").write_text("{}")  # what a finished search leaves
    one_line_error(cli("tune", *SEARCH, "--space", space, "--dir", str(tmp_path / "search"),
                       cwd=tmp_path), "holds a finished search", "choose another --dir")


def test_importance_is_the_share_of_variance_a_key_explains():
    import keras_tuner

    from training.tuning.results import importance
    from training.tuning.space import Dimension

    width = Dimension("model.width_multiplier", "choice", (0.5, 1.0))
    rate = Dimension("optimizer.learning_rate", "log_uniform", (1e-4, 1e-2))
    objective = keras_tuner.Objective("val_accuracy", "max")
    rates = [1e-4, 3e-4, 1e-3, 3e-3, 5e-3, 1e-2]
    table = [{"status": "completed", "epochs": 3, "model.width_multiplier": w,
              "optimizer.learning_rate": r, "val_accuracy": 0.8 + 0.1 * (w == 1.0)}
             for w, r in zip([0.5, 1.0] * 3, rates)]
    shares = importance(table, [rate, width], objective)
    assert list(shares) == ["model.width_multiplier", "optimizer.learning_rate"]
    assert shares["model.width_multiplier"] == pytest.approx(1.0)
    assert shares["optimizer.learning_rate"] == pytest.approx(0.0)
    assert importance(table[:2], [rate, width], objective) == {}  # too few trials to say
