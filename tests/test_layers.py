"""The custom layers meet Keras' own layer contract and save/load as .keras."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src import testing

from layers import DepthwiseSeparableBlock, ResidualBlock


class LayerContractTest(testing.TestCase):
    def test_depthwise_separable_contract(self):
        self.run_layer_test(
            DepthwiseSeparableBlock,
            init_kwargs={"filters": 8, "strides": 2, "width_multiplier": 0.5},
            input_shape=(2, 8, 8, 3),
            expected_output_shape=(2, 4, 4, 4),
            expected_num_trainable_weights=6,  # depthwise + pointwise kernels, 2 BN x (gamma, beta)
            expected_num_non_trainable_weights=4,  # BN moving mean/variance x 2
            supports_masking=False,
        )

    def test_residual_basic_identity_contract(self):
        self.run_layer_test(
            ResidualBlock,
            init_kwargs={"filters": 4},
            input_shape=(2, 6, 6, 4),
            expected_output_shape=(2, 6, 6, 4),
            expected_num_trainable_weights=6,  # 2 convs + 2 BN x (gamma, beta)
            expected_num_non_trainable_weights=4,
            supports_masking=False,
        )

    def test_residual_bottleneck_projection_contract(self):
        self.run_layer_test(
            ResidualBlock,
            init_kwargs={"filters": 4, "strides": 2, "bottleneck": True},
            input_shape=(2, 8, 8, 3),
            expected_output_shape=(2, 4, 4, 16),
            expected_num_trainable_weights=12,  # 3 convs + 3 BN x 2, projection conv + BN x 2
            expected_num_non_trainable_weights=8,
            supports_masking=False,
        )


def test_depthwise_block_trainable_count_matches_parts():
    block = DepthwiseSeparableBlock(16, width_multiplier=0.5)
    block.build((None, 10, 10, 6))
    # depthwise 3x3x6, pointwise 6x8, BN gamma/beta on 6 and 8 channels
    assert sum(int(np.prod(w.shape)) for w in block.trainable_weights) == 54 + 48 + 12 + 16


@pytest.mark.parametrize("layer", [
    DepthwiseSeparableBlock(8, strides=2, activation="relu6"),
    ResidualBlock(4, strides=2),
    ResidualBlock(2, bottleneck=True, zero_init_residual=True),
])
def test_keras_file_round_trip(tmp_path, layer):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[1]) is type(layer)
    assert loaded.layers[1].get_config() == layer.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_identity_shortcut_and_projection():
    same = ResidualBlock(4)
    same.build((None, 6, 6, 4))
    assert same.shortcut_conv is None
    changed = ResidualBlock(4)
    changed.build((None, 6, 6, 3))
    assert changed.shortcut_conv is not None


def test_zero_init_residual_starts_as_identity_plus_relu():
    block = ResidualBlock(4, zero_init_residual=True)
    x = np.random.default_rng(1).normal(size=(1, 5, 5, 4)).astype("float32")
    np.testing.assert_allclose(block(x, training=False), np.maximum(x, 0), atol=1e-5)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="height, width, channels"):
        ResidualBlock(4).build((None, 8, 3))
    with pytest.raises(ValueError, match="width_multiplier"):
        DepthwiseSeparableBlock(4, width_multiplier=0)


@pytest.mark.parametrize("size", [28, 7])
def test_strided_projection_is_the_strided_1x1_conv(size):
    # The residual branch starts at zero (zero_init_residual), so the block is
    # relu(shortcut): its subsample-then-1x1 path must equal the strided 1x1 conv.
    block = ResidualBlock(16, strides=2, zero_init_residual=True)
    x = np.random.default_rng(2).normal(size=(3, size, size, 8)).astype("float32")
    block.build(x.shape)
    strided = keras.layers.Conv2D(16, 1, strides=2, padding="same", use_bias=False)
    strided.build(x.shape)
    strided.set_weights(block.shortcut_conv.get_weights())
    expected = np.maximum(block.shortcut_bn(strided(x), training=False), 0)
    got = block(x, training=False)
    assert got.shape == (3, (size + 1) // 2, (size + 1) // 2, 16)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_training_with_8_channels_and_an_odd_batch_does_not_crash():
    """TF 2.21's oneDNN gradient of a strided 1x1 conv segfaulted here (a last partial batch
    of a folder of images); in a subprocess, so a crash fails only this test."""
    code = ("import numpy as np, keras; from layers import ResidualBlock\n"
            "m = keras.Sequential([keras.Input((28, 28, 8)), ResidualBlock(16, strides=2),"
            " keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])\n"
            "m.compile('adam', 'mse')\n"
            "m.fit(np.ones((33, 28, 28, 8)), np.ones((33, 1)), batch_size=33, epochs=2, verbose=0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
