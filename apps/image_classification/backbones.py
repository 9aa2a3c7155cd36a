"""Convolutional backbones for image classification, built from layers/.

Full-size networks follow the papers at 224x224 inputs (MobileNet v1,
ResNet-18/34/50); the ``*_small`` variants keep the same blocks but drop the
aggressive stem downsampling so 28x28 or 32x32 images keep spatial detail.
Each builder maps a float image tensor to a feature map; BACKBONES' names are
the choices of the image app's `model.arch`.
"""

import keras

from layers import BatchNormalization, DepthwiseSeparableBlock, ResidualBlock

# (filters, stride) of MobileNet v1's 13 depthwise-separable blocks.
MOBILENET_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [
    (512, 1)
] * 5 + [(1024, 2), (1024, 1)]
# Small variant: the first five blocks plus one more at 256 (28x28 -> 7x7).
MOBILENET_SMALL_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (256, 1)]

# Blocks per stage and block type of the ResNet depths.
RESNET_DEPTHS = {
    "resnet18": ([2, 2, 2, 2], False),
    "resnet34": ([3, 4, 6, 3], False),
    "resnet50": ([3, 4, 6, 3], True),
}
RESNET_WIDTHS = [64, 128, 256, 512]
# Small variant: three stages of basic blocks (28x28 -> 14x14 -> 7x7).
RESNET_SMALL = ([2, 2, 2], [32, 64, 128])


def _conv_bn_relu(x, filters, kernel, strides, name):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                            use_bias=False, name=f"{name}_conv")(x)
    x = BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def mobilenet(x, width_multiplier=1.0, small=False):
    """MobileNet v1: a 3x3 stem conv then depthwise-separable blocks."""
    stem_stride = 1 if small else 2
    x = _conv_bn_relu(x, max(1, int(32 * width_multiplier)), 3, stem_stride, "stem")
    blocks = MOBILENET_SMALL_BLOCKS if small else MOBILENET_BLOCKS
    for i, (filters, strides) in enumerate(blocks):
        x = DepthwiseSeparableBlock(filters, strides, width_multiplier, name=f"ds_block{i}")(x)
    return x


def resnet(x, blocks_per_stage, widths, bottleneck=False, small=False, width_multiplier=1.0):
    """ResNet v1.5: stem, then stages of residual blocks; each later stage halves the size."""
    widths = [max(1, int(w * width_multiplier)) for w in widths]
    if small:
        x = _conv_bn_relu(x, widths[0], 3, 1, "stem")
    else:
        x = _conv_bn_relu(x, widths[0], 7, 2, "stem")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (count, filters) in enumerate(zip(blocks_per_stage, widths)):
        for i in range(count):
            strides = 2 if stage > 0 and i == 0 else 1
            x = ResidualBlock(filters, strides, bottleneck=bottleneck,
                              zero_init_residual=True, name=f"stage{stage}_block{i}")(x)
    return x


def _resnet_depth(depth):
    blocks, bottleneck = RESNET_DEPTHS[depth]
    return lambda x, width_multiplier=1.0: resnet(
        x, blocks, RESNET_WIDTHS, bottleneck, width_multiplier=width_multiplier)


BACKBONES = {
    "mobilenet": lambda x, width_multiplier=1.0: mobilenet(x, width_multiplier),
    "mobilenet_small": lambda x, width_multiplier=1.0: mobilenet(x, width_multiplier, small=True),
    "resnet18": _resnet_depth("resnet18"),
    "resnet34": _resnet_depth("resnet34"),
    "resnet50": _resnet_depth("resnet50"),
    "resnet_small": lambda x, width_multiplier=1.0: resnet(
        x, *RESNET_SMALL, small=True, width_multiplier=width_multiplier),
}
