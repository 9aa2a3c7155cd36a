"""`python -m training tune`: a hyperparameter search over any app with KerasTuner.

KerasTuner's oracle picks each trial's values and keeps the trial records (Hyperband, Bayesian
optimisation or random search); a trial is one normal pipeline run (`training.pipeline.train`, the
same data, strategy and callbacks) of the config with those values set. So any app is tuned
without new code, and each trial leaves a run dir like any other run.

A search lives in runs/tune/<stamp>/: search.yaml (what was asked), keras_tuner/ (the oracle's
state and trial records), trials/<id>/ (one run dir a trial), and the results
(results.py). Killed, it resumes with the same command: finished trials are kept, and
the trial that was running resumes from its own backup.

Several machines: KerasTuner's distributed mode. Every process runs the same command with the
same --dir (on a shared file system) and KerasTuner's environment variables:
KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT (the chief's address), and
KERASTUNER_TUNER_ID: "chief" for the process that holds the oracle, a unique name for each
worker ("tuner0", "tuner1", ...). The chief serves the oracle; the workers run the trials.
"""

import json
import os
import threading
import time
from pathlib import Path

import keras
import keras_tuner
import yaml

from training import config as config_lib
from training import pipeline
from training import run_dir as run_dirs
from training.errors import USER_ERRORS, CommandError, ConfigError, TrainingDiverged
from training.pipeline import callbacks
from training.tuning import results as tuning_results
from training.tuning import space as search_space

ALGORITHMS = ("hyperband", "bayesian", "random")
DEFAULT_MAX_TRIALS = 10  # random and bayesian, without --max-trials or --budget-minutes
HYPERBAND_FACTOR = 3  # KerasTuner's default: a third of each round goes on to the next
SEARCH_FILE = "search.yaml"
ELAPSED_FILE = "elapsed.json"


class _UserError(keras_tuner.errors.FatalError):
    """A user error inside a trial (missing data, a bad config): it stops the search, and
    `tune` raises the original error, whose message names the fix."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def distributed_role():
    """None (one process), "chief" or "worker", from KerasTuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"KERASTUNER_ORACLE_IP is set (distributed search) but {', '.join(missing)} "
                          "is not: set KERASTUNER_ORACLE_PORT to the chief's port and "
                          "KERASTUNER_TUNER_ID to 'chief' on the chief, a unique name on each worker")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def make_objective(name):
    """KerasTuner's Objective for `name` ("val_accuracy", or "val_perplexity:min")."""
    name, _, direction = name.partition(":")
    if direction:
        if direction not in ("min", "max"):
            raise ConfigError(f"--objective {name}:{direction}: the direction is min or max")
        return keras_tuner.Objective(name, direction)
    if callbacks.direction(name):
        return keras_tuner.Objective(name, callbacks.direction(name))
    raise ConfigError(f"--objective {name}: say whether lower or higher is better, e.g. "
                      f"--objective {name}:min")


def make_oracle(algorithm, objective, hyperparameters, config, max_trials, budget_minutes):
    """KerasTuner's oracle for `algorithm` (one of ALGORITHMS, checked by `tune`). Hyperband
    gives each trial up to the config's epochs; with a time budget it runs iterations until the
    budget is spent."""
    common = {"objective": objective, "hyperparameters": hyperparameters, "seed": config.seed,
              "max_retries_per_trial": 0}
    if algorithm == "hyperband":
        if config.epochs < HYPERBAND_FACTOR:
            print(f"note: with epochs={config.epochs} (< {HYPERBAND_FACTOR}) every Hyperband "
                  "trial trains all epochs: a random search. Raise epochs for early rounds")
        oracle = keras_tuner.oracles.HyperbandOracle(
            max_epochs=config.epochs, factor=HYPERBAND_FACTOR,
            hyperband_iterations=None if budget_minutes or max_trials else 1, **common)
        oracle.max_trials = max_trials  # the base oracle stops at this many trials
        return oracle
    if max_trials is None and budget_minutes is None:
        max_trials = DEFAULT_MAX_TRIALS
    if algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)


