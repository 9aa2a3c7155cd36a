"""BatchNorm statistics recomputed with the current weights ("precise BN",
training/pipeline/batch_norm_statistics.py): exact population moments, frozen layers left alone, and a
short run whose inference-mode accuracy matches its training-mode accuracy."""

import keras
import numpy as np
from conftest import SMOKE

from training.pipeline import train
from training.pipeline.batch_norm_statistics import BatchNormStatistics
from training.registry import get_app, load_config
from training.run_dir import RunDir


def test_recomputed_statistics_are_the_population_moments_and_frozen_layers_keep_theirs():
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(64, 4)) * [1, 2, 3, 4] + [1, -2, 3, -4]).astype("float32")
    inputs = keras.Input((4,))
    first = keras.layers.BatchNormalization(name="first")
    frozen = keras.layers.BatchNormalization(name="frozen")
    # In training mode this layer would change what the first BatchNorm sees (as augmentation
    # does); the statistics are those of the inputs the model sees at inference.
    noise = keras.layers.Dropout(0.5)
    outputs = keras.layers.Dense(3)(frozen(first(noise(inputs))))
    model = keras.Model(inputs, outputs)
    frozen.trainable = False
    frozen.moving_mean.assign(np.full(4, 7.0, "float32"))
    batches = [(data[i:i + 24], None) for i in range(0, 64, 24)]  # 24, 24 and 16 examples

    assert BatchNormStatistics(model, batches).recompute() == 1
    # The first layer sees the data itself: its statistics are the data's, over every example
    # (the variance too, not the mean of the batches' variances).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(first.moving_mean), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(first.moving_variance), data.var(0),
                               rtol=1e-5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(frozen.moving_mean), np.full(4, 7.0))
    assert first.momentum == 0.99  # the training step's momentum is given back
    assert "call" not in vars(first)  # and its own call


def test_a_short_run_on_a_few_hundred_images_scores_alike_in_inference_and_training_mode(tmp_path):
    # 256 images, 32 steps: Keras' moving averages (momentum 0.99) were still near their
    # initial values here, and inference mode scored 11 points below training mode.
    config = load_config("image_classification", None, SMOKE + [
        "epochs=4", "batch_size=32", f"run_dir={tmp_path / 'run'}", "export.enabled=false"])
    train(config)
    model = keras.saving.load_model(RunDir(tmp_path / "run").model)
    images, labels = zip(*get_app("image_classification")(config).build_data("train")
                         .batch(32).as_numpy_iterator())

    def accuracy(training):
        predicted = [np.argmax(keras.ops.convert_to_numpy(model(x, training=training)), -1)
                     for x in images]
        return np.mean(np.concatenate(predicted) == np.concatenate(labels))

    in_training_mode = accuracy(True)
    assert in_training_mode > 0.2  # it learned something, so the comparison means something
    assert abs(accuracy(False) - in_training_mode) <= 0.02, (accuracy(False), in_training_mode)
