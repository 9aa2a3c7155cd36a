"""Config: defaults, YAML, --set overrides, strict keys with helpful errors."""

import pytest

from training.errors import ConfigError
from training.registry import load_config


def test_defaults_are_the_apps():
    config = load_config("image_classification")
    assert config.data.name == "fashion_mnist"
    assert config.model.arch == "resnet_small"


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("app: image_classification\nepochs: 7\nmodel:\n  arch: mobilenet_small\n")
    config = load_config(None, path, ["epochs=2", "data.limit=100", "runtime.jit_compile=true",
                                      "optimizer.clipnorm=none"])
    assert (config.epochs, config.model.arch, config.data.limit) == (2, "mobilenet_small", 100)
    assert config.runtime.jit_compile is True and config.optimizer.clipnorm is None


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        load_config("image_classification", None, ["model.archh=resnet50"])
    message = str(err.value)
    assert "model.archh" in message and "arch" in message and "width_multiplier" in message


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match="'epochs' must be int"):
        load_config("image_classification", None, ["epochs=many"])


def test_malformed_set_says_how():
    with pytest.raises(ConfigError, match="key=value"):
        load_config("image_classification", None, ["epochs"])


def test_missing_file_is_clear():
    with pytest.raises(ConfigError, match="not found"):
        load_config("image_classification", "nope.yaml")


def test_unknown_app_lists_apps():
    with pytest.raises(ValueError, match="image_classification"):
        load_config("no_such_app")


@pytest.mark.parametrize("value", ["300,100", "[300, 100]"])
def test_list_values_from_set(value):
    config = load_config("unsupervised_pretraining", None, [f"model.hidden={value}"])
    assert config.model.hidden == [300, 100]


def test_one_number_is_a_list_of_one():
    assert load_config("unsupervised_pretraining", None, ["model.hidden=24"]).model.hidden == [24]


def test_list_items_are_type_checked():
    with pytest.raises(ConfigError, match=r"model.hidden\[1\]' must be int"):
        load_config("unsupervised_pretraining", None, ["model.hidden=300,wide"])


def test_overriding_one_key_keeps_the_apps_other_defaults_in_that_section():
    # The image app's optimizer section defaults to learning_rate=2e-3; setting another key of
    # the section once rebuilt it from OptimizerConfig's own defaults (1e-3).
    config = load_config("image_classification", None, ["optimizer.schedule=constant"])
    assert config.optimizer.schedule == "constant" and config.optimizer.learning_rate == 2e-3


@pytest.mark.parametrize("key, value, choices", [
    ("strategy", "horovod", "auto, one_device, mirrored, multi_worker, tpu"),
    ("optimizer.schedule", "linear", "cosine, constant"),
    ("optimizer.name", "lamb", "auto, adam, adamw, sgd, rmsprop"),
])
def test_choices_are_checked_when_the_config_loads(key, value, choices):
    with pytest.raises(ConfigError, match=f"'{key}' must be one of: {choices}; got '{value}'"):
        load_config("image_classification", None, [f"{key}={value}"])


def test_arch_is_ours_or_one_of_keras_applications():
    with pytest.raises(ConfigError, match="'model.arch' must be one of: mobilenet, mobilenet_small, "
                       "resnet18, resnet34, resnet50, resnet_small, or keras_applications/<Name>"):
        load_config("image_classification", None, ["model.arch=vgg"])
    assert load_config("image_classification", None, [
        "model.arch=keras_applications/EfficientNetB0"]).model.arch == "keras_applications/EfficientNetB0"


@pytest.mark.parametrize("app", ["sequence_modeling", "unsupervised_pretraining", "tabular_regression"])
def test_model_arch_is_a_key_of_the_image_app_only(app):
    with pytest.raises(ConfigError, match="Unknown config key 'model.arch'"):
        load_config(app, None, ["model.arch=rnn"])


def test_weights_none_means_random_initialisation_not_the_default(tmp_path, monkeypatch):
    # "none" was read as null, which is the default (imagenet): a download, or offline an error.
    from apps.image_classification.data import ImageDataInfo
    from apps.image_classification.keras_applications import PREFIX
    from training.config import save_yaml
    from training.registry import get_app

    config = load_config("image_classification", None, [f"model.arch={PREFIX}MobileNetV2",
                                                        "model.weights=none", "data.limit=8"])
    assert config.model.weights == "none"
    save_yaml(config, tmp_path / "saved.yaml")
    assert load_config(None, tmp_path / "saved.yaml").model.weights == "none"
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve",
                        lambda *a, **k: pytest.fail("weights=none downloaded ImageNet weights"))
    app = get_app("image_classification")(config)
    app._info = ImageDataInfo((32, 32, 1), 3, ["a", "b", "c"])  # MobileNetV2 takes 32x32 and up
    assert app.build_model().output.shape[-1] == 3
