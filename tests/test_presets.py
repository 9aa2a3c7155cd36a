"""The installed package as a whole tool: presets by name, its version, and plug-in packages'
presets and apps declared through entry points (their scaffold is in test_new_apps.py)."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import yaml

from training import presets
from training.cli.tune import space_file

ROOT = Path(__file__).resolve().parents[1]


def test_every_file_of_presets_is_a_preset_and_the_measured_ones_show_the_readme_figures(cli):
    assert list(presets.installed()) == sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
    listed = cli("presets")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[:len(presets.installed())]}
    assert list(lines) == list(presets.installed())
    readme = (ROOT / "README.md").read_text()
    for name, preset in presets.installed().items():
        if preset.measured:  # the README's table has a row with the same model and accuracy
            figures = [preset.measured["model"], preset.measured["accuracy"]]
            assert any(all(f" {f} |" in row for f in figures) for row in readme.splitlines()), name
            assert preset.measured["accuracy"] in lines[name]
    assert "image_classification" in lines["fashion_mnist_resnet_small"]
    assert "not measured" not in lines["fashion_mnist_resnet_small"]
    shown = cli("presets", "fashion_mnist_resnet_small")
    assert yaml.safe_load(shown.stdout) == yaml.safe_load(
        (ROOT / "presets" / "fashion_mnist_resnet_small.yaml").read_text())


def test_a_preset_loads_as_its_file_does_and_bad_names_list_the_presets(cli, tmp_path):
    by_name = cli("train", "--preset", "sequence_fashion_mnist_gru", "--set", "epochs=3",
                  "--print-config", cwd=tmp_path)
    by_file = cli("train", "--config", str(ROOT / "presets" / "sequence_fashion_mnist_gru.yaml"),
                  "--set", "epochs=3", "--print-config")
    assert by_name.returncode == 0 and by_name.stdout == by_file.stdout
    unknown = cli("train", "--preset", "fashion_mnist_resnet")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "Unknown preset 'fashion_mnist_resnet'" in unknown.stderr
    assert "fashion_mnist_resnet_small" in unknown.stderr  # the installed ones are listed
    both = cli("train", "--preset", "fashion_mnist_default", "--config", "x.yaml")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    space = cli("train", "--preset", "tune_fashion_mnist")
    assert space.returncode == 2 and "Preset tune_fashion_mnist is a search space" in space.stderr
    assert space_file("tune_fashion_mnist") == str(ROOT / "presets" / "tune_fashion_mnist.yaml")
    assert space_file("my_space.yaml") == "my_space.yaml"


def test_version_is_the_package_metadata_one(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.split() == ["keras-app-templates", importlib.metadata.version("keras-app-templates")]


def _plugin(path, name, entry_points, files):
    """What `pip install` of a package leaves behind: its files and a dist-info."""
    for relative, text in files.items():
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_text(text)
    info = path / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def _kat(args, site):
    """`kat ARGS` run outside the clone, with the package at `site` installed."""
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True,
                          timeout=300, cwd=site, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})


def test_plugin_presets_are_listed_and_a_clash_or_a_missing_class_is_one_clear_line(tmp_path):
    ok, clash, broken = (tmp_path / d for d in ("ok", "clash", "broken"))
    _plugin(ok, "extra-presets", "[keras_app_templates.presets]\nextra = extra_presets\n",
            {"extra_presets/__init__.py": "", "extra_presets/extra_small.yaml":
             "app: image_classification\nmodel:\n  width_multiplier: 0.25\n",
             "extra_presets/extra_typo.yaml": "app: image_classification\nmodel: [unclosed\n"})
    listed = _kat(["presets"], ok)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "extra_small" in listed.stdout and "width_multiplier=0.25: not measured" in listed.stdout
    assert "extra_typo" in listed.stdout and "(broken)" in listed.stdout and "not valid YAML" in listed.stdout
    printed = _kat(["train", "--preset", "extra_small", "--print-config"], ok)
    assert yaml.safe_load(printed.stdout)["model"]["width_multiplier"] == 0.25

    _plugin(clash, "clashing-presets", "[keras_app_templates.presets]\nclash = clashing_presets\n",
            {"clashing_presets/__init__.py": "", "clashing_presets/fashion_mnist_default.yaml": "app: x\n"})
    clashing = _kat(["presets"], clash)
    assert clashing.returncode == 2 and "Traceback" not in clashing.stderr
    assert "Two installed packages ship the preset 'fashion_mnist_default'" in clashing.stderr
    assert "clashing-presets" in clashing.stderr and "keras-app-templates" in clashing.stderr

    _plugin(broken, "broken-app", "[keras_app_templates.apps]\nbroken = broken_app:Missing\n",
            {"broken_app.py": "class Present:\n    pass\n"})
    listing = _kat(["list"], broken)
    assert listing.returncode == 0 and "image_classification" in listing.stdout  # the others list
    assert "broken" in listing.stdout and "(broken)" in listing.stdout
    trained = _kat(["train", "--app", "broken", "--print-config"], broken)
    assert trained.returncode == 2 and "Traceback" not in trained.stderr
    assert ("App 'broken' of package broken-app cannot be loaded from its entry point "
            "broken_app:Missing" in trained.stderr)


EXTRA_APP = {"extra_app.py": "from apps.tabular_regression.app import TabularRegression\n"
             "class ExtraApp(TabularRegression):\n"
             "    name = 'extra_app'\n"
             "    description = 'An app from another package.'\n"}


def test_entry_point_app_from_an_installed_package(tmp_path):
    _plugin(tmp_path, "extra-app", "[keras_app_templates.apps]\nextra_app = extra_app:ExtraApp\n", EXTRA_APP)
    result = _kat(["list"], tmp_path)
    assert "extra_app" in result.stdout and "An app from another package." in result.stdout, \
        result.stderr[-2000:]


def test_two_packages_declaring_one_app_name_is_one_clear_error(tmp_path):
    _plugin(tmp_path, "extra-app", "[keras_app_templates.apps]\ntabular_regression = extra_app:ExtraApp\n",
            EXTRA_APP)
    result = _kat(["list"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Two installed packages declare the app 'tabular_regression': " in result.stderr
    assert ("keras-app-templates (apps.tabular_regression.app:TabularRegression)" in result.stderr
            and "extra-app (extra_app:ExtraApp)" in result.stderr), result.stderr


def test_the_readme_installs_the_wheel_this_version_builds():
    from training import __version__

    readme = (ROOT / "README.md").read_text()
    library = readme.split("<!-- library:start -->")[1].split("<!-- library:end -->")[0]
    assert f"pip install --quiet keras_app_templates-{__version__}-py3-none-any.whl" in library
