"""Image classification: MobileNet or ResNet backbones on any image data set.

Default: a small ResNet on real Fashion-MNIST (offline IDX files). The model
takes raw uint8 images and rescales them itself, so the exported SavedModel
serves raw pixels.
"""

from dataclasses import dataclass, field
from typing import List, Literal, Optional

import keras
import tensorflow as tf

from apps.image_classification.backbones import BACKBONES
from apps.image_classification.data import image_source
from apps.image_classification.folders import decode_image
from apps.image_classification.model import build_classifier
from serving.image_header import DEFAULT_MAX_PIXELS, IMAGE_BYTES
from training import fine_tuning
from training.app import App, ServingSignature, classification_signature
from training.config import BoolOrAuto, Config, DataConfig, IntOrAuto, ModelConfig, OptimizerConfig, option

ARCHS = tuple(BACKBONES)
APPLICATIONS = "keras_applications/"  # + the name of one of keras.applications' models
# model.augment=auto turns augmentation on for runs of more passes than this: a model that sees
# each image many times memorises it. On 50-500 Fashion-MNIST images per class it added 1.5 to 5
# points (benchmarks/small_data.py); the make train-app run (4 passes) keeps it off.
AUGMENT_ABOVE_EPOCHS = 10


def _arch(value):
    if value in ARCHS or (value.startswith(APPLICATIONS) and value[len(APPLICATIONS):].isidentifier()):
        return None
    return (f"must be one of: {', '.join(ARCHS)}, or {APPLICATIONS}<Name> for one of Keras' own "
            f"(e.g. {APPLICATIONS}MobileNetV2)")


@dataclass
class ImageModelConfig(ModelConfig):
    arch: str = option("resnet_small", f"backbone: {', '.join(ARCHS)} (*_small keep 28x28 or 32x32 "
                       f"images' detail), or {APPLICATIONS}<Name> (e.g. {APPLICATIONS}MobileNetV2)",
                       check=_arch)
    weights: Optional[str] = option(None, f"{APPLICATIONS}* only: imagenet (default), none (random "
                                    "initialisation), or a weights file", none_is_text=True)
    width_multiplier: float = option(0.5, "scales every layer's channels", gt=0)
    dropout: float = option(0.0, "dropout before the classifier", ge=0, lt=1)
    augment: BoolOrAuto = option("auto", "random flip (and shift) while training; auto: as the "
                                 "model.init_from run was trained, else on when the run makes "
                                 f"more than {AUGMENT_ABOVE_EPOCHS} epochs")
    augment_shift: float = option(0.1, "largest random shift, as a fraction of the size; 0 = flip only",
                                  ge=0, lt=1)

    def check(self):
        if self.weights is not None and not self.arch.startswith(APPLICATIONS):
            return (f"weights applies to {APPLICATIONS}* archs; model.arch={self.arch} is trained "
                    "here (start from a trained model with model.init_from)")
        return super().check()


def _height_width(value):
    return None if len(value) == 2 else "must be height,width (e.g. 64,64)"


@dataclass
class ImageDataConfig(DataConfig):
    name: str = "fashion_mnist"
    format: Literal["auto", "idx", "folder"] = option(
        "auto", "folder: data.dir holds class folders of images; idx: IDX files (or TFDS); "
        "auto: by what data.dir holds")
    image_size: Optional[List[int]] = option(None, "folder: resize to height,width; default: the "
                                             "first image's", ge=1, check=_height_width)
    channels: Optional[Literal[1, 3]] = option(None, "folder: 1 (gray) or 3 (RGB); default: the "
                                               "first image's")
    test_split: float = option(0.2, "folder without test/: fraction held out for testing, by a "
                               "hash of each path", ge=0, lt=1)
    classes: Optional[List[str]] = option(None, "folder: use only these class folders")
    background: int = option(255, "transparent pixels (PNG alpha, palette transparency) are drawn "
                             "on this gray level, in training, predict and image_bytes alike: "
                             "255 white, 0 black", ge=0, le=255)
    max_image_pixels: int = option(DEFAULT_MAX_PIXELS, "images whose header declares more pixels "
                                   "(width x height) are not decoded: skipped in training, refused "
                                   "by predict (a decompression bomb decodes to gigabytes)", ge=1)


@dataclass
class ImageClassificationConfig(Config):
    app: str = "image_classification"
    # From the data (training/run_length.py): 128 images, 4 epochs on Fashion-MNIST's 54,000;
    # smaller batches and more passes for a folder of a few hundred.
    epochs: IntOrAuto = "auto"
    batch_size: IntOrAuto = "auto"
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(learning_rate=2e-3))


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

    def build_model(self):
        m = self.config.model
        return build_classifier(m.arch, self.info.shape, self.info.num_classes,
                                width_multiplier=m.width_multiplier, dropout=m.dropout,
                                augment=m.augment is True, augment_shift=m.augment_shift,
                                weights=m.weights or "imagenet")

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

    def compile_args(self):
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
        return classification_signature(model, tf.TensorSpec(shape, tf.uint8, name="image"),
                                        self.class_names())

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
