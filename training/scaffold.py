"""`python -m training new-app NAME`: write a runnable App, its config and its test, and
declare the app in setup.cfg's entry-point group, as the built-in apps are.

The scaffold trains on generated data before any edit, so a new task starts
from a green test; replace `build_data` and `build_model` with the real task.
"""

import keyword
import re
from pathlib import Path

from training.errors import ConfigError
from training.registry import ENTRY_POINT_GROUP

APP_TEMPLATE = '''"""{title}: TODO one line on what this task predicts from what."""

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from training.app import App, ServingSignature
from training.config import Config, DataConfig, ModelConfig, option
from training.datasets import split_range


@dataclass
class {cls}DataConfig(DataConfig):
    name: str = option("generated", "TODO: your data set (a TFDS name, or read data.dir)")
    num_examples: int = option(2000, "generated examples (train + validation + test)", ge=10)
    test_split: float = option(0.2, "fraction of the examples held out for the test", ge=0, lt=1)


@dataclass
class {cls}ModelConfig(ModelConfig):
    hidden_units: int = option(32, "width of the hidden layer", ge=1)


@dataclass
class {cls}Config(Config):
    app: str = "{name}"
    epochs: int = 5
    batch_size: int = 64
    data: {cls}DataConfig = field(default_factory={cls}DataConfig)
    model: {cls}ModelConfig = field(default_factory={cls}ModelConfig)


class {cls}(App):
    name = "{name}"
    description = "TODO: one line for `python -m training list`."
    config_class = {cls}Config

    NUM_FEATURES = 8
    CLASS_NAMES = ["negative", "positive"]

    def build_data(self, split):
        """Unbatched (features, label) examples of `split`, or None; see training/app.py.

        Generated stand-in: labels are a fixed linear rule of the features, so
        the model can learn it. Replace with your data; honour data.limit.
        """
        d = self.config.data
        rng = np.random.default_rng(self.config.seed)
        x = rng.normal(size=(d.num_examples, self.NUM_FEATURES)).astype("float32")
        y = (x @ rng.normal(size=self.NUM_FEATURES) > 0).astype("int64")
        start, stop = split_range(split, len(x), d.validation_split, d.test_split, d.limit)
        if stop <= start:
            return None
        return tf.data.Dataset.from_tensor_slices((x[start:stop], y[start:stop]))

    def pretrain(self, run_dir, compile_options):
        """Optional unsupervised stage before build_model (see apps/unsupervised_pretraining/app.py)."""

    def build_model(self):
        """An uncompiled keras.Model with named inputs; called inside strategy.scope()."""
        inputs = keras.Input((self.NUM_FEATURES,), name="features")
        x = keras.layers.Dense(self.config.model.hidden_units, activation="relu")(inputs)
        outputs = keras.layers.Dense(len(self.CLASS_NAMES), activation="softmax",
                                     name="probabilities")(x)
        return keras.Model(inputs, outputs)

    def compile_args(self):
        """Loss, metrics and the default optimizer name for model.compile."""
        return {{"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}}

    def class_names(self):
        """Label names (enables the confusion matrix); return None for non-classification."""
        return self.CLASS_NAMES

    def serving_signature(self, model):
        """Raw inputs TF Serving receives and the named outputs it returns."""
        spec = tf.TensorSpec((None, self.NUM_FEATURES), tf.float32, name="features")

        def serve(features):
            probabilities = model(features, training=False)
            return {{"probabilities": probabilities,
                    "class_id": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}}

        return ServingSignature([spec], serve)

    def callbacks(self, run_dir):
        """Extra Keras callbacks; the pipeline already checkpoints, logs and resumes."""
        return []

    def report(self, model, test_data, run_dir):
        """Write extra figures to run_dir; return extra metrics for metrics.json."""
        return {{}}
'''

CONFIG_TEMPLATE = """# {name}: python -m training train --config configs/{name}.yaml
app: {name}
epochs: 5
batch_size: 64
data:
  validation_split: 0.1
"""

TEST_TEMPLATE = '''"""{title}: the scaffold trains, exports and reloads before any edit."""

import numpy as np
import tensorflow as tf

from training.config import load_config
from training.run import train


def test_{name}_trains_exports_and_reloads(tmp_path):
    config = load_config("{name}", None, [
        "epochs=1", "runtime.verbose=0", "callbacks.tensorboard=false",
        f"run_dir={{tmp_path / 'run'}}", f"export.dir={{tmp_path / 'export'}}"])
    metrics = train(config)
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    serve = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    out = serve(features=tf.constant(np.zeros((3, 8), np.float32)))
    assert out["probabilities"].shape == (3, 2) and out["class_id"].shape == (3,)
'''


def _class_name(name):
    return "".join(part.capitalize() for part in name.split("_")) + "App"


def _entry_point(setup_cfg, name):
    """setup.cfg's lines with app `name` added to the entry-point group, or a ConfigError."""
    if not setup_cfg.is_file():
        raise ConfigError(f"No setup.cfg in {setup_cfg.parent}: apps are declared there, in the "
                          f"entry-point group {ENTRY_POINT_GROUP}; run new-app in the project root")
    lines = setup_cfg.read_text().splitlines(keepends=True)
    group = [i for i, line in enumerate(lines) if line.strip() == f"{ENTRY_POINT_GROUP} ="]
    if not group:
        raise ConfigError(f"{setup_cfg} has no `{ENTRY_POINT_GROUP} =` group under "
                          "[options.entry_points]; add it, then run new-app again")
    end = group[0] + 1
    while end < len(lines) and lines[end][:1].isspace() and lines[end].strip():
        if lines[end].split("=")[0].strip() == name:
            raise ConfigError(f"{setup_cfg} already declares an app {name!r}")
        end += 1
    return lines[:end] + [f"    {name} = apps.{name}:{_class_name(name)}\n"] + lines[end:]


def new_app(name, root="."):
    """Write apps/NAME.py, configs/NAME.yaml and tests/test_NAME.py under `root` and declare
    the app in `root`/setup.cfg. Nothing is written if any of it would overwrite a file."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ConfigError(f"App name {name!r} must be a lowercase Python identifier, e.g. my_task")
    root = Path(root)
    files = {
        root / "apps" / f"{name}.py": APP_TEMPLATE,
        root / "configs" / f"{name}.yaml": CONFIG_TEMPLATE,
        root / "tests" / f"test_{name}.py": TEST_TEMPLATE,
    }
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise ConfigError(f"Not overwriting existing files: {', '.join(existing)}")
    setup_lines = _entry_point(root / "setup.cfg", name)
    title = name.replace("_", " ").capitalize()
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name, cls=_class_name(name), title=title))
    (root / "setup.cfg").write_text("".join(setup_lines))
    return list(files) + [root / "setup.cfg"]
