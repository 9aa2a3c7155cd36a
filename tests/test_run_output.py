"""What a run prints and draws: each task's headline metric with the example counts, one line
per epoch in a log, whole-epoch axes, and no figure an app did not measure."""

import json

import matplotlib
import numpy as np
import pytest
import yaml

from training import plots
from training.pipeline.report import PIPELINE_KEYS, report_scalars
from training.run_dir import RunDir
from training.runtime.precision import choose, probe


def test_a_one_epoch_curve_has_a_whole_epoch_axis(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    plots.training_curves({"loss": [0.5], "val_loss": [0.6], "perplexity": [1.7]}, tmp_path / "c.png")
    for ax in figures[0].axes:
        assert ax.get_xlim() == (0.5, 1.5)
        assert [t for t in ax.get_xticks() if 0.5 <= t <= 1.5] == [1.0]
    assert [ax.get_title() for ax in figures[0].axes] == ["loss", "perplexity"]
    matplotlib.pyplot.close(figures[0])


def test_train_in_a_log_prints_one_line_per_epoch_and_the_test_counts(cli, tmp_path):
    rows = "\n".join(f"{i % 7},{i % 3},{2 * (i % 7) - i % 3}" for i in range(200))
    (tmp_path / "t.csv").write_text("a,b,y\n" + rows + "\n")
    result = cli("train", "--app", "tabular_regression", "--set", f"data.path={tmp_path / 't.csv'}",
                 "--set", "data.target=y", "--set", "epochs=2", "--set", "export.enabled=false",
                 "--set", "callbacks.tensorboard=false", "--set", f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-1500:]
    out = result.stdout  # captured: not a terminal, so runtime.verbose=1 means a line per epoch
    assert "\x1b[" not in out and "\r" not in out
    epoch_lines = [line for line in out.splitlines() if " - loss: " in line]
    assert len(epoch_lines) == 2, out
    assert "Test on 40 examples: loss " in out and ", mae " in out
    assert "Trained on 144 examples, validated on 16; 2 epoch(s) in " in out
    metrics = json.loads(RunDir(tmp_path / "run").metrics.read_text())
    assert "pretrain_seconds" not in metrics  # the tabular app has no pretraining stage
    assert (metrics["train_examples"], metrics["validation_examples"], metrics["test_examples"]) == (
        144, 16, 40)
    assert set(metrics) <= PIPELINE_KEYS and report_scalars(metrics) == {}
    # runtime.mixed_precision=auto: the choice for this machine, said once, and recorded.
    choice = choose("auto", probe("tensorflow"))
    assert [line for line in out.splitlines() if line.startswith("Precision: ")] == [choice.line()]
    assert metrics["precision"] == {"policy": choice.policy, "setting": "auto", "reason": choice.reason}
    recorded = RunDir(tmp_path / "run").config.read_text()
    value = str(choice.value).lower() if isinstance(choice.value, bool) else choice.value
    assert f"  mixed_precision: {value}  # auto: {choice.reason}\n" in recorded

    evaluated = cli("evaluate", "--run", str(tmp_path / "run"))
    assert json.loads(evaluated.stdout)["examples"] == 40


def test_forecasting_prints_its_ratio_to_the_naive_forecast(cli, tmp_path):
    (tmp_path / "s.csv").write_text("t,load\n" + "\n".join(f"{i},{i % 12}" for i in range(400)))
    result = cli("train", "--app", "sequence_modeling", "--set", "task=forecasting",
                 "--set", f"data.path={tmp_path / 's.csv'}", "--set", "data.column=load",
                 "--set", "data.sequence_length=24", "--set", "model.units=8", "--set", "epochs=1",
                 "--set", "runtime.verbose=0", "--set", "export.enabled=false",
                 "--set", f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-1500:]
    reported = [line for line in result.stdout.splitlines() if line.startswith("Reported: ")]
    metrics = json.loads(RunDir(tmp_path / "run").metrics.read_text())
    assert reported == ["Reported: " + ", ".join(f"{k} {v:.4g}" for k, v in report_scalars(metrics).items())]
    assert "mae_vs_naive" in reported[0]
    assert "data:\n  name: ''" in RunDir(tmp_path / "run").config.read_text()


@pytest.mark.parametrize("verbose,tty,expected", [(1, False, 2), (1, True, 1), (0, False, 0),
                                                  (2, True, 2)])
def test_keras_progress_is_a_bar_only_on_a_terminal(monkeypatch, verbose, tty, expected):
    from training.config import RuntimeConfig

    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    assert RuntimeConfig(verbose=verbose).keras_verbose() == expected


def test_a_model_no_better_than_the_majority_class_says_so_beside_the_baseline(cli, tmp_path):
    # Noise images whose labels follow nothing, 3 of 4 in one class: no model can beat 75%.
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(48):
        label = "common" if i % 4 else "rare"
        (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
            tmp_path / "data" / label / f"{i}.png")
    result = cli("train", "--app", "image_classification", "--set", f"data.dir={tmp_path / 'data'}",
                 "--set", "model.width_multiplier=0.25", "--set", "epochs=2",
                 "--set", "batch_size=16", "--set", "export.enabled=false",
                 "--set", "data.validation_split=0.3", "--set", "data.test_split=0.3",
                 "--set", "callbacks.tensorboard=false", "--set", f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-1500:]
    metrics = json.loads(RunDir(tmp_path / "run").metrics.read_text())
    matrix = np.array(metrics["confusion_matrix"])
    assert metrics["baseline"]["test"] == {"class": "common",
                                           "accuracy": matrix[0].sum() / matrix.sum()}
    assert f"(majority-class baseline: accuracy {matrix[0].sum() / matrix.sum():.4f}, always " \
           "'common')" in result.stdout
    # ~14 validation images cannot choose an epoch: restore_best=auto keeps the last one
    assert "callbacks.restore_best=auto: off, " in result.stdout and "Restored" not in result.stdout
    assert yaml.safe_load(RunDir(tmp_path / "run").config.read_text())["callbacks"][
        "restore_best"] is False
    last = result.stdout.strip().splitlines()[-2:]
    assert last[0].startswith("warning: validation accuracy never beat the majority-class rate")
    assert last[1].startswith("warning: test accuracy ") and "not clearly above" in last[1]
    assert last == metrics["warnings"]


def test_a_confusion_matrix_of_many_classes_is_a_bounded_figure(tmp_path):
    from PIL import Image

    n = 100  # drawn a cell per class, this figure took 1.6 GB (300 classes: 12 GB)
    matrix = np.random.default_rng(0).integers(0, 5, (n, n))
    plots.confusion_matrix(matrix, [f"class {i}" for i in range(n)], tmp_path / "matrix.png")
    with Image.open(tmp_path / "matrix.png") as image:
        assert max(image.size) <= 100 * plots.MATRIX_INCHES


def test_a_figure_that_fails_is_a_warning_not_a_lost_run(tmp_path, capsys):
    from training.pipeline.report import draw

    RunDir(tmp_path).confusion_matrix.mkdir()  # savefig cannot write there
    assert draw(plots.confusion_matrix, RunDir(tmp_path).confusion_matrix, np.eye(3), "abc") is None
    assert capsys.readouterr().out.startswith("warning: confusion_matrix.png was not drawn "
                                              "(IsADirectoryError: ")
