"""LiteRT (TFLite) export for phones and small devices:
`export/<name>/litert/<version>/{model.tflite, labels.txt, model.json}`.

Conversion is Keras 3's own (`model.export(format="litert")`: an ExportArchive of the
model's call, then TF's LiteRT converter), with the converter options of `--quantize`:

    none     float32 weights and math
    dynamic  int8 weights, float activations (no calibration)
    float16  float16 weights (for GPU delegates)
    int8     full integer: weights and activations int8, calibrated on
             REPRESENTATIVE_EXAMPLES examples of the app's own training split; the float
             (or uint8 image) input and float output are kept unless int8_io; weights
             scaled per output channel, or per tensor (smaller files) with per_tensor

The version is written beside the SavedModel versions' base path, in `litert/` (TF Serving
loads only all-digit dirs, so it never sees it), to a temp dir renamed into place
(training/export/saved_model.py), so a failed conversion leaves nothing behind.
"""

import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training.datasets import input_list
from training.errors import ExportError, described
from training.export.saved_model import NextVersion, checked_name
from training.runtime import precision

QUANTIZE = ("none", "dynamic", "float16", "int8")
REPRESENTATIVE_EXAMPLES = 300
LITERT_DIR = "litert"


def representative_inputs(app, count=REPRESENTATIVE_EXAMPLES):
    """The first `count` training examples' inputs, each stacked into one NumPy batch: what
    int8 is calibrated on, and then checked on."""
    ds = app.build_data("train")
    if ds is None:
        raise ExportError("int8 needs the app's training split to calibrate on, and it is empty")
    return [np.asarray(x) for x in input_list(next(iter(ds.take(count).batch(count)))[0])]


def representative_dataset(inputs):
    """The converter's representative dataset: a generator of `inputs`' rows, a batch of one
    each, as int8 calibration wants them."""
    def examples():
        for row in range(len(inputs[0])):
            yield [x[row:row + 1] for x in inputs]

    return examples


def recurrent(model):
    """Does `model` (or a model inside it) have a recurrent layer?"""
    return any(isinstance(layer, keras.layers.RNN) or
               (isinstance(layer, keras.Model) and recurrent(layer)) for layer in model.layers)


def float32_copy(model):
    """`model` with every layer computing in float32 and the same state, or `model` itself when
    it does already. LiteRT has no bfloat16 kernels (int8 calibration stops at the first
    bfloat16 op), so a model trained under mixed precision converts from this copy. Keras can
    only change a built layer's dtype policy by rebuilding it, so the copy is the model's
    .keras file with the policies in its config made float32: loading it restores what
    set_weights would miss (an adapted Normalization's statistics, a lookup's vocabulary)."""
    config = keras.saving.serialize_keras_object(model)  # what a .keras file's config.json holds
    if not _float32_policies(config):
        return model
    with tempfile.TemporaryDirectory(prefix="kat-float32-") as tmp:
        trained, copy = Path(tmp) / "trained.keras", Path(tmp) / "float32.keras"
        model.save(trained)
        with zipfile.ZipFile(trained) as source, zipfile.ZipFile(copy, "w") as target:
            for item in source.infolist():
                target.writestr(item, json.dumps(config).encode() if item.filename == "config.json"
                                else source.read(item))
        return keras.saving.load_model(copy)


def _float32_policies(node):
    """Make every half-precision dtype policy (and the dtype of the tensors between layers) in a
    serialized Keras config float32, in place; True when there was one."""
    changed = False
    if isinstance(node, dict):
        config = node.get("config")
        if node.get("class_name") == "DTypePolicy" and config["name"].startswith("mixed_"):
            config["name"], changed = "float32", True
        elif node.get("class_name") == "__keras_tensor__" and config.get("dtype") in precision.HALF:
            config["dtype"], changed = "float32", True
        for value in node.values():
            changed = _float32_policies(value) or changed
    elif isinstance(node, list):
        for value in node:
            changed = _float32_policies(value) or changed
    return changed


