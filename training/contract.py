"""The App contract checked where the pipeline receives each hook's result: a mistake in a
new task is one line naming the hook, what it returned and what the contract wants, not a
Keras traceback from deep inside fit or a silently odd export."""

import keras
import tensorflow as tf

from training.errors import AppContractError
from training.runtime import precision


def _spec_text(spec):
    if isinstance(spec, tf.TensorSpec):
        return f"{spec.dtype.name}{tuple(spec.shape)}"
    return type(spec).__name__


def check_examples(app, split, ds):
    """build_data(split)'s result: a tf.data.Dataset of (features, label) pairs (an optional
    third element is a sample weight)."""
    hook = f"{type(app).__name__}.build_data({split!r})"
    if not isinstance(ds, tf.data.Dataset):
        raise AppContractError(f"{hook} must return a tf.data.Dataset of single (features, label) "
                               f"examples, or None for a split the task lacks; got {type(ds).__name__}")
    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        shown = tf.nest.map_structure(_spec_text, spec)
        raise AppContractError(f"{hook} must yield (features, label) pairs, got {shown}; an "
                               "unsupervised task yields (features, features)")


def _input_specs(features, model):
    """The feature specs in the order of model.inputs (by name for a dict), or None when the
    numbers differ."""
    if isinstance(features, dict):
        return [features.get(t.name) for t in model.inputs]
    specs = tf.nest.flatten(features)
    return specs if len(specs) == len(model.inputs) else None


def check_features(app, model, element_spec):
    """The features of the batched training data fit the model's inputs; a split that was
    batched by build_data (one axis too many) is named as such."""
    name = type(app).__name__
    if not isinstance(model, keras.Model):
        raise AppContractError(f"{name}.build_model() must return a keras.Model, got "
                               f"{type(model).__name__}")
    if not model.inputs:  # a subclassed model without an Input: Keras checks at its first call
        return
    wanted = [f"{t.name} {tuple(t.shape[1:])}" for t in model.inputs]
    specs = _input_specs(element_spec[0], model)
    if specs is None or any(s is None for s in specs):
        shown = tf.nest.map_structure(_spec_text, element_spec[0])
        raise AppContractError(f"{name}.build_data's features ({shown}) do not match the "
                               f"model's inputs ({', '.join(wanted)}); yield one "
                               "tensor per input (a dict keyed by the Input names for several)")
    for spec, tensor in zip(specs, model.inputs):
        example = tf.TensorShape(spec.shape[1:])  # the pipeline's batch axis removed
        want = tf.TensorShape(tensor.shape[1:])
        if example.rank == want.rank + 1 and example[1:].is_compatible_with(want):
            raise AppContractError(
                f"{name}.build_data yields batches (each example is {tuple(example)}, the model "
                f"takes {tuple(want)}): return single examples, without .batch(); the pipeline "
                "batches at the global batch size")
        if not example.is_compatible_with(want):
            raise AppContractError(
                f"{name}.build_data yields examples of shape {tuple(example)}, but the model's "
                f"input {tensor.name!r} takes {tuple(want)}: reshape the examples in build_data "
                "or change keras.Input(shape=...) in build_model")


def check_output_dtypes(app, model):
    """Under mixed precision the model's floating outputs are float32, as Keras advises for the
    last layer: losses and metrics keep float32's precision, and the export answers in the
    dtypes a float32 run does (a bfloat16 regression output has about 3 significant digits)."""
    policy = keras.mixed_precision.global_policy()
    if policy.compute_dtype == policy.variable_dtype or not model.outputs:
        return
    for name, tensor in zip(model.output_names, model.outputs):
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if dtype in precision.HALF:
            raise AppContractError(
                f"{type(app).__name__}.build_model()'s output {name!r} is {dtype} under "
                f"runtime.mixed_precision ({policy.name}); give the layer that makes it "
                "dtype='float32' (e.g. keras.layers.Dense(..., dtype='float32')), so the loss, "
                "the metrics and the served output stay float32")


class ServingOutputs:
    """A ServingSignature's `fn`, wrapped to note what it returns while it is traced; `check()`
    after tracing: it must have returned a dict of named tensors (TF Serving's output names),
    as a tuple or a bare tensor would be exported as output_0, output_1, ... The check runs
    after tracing, not inside it, because autograph rewrites errors raised there into a
    many-line message."""

    def __init__(self, endpoint, fn):
        self.endpoint, self.fn, self.returned = endpoint, fn, None

    def __call__(self, *inputs):
        outputs = self.fn(*inputs)
        self.returned = outputs
        return outputs

    def check(self):
        outputs = self.returned
        if not (isinstance(outputs, dict) and outputs and all(isinstance(k, str) for k in outputs)):
            raise AppContractError(
                f"The serving function of signature {self.endpoint!r} returned a "
                f"{type(outputs).__name__}; it must return a dict of named outputs, e.g. "
                "{'probabilities': p, 'class_id': c} (TF Serving answers with those names)")
