"""layers.BatchNormalization: TF's fused kernel, numerically Keras' own layer, interchangeable with it."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src import testing

from apps.image_classification.backbones import BACKBONES
from layers import BatchNormalization, DepthwiseSeparableBlock, ResidualBlock

ROOT = Path(__file__).resolve().parents[1]
X = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 5, 5, 6)).astype("float32")


class ContractTest(testing.TestCase):
    def test_keras_layer_contract(self):
        self.run_layer_test(
            BatchNormalization,
            init_kwargs={"momentum": 0.9, "epsilon": 1e-3},
            input_shape=(2, 4, 4, 3),
            expected_output_shape=(2, 4, 4, 3),
            expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=2,
            expected_num_non_trainable_variables=2,
            supports_masking=True,
            run_training_check=True,
            run_mixed_precision_check=True,
        )


def pair(dtype="float32", **kwargs):
    """Keras' layer and ours with the same (non-trivial) weights."""
    ours, theirs = BatchNormalization(dtype=dtype, **kwargs), keras.layers.BatchNormalization(
        dtype=dtype, **kwargs)
    for layer in (ours, theirs):
        layer.build(X.shape)
        if layer.scale:
            layer.gamma.assign(np.linspace(0.5, 2.0, 6))
        if layer.center:
            layer.beta.assign(np.linspace(-1.0, 1.0, 6))
    return ours, theirs


def outputs_and_gradients(layer, x, training):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, "float32") ** 3)  # a loss whose gradient is not flat
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return [np.asarray(tf.cast(t, "float32")) for t in (y, *grads)]


@pytest.mark.parametrize("dtype,tolerance", [("float32", 1e-5), ("mixed_bfloat16", 1e-2)])
@pytest.mark.parametrize("options", [{}, {"center": False, "scale": False}])
def test_matches_keras_in_training_and_inference(dtype, tolerance, options):
    ours, theirs = pair(dtype, momentum=0.9, **options)
    for step in range(3):  # moving statistics after several updates, then inference on them
        for a, b in zip(outputs_and_gradients(ours, X * (step + 1), True),
                        outputs_and_gradients(theirs, X * (step + 1), True)):
            np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * np.abs(b).max())
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name).numpy(),
                                   rtol=tolerance, atol=tolerance)
    for a, b in zip(outputs_and_gradients(ours, X, False), outputs_and_gradients(theirs, X, False)):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * np.abs(b).max())


def test_one_value_per_channel_gives_keras_zero_variance():
    ours, theirs = pair(momentum=0.5)
    x = X[:1, :1, :1, :]
    ours(x, training=True)
    theirs(x, training=True)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(),
                               atol=1e-6)


def traced_ops(model, x):
    step = tf.function(lambda x: model(x, training=True))
    return {op.type for op in step.get_concrete_function(x).graph.get_operations()}


@pytest.mark.parametrize("arch", ["resnet_small", "mobilenet_small"])
def test_backbones_run_the_fused_kernel_and_keras_moments_nowhere(arch):
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, BACKBONES[arch](inputs, width_multiplier=0.25))
    ops = traced_ops(model, tf.zeros((2, 28, 28, 1)))
    assert "FusedBatchNormV3" in ops
    assert "SquaredDifference" not in ops  # Keras' moments (tf.nn.moments)


def test_fused_false_and_other_shapes_take_keras_path():
    ops = traced_ops(BatchNormalization(fused=False), tf.constant(X))
    assert "FusedBatchNormV3" not in ops and "SquaredDifference" in ops
    ops = traced_ops(BatchNormalization(), tf.zeros((4, 6)))  # 2-D: Keras' computation
    assert "FusedBatchNormV3" not in ops
    ops = traced_ops(BatchNormalization(axis=1), tf.constant(X))  # channels first
    assert "FusedBatchNormV3" not in ops


def test_config_and_weights_move_both_ways_with_keras_layer(tmp_path):
    ours, theirs = pair(momentum=0.8, epsilon=1e-4)
    config = ours.get_config()
    assert {**theirs.get_config(), "name": config["name"]} == config
    assert keras.layers.BatchNormalization.from_config(config).get_config() == config
    assert BatchNormalization.from_config(theirs.get_config()).get_config() == theirs.get_config()
    ours(X, training=True)

    def model(layer_class):
        inputs = keras.Input(X.shape[1:])
        return keras.Model(inputs, layer_class(name="bn")(inputs))

    saved = model(BatchNormalization)
    saved.get_layer("bn").set_weights(ours.get_weights())
    saved.save(tmp_path / "ours.keras")
    saved.save_weights(tmp_path / "ours.weights.h5")
    loaded = keras.saving.load_model(tmp_path / "ours.keras")
    assert type(loaded.get_layer("bn")) is BatchNormalization
    into_keras = model(keras.layers.BatchNormalization)
    into_keras.load_weights(tmp_path / "ours.weights.h5")
    expected = saved.predict(X, verbose=0)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(into_keras.predict(X, verbose=0), expected, atol=1e-5)
    into_keras.save_weights(tmp_path / "keras.weights.h5")
    back = model(BatchNormalization)
    back.load_weights(tmp_path / "keras.weights.h5")
    np.testing.assert_allclose(back.predict(X, verbose=0), expected, atol=1e-5)


@pytest.mark.parametrize("block", [DepthwiseSeparableBlock(8), ResidualBlock(4, strides=2)])
def test_blocks_weights_keep_their_names(block):
    block.build((None, 8, 8, 3))
    names = [w.path for w in block.weights if "gamma" in w.path or "moving_mean" in w.path]
    assert names and all(isinstance(layer, BatchNormalization)
                         for layer in block._flatten_layers(include_self=False)
                         if isinstance(layer, keras.layers.BatchNormalization))
    assert {n.split("/")[-2] for n in names} <= {"depthwise_bn", "pointwise_bn", "bn0", "bn1",
                                                 "shortcut_bn"}


def test_mirrored_replicas_compute_keras_per_replica_statistics():
    """Two replicas (logical CPUs): the fused layer trains to the same weights and moving
    statistics as Keras' layer; each replica normalizes its own half of the batch."""
    code = """
import json, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from layers import BatchNormalization
x = np.random.default_rng(0).normal(1, 2, (16, 6, 6, 3)).astype("float32")
y = np.random.default_rng(1).normal(size=(16, 1)).astype("float32")
weights = []
for fused in (None, False):
    with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3),
                                  BatchNormalization(momentum=0.5, fused=fused),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    weights.append(model.get_weights())
print(json.dumps(max(float(np.abs(a - b).max()) for a, b in zip(*weights))))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-5
