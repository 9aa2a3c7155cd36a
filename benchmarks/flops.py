"""FLOPs of a model's training step, counted from its TensorFlow graph.

Counts the contractions (convolutions, depthwise convolutions, matrix
products, and their input and filter gradients) from the static shapes of
the traced train step: the work a matmul peak bounds, as in "model FLOPs
utilisation". Elementwise ops (BatchNorm, activations, the optimizer
update) are left out; they are memory-bound.

Written by hand because tf.compat.v1.profiler's float_operation reports one
total per graph that mixes contractions with elementwise ops and does not
say which gradient ops it priced.
"""

import math

import tensorflow as tf

# Op type -> (index of the tensor whose elements each do the MACs, function of
# the filter shape giving the MACs per element).
_CONV_LIKE = {
    "Conv2D": ("output", lambda f: f[0] * f[1] * f[2]),
    "Conv2DBackpropInput": ("input2", lambda f: f[0] * f[1] * f[2]),
    "Conv2DBackpropFilter": ("input2", lambda f: f[0] * f[1] * f[2]),
    "DepthwiseConv2dNative": ("output", lambda f: f[0] * f[1]),
    "DepthwiseConv2dNativeBackpropInput": ("input2", lambda f: f[0] * f[1]),
    "DepthwiseConv2dNativeBackpropFilter": ("input2", lambda f: f[0] * f[1]),
}
_LOOPS = {"While", "StatelessWhile", "For"}


def _static(shape, op):
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or any(d is None for d in dims):
        raise ValueError(f"{op.type} op {op.name!r} has a shape unknown at trace time "
                         f"({shape}); trace with a fixed batch shape")
    return dims


def _filter_shape(op):
    """Filter shape: the second input, or for filter gradients their output."""
    if op.type.endswith("BackpropFilter"):
        return _static(op.outputs[0].shape, op)
    return _static(op.inputs[1].shape, op)


def op_flops(op):
    """Floating-point operations (2 per multiply-add) of one graph op; 0 if not a contraction."""
    if op.type in _CONV_LIKE:
        where, per_element = _CONV_LIKE[op.type]
        tensor = op.outputs[0] if where == "output" else op.inputs[2]
        return 2 * math.prod(_static(tensor.shape, op)) * per_element(_filter_shape(op))
    if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = _static(op.inputs[0].shape, op)
        transposed = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
        inner = a[-2] if transposed else a[-1]
        return 2 * math.prod(_static(op.outputs[0].shape, op)) * inner
    return 0


def _live_ops(func_graph):
    """The ops a tf.function runs: ancestors of its outputs and control outputs
    (the variable updates). Gradients nothing uses (e.g. of the first conv
    with respect to the input images) are in the graph but pruned at run time."""
    live, stack = set(), [t.op for t in func_graph.outputs] + list(func_graph.control_outputs)
    while stack:
        op = stack.pop()
        if op not in live:
            live.add(op)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return live


def graph_flops(func_graph):
    """{op type: FLOPs} of the contractions a tf.function graph runs.

    Raises ValueError for graphs with loops (RNNs): ops inside a loop body run
    an unknown number of times and would be undercounted.
    """
    totals = {}
    for op in _live_ops(func_graph):
        if op.type in _LOOPS:
            raise ValueError(f"graph has a {op.type} loop ({op.name}); its body's FLOPs "
                             "cannot be counted statically")
        flops = op_flops(op)
        if flops:
            totals[op.type] = totals.get(op.type, 0) + flops
    return totals


def train_step_flops(model, x, y):
    """{op type: FLOPs} of one `model.train_step` on a batch shaped like (x, y).

    The model must be compiled; its optimizer is built here if fit has not run.
    """
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    step = tf.function(lambda x, y: model.train_step((x, y)))
    spec = lambda t: tf.TensorSpec(t.shape, t.dtype)  # noqa: E731
    return graph_flops(step.get_concrete_function(spec(x), spec(y)).graph)
