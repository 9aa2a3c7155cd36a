"""Adding tasks: the scaffold starts green, installed packages add apps, the CSV example works."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training.app import App
from training.errors import ConfigError
from training.export import export_run, predict
from training.pipeline import evaluate, train
from training.registry import load_config
from training.run_dir import RunDir, load_run
from training.scaffold import TEST_TEMPLATE, new_app, template_values
from training.testing import assert_export_answers_like_model, train_tiny

REPO = Path(__file__).resolve().parents[1]


def _env_with_path(path):
    return {**os.environ, "PYTHONPATH": str(path), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _install(project, site):
    """pip install `project` into `site` as a user installs it (its dependencies are this
    environment's); the entry points in its metadata are what make its app and presets known."""
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-build-isolation", "--target", str(site), str(project)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]


def _generated_test_passes(test_file, site, cwd):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                            cwd=cwd, env=_env_with_path(site), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:]


def _lints(*paths):
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(REPO / "pyproject.toml"),
                           *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout[-3000:]


def test_scaffold_round_trip_in_a_copy_of_the_project(tmp_path):
    project = tmp_path / "project"
    for package in ("apps", "layers", "serving", "training", "presets"):
        shutil.copytree(REPO / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, project / name)
    written = new_app("my_task", project)
    assert [p.name for p in written] == ["my_task.py", "my_task.yaml", "test_my_task.py", "setup.cfg"]
    assert "    my_task = apps.my_task:MyTaskApp\n" in (project / "setup.cfg").read_text()
    site = tmp_path / "site"
    _install(project, site)
    listed = subprocess.run([sys.executable, "-m", "training", "list"], cwd=tmp_path,
                            env=_env_with_path(site), capture_output=True, text=True, timeout=300)
    assert "my_task " in listed.stdout, listed.stderr[-2000:]
    # The generated test: train one epoch -> export -> the export answers as the model does.
    _generated_test_passes(project / "tests" / "test_my_task.py", site, tmp_path)
    _lints(project / "apps" / "my_task.py", project / "tests")
    with pytest.raises(ConfigError, match="Not overwriting"):
        new_app("my_task", project)


