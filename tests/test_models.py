"""Backbones reproduce the published parameter counts."""

import keras
import pytest

from apps.image_classification.model import build_classifier


def test_mobilenet_matches_keras_applications():
    ours = build_classifier("mobilenet", (224, 224, 3), 1000)
    reference = keras.applications.MobileNet(weights=None, input_shape=(224, 224, 3))
    assert ours.count_params() == reference.count_params() == 4_253_864  # MobileNet v1: 4.2M


@pytest.mark.parametrize("arch, expected", [
    # torchvision's parameter counts plus the BatchNorm moving statistics Keras counts too
    ("resnet18", 11_689_512 + 9_600),
    ("resnet34", 21_797_672 + 17_024),
    ("resnet50", 25_557_032 + 53_120),  # "25.6M"
])
def test_resnet_depths(arch, expected):
    assert build_classifier(arch, (224, 224, 3), 1000).count_params() == expected


@pytest.mark.parametrize("arch", ["mobilenet_small", "resnet_small"])
def test_small_variants_keep_spatial_detail_on_28x28(arch):
    model = build_classifier(arch, (28, 28, 1), 10)
    pool_input = model.get_layer("pool").input
    assert tuple(pool_input.shape[1:3]) == (7, 7)
    assert model.output_shape == (None, 10)
    assert model.inputs[0].dtype == "uint8" and model.inputs[0].name == "image"


def test_width_multiplier_shrinks_the_model():
    full = build_classifier("resnet_small", (28, 28, 1), 10).count_params()
    half = build_classifier("resnet_small", (28, 28, 1), 10, width_multiplier=0.5).count_params()
    assert 0.2 * full < half < 0.3 * full  # conv params scale with width squared


def test_unknown_arch_lists_choices():
    with pytest.raises(ValueError, match="resnet50"):
        build_classifier("vgg16", (28, 28, 1), 10)
