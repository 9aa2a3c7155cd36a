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

from training.app import App, classification_signature
from training.config import Config, DataConfig, ModelConfig, option
from training.datasets import csv_rows, numeric_column, split_range


@dataclass
class {cls}DataConfig(DataConfig):
    name: str = option("generated", "TODO: what the data is (shown in the run's config)")
    path: str = option("", "CSV with a header row: numeric feature columns and a label column; "
                       "empty: generated examples")
    label_column: str = option("label", "the CSV column of class labels (numbers or names)")
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


def _by_value(label):
    """Sort key: labels that are numbers in numeric order, names alphabetically."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


class {cls}(App):
    name = "{name}"
    description = "TODO: one line for `python -m training list`."
    config_class = {cls}Config

    def __init__(self, config):
        super().__init__(config)
        self.features, self.labels, self.classes = self.read_examples()
        self.order = np.random.default_rng(config.seed).permutation(len(self.labels))

    def read_examples(self):
        """(float32 features [examples, columns], int64 class ids, class names): the CSV at
        data.path, or generated examples whose labels are a linear rule of the features."""
        d = self.config.data
        if d.path:
            rows = csv_rows(d.path, {{"label_column": d.label_column}})
            columns = [c for c in (rows[0][1] if rows else []) if c != d.label_column]
            features = np.stack([numeric_column(d.path, c, rows) for c in columns], axis=1)
            labels = [row[d.label_column].strip() for _, row in rows]
            classes = sorted(set(labels), key=_by_value)
            index = {{label: i for i, label in enumerate(classes)}}
            return features, np.array([index[label] for label in labels], np.int64), classes
        rng = np.random.default_rng(self.config.seed)
        features = rng.normal(size=(d.num_examples, 8)).astype("float32")
        labels = (features @ rng.normal(size=8) > 0).astype("int64")
        return features, labels, ["negative", "positive"]

    def rows(self, split):
        """Indices of `split`'s examples in a seeded random order, capped by data.limit."""
        d = self.config.data
        start, stop = split_range(split, len(self.order), d.validation_split, d.test_split, d.limit)
        return self.order[start:stop]

    def build_data(self, split):
        """Unbatched (features, label) examples of `split`, or None; see training/app.py."""
        rows = self.rows(split)
        if len(rows) == 0:
            return None
        return tf.data.Dataset.from_tensor_slices((self.features[rows], self.labels[rows]))

    def pretrain(self, run_dir, compile_options):
        """Optional unsupervised stage before build_model (see apps/unsupervised_pretraining/app.py)."""

    def build_model(self):
        """An uncompiled keras.Model with named inputs; called inside strategy.scope()."""
        # Serving takes raw features; float32 (under mixed precision too) keeps their digits.
        normalize = keras.layers.Normalization(name="normalize", dtype="float32")
        normalize.adapt(self.features[self.rows("train")])
        inputs = keras.Input((self.features.shape[1],), name="features")
        x = keras.layers.Dense(self.config.model.hidden_units, activation="relu")(normalize(inputs))
        outputs = keras.layers.Dense(len(self.classes), activation="softmax",  # float32 out,
                                     dtype="float32", name="probabilities")(x)  # as Keras advises
        return keras.Model(inputs, outputs)

    def compile_args(self):
        """Loss, metrics and the default optimizer name for model.compile."""
        return {{"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}}

    def class_names(self):
        """Label names (enables the confusion matrix); return None for non-classification."""
        return self.classes

    def serving_signature(self, model):
        """Raw features in; probabilities, class_id and class_name out."""
        spec = tf.TensorSpec((None, self.features.shape[1]), tf.float32, name="features")
        return classification_signature(model, spec, self.classes)

    def callbacks(self, run_dir):
        """Extra Keras callbacks; the pipeline already checkpoints, logs and resumes."""
        return []

    def report(self, model, test_data, run_dir):
        """Extra figures in run_dir, extra metrics for metrics.json; test_data is batched (or
        None when there is no test split)."""
        return {{}}
'''

CONFIG_TEMPLATE = """# {name}: python -m training train --config configs/{name}.yaml
app: {name}
epochs: 5
batch_size: 64
data:
  validation_split: 0.1
  # path: data/my_table.csv      # numeric feature columns and a label column
  # label_column: label
"""

TEST_TEMPLATE = '''"""{title}: configs/{name}.yaml trains, exports and serves, on generated data or
the CSV it names: the checks read the feature and class counts from the run."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from training.pipeline import train
from training.registry import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "{name}.yaml"


def test_{name}_trains_exports_and_serves(tmp_path):
    config = load_config(None, CONFIG, [
        "epochs=1", "runtime.verbose=0", "callbacks.tensorboard=false",
        f"run_dir={{tmp_path / 'run'}}", f"export.dir={{tmp_path / 'export'}}"])
    metrics = train(config)
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    classes = metrics["class_names"]
    serve = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    columns = serve.structured_input_signature[1]["features"].shape[1]
    out = serve(features=tf.constant(np.zeros((3, columns), np.float32)))
    assert out["probabilities"].shape == (3, len(classes))
    assert {{name.decode() for name in out["class_name"].numpy()}} <= set(classes)
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
