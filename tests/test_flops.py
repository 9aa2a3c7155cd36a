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


def test_profile_summary_reads_kernel_time_from_a_real_trace(tmp_path):
    from profile_ops import kernel_seconds, op_type, summary

    x = tf.random.normal([8, 16, 16, 8])
    step = tf.function(lambda x: tf.nn.relu(tf.nn.conv2d(x, tf.ones([3, 3, 8, 8]), 1, "SAME")))
    step(x)
    tf.profiler.experimental.start(str(tmp_path))
    for _ in range(3):
        step(x).numpy()
    tf.profiler.experimental.stop()
    seconds = kernel_seconds(tmp_path)
    conv = [kernel for kernel in seconds if op_type(kernel) == "Conv2D"]
    assert conv and all(s > 0 for s in seconds.values())
    result = summary(seconds, 3, {"Conv2D": 1.0, "MatMul": 1.0}, top=2)
    assert len(result["top_ops"]) == 2 and result["top_ops"][0]["share"] <= 1
    assert set(result["kernel_gflops"]) == {"Conv2D"}  # no MatMul ran: no rate for it
    assert result["kernel_gflops"]["Conv2D"] == pytest.approx(3 / seconds[conv[0]])


def test_profile_summary_arithmetic():
    from profile_ops import summary

    result = summary({"_MklNativeConv2D": 2.0, "Relu": 1.0, "_MklConv2D": 1.0}, 2,
                     {"Conv2D": 6.0})
    assert [op["op"] for op in result["top_ops"]] == ["_MklNativeConv2D", "Relu", "_MklConv2D"]
    assert result["op_ms_per_step"] == 2000.0
    assert result["kernel_gflops"] == {"Conv2D": 6.0 * 2 / 3.0}
    assert result["counted_kernels_gflops"] == 4.0
    assert result["counted_share"] == 0.75