class Budget:
    """Wall time a search may take, counted across resumes (elapsed.json in its dir)."""

    def __init__(self, tune_dir, minutes):
        self.path = Path(tune_dir) / ELAPSED_FILE
        self.seconds = minutes * 60 if minutes else None
        self.before = json.loads(self.path.read_text())["seconds"] if self.path.exists() else 0.0
        self.start = time.monotonic()

    def spent(self):
        return self.before + time.monotonic() - self.start

    def save(self):
        self.path.write_text(json.dumps({"seconds": self.spent()}))

    def exhausted(self):
        return self.seconds is not None and self.spent() >= self.seconds

    def close_when_spent(self, oracle):
        """Once spent, no new trial starts (running ones finish)."""
        self.save()
        if self.exhausted() and oracle.trials:
            oracle.max_trials = len(oracle.trials)


class PipelineTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Runs each trial as a pipeline run of `config` with the trial's values set."""

    def __init__(self, oracle, config, dimensions, tune_dir, budget, **kwargs):
        super().__init__(oracle, directory=str(tune_dir), project_name=tuning_results.ORACLE_DIR, **kwargs)
        self.config = config
        self.dimensions = dimensions
        self.tune_dir = Path(tune_dir)
        self.budget = budget

    def trial_config(self, trial):
        """The config of `trial`: its values, Hyperband's epochs, its own run dir, no export."""
        hp = trial.hyperparameters
        values = {d.key: d.value(hp) for d in self.dimensions}
        if "tuner/epochs" in hp.values:  # each Hyperband trial trains from scratch, so that
            values["epochs"] = hp.values["tuner/epochs"]  # best.yaml reproduces it exactly
        values["run_dir"] = str(self.tune_dir / "trials" / trial.trial_id)
        values["export.enabled"] = False
        return search_space.with_values(self.config, values)

    def run_trial(self, trial):
        config = self.trial_config(trial)
        values = ", ".join(f"{d.key}={d.value(trial.hyperparameters)}" for d in self.dimensions)
        print(f"Trial {trial.trial_id} ({self.tuner_id}): {values}, epochs={config.epochs} -> "
              f"{config.run_dir}", flush=True)
        finished = run_dirs.RunDir(config.run_dir).metrics
        start = time.perf_counter()
        if finished.exists():  # killed after the run finished, before the oracle heard of it
            metrics = json.loads(finished.read_text())
        else:
            keras.backend.clear_session(free_memory=True)
            try:
                metrics = pipeline.train(config)
            except TrainingDiverged as e:
                raise keras_tuner.errors.FailedTrialError(str(e)) from None
            except USER_ERRORS as e:
                raise _UserError(e) from None
        results = {self.oracle.objective.name: tuning_results.objective_value(
            config, self.oracle.objective.name)}
        results.update({f"test_{k}": v for k, v in metrics["test"].items()})
        results["seconds"] = time.perf_counter() - start
        results["epochs"] = metrics["epochs_completed"]
        return results

    def pre_create_trial(self):
        if not isinstance(self.oracle, keras_tuner.Oracle):
            return  # a worker: the chief keeps the budget
        self.budget.close_when_spent(self.oracle)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        tuning_results.write(self.tune_dir, self.dimensions, self.oracle.objective,
                             self.config.export.enabled)


def _search_spec(config, space_path, algorithm, objective, max_trials, budget_minutes):
    return {"config": config_lib.to_dict(config), "space": config_lib.read_yaml(space_path),
            "algorithm": algorithm, "objective": objective, "max_trials": max_trials,
            "budget_minutes": budget_minutes}


def _resumable(spec):
    """The newest unfinished search under runs/tune/ that asked for `spec`, or None."""
    root = Path("runs") / "tune"
    for path in sorted(root.glob(f"*/{SEARCH_FILE}"), reverse=True):
        if (path.parent / tuning_results.SUMMARY_FILE).exists():
            continue
        try:
            if yaml.safe_load(path.read_text()) == spec:
                return path.parent
        except yaml.YAMLError:
            continue
    return None


