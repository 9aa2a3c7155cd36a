"""The command line: help lists apps and keys; user errors are one line, exit 2."""

import subprocess
import sys


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True,
                          text=True, timeout=300)


def test_help_lists_apps_and_keys():
    result = _cli("train", "--help")
    assert result.returncode == 0
    for text in ("image_classification", "model.arch", "data.limit", "batch_size", "strategy"):
        assert text in result.stdout


def test_unknown_key_is_one_clear_line():
    result = _cli("train", "--app", "image_classification", "--set", "epochz=1")
    assert result.returncode == 2
    assert "Unknown config key 'epochz'" in result.stderr and "Traceback" not in result.stderr


def test_list_shows_descriptions():
    result = _cli("list")
    assert result.returncode == 0 and "Fashion-MNIST" in result.stdout
