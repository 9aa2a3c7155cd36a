"""MobileNet v1's depthwise-separable convolution block."""

import keras

from layers.batch_normalization import BatchNormalization
from layers.serialization import SERIALIZATION_PACKAGE


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class DepthwiseSeparableBlock(keras.layers.Layer):
    """Depthwise 3x3 conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU.

    This is the building block of MobileNet v1 (Howard et al., 2017): the
    depthwise conv filters each channel spatially (and downsamples with
    ``strides``), the pointwise conv mixes channels. It costs about 1/8 to 1/9
    of a full 3x3 convolution with the same input and output channels.

    Args:
        filters: pointwise output channels before the width multiplier.
        strides: stride of the depthwise conv (1 or 2).
        width_multiplier: MobileNet's alpha; output channels are
            ``max(1, int(filters * width_multiplier))``.
        activation: activation after each BN ("relu" as in the paper, or
            "relu6" as in Keras' own MobileNet).
        bn_momentum: momentum of both BatchNormalization layers.
    """

    def __init__(
        self,
        filters,
        strides=1,
        width_multiplier=1.0,
        activation="relu",
        bn_momentum=0.99,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"filters must be >= 1, got {filters}")
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
        self.filters = int(filters)
        self.strides = int(strides)
        self.width_multiplier = float(width_multiplier)
        self.activation = activation
        self.bn_momentum = float(bn_momentum)
        self.output_channels = max(1, int(self.filters * self.width_multiplier))

        self.depthwise = keras.layers.DepthwiseConv2D(
            3, strides=self.strides, padding="same", use_bias=False,
            dtype=self.dtype_policy, name="depthwise",
        )
        self.depthwise_bn = BatchNormalization(
            momentum=self.bn_momentum, dtype=self.dtype_policy, name="depthwise_bn"
        )
        self.pointwise = keras.layers.Conv2D(
            self.output_channels, 1, use_bias=False,
            dtype=self.dtype_policy, name="pointwise",
        )
        self.pointwise_bn = BatchNormalization(
            momentum=self.bn_momentum, dtype=self.dtype_policy, name="pointwise_bn"
        )
        self.act = keras.layers.Activation(activation, dtype=self.dtype_policy)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "DepthwiseSeparableBlock expects (batch, height, width, channels) "
                f"inputs, got shape {tuple(input_shape)}"
            )
        self.depthwise.build(input_shape)
        shape = self.depthwise.compute_output_shape(input_shape)
        self.depthwise_bn.build(shape)
        self.pointwise.build(shape)
        shape = self.pointwise.compute_output_shape(shape)
        self.pointwise_bn.build(shape)

    def call(self, inputs, training=None):
        x = self.act(self.depthwise_bn(self.depthwise(inputs), training=training))
        return self.act(self.pointwise_bn(self.pointwise(x), training=training))

    def compute_output_shape(self, input_shape):
        shape = self.depthwise.compute_output_shape(input_shape)
        return self.pointwise.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            width_multiplier=self.width_multiplier,
            activation=self.activation,
            bn_momentum=self.bn_momentum,
        )
        return config
