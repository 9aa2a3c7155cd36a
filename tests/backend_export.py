"""Run in a fresh process by tests/test_backends.py, under the Keras backend the environment
names (KERAS_BACKEND is read once, when Keras loads): train one app briefly, export it, and
print JSON comparing the SavedModel's serving_default with the Keras model on real test
examples."""

import json
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
import yaml

from serving.warmup import read_warmup
from training.pipeline import train
from training.registry import load_config
from training.run_dir import load_run


def main():
    app_name, extra = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train(load_config(app_name, None, [
            "epochs=1", "runtime.verbose=0", "callbacks.tensorboard=false",
            f"run_dir={tmp}/run", f"export.dir={tmp}/export", *extra]))
        _, app, model = load_run(metrics["run_dir"])
        features = next(iter(app.build_data("test").batch(64)))[0]
        loaded = tf.saved_model.load(metrics["export"])
        serve = loaded.signatures["serving_default"]
        name = serve.structured_input_signature[1].popitem()[0]
        signature = app.serving_signature(model)
        # Text under JAX: the model takes ids, the export the texts they stand for.
        inputs = signature.examples(features)[0] if signature.examples else np.asarray(features)
        served = serve(**{name: tf.constant(inputs)})
        expected = keras.ops.convert_to_numpy(model(features))
        if signature.scored:
            output = served[signature.scored]
        else:  # a language model serves the next character after each (full) window
            output, expected = served["next_char_probabilities"], expected[:, -1]
        diff = float(np.max(np.abs(np.asarray(output).reshape(-1) - expected.reshape(-1))))
        saved = yaml.safe_load(open(f"{tmp}/run/config.yaml"))
        print(json.dumps({"keras_backend": keras.backend.backend(), "metrics_backend": metrics["backend"],
                          "config_backend": saved["runtime"]["backend"], "max_abs_diff": diff,
                          "examples": len(features), "signatures": sorted(loaded.signatures),
                          "outputs": sorted(served),
                          "warmup_requests": len(read_warmup(metrics["export"]))}))


if __name__ == "__main__":
    main()
