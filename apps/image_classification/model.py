"""The image classifier: raw uint8 images in, class probabilities out."""

import keras

from apps.image_classification import keras_applications
from apps.image_classification.backbones import BACKBONES


def build_classifier(arch, input_shape, num_classes, width_multiplier=1.0, dropout=0.0,
                     augment=False, augment_shift=0.1, name=None, weights="imagenet",
                     multi_label=False):
    """A keras.Model from uint8 images (input "image") to class probabilities (multi_label:
    one sigmoid probability per label).

    Args:
        arch: one of BACKBONES: mobilenet, mobilenet_small, resnet18, resnet34,
            resnet50, resnet_small; or keras_applications/<Name>, one of Keras'
            own (e.g. keras_applications/MobileNetV2), gray images repeated to RGB.
        input_shape: (height, width, channels).
        num_classes: size of the softmax output "probabilities".
        width_multiplier: scales every layer's channels.
        dropout: dropout rate before the classifier.
        augment: random horizontal flip while training, plus random shifts of
            up to `augment_shift` of the size (0 disables them); Keras
            preprocessing layers, identity at inference.
        weights: keras_applications only: "imagenet", "none" or a weights file.
    """
    application = arch.startswith(keras_applications.PREFIX)
    if not application and arch not in BACKBONES:
        raise ValueError(f"Unknown model.arch {arch!r}; choose one of: {', '.join(BACKBONES)}, "
                         f"or {keras_applications.PREFIX}<Name>")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    inputs = keras.Input(shape=tuple(input_shape), dtype="uint8", name="image")
    # Keras' applications take 0-255 RGB and scale it themselves (ApplicationPreprocessing).
    x = keras.layers.Rescaling(1.0 if application else 1.0 / 255, name="rescale")(inputs)
    if application and input_shape[-1] == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if augment:
        x = keras.layers.RandomFlip("horizontal", name="random_flip")(x)
        if augment_shift:
            x = keras.layers.RandomTranslation(augment_shift, augment_shift, fill_mode="constant",
                                               name="random_shift")(x)
    if application:
        x = keras_applications.backbone(arch, x, weights)
    else:
        x = BACKBONES[arch](x, width_multiplier=width_multiplier)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 softmax keeps probabilities exact under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="sigmoid" if multi_label else "softmax",
                                 dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name or arch.replace("/", "_"))
