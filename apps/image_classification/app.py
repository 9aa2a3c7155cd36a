"""Image classification: MobileNet or ResNet backbones on any image data set.

Default: a small ResNet on real Fashion-MNIST (offline IDX files). The model
takes raw uint8 images and rescales them itself, so the exported SavedModel
serves raw pixels.
"""


import keras
import tensorflow as tf

from apps.image_classification.config import AUGMENT_ABOVE_EPOCHS, ImageClassificationConfig
from apps.image_classification.folders import decode_image
from apps.image_classification.model import build_classifier
from apps.image_classification.sources import image_source
from serving.image_header import IMAGE_BYTES
from training.app import (
    App,
    ServingSignature,
    classification_signature,
    multi_label_args,
    multi_label_signature,
)
from training.pipeline import fine_tuning


class ImageClassification(App):
    name = "image_classification"
    description = "Classify images (Fashion-MNIST offline, any TFDS image set) with MobileNet or ResNet."
    config_class = ImageClassificationConfig

    def __init__(self, config):
        super().__init__(config)
        self.source = image_source(config.data)
        self._info = None

    @property
    def info(self):
        if self._info is None:
            self._info = self.source.info()
        return self._info

    def build_data(self, split):
        return self.source.dataset(split)

    def fits_in_memory(self, split):
        return self.source.fits_in_memory(split)

    def labels(self, split):
        """From the IDX arrays or the folders' listing (TFDS: None, read from the examples)."""
        labels = getattr(self.source, "labels", None)
        return labels(split) if labels else None

    def example_names(self, split):
        """Image files' paths (IDX and TFDS images: their index)."""
        names = getattr(self.source, "names", None)
        return names(split) if names else None

    def build_model(self):
        m = self.config.model
        return build_classifier(m.arch, self.info.shape, self.info.num_classes,
                                width_multiplier=m.width_multiplier, dropout=m.dropout,
                                augment=m.augment is True, augment_shift=m.augment_shift,
                                weights=m.weights or "imagenet",
                                multi_label=self.is_multi_label())

    def resolve_auto(self):
        model = self.config.model
        if model.augment != "auto":
            return
        # A trained backbone's features are for the inputs it was trained on: with them
        # augmented when it was not, 50 labels per class scored 85.1% against 87.8%
        # (benchmarks/transfer.py, 3 seeds).
        source = model.init_from and fine_tuning.source_model_option(model.init_from, "augment")
        if isinstance(source, bool):
            model.augment = source
            why = f"as {model.init_from} was trained"
        else:
            model.augment = self.config.epochs > AUGMENT_ABOVE_EPOCHS
            why = f"for {self.config.epochs} epochs (on above {AUGMENT_ABOVE_EPOCHS})"
        print(f"model.augment=auto: {'on' if model.augment else 'off'} {why}", flush=True)

    def is_multi_label(self):
        return self.config.data.labels == "multi"

    def compile_args(self):
        if self.is_multi_label():
            return multi_label_args(len(self.class_names()))
        return {
            "optimizer": "adam",
            "loss": keras.losses.SparseCategoricalCrossentropy(),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def class_names(self):
        return self.info.class_names

    def describe_data(self):
        height, width, channels = self.info.shape
        return f"{super().describe_data()}, {height}x{width}x{channels} images {self.source.where()}"

    def serving_signature(self, model):
        shape = (None,) + tuple(model.inputs[0].shape[1:])
        spec = tf.TensorSpec(shape, tf.uint8, name="image")
        if self.is_multi_label():
            return multi_label_signature(model, spec, self.class_names(), self.thresholds)
        return classification_signature(model, spec, self.class_names())

    def extra_signatures(self, model):
        """`image_bytes`: encoded JPEG/PNG/BMP/GIF files, decoded and resized in the SavedModel
        by the decoder the folder source trains with, then the same outputs as `serving_default`."""
        height, width, channels = model.inputs[0].shape[1:]
        pixels = self.serving_signature(model).fn

        def from_bytes(data):
            images = tf.map_fn(lambda one: decode_image(one, (height, width), channels,
                                                        self.config.data.background), data,
                               fn_output_signature=tf.TensorSpec((height, width, channels), tf.uint8))
            return pixels(images)

        return {IMAGE_BYTES: ServingSignature(
            [tf.TensorSpec((None,), tf.string, name=IMAGE_BYTES)], from_bytes,
            scored="probabilities",
            examples=lambda images: [tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)])}
