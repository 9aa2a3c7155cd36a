"""A new task's first mistakes, made on purpose: each is one `error:` line naming the hook and
the fix, caught where the pipeline receives the hook's result."""

import pytest
import tensorflow as tf
from conftest import SMOKE, one_line_error

from apps.image_classification.app import ImageClassification
from apps.tabular_regression.app import TabularRegression
from training import registry
from training.app import ServingSignature


class BatchedImages(ImageClassification):
    """build_data batches its examples itself, as keras.io examples do."""

    name = "batched_images"

    def build_data(self, split):
        ds = super().build_data(split)
        return ds.batch(16) if ds is not None else None


class ImagesWithoutLabels(ImageClassification):
    name = "images_without_labels"

    def build_data(self, split):
        ds = super().build_data(split)
        return ds.map(lambda image, label: image) if ds is not None else None


class TupleServing(ImageClassification):
    """serving_signature returns a tuple, which TF would export as output_0, output_1."""

    name = "tuple_serving"

    def serving_signature(self, model):
        spec = tf.TensorSpec((None, 28, 28, 1), tf.uint8, name="images")
        return ServingSignature([spec], lambda x: (model(x), tf.argmax(model(x), axis=-1)))


@pytest.fixture
def train_app(cli, monkeypatch, tmp_path):
    """`train --app NAME` of one of the classes above, registered as if installed."""
    def run(cls):
        monkeypatch.setitem(registry._loaded, cls.name, cls)
        sets = [a for o in SMOKE + [f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}"]
                for a in ("--set", o)]
        return cli("train", "--app", cls.name, *sets)

    return run


def test_batched_build_data_says_return_single_examples(train_app):
    line = one_line_error(train_app(BatchedImages), "BatchedImages.build_data yields batches",
                          "each example is (None, 28, 28, 1)", "without .batch()")
    assert "Traceback" not in line


def test_build_data_without_labels_says_yield_pairs(train_app):
    one_line_error(train_app(ImagesWithoutLabels), "build_data('train') must yield (features, label)")


def test_serving_function_returning_a_tuple_says_return_a_dict(train_app, tmp_path):
    one_line_error(train_app(TupleServing), "'serving_default' returned a tuple",
                   "must return a dict of named outputs")
    model_dir = tmp_path / "export" / "image_classification"
    assert not model_dir.exists() or not any(model_dir.iterdir())  # no version left behind


def test_an_app_not_declared_in_setup_cfg_names_the_line_to_add(cli, tmp_path):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "wine.py").write_text(
        "from training.app import App\n\nclass WineApp(App):\n    name = \"wine\"\n")
    (tmp_path / "setup.cfg").write_text("[options.entry_points]\nkeras_app_templates.apps =\n")
    one_line_error(cli("train", "--app", "wine", cwd=tmp_path),
                   "apps/wine.py defines it (WineApp)",
                   "add `wine = apps.wine:WineApp` under `keras_app_templates.apps =`")


def test_an_app_declared_but_not_installed_says_reinstall(cli, tmp_path):
    (tmp_path / "setup.cfg").write_text("[options.entry_points]\nkeras_app_templates.apps =\n"
                                        "    wine = apps.wine:WineApp\n")
    one_line_error(cli("train", "--app", "wine", cwd=tmp_path), "declares it",
                   "reinstall the project (`pip install -e .`")


# -- data problems: named before fit, not mistaken for divergence ------------------------------

def test_a_text_column_in_a_numeric_csv_names_the_column(cli, tmp_path):
    rows = "\n".join(f"{i % 7},{'red' if i % 2 else 'blue'},{2 * (i % 7)}" for i in range(64))
    (tmp_path / "cars.csv").write_text("age,color,price\n" + rows + "\n")
    one_line_error(cli("train", "--app", "tabular_regression", "--set", f"data.path={tmp_path / 'cars.csv'}",
                       "--set", "data.target=price", "--set", f"run_dir={tmp_path / 'run'}"),
                   "Column 'color'", "line 2, holds 'blue', not a number", "encode it as numbers")


def test_a_forecasting_validation_split_shorter_than_a_window_says_what_to_change(cli, tmp_path):
    (tmp_path / "series.csv").write_text("t,load\n" + "\n".join(f"{i},{i % 10}" for i in range(300)))
    one_line_error(cli("train", "--app", "sequence_modeling", "--set", "task=forecasting",
                       "--set", f"data.path={tmp_path / 'series.csv'}", "--set", "data.column=load",
                       "--set", "data.validation_split=0.1", "--set", f"run_dir={tmp_path / 'run'}"),
                   "The validation split has 24 values", "data.sequence_length=100",
                   "lower data.sequence_length (below 24) or raise data.validation_split (now 0.1)")


class ValidationLost(TabularRegression):
    """A build_data that drops its validation split although data.validation_split asks for one."""

    name = "validation_lost"

    def build_data(self, split):
        return None if split == "validation" else super().build_data(split)


def test_an_empty_validation_split_is_a_warning_that_names_the_key(cli, monkeypatch, tmp_path):
    (tmp_path / "t.csv").write_text("a,y\n" + "\n".join(f"{i % 5},{i % 5}" for i in range(80)))
    monkeypatch.setitem(registry._loaded, ValidationLost.name, ValidationLost)
    result = cli("train", "--app", ValidationLost.name, "--set", f"data.path={tmp_path / 't.csv'}",
                 "--set", "data.target=y", "--set", "epochs=1", "--set", "runtime.verbose=0",
                 "--set", "export.enabled=false", "--set", f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-1500:]
    assert ("warning: the validation split is empty (data.validation_split=0.1): history has no "
            "val_* metrics") in result.stdout
