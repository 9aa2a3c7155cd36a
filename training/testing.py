"""What an app's tests need, in this project or in a package of its own (`kat new-app` writes a
test that uses it): train a tiny run of the app through the real pipeline, as `kat train` does,
and check that its SavedModel answers like its Keras model. Nothing is stubbed.

    from training.testing import assert_export_answers_like_model, train_tiny

    def test_my_task(tmp_path):
        metrics = train_tiny(tmp_path, preset="my_task")
        assert_export_answers_like_model(metrics)
"""

import numpy as np

from training import presets
from training.registry import load_config

TINY = ("epochs=1", "runtime.verbose=0", "callbacks.tensorboard=false")


def tiny_config(directory, app=None, preset=None, overrides=()):
    """The config of a one-epoch, quiet run of app `app` (its defaults) or of preset `preset`,
    whose run dir and exports go under `directory` (a test's tmp_path); `overrides` are
    KEY=VALUE strings, as `--set` takes them, applied last."""
    path = presets.get(preset).path if preset else None
    return load_config(app, path, [*TINY, f"run_dir={directory}/run", f"export.dir={directory}/export",
                                   *overrides])


def train_tiny(directory, app=None, preset=None, overrides=()):
    """Train, evaluate and export tiny_config's run; returns its metrics.json as a dict
    (metrics["run_dir"], metrics["export"], metrics["test"], ...)."""
    from training.pipeline import train  # imports TensorFlow

    return train(tiny_config(directory, app, preset, overrides))


def assert_export_answers_like_model(metrics, atol=1e-5):
    """The run's SavedModel (metrics["export"]) answers `serving_default` requests made of a
    few test examples as the run's Keras model (model.keras) does: its scored output (the
    model's own output, e.g. probabilities) within `atol`. Returns the export's whole answer
    ({output name: NumPy array}) for further checks."""
    import keras
    import tensorflow as tf

    from training.export.from_run import warmup_features
    from training.run_dir import load_run

    _, app, model = load_run(metrics["run_dir"])
    features = warmup_features(app)
    assert features is not None, f"{app.name} has neither a test nor a train split to take examples from"
    signature = app.serving_signature(model)
    inputs = signature.example_inputs(features)
    served = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    answer = {k: v.numpy() for k, v in served(**{spec.name: tf.constant(np.asarray(x))
                                                 for spec, x in zip(signature.inputs, inputs)}).items()}
    if signature.scored is not None:
        expected = keras.ops.convert_to_numpy(model(features, training=False)).astype(np.float64)
        difference = float(np.max(np.abs(answer[signature.scored] - expected)))
        assert difference <= atol, (f"the export's {signature.scored!r} differs from the Keras model's "
                                    f"output by {difference:.3g} (more than {atol:g})")
    return answer
