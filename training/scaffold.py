"""`kat new-app NAME`: write a runnable App, its preset and its test. In a clone, into the
project, declared in its setup.cfg as the built-in apps are (`new_app`); elsewhere, or with
`--package DIR`, as a standalone package of its own that declares the same entry points in its
pyproject.toml (`new_package`).

The scaffold trains on generated data before any edit, so a new task starts
from a green test; replace `build_data` and `build_model` with the real task.
"""

import importlib.util
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
        self.features, self.targets, self.classes = self.read_examples()
        self.order = np.random.default_rng(config.seed).permutation(len(self.targets))

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
        return tf.data.Dataset.from_tensor_slices((self.features[rows], self.targets[rows]))

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

CONFIG_TEMPLATE = """# {name}: kat train --preset {name} (a preset: `kat presets` lists it once installed)
app: {name}
epochs: 5
batch_size: 64
data:
  validation_split: 0.1
  # path: data/my_table.csv      # numeric feature columns and a label column
  # label_column: label
"""

TEST_TEMPLATE = '''"""{title}: the {name} preset trains, evaluates and exports, and the export answers as
the model does, on generated data or the CSV the preset names."""

from training.testing import assert_export_answers_like_model, train_tiny


def test_{name}_trains_and_its_export_answers_like_the_model(tmp_path):
    metrics = train_tiny(tmp_path, preset="{name}")
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    answer = assert_export_answers_like_model(metrics)
    assert {{name.decode() for name in answer["class_name"]}} <= set(metrics["class_names"])
'''

PYPROJECT_TEMPLATE = """[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{distribution}"
version = "0.1.0"
description = "{title}: a keras-app-templates app"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["keras-app-templates>={version}"]

[project.optional-dependencies]
test = ["pytest"]

# How `kat` finds the app and its presets: entry points, as the built-in apps are declared.
[project.entry-points."keras_app_templates.apps"]
{name} = "{name}.app:{cls}"

[project.entry-points."keras_app_templates.presets"]
{name} = "{name}.presets"

[tool.setuptools.packages.find]
include = ["{name}", "{name}.*"]

[tool.setuptools.package-data]
"{name}.presets" = ["*.yaml"]

[tool.pytest.ini_options]
testpaths = ["tests"]
filterwarnings = ["ignore::DeprecationWarning"]  # TensorFlow's and Keras' own
"""

README_TEMPLATE = """# {distribution}

{title}: TODO what this task predicts from what. An app for
[keras-app-templates](https://pypi.org/project/keras-app-templates/): `kat` trains, evaluates,
exports and serves it like the built-in apps.

```sh
pip install -e '.[test]'      # registers the app and its preset with kat
kat list                      # {name} is among the apps
pytest tests                  # one tiny run: trains, exports, checks the export
kat train --preset {name}     # the preset: {name}/presets/{name}.yaml
kat train --app {name} --help # every config key, its default and help
```

- `{name}/app.py`: the app. It trains on generated data until the preset names a CSV
  (`data.path`, `data.label_column`); replace `build_data` and `build_model` with the real task.
- `{name}/presets/`: configs found by name (`kat train --preset NAME`); add more beside it.
- `tests/test_{name}.py`: uses `training.testing`, the helpers keras-app-templates' own tests use.
"""


def _class_name(name):
    return "".join(part.capitalize() for part in name.split("_")) + "App"


def _checked(name):
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ConfigError(f"App name {name!r} must be a lowercase Python identifier, e.g. my_task")


def is_project(root):
    """Does `root` hold a project that declares apps in its setup.cfg (a clone of this one)?"""
    setup_cfg = Path(root) / "setup.cfg"
    return setup_cfg.is_file() and f"{ENTRY_POINT_GROUP} =" in setup_cfg.read_text()


def _entry_point(setup_cfg, name):
    """setup.cfg's lines with app `name` added to the entry-point group, or a ConfigError."""
    lines = setup_cfg.read_text().splitlines(keepends=True)
    group = [i for i, line in enumerate(lines) if line.strip() == f"{ENTRY_POINT_GROUP} ="]
    end = group[0] + 1
    while end < len(lines) and lines[end][:1].isspace() and lines[end].strip():
        if lines[end].split("=")[0].strip() == name:
            raise ConfigError(f"{setup_cfg} already declares an app {name!r}")
        end += 1
    return lines[:end] + [f"    {name} = apps.{name}:{_class_name(name)}\n"] + lines[end:]


def _write(files, values):
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))


def template_values(name):
    from training import __version__

    return {"name": name, "cls": _class_name(name), "title": name.replace("_", " ").capitalize(),
            "distribution": name.replace("_", "-"), "version": __version__}


def new_app(name, root="."):
    """In a clone: write apps/NAME.py, presets/NAME.yaml and tests/test_NAME.py under `root`
    and declare the app in `root`/setup.cfg. Nothing is written if any of it would overwrite
    a file."""
    _checked(name)
    root = Path(root)
    if not is_project(root):
        raise ConfigError(f"{root / 'setup.cfg'} does not declare apps ({ENTRY_POINT_GROUP}): "
                          "run new-app in a clone of keras-app-templates, or write a package of "
                          "your own with `new-app NAME --package DIR`")
    files = {
        root / "apps" / f"{name}.py": APP_TEMPLATE,
        root / "presets" / f"{name}.yaml": CONFIG_TEMPLATE,
        root / "tests" / f"test_{name}.py": TEST_TEMPLATE,
    }
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise ConfigError(f"Not overwriting existing files: {', '.join(existing)}")
    setup_lines = _entry_point(root / "setup.cfg", name)
    _write(files, template_values(name))
    (root / "setup.cfg").write_text("".join(setup_lines))
    return list(files) + [root / "setup.cfg"]


def _taken(name):
    """Why `name` cannot be a new package's app and import name, or None."""
    from training import registry

    if name in registry.app_names():
        return f"an app {name!r} is installed already; pick another name"
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    if found is not None:
        return (f"a module {name!r} is importable already ({found.origin or 'a package'}), and the "
                "package's own would clash with it; pick another name")
    return None


def new_package(name, directory):
    """Write a standalone, installable package for app `name` into `directory` (new or empty):
    pyproject.toml declaring the app and its presets, the app module, a preset, a README and a
    test. Nothing is written into a directory that has anything in it."""
    _checked(name)
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ConfigError(f"{directory} exists and is not an empty directory; nothing was written. "
                          "Choose a new directory for the package")
    problem = _taken(name)
    if problem:
        raise ConfigError(f"new-app {name}: {problem}")
    files = {
        directory / "pyproject.toml": PYPROJECT_TEMPLATE,
        directory / "README.md": README_TEMPLATE,
        directory / name / "__init__.py": '"""{title}: a keras-app-templates app (app.py)."""\n',
        directory / name / "app.py": APP_TEMPLATE,
        directory / name / "presets" / "__init__.py": '"""The presets of {name}: one YAML config each."""\n',
        directory / name / "presets" / f"{name}.yaml": CONFIG_TEMPLATE,
        directory / "tests" / f"test_{name}.py": TEST_TEMPLATE,
    }
    _write(files, template_values(name))
    return list(files)
