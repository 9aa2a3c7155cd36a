"""FLOPs counted from graphs (benchmarks/flops.py) against the textbook formulas."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from flops import graph_flops, train_step_flops  # noqa: E402


def _graph(fn, *specs):
    return tf.function(fn).get_concrete_function(*specs).graph


def test_forward_contractions_match_the_formulas():
    x = tf.TensorSpec([4, 6, 6, 2], tf.float32)
    conv = _graph(lambda x: tf.nn.conv2d(x, tf.ones([3, 3, 2, 5]), 1, "SAME"), x)
    assert graph_flops(conv) == {"Conv2D": 2 * 4 * 6 * 6 * 5 * (3 * 3 * 2)}
    strided = _graph(lambda x: tf.nn.conv2d(x, tf.ones([3, 3, 2, 5]), 2, "VALID"), x)
    assert graph_flops(strided) == {"Conv2D": 2 * 4 * 2 * 2 * 5 * (3 * 3 * 2)}
    depthwise = _graph(lambda x: tf.nn.depthwise_conv2d(x, tf.ones([3, 3, 2, 1]), [1, 1, 1, 1],
                                                        "SAME"), x)
    assert graph_flops(depthwise) == {"DepthwiseConv2dNative": 2 * 4 * 6 * 6 * 2 * 9}
    a = tf.TensorSpec([7, 3], tf.float32)
    matmul = _graph(lambda a: tf.matmul(a, tf.ones([7, 5]), transpose_a=True), a)
    assert graph_flops(matmul) == {"MatMul": 2 * 3 * 5 * 7}


def test_train_step_counts_forward_weight_and_input_gradients():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    flops = train_step_flops(model, np.zeros((32, 8), "float32"), np.zeros((32, 2), "float32"))
    first, second = 2 * 32 * 8 * 4, 2 * 32 * 4 * 2
    # The first layer needs no gradient for its input (the data), the second does.
    assert flops == {"MatMul": 2 * first + 3 * second}


def test_convolution_gradients_are_priced_like_the_forward_pass():
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(5, 3, padding="same"),
                              keras.layers.DepthwiseConv2D(3, padding="same"),
                              keras.layers.GlobalAveragePooling2D()])
    model.compile(optimizer="sgd", loss="mse")
    flops = train_step_flops(model, np.zeros((4, 6, 6, 2), "float32"),
                             np.zeros((4, 5), "float32"))
    conv, depthwise = 2 * 4 * 6 * 6 * 5 * 18, 2 * 4 * 6 * 6 * 5 * 9
    # TF's graph also holds the first conv's unused input gradient; tf.function prunes it.
    assert flops == {"Conv2D": conv, "Conv2DBackpropFilter": conv,
                     "DepthwiseConv2dNative": depthwise,
                     "DepthwiseConv2dNativeBackpropFilter": depthwise,
                     "DepthwiseConv2dNativeBackpropInput": depthwise}


def test_loops_are_refused_not_undercounted():
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="loop"):
        train_step_flops(model, np.zeros((2, 5, 3), "float32"), np.zeros((2, 4), "float32"))
