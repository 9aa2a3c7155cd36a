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

from training.config import load_config
from training.run import load_run, train


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
        served = serve(**{name: tf.constant(np.asarray(features))})
        output = app.serving_signature(model).scored
        diff = float(np.max(np.abs(np.asarray(served[output]).reshape(-1)
                                   - np.asarray(model(features)).reshape(-1))))
        saved = yaml.safe_load(open(f"{tmp}/run/config.yaml"))
        print(json.dumps({"keras_backend": keras.backend.backend(), "metrics_backend": metrics["backend"],
                          "config_backend": saved["runtime"]["backend"], "max_abs_diff": diff,
                          "examples": len(features), "signatures": sorted(loaded.signatures),
                          "outputs": sorted(served)}))


if __name__ == "__main__":
    main()