def converter_options(model, quantize, int8_io=False, representative=None, per_tensor=False):
    """Keyword arguments of `model.export(format="litert")` for `quantize`."""
    if quantize not in QUANTIZE:
        raise ExportError(f"--quantize {quantize!r} is not one LiteRT takes; choose one of: "
                          f"{', '.join(QUANTIZE)}")
    if int8_io and quantize != "int8":
        raise ExportError(f"--int8-io needs --quantize int8 (got {quantize}): only a full-integer "
                          "model has int8 inputs and outputs")
    if per_tensor and quantize != "int8":
        raise ExportError(f"--per-tensor needs --quantize int8 (got {quantize}): it sets how int8 "
                          "weights are scaled")
    strings = [t.name for t in model.inputs if t.dtype == "string"]
    if quantize == "int8" and strings:
        raise ExportError(f"This model takes strings ({', '.join(strings)}), which int8 LiteRT "
                          "ops cannot: its text layers run as Select TF ops, in float. Use "
                          "--quantize dynamic (int8 weights) or none")
    options = {}
    if recurrent(model):
        # With a free batch size the recurrent loop stays a TensorFlow while loop (Select TF
        # ops, which the LiteRT runtime lacks); with a batch of one it becomes LiteRT's own ops.
        options["input_signature"] = [tf.TensorSpec((1, *t.shape[1:]), t.dtype, name=t.name)
                                      for t in model.inputs]
        if quantize == "int8":
            raise ExportError("Full-integer int8 of recurrent layers crashes TF 2.21's LiteRT "
                              "converter; use --quantize dynamic (int8 weights) or float16")
    if quantize == "none":
        return options
    if quantize == "dynamic":
        return {**options, "optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        return {**options, "optimizations": [tf.lite.Optimize.DEFAULT],
                "target_spec": {"supported_types": [tf.float16]}}
    options.update({"optimizations": [tf.lite.Optimize.DEFAULT],
                    "representative_dataset": representative,
                    "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}})
    if per_tensor:
        # One scale per weight tensor rather than per output channel. A depthwise 3x3 channel
        # has 9 int8 weights and 12 bytes of scale and zero point, so per channel costs
        # MobileNets a third of their file. The converter's only switch for it is private.
        options["_experimental_disable_per_channel"] = True
    if int8_io:
        if all(t.dtype.startswith("float") for t in model.inputs):
            options["inference_input_type"] = tf.int8  # a uint8 image input stays uint8
        options["inference_output_type"] = tf.int8
    return options


def tensor_details(details):
    """JSON-ready name, shape (-1: any size), dtype and int8 quantization of LiteRT tensors,
    given as {signature name: interpreter details}."""
    rows = []
    for name, d in details.items():
        scale, zero_point = d["quantization"]
        rows.append({"name": name, "shape": [int(n) for n in d["shape_signature"]],
                     "dtype": d["dtype"].__name__,
                     **({"quantization": {"scale": float(scale), "zero_point": int(zero_point)}}
                        if scale else {})})
    return rows


def int8_check(model, litert_model, inputs):
    """How far the int8 model's output moves from the float model's on `inputs` (the
    calibration examples): {examples, mean_abs_change, output_std[, top_class_agreement]}."""
    expected = np.asarray(model(inputs if len(inputs) > 1 else inputs[0], training=False))
    names = [name for name, _, _ in litert_model.inputs]
    got = litert_model({n: np.asarray(x) for n, x in zip(names, inputs)})[litert_model.output_names[0]]
    got = got.reshape(expected.shape)
    check = {"examples": len(expected), "mean_abs_change": float(np.mean(np.abs(got - expected))),
             "output_std": float(np.std(expected))}
    if expected.ndim == 2 and expected.shape[1] > 1:
        check["top_class_agreement"] = float(np.mean(got.argmax(-1) == expected.argmax(-1)))
    return check


def describe_check(check):
    """One line on the int8 check, with a warning when int8 moves outputs by a tenth of their
    spread or more (inputs of very different scales share one int8 scale, for one)."""
    text = f"int8 vs float on {check['examples']} training examples: "
    if "top_class_agreement" in check:
        text += f"top class agrees on {100 * check['top_class_agreement']:.1f}%, "
    text += (f"outputs move by {check['mean_abs_change']:.4g} on average (their spread: "
             f"{check['output_std']:.4g})")
    if check["mean_abs_change"] > 0.1 * check["output_std"]:
        text += ("; int8 loses much here (one int8 scale per tensor: inputs of very different "
                 "ranges?): score it with evaluate --artifact, or use --quantize dynamic")
    return text


def export_litert(app, model, config, name=None, quantize="none", int8_io=False, source=None,
                  per_tensor=False):
    """Convert `model` to LiteRT with `quantize`; return the version directory."""
    from training.export.artifacts import LiteRTModel  # the interpreter reads back what was written

    name = checked_name(name or config.export.name or config.app)
    trained = model
    model = float32_copy(model)
    if model is not trained:
        print("LiteRT: converting a float32 copy of the model, which was trained under mixed "
              "precision (LiteRT computes in float32, float16 or int8)", file=sys.stderr,
              flush=True)  # stdout is the version's path
    calibration = representative_inputs(app) if quantize == "int8" else None
    representative = representative_dataset(calibration) if calibration is not None else None
    options = converter_options(model, quantize, int8_io, representative, per_tensor)
    strings = [t.name for t in model.inputs if t.dtype == "string"]
    with NextVersion(Path(config.export.dir) / name / LITERT_DIR) as version:
        path = version.tmp / "model.tflite"
        try:
            model.export(str(path), format="litert", verbose=False, **options)
        except Exception as e:  # the converter's failures are long MLIR traces
            raise ExportError(f"LiteRT cannot convert this {config.app} model with --quantize "
                              f"{quantize} ({described(e)}); try --quantize dynamic or none") from None
        interpreter = LiteRTModel(path)
        names = app.class_names()
        if names:
            (version.tmp / "labels.txt").write_text("".join(f"{n}\n" for n in names))
        details = {"app": config.app, "quantize": quantize, "int8_io": int8_io,
                   "per_tensor": per_tensor, "float32_copy": model is not trained,
                   "source": str(Path(source).resolve()) if source else None,
                   "select_tf_ops": bool(strings), "bytes": os.path.getsize(path),
                   "inputs": tensor_details(interpreter.runner.get_input_details()),
                   "outputs": tensor_details(interpreter.runner.get_output_details()),
                   "labels": "labels.txt" if names else None}
        if app.is_multi_label():  # a sigmoid per label: the run's decision thresholds
            details["thresholds"] = dict(zip(names, app.thresholds or [0.5] * len(names)))
        if quantize == "int8":
            details["int8_check"] = int8_check(model, interpreter, calibration)
            print(describe_check(details["int8_check"]))
        (version.tmp / "model.json").write_text(json.dumps(details, indent=2) + "\n")
    if strings:
        print(f"note: the model takes strings ({', '.join(strings)}): its text layers are Select TF "
              "ops, so the device needs LiteRT's Flex delegate (Android: org.tensorflow:"
              "tensorflow-lite-select-tf-ops); the interpreter here lacks it, so evaluate "
              "--artifact cannot score this file")
    return version.path
