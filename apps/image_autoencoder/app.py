"""Image autoencoder: the unsupervised worked example of adding a task by subclassing."""

import os

import keras
import numpy as np
import tensorflow as tf

from apps.image_autoencoder.config import ImageAutoencoderConfig
from apps.image_classification.sources import image_source
from training import plots
from training.app import App, ServingSignature


class ImageAutoencoder(App):
    name = "image_autoencoder"
    description = "Compress images to a short code and rebuild them (unsupervised; serves both)."
    config_class = ImageAutoencoderConfig

    def __init__(self, config):
        super().__init__(config)
        self.source = image_source(config.data)  # Fashion-MNIST offline, class folders or TFDS
        self.shape = self.source.info().shape

    def build_data(self, split):
        ds = self.source.dataset(split)  # (uint8 image, class id) pairs
        # Unsupervised: the label is the image itself, scaled as the model rebuilds it.
        return ds.map(lambda image, _: (image, tf.cast(image, tf.float32) / 255)) if ds else None

    def build_model(self):
        inputs = keras.Input(self.shape, dtype="uint8", name="image")
        x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
        x = keras.layers.Dense(self.config.model.hidden_units, activation="relu")(x)
        # What is served (code, reconstruction) is float32 under mixed precision too.
        code = keras.layers.Dense(self.config.model.code_size, name="code", dtype="float32")(x)
        x = keras.layers.Dense(self.config.model.hidden_units, activation="relu")(code)
        x = keras.layers.Dense(int(np.prod(self.shape)), activation="sigmoid", dtype="float32")(x)
        return keras.Model(inputs, keras.layers.Reshape(self.shape, name="reconstruction",
                                                        dtype="float32")(x))

    def compile_args(self):
        return {"optimizer": "adam", "loss": "mse",
                "metrics": [keras.metrics.MeanAbsoluteError(name="mae")]}

    def serving_signature(self, model):
        both = keras.Model(model.inputs, [model.get_layer("code").output, model.outputs[0]])

        def serve(images):
            code, reconstruction = both(images, training=False)
            return {"code": code, "reconstruction": reconstruction}

        spec = tf.TensorSpec((None, *self.shape), tf.uint8, name="image")
        return ServingSignature([spec], serve, scored="reconstruction")

    def report(self, model, test_data, run_dir):
        """Eight test images above their reconstructions; test_data is batched, or None."""
        if test_data is not None:
            images = next(iter(test_data))[0][:8]
            plots.reconstructions(images, model(images, training=False), self.shape,
                                  os.path.join(run_dir, "reconstructions.png"))
        return {}
