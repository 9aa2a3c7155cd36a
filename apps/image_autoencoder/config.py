"""The autoencoder's config keys: a module without TensorFlow, so --help answers at once."""

from dataclasses import dataclass, field

from apps.image_classification.config import ImageDataConfig
from training.config import Config, ModelConfig, option


@dataclass
class AutoencoderModelConfig(ModelConfig):
    code_size: int = option(32, "numbers each image is compressed to", ge=1)
    hidden_units: int = option(256, "width of the encoder's and the decoder's hidden layer", ge=1)


@dataclass
class ImageAutoencoderConfig(Config):
    app: str = "image_autoencoder"
    epochs: int = 5
    data: ImageDataConfig = field(default_factory=ImageDataConfig)  # the image app's data keys
    model: AutoencoderModelConfig = field(default_factory=AutoencoderModelConfig)
