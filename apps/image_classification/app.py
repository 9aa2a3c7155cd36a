"""Image classification: MobileNet or ResNet backbones on any image data set.

Default: a small ResNet on real Fashion-MNIST (offline IDX files). The model
takes raw uint8 images and rescales them itself, so the exported SavedModel
serves raw pixels.
"""

from dataclasses import dataclass, field
from typing import Literal

import keras
import tensorflow as tf

from apps.image_classification.data import ImageSource
from apps.image_classification.model import build_classifier
from training.app import App, classification_signature
from training.config import Config, DataConfig, ModelConfig, OptimizerConfig, option

Arch = Literal["mobilenet", "mobilenet_small", "resnet18", "resnet34", "resnet50", "resnet_small"]


@dataclass
class ImageModelConfig(ModelConfig):
    arch: Arch = option("resnet_small", "backbone; *_small keep 28x28 or 32x32 images' detail")
    width_multiplier: float = option(0.5, "scales every layer's channels", gt=0)
    dropout: float = option(0.0, "dropout before the classifier", ge=0, lt=1)
    augment: bool = option(False, "random flip (and shift) while training")
    augment_shift: float = option(0.1, "largest random shift, as a fraction of the size; 0 = flip only",
                                  ge=0, lt=1)


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

    def build_data(self, split):
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
