"""Starting from a trained model: init_from loads the layers that match, a frozen backbone
trains only the head (see also test_resume.py: a resume across the two phases is exact)."""

import keras
import numpy as np
import pytest

from apps.image_classification.data import ImageSource
from apps.image_classification.model import build_classifier
from training import fine_tuning

FASHION = ImageSource("fashion_mnist").idx_arrays("train")


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


def test_a_frozen_backbone_keeps_every_weight_and_batchnorm_statistic(tmp_path):
    model = _classifier(3, seed=0)
    fine_tuning.set_backbone_frozen(model, True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = {layer.name: layer.get_weights() for layer in model.layers}
    model.fit(FASHION[0][:64], FASHION[1][:64] % 3, epochs=1, verbose=0)
    for layer in model.layers:
        changed = any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))
        assert changed == (layer.name == "probabilities"), layer.name
    assert [w.name for w in model.trainable_weights] == ["kernel", "bias"]
