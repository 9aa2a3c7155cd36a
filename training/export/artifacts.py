"""Run an exported artefact in process, the same way for both kinds: a SavedModel version
dir (its `serving_default`) or a LiteRT `.tflite` file (its one signature). Used to score
an export on the app's test split (`evaluate --artifact`) and by the benchmarks.

LiteRT runs on the maintained interpreter package, `ai-edge-litert`. Neither it nor TF
2.21's own `tf.lite.Interpreter` links the Flex delegate, so a model with Select TF ops
(the text models' string layers) converts but cannot run here.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

from training.datasets import input_list
from training.errors import DataError, described


class LiteRTModel:
    """A `.tflite` file's default signature: {input name: NumPy batch} -> {output: NumPy}.

    The batch size is free: inputs are resized to each call's batch. Float values given
    to an int8 input are quantized with its scale and zero point, and int8 outputs are
    dequantized, so callers see the model's float interface either way.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"No LiteRT model at {self.path}")
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(self.path))
            self.runner = self.interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as e:
            raise DataError(f"{self.path} is not a LiteRT model that loads ({described(e)}); it "
                            "is damaged or not a .tflite file: export it again") from None
        self.input_details = list(self.runner.get_input_details().values())
        self.output_details = list(self.runner.get_output_details().values())
        self._input_names = list(self.runner.get_input_details())
        self.output_names = list(self.runner.get_output_details())

    @property
    def inputs(self):
        """(name, shape with None for any size, NumPy dtype) of each input."""
        return [(name, tuple(None if n < 0 else int(n) for n in d["shape_signature"]), d["dtype"])
                for name, d in zip(self._input_names, self.input_details)]

    def __call__(self, arrays):
        rows = len(next(iter(arrays.values())))
        if rows > 1 and self.input_details[0]["shape_signature"][0] == 1:  # a fixed batch of one
            parts = [self._call({k: v[i:i + 1] for k, v in arrays.items()}) for i in range(rows)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._call(arrays)

    def _call(self, arrays):
        feed = {}
        for name, detail in zip(self._input_names, self.input_details):
            value = np.asarray(arrays[name])
            scale, zero_point = detail["quantization"]
            if scale and value.dtype.kind == "f":
                info = np.iinfo(detail["dtype"])
                value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
            feed[name] = value.astype(detail["dtype"])
        try:
            outputs = self.runner(**feed)
        except RuntimeError as e:
            if "Select TensorFlow op" not in str(e):
                raise
            raise DataError(f"{self.path} uses Select TF ops (Flex), which the LiteRT interpreter "
                            "here does not link: run it where the Flex delegate is (Android: "
                            "org.tensorflow:tensorflow-lite-select-tf-ops), or score the "
                            "SavedModel export instead") from None
        result = {}
        for name, detail in zip(self.output_names, self.output_details):
            scale, zero_point = detail["quantization"]
            value = outputs[name]
            result[name] = (value.astype(np.float32) - zero_point) * scale if scale else value
        return result


class SavedModelArtifact:
    """A SavedModel version dir's `serving_default`: {input: NumPy batch} -> {output: NumPy}."""

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"No SavedModel at {self.path} (no saved_model.pb): give a "
                                    "version dir, e.g. export/<name>/1, or a .tflite file")
        try:
            self.fn = tf.saved_model.load(str(self.path)).signatures["serving_default"]
        except (KeyError, ValueError, OSError, tf.errors.OpError) as e:
            raise DataError(f"{self.path} is not a SavedModel that loads ({described(e)}); "
                            "export it again") from None
        self.specs = self.fn.structured_input_signature[1]

    @property
    def inputs(self):
        return [(name, tuple(spec.shape), spec.dtype.as_numpy_dtype)
                for name, spec in self.specs.items()]

    def __call__(self, arrays):
        return {k: v.numpy() for k, v in self.fn(**{n: tf.constant(arrays[n]) for n in self.specs}).items()}


def open_artifact(path):
    """The artefact at `path`: a `.tflite` file or a SavedModel version dir."""
    path = Path(path)
    if path.suffix == ".tflite" or path.is_file():
        return LiteRTModel(path)
    return SavedModelArtifact(path)


def _dtype(dtype):
    """A dtype's name, `string` for every kind of string (TF's, NumPy's bytes or object)."""
    if dtype == "string" or dtype in (object, np.bytes_, np.str_):
        return "string"
    return np.dtype(dtype).name


def _described_inputs(inputs):
    return ", ".join(f"{name} {list(shape)} {_dtype(dtype)}" for name, shape, dtype in inputs)


def check_fits(artifact, model, app_name):
    """Raise DataError unless `artifact` takes what `model` (the run's) takes: the same
    number of inputs, each of the same dtype and item shape."""
    wanted = [(t.name, tuple(t.shape), _dtype(t.dtype)) for t in model.inputs]
    given = artifact.inputs
    fits = len(given) == len(wanted) and all(
        _dtype(g[2]) == w[2] and len(g[1]) == len(w[1])
        and all(a is None or b is None or a == b for a, b in zip(g[1][1:], w[1][1:]))
        for g, w in zip(given, wanted))
    if not fits:
        raise DataError(f"{artifact.path} takes {_described_inputs(given)}, but this run's "
                        f"{app_name} model takes {_described_inputs(wanted)} (None: any size); "
                        "give an artefact exported from this run")


def _metric(metric):
    import keras

    metric = keras.metrics.get(metric) if isinstance(metric, str) else metric
    return metric if isinstance(metric, keras.metrics.Metric) else keras.metrics.MeanMetricWrapper(metric)


def score(artifact, output, dataset, compile_args):
    """The app's loss and metrics (as `model.evaluate` names them) of `artifact`'s output
    `output` over the batched (features, labels) `dataset`."""
    import keras

    loss_fn = keras.losses.get(compile_args["loss"])
    loss = keras.metrics.Mean(name="loss")
    metrics = [_metric(m) for m in compile_args.get("metrics", [])]
    names = [name for name, _, _ in artifact.inputs]
    for features, labels in dataset:
        inputs = input_list(features)
        predicted = artifact({n: np.asarray(x) for n, x in zip(names, inputs)})[output]
        loss.update_state(loss_fn(labels, predicted), sample_weight=len(predicted))
        for metric in metrics:
            metric.update_state(labels, predicted)
    return {"loss": float(loss.result()), **{m.name: float(m.result()) for m in metrics}}
