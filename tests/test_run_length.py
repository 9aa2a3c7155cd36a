"""`epochs: auto` and `batch_size: auto` (training/pipeline/run_length.py): a run length that fits the
data, recorded as numbers, and a warning for a fixed run far too short for its data."""

import yaml
from PIL import Image

from training.pipeline import run_length
from training.registry import load_config
from training.runtime.precision import choose, probe


def test_auto_fits_the_run_to_the_data_and_says_so_in_one_line(capsys):
    fashion = load_config("image_classification")
    assert (fashion.epochs, fashion.batch_size) == ("auto", "auto")
    run_length.resolve(fashion, 54_000)
    assert (fashion.batch_size, fashion.epochs) == (128, 4)  # 422 steps an epoch: 1,688 steps

    small = load_config("image_classification")
    run_length.resolve(small, 453)  # 50 images per class, less the validation split
    assert (small.batch_size, small.epochs) == (16, 104)  # 29 steps an epoch: 3,016 steps
    assert capsys.readouterr().out.splitlines()[-1] == (
        "batch_size=auto: 16; epochs=auto: 104 epochs of 29 steps (3,016 optimizer steps, aiming "
        "at 3,000 and at most 100,000 examples) for 453 training examples")

    two = load_config("image_classification")
    run_length.resolve(two, 4539, replicas=2)
    # 71 global batches of 64 an epoch; 3,000 steps would show the model 192,000 examples, so
    # the examples cap decides: 23 epochs of 4,539
    assert (two.batch_size, two.epochs) == (32, 23)


def test_a_fixed_run_far_too_short_for_its_data_gets_a_warning(capsys):
    config = load_config("image_classification", None, ["epochs=3", "batch_size=128"])
    run_length.resolve(config, 1500)
    assert capsys.readouterr().out.strip() == (
        "warning: 3 epoch(s) of 12 steps is 36 optimizer steps, far too few to train on 1,500 "
        "examples; --set epochs=auto gives 67")
    run_length.resolve(load_config("image_classification", None, ["epochs=3"]), 54_000)
    assert "warning" not in capsys.readouterr().out


def test_print_config_shows_the_numbers_a_run_would_use(tmp_path, cli):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(40):
            Image.new("L", (8, 8), i).save(tmp_path / "data" / name / f"{i}.png")
    result = cli("train", "--app", "image_classification", "--set", f"data.dir={tmp_path / 'data'}",
                 "--print-config")
    assert result.returncode == 0, result.stderr[-1500:]
    printed = yaml.safe_load(result.stdout)
    assert (printed["batch_size"], printed["epochs"]) == (16, 150)
    assert "epochs=auto: 150 epochs of 4 steps" in result.stderr
    # 150 passes over the same images: model.augment=auto turns augmentation on; 4 leave it off
    assert printed["model"]["augment"] is True
    assert "model.augment=auto: on for 150 epochs (on above 10)" in result.stderr
    # runtime.mixed_precision=auto: the compute type this machine gives, with its reason
    choice = choose("auto", probe("tensorflow"))
    assert printed["runtime"]["mixed_precision"] == choice.value
    assert choice.line() in result.stderr and f"# auto: {choice.reason}" in result.stdout
    fixed = cli("train", "--app", "image_classification", "--set", f"data.dir={tmp_path / 'data'}",
                "--set", "epochs=4", "--print-config")
    assert fixed.returncode == 0 and yaml.safe_load(fixed.stdout)["model"]["augment"] is False
