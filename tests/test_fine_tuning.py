"""Starting from a trained model: init_from loads the layers that match, a frozen backbone
trains only the head (see also test_resume.py: a resume across the two phases is exact)."""

import urllib.error

import keras
import numpy as np
import pytest
from conftest import fashion_train

from apps.image_classification.model import build_classifier
from training.errors import DataError, DataNotFoundError
from training.pipeline import fine_tuning


def _classifier(classes, seed):
    keras.utils.set_random_seed(seed)
    return build_classifier("resnet_small", (28, 28, 1), classes, width_multiplier=0.25)


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_init_from_loads_the_layers_that_match_and_leaves_the_head(tmp_path, suffix, capsys):
    trained = _classifier(10, seed=1)
    path = tmp_path / f"trained{suffix}"
    trained.save(path) if suffix == ".keras" else trained.save_weights(path)
    new = _classifier(3, seed=2)
    head_before = new.get_layer("probabilities").get_weights()
    loaded = fine_tuning.init_from(new, path)
    assert "probabilities" not in loaded and "stem_conv" in loaded and "stage2_block1" in loaded
    for name in loaded:
        for a, b in zip(new.get_layer(name).get_weights(), trained.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(new.get_layer("probabilities").get_weights(), head_before):
        np.testing.assert_array_equal(a, b)
    assert "not loaded (initialised afresh): probabilities" in capsys.readouterr().out


def test_a_model_of_another_app_loads_nothing_and_says_so(tmp_path):
    keras.utils.set_random_seed(0)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
                              keras.layers.Dense(1, name="prediction")])
    other.save(tmp_path / "tabular.keras")
    with pytest.raises(DataError, match="none of its layers has this model's layer names"):
        fine_tuning.init_from(_classifier(3, seed=0), tmp_path / "tabular.keras")


def test_a_frozen_backbone_keeps_every_weight_and_batchnorm_statistic(tmp_path):
    model = _classifier(3, seed=0)
    fine_tuning.set_backbone_frozen(model, True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = {layer.name: layer.get_weights() for layer in model.layers}
    model.fit(fashion_train()[0][:64], fashion_train()[1][:64] % 3, epochs=1, verbose=0)
    for layer in model.layers:
        changed = any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))
        assert changed == (layer.name == "probabilities"), layer.name
    assert [w.name for w in model.trainable_weights] == ["kernel", "bias"]


def test_a_keras_application_gets_its_own_preprocessing_and_our_head(tmp_path):
    model = build_classifier("keras_applications/MobileNetV2", (32, 32, 1), 3, weights="none")
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    rgb = np.repeat(images, 3, axis=-1).astype("float32")
    np.testing.assert_allclose(model.get_layer("preprocess")(rgb),
                               keras.applications.mobilenet_v2.preprocess_input(rgb.copy()), atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)
    assert model.output.shape == (None, 3)


def test_imagenet_weights_offline_name_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    with pytest.raises(DataNotFoundError, match=(
            r"Keras wants (mobilenet_v2_weights_\S+_no_top\.h5) from https://\S+ download it where "
            rf"there is internet and copy it to {tmp_path}/models/\1")):
        build_classifier("keras_applications/MobileNetV2", (32, 32, 3), 3, weights="imagenet")