def _tune_dir(directory, spec, role):
    """The search's dir: `directory`, else the unfinished search of the same spec, else a new
    runs/tune/<stamp>. A dir holding another search is an error."""
    if role and not directory:
        raise ConfigError("A distributed search needs --dir DIR, the same on the chief and every "
                          "worker (a file system they share)")
    path = Path(directory) if directory else _resumable(spec)
    if path is None:
        return None
    if (path / tuning_results.SUMMARY_FILE).exists():
        raise ConfigError(f"{path} holds a finished search (its results: "
                          f"{path / tuning_results.CSV_FILE}); choose another --dir")
    existing = path / SEARCH_FILE
    if existing.exists() and yaml.safe_load(existing.read_text()) != spec:
        raise ConfigError(f"{path} holds a search with another config, space or options "
                          f"({existing}); choose another --dir, or repeat that search's command")
    return path


def _serve_as_chief(tuner, budget):
    """Serve the oracle until the workers are done, closing it when the budget is spent."""
    done = threading.Event()

    def watch():
        while not done.wait(5):
            budget.close_when_spent(tuner.oracle)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        tuner.search()
    finally:
        done.set()
        budget.save()


def tune(config, space_path, algorithm="hyperband", max_trials=None, budget_minutes=None,
         objective="val_loss", directory=None):
    """Search `space_path` (SPACE.yaml) around `config`; returns the summary (tuning_results)."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"--algorithm {algorithm!r} is not one of: {', '.join(ALGORITHMS)}")
    for name, value in (("--max-trials", max_trials), ("--budget-minutes", budget_minutes)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be > 0, got {value}")
    if config.strategy == "multi_worker":
        raise ConfigError("A search runs each trial in one process; for several machines use "
                          "KerasTuner's distributed mode (see `tune --help`), not "
                          "strategy=multi_worker")
    pipeline.resolve_run_length(config)  # `auto`: a number every trial (and Hyperband's budget) shares
    role = distributed_role()
    dimensions = search_space.read_space(space_path, config, algorithm == "hyperband")
    kt_objective = make_objective(objective)
    hyperparameters = keras_tuner.HyperParameters()
    for dimension in dimensions:
        dimension.declare(hyperparameters)
    oracle = make_oracle(algorithm, kt_objective, hyperparameters, config, max_trials,
                         budget_minutes)
    spec = _search_spec(config, space_path, algorithm, objective, max_trials, budget_minutes)
    path = _tune_dir(directory, spec, role)
    if role == "worker":
        run_dirs.share(path, "--dir DIR")
        tuner = PipelineTuner(oracle, config, dimensions, path, Budget(path, None))
        _search(tuner)  # the chief writes the final results
        return tuning_results.write(path, dimensions, kt_objective, config.export.enabled)
    with run_dirs.claim(path, "tune", "--dir DIR") as claimed:
        path = claimed.run_dir.path
        if (path / SEARCH_FILE).exists():
            print(f"Resuming the search in {path}")
        else:
            (path / SEARCH_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
        claimed.started()
        budget = Budget(path, budget_minutes)
        tuner = PipelineTuner(oracle, config, dimensions, path, budget)
        if role == "chief":
            _serve_as_chief(tuner, budget)
        else:
            _search(tuner)
            budget.save()
        return tuning_results.write(path, dimensions, kt_objective, config.export.enabled,
                                    finished=True)


def _search(tuner):
    try:
        tuner.search()
    except _UserError as e:
        raise e.error from None
    except RuntimeError as e:  # KerasTuner stops after max_consecutive_failed_trials
        if "consecutive failures" not in str(e):
            raise
        raise CommandError(f"The search stopped: {str(e).splitlines()[0]}; the trials' errors "
                           f"are in {tuner.tune_dir / tuning_results.CSV_FILE}") from None
