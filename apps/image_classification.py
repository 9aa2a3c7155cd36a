"""Image classification: MobileNet or ResNet backbones on any image data set.

Default: a small ResNet on real Fashion-MNIST (offline IDX files). The model
takes raw uint8 images and rescales them itself, so the exported SavedModel
serves raw pixels.
"""

from dataclasses import dataclass, field

import keras
import tensorflow as tf

from apps.base import App, classification_signature
from apps.image_backbones import BACKBONES
from apps.image_data import ImageSource
from apps.registry import register_app
from training.config import Config, DataConfig, ModelConfig, OptimizerConfig


def build_classifier(arch, input_shape, num_classes, width_multiplier=1.0, dropout=0.0,
                     augment=False, augment_shift=0.1, name=None):
    """A keras.Model from uint8 images (input "image") to class probabilities.

    Args:
        arch: one of BACKBONES: mobilenet, mobilenet_small, resnet18, resnet34,
            resnet50, resnet_small.
        input_shape: (height, width, channels).
        num_classes: size of the softmax output "probabilities".
        width_multiplier: scales every layer's channels.
        dropout: dropout rate before the classifier.
        augment: random horizontal flip while training, plus random shifts of
            up to `augment_shift` of the size (0 disables them); Keras
            preprocessing layers, identity at inference.
    """
    if arch not in BACKBONES:
        raise ValueError(f"Unknown model.arch {arch!r}; choose one of: {', '.join(BACKBONES)}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    inputs = keras.Input(shape=tuple(input_shape), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if augment:
        x = keras.layers.RandomFlip("horizontal", name="random_flip")(x)
        if augment_shift:
            x = keras.layers.RandomTranslation(augment_shift, augment_shift, fill_mode="constant",
                                               name="random_shift")(x)
    x = BACKBONES[arch](x, width_multiplier=width_multiplier)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 softmax keeps probabilities exact under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                 name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name or arch)


@dataclass
class ImageModelConfig(ModelConfig):
    arch: str = "resnet_small"
    width_multiplier: float = 0.5
    dropout: float = 0.0
    augment: bool = False  # random flip (and shift) while training
    augment_shift: float = 0.1  # largest random shift, as a fraction of the size; 0 = flip only


@dataclass
class ImageDataConfig(DataConfig):
    name: str = "fashion_mnist"


@dataclass
class ImageClassificationConfig(Config):
    app: str = "image_classification"
    epochs: int = 4
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(learning_rate=2e-3))


@register_app
class ImageClassification(App):
    name = "image_classification"
    description = "Classify images (Fashion-MNIST offline, any TFDS image set) with MobileNet or ResNet."
    config_class = ImageClassificationConfig

    def __init__(self, config):
        super().__init__(config)
        data = config.data
        self.source = ImageSource(data.name, data.dir, data.validation_split, data.limit,
                                  data.download)
        self._info = None

    @property
    def info(self):
        if self._info is None:
            self._info = self.source.info()
        return self._info

    def build_data(self, split, input_context=None):
        return self.source.dataset(split)

    def build_model(self):
        m = self.config.model
        return build_classifier(m.arch, self.info.shape, self.info.num_classes,
                                width_multiplier=m.width_multiplier, dropout=m.dropout,
                                augment=m.augment, augment_shift=m.augment_shift)

    def compile_args(self):
        return {
            "optimizer": "adam",
            "loss": keras.losses.SparseCategoricalCrossentropy(),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def class_names(self):
        return self.info.class_names

    def serving_signature(self, model):
        shape = (None,) + tuple(model.inputs[0].shape[1:])
        return classification_signature(model, tf.TensorSpec(shape, tf.uint8, name="image"),
                                        self.class_names())