def test_scaffold_as_a_package_of_its_own_installs_lists_and_passes_its_test(tmp_path, cli):
    package = tmp_path / "flowers_pkg"
    result = cli("new-app", "flowers", "--package", str(package))
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md", "flowers/__init__.py", "flowers/app.py", "flowers/presets/__init__.py",
        "flowers/presets/flowers.yaml", "pyproject.toml", "tests/test_flowers.py"]
    assert f"pip install -e {package}" in result.stdout
    site = tmp_path / "site"
    _install(package, site)
    env = _env_with_path(site)
    listed = subprocess.run([sys.executable, "-m", "training", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert "flowers " in listed.stdout, listed.stderr[-2000:]
    _generated_test_passes(package / "tests" / "test_flowers.py", site, tmp_path)
    _lints(package)
    # Pointed at a CSV of other feature and class counts (named classes), the preset trains.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    species = np.array(["setosa", "versicolor", "virginica"])[np.argmax(x[:, :3], axis=1)]
    (tmp_path / "flowers.csv").write_text("a,b,c,d,e,species\n" + "".join(
        ",".join(f"{v:.3f}" for v in row) + f",{name}\n" for row, name in zip(x, species)))
    trained = subprocess.run([sys.executable, "-m", "training", "train", "--preset", "flowers",
                              "--set", f"data.path={tmp_path / 'flowers.csv'}",
                              "--set", "data.label_column=species",
                              "--set", "epochs=1", "--set", "runtime.verbose=0", "--set",
                              "export.enabled=false", "--set", f"run_dir={tmp_path / 'run'}"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads(RunDir(tmp_path / "run").metrics.read_text())
    assert metrics["class_names"] == ["setosa", "versicolor", "virginica"]
    assert metrics["params"] == (5 * 2 + 1) + (5 * 32 + 32) + (32 * 3 + 3)  # normalize, dense, head
    # Into a directory that has anything in it: refused, and nothing there changes.
    before = {p: p.read_bytes() for p in package.rglob("*") if p.is_file()}
    again = cli("new-app", "other", "--package", str(package))
    assert again.returncode == 2 and "exists and is not an empty directory" in again.stderr
    assert {p: p.read_bytes() for p in package.rglob("*") if p.is_file()} == before


def test_new_app_outside_a_clone_writes_a_package_and_in_a_clone_declares_the_app_once(tmp_path, cli):
    outside = cli("new-app", "my_task", cwd=tmp_path)
    assert outside.returncode == 0, outside.stderr
    assert (tmp_path / "my_task" / "pyproject.toml").is_file()
    assert '[project.entry-points."keras_app_templates.apps"]\nmy_task = "my_task.app:MyTaskApp"' in (
        tmp_path / "my_task" / "pyproject.toml").read_text()
    clashing = cli("new-app", "json", "--package", str(tmp_path / "json_pkg"))
    assert clashing.returncode == 2 and "a module 'json' is importable already" in clashing.stderr
    assert not (tmp_path / "json_pkg").exists()
    project = tmp_path / "project"
    project.mkdir()
    with pytest.raises(ConfigError, match="does not declare apps"):
        new_app("my_task", project)
    shutil.copy(REPO / "setup.cfg", project / "setup.cfg")
    with pytest.raises(ConfigError, match="already declares an app 'tabular_regression'"):
        new_app("tabular_regression", project)
    assert sorted(p.name for p in project.iterdir()) == ["setup.cfg"]  # nothing written


def test_missing_hook_is_named():
    class Incomplete(App):
        name = "incomplete"

        def build_data(self, split):
            return None

    with pytest.raises(TypeError, match=r"build_model\(\), compile_args\(\)"):
        Incomplete(Incomplete.config_class())


def _write_csv(path, rows=400):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3)) * [1.0, 100.0, 0.01] + [0.0, 500.0, 1.0]
    y = 2 * x[:, 0] + 0.03 * x[:, 1] + rng.normal(scale=0.1, size=rows)
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="a,b,c,price", comments="")


def test_tabular_regression_from_csv_exports_raw_features(tmp_path, capsys):
    _write_csv(tmp_path / "houses.csv")
    config = load_config("tabular_regression", None, [
        f"data.path={tmp_path / 'houses.csv'}", "data.target=price", "epochs=40",
        "runtime.verbose=0", "callbacks.tensorboard=false", f"run_dir={tmp_path / 'run'}",
        f"export.dir={tmp_path / 'export'}"])
    metrics = train(config)
    # The target's spread is about 4; a model that learned the rule is far better than that.
    assert metrics["test"]["mae"] < 1.0
    serve = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    out = serve(features=tf.constant([[0.0, 500.0, 1.0]], tf.float32))
    assert out["prediction"].shape == (1,)
    assert abs(float(out["prediction"][0]) - 15.0) < 1.5  # 2*0 + 0.03*500

    # Full-integer LiteRT converts, and its check tells what int8 costs: the raw features
    # (spreads 1, 100 and 0.01) share one int8 scale, so `a` is lost.
    litert = export_run(metrics["run_dir"], format="litert", quantize="int8")
    assert litert == tmp_path / "export" / "tabular_regression" / "litert" / "1"
    int8 = evaluate(metrics["run_dir"], artifact=litert / "model.tflite")
    assert int8["mae"] > 5 * metrics["test"]["mae"]
    details = json.loads((litert / "model.json").read_text())
    check = details["int8_check"]
    assert check["examples"] == 288 and check["mean_abs_change"] > 0.1 * check["output_std"]
    assert "int8 loses much here" in capsys.readouterr().out
    per_tensor = export_run(metrics["run_dir"], format="litert", quantize="int8", per_tensor=True)
    smaller = json.loads((per_tensor / "model.json").read_text())
    assert smaller["per_tensor"] and not details["per_tensor"]
    assert smaller["bytes"] < details["bytes"]  # one scale per weight tensor, not per channel
    # predict reads a CSV by its header: columns in another order, the target among them.
    (tmp_path / "new.csv").write_text("price,c,a,b\n9,1.0,0.0,500.0\n9,1.0,1.0,500.0\n")
    _, app, model = load_run(metrics["run_dir"])
    rows = predict.predict(app, model, [str(tmp_path / "new.csv")])
    expected = serve(features=tf.constant([[0.0, 500.0, 1.0], [1.0, 500.0, 1.0]]))["prediction"]
    assert [r["input"] for r in rows] == [f"{tmp_path / 'new.csv'} row {i}" for i in (1, 2)]
    np.testing.assert_allclose([r["prediction"] for r in rows], expected.numpy(), atol=1e-5)


def test_tabular_regression_errors_name_the_fix(tmp_path):
    _write_csv(tmp_path / "t.csv")
    with pytest.raises(ConfigError, match="a, b, c, price"):
        train(load_config("tabular_regression", None,
                          [f"data.path={tmp_path / 't.csv'}", "data.target=cost"]))
    from training.errors import DataNotFoundError
    with pytest.raises(DataNotFoundError, match="data.path"):
        train(load_config("tabular_regression", None, ["data.path=/nonexistent.csv"]))


def test_docs_quote_the_worked_examples_exactly():
    doc = (REPO / "docs" / "adding_a_task.md").read_text()
    quoted = [block.split("```", 1)[0] for block in doc.split("```python\n")[1:]]
    sources = [(REPO / "apps" / name).read_text()
               for name in ("tabular_regression/config.py", "tabular_regression/app.py",
                            "image_autoencoder/config.py", "image_autoencoder/app.py")]
    assert quoted == [TEST_TEMPLATE.format(**template_values("my_task"))] + sources  # the scaffold's test
    code_lines = [line for line in "".join(sources[:2]).splitlines() if line.strip()
                  and not line.strip().startswith("#") and not line.startswith(("import ", "from "))]
    assert f"{len(code_lines)} lines of code" in doc and len(code_lines) < 60


def test_image_autoencoder_serves_the_code_and_the_reconstruction(tmp_path):
    metrics = train_tiny(tmp_path, app="image_autoencoder", overrides=[
        "data.limit=256", "batch_size=64", "model.code_size=16", "model.hidden_units=64"])
    assert metrics["test_examples"] == 256 and np.isfinite(metrics["test"]["loss"])
    assert "class_names" not in metrics  # unsupervised: no labels, no confusion matrix
    assert (tmp_path / "run" / "reconstructions.png").stat().st_size > 0
    _, app, model = load_run(metrics["run_dir"])
    images = next(iter(app.build_data("test").batch(4)))[0]
    target = next(iter(app.build_data("test").batch(4)))[1]
    np.testing.assert_allclose(target, images.numpy() / 255, atol=1e-6)  # its own label
    out = assert_export_answers_like_model(metrics)  # the reconstruction, as model.keras gives it
    assert out["code"].shape == (3, 16) and out["reconstruction"].shape == (3, 28, 28, 1)
    scored = evaluate(metrics["run_dir"], artifact=metrics["export"])
    assert scored["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-4)
