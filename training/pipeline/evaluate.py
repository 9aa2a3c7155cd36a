"""`evaluate`: the test metrics of a finished run's model, or of an artifact exported from it
scored by the run's own loss and metrics."""

import tensorflow as tf

from training.errors import ConfigError
from training.export import artifacts
from training.pipeline import inputs, multi_label
from training.pipeline.compile import run_compile_args
from training.pipeline.report import classification_figures
from training.run_dir import load_run


def evaluate(run_dir, overrides=(), artifact=None):
    """Test metrics of a finished run's saved model, or of `artifact` exported from it (a
    SavedModel version dir or a .tflite file), scored by the run's loss and metrics, with
    `examples`: how many test examples were scored; a classifier's own evaluation adds the
    confusion matrix, per-class figures and calibration, as metrics.json has them."""
    config, app, model = load_run(run_dir, overrides)
    loaded = None
    if artifact is not None:
        loaded = artifacts.open_artifact(artifact)
        artifacts.check_fits(loaded, model, config.app)
    strategy = tf.distribute.get_strategy()
    test_ds, examples = inputs.make_dataset(app, "test", config, strategy)
    if test_ds is None:
        raise ConfigError(f"App {config.app} has no test split to evaluate")
    if loaded is None:
        scores = model.evaluate(test_ds, return_dict=True, verbose=0)
        if app.is_multi_label():
            figures = multi_label.test_figures(app, model, test_ds)
        else:
            figures = classification_figures(app, model, test_ds) if app.class_names() else {}
        return {**{k: float(v) for k, v in scores.items()}, "examples": examples, **figures}
    if isinstance(loaded, artifacts.LiteRTModel):
        output = loaded.output_names[0]  # the model's own output, as Keras exported it
    else:
        output = app.serving_signature(model).scored
        if output is None or output not in loaded.fn.structured_outputs:
            raise ConfigError(f"{artifact}'s serving_default has no output that {config.app} "
                              "scores against its labels; evaluate the run itself (no --artifact)")
    return {**artifacts.score(loaded, output, test_ds, run_compile_args(app, model)),
            "examples": examples}
