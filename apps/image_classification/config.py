"""The image app's config keys; imports no TensorFlow (training/registry.py: config_class)."""

from dataclasses import dataclass, field
from typing import List, Literal, Optional

from serving.image_header import DEFAULT_MAX_PIXELS
from training.config import (
    BoolOrAuto,
    Config,
    DataConfig,
    IntOrAuto,
    LabelKind,
    ModelConfig,
    OptimizerConfig,
    label_separator,
    option,
)

# The backbones.BACKBONES names (tests/test_layout.py checks they match), written out here so
# that --help and --print-config import no Keras.
ARCHS = ("mobilenet", "mobilenet_small", "resnet18", "resnet34", "resnet50", "resnet_small")
# + the name of one of keras.applications' models (keras_applications.PREFIX)
APPLICATIONS = "keras_applications/"
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
    labels: LabelKind = option(
        "single", "multi: an image may have several labels (or none of them), read from "
        "data.manifest: a sigmoid per label, each with a threshold chosen on validation")
    manifest: Optional[str] = option(None, "data.labels=multi: a CSV with columns file,labels (a "
                                     "file's path relative to the CSV's folder; its labels "
                                     "separated by data.label_separator)")
    label_separator: str = option(";", "what separates a manifest row's labels", check=label_separator)
    max_image_pixels: int = option(DEFAULT_MAX_PIXELS, "images whose header declares more pixels "
                                   "(width x height) are not decoded: skipped in training, refused "
                                   "by predict (a decompression bomb decodes to gigabytes)", ge=1)

    def check(self):
        if (self.labels == "multi") != bool(self.manifest):
            return ("data.labels=multi reads its labels from data.manifest=FILE.csv (columns "
                    "file,labels); set both, or neither for class folders")
        return super().check()


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
