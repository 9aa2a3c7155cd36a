"""Shared test fixtures: small real-data configs and a quiet TensorFlow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from training.config import load_config  # noqa: E402

# Small but real: a narrow ResNet on a few hundred Fashion-MNIST images.
SMOKE = [
    "epochs=1", "batch_size=64", "data.limit=256", "model.width_multiplier=0.25",
    "runtime.verbose=0", "callbacks.tensorboard=false", "runtime.steps_per_execution=4",
]


@pytest.fixture
def smoke_config(tmp_path):
    """A one-epoch image_classification config writing only under tmp_path."""

    def make(*overrides):
        return load_config("image_classification", None, SMOKE + [
            f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}", *overrides])

    return make
