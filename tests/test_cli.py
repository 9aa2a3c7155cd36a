"""The command line: help shows each app's real keys and defaults; user errors are one line, exit 2.

Commands run in this process through `training.cli.main`, what `python -m training` and `kat`
call; `kat` itself runs once, in a subprocess.
"""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_app_help_lists_its_own_keys_with_its_real_defaults(cli):
    image = cli("train", "--app", "image_classification", "--help")
    assert image.returncode == 0, image.stderr[-2000:]
    # The image app's default learning rate is 2e-3, not the framework's 1e-3.
    assert "optimizer.learning_rate = 0.002 " in image.stdout
    assert "model.arch = 'resnet_small'" in image.stdout
    assert ("backbone: mobilenet, mobilenet_small, resnet18, resnet34, resnet50, resnet_small" in
            image.stdout and "keras_applications/<Name>" in image.stdout)
    sequence = cli("train", "--app", "sequence_modeling", "--help")
    for text in ("task = 'classification'", "[classification | language_model | forecasting]",
                 "model.cell = 'lstm'", "[simple_rnn | gru | lstm]", "data.sequence_length = 100"):
        assert text in sequence.stdout
    dbn = cli("train", "--config", str(ROOT / "presets" / "dbn_fashion_mnist.yaml"), "--help")
    for text in ("config keys of unsupervised_pretraining", "pretrain.epochs = 10",
                 "model.hidden = [500, 500, 2000]", "[bernoulli | gaussian]"):
        assert text in dbn.stdout


def test_train_help_without_an_app_lists_the_shared_keys_and_each_app_once(cli):
    result = cli("train", "--help")
    assert result.returncode == 0
    for key in ("batch_size", "strategy", "data.limit", "optimizer.learning_rate"):
        assert f"\n  {key} " in result.stdout
    for app in ("image_classification", "sequence_modeling", "unsupervised_pretraining"):
        assert result.stdout.count(f"  {app} ") == 1
    assert "train --app NAME --help" in result.stdout


def test_print_config_resolves_defaults_file_and_overrides_without_running(cli, tmp_path):
    # A preset by name, from a directory outside the clone, as an installed package runs it.
    result = cli("train", "--preset", "fashion_mnist_default", "--set", "epochs=2",
                 "--set", "model.dropout=0.1", "--print-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load(result.stdout)
    assert config["app"] == "image_classification" and config["epochs"] == 2  # --set
    assert config["optimizer"]["learning_rate"] == 0.003  # the file
    assert config["model"]["dropout"] == 0.1 and config["model"]["arch"] == "resnet_small"
    assert config["data"]["shuffle_buffer"] == 60000  # the app's defaults
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_unknown_key_is_one_clear_line(cli):
    result = cli("train", "--app", "image_classification", "--set", "epochz=1")
    assert result.returncode == 2
    assert "Unknown config key 'epochz'" in result.stderr and "Traceback" not in result.stderr


def test_a_value_outside_the_choices_lists_them(cli):
    result = cli("train", "--app", "sequence_modeling", "--set", "model.cell=transformer")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'model.cell' must be one of: simple_rnn, gru, lstm; got 'transformer'" in result.stderr


def test_unknown_app_says_how_apps_are_found(cli):
    result = cli("train", "--app", "no_such_app")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "image_classification" in result.stderr and "keras_app_templates.apps" in result.stderr


def test_list_shows_descriptions(cli):
    result = cli("list")
    assert result.returncode == 0 and "Fashion-MNIST" in result.stdout


def test_kat_is_the_same_command_line(cli):
    kat = Path(sys.executable).parent / "kat"
    listed = subprocess.run([str(kat), "list"], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and listed.stdout == cli("list").stdout
    usage = subprocess.run([str(kat), "--help"], capture_output=True, text=True, timeout=300)
    assert usage.stdout.startswith("usage: kat ")
