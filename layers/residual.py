"""ResNet's residual blocks: basic (two 3x3) and bottleneck (1x1-3x3-1x1)."""

import keras

from layers.batch_normalization import BatchNormalization
from layers.serialization import SERIALIZATION_PACKAGE

BOTTLENECK_EXPANSION = 4


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ResidualBlock(keras.layers.Layer):
    """A ResNet v1 residual block (He et al., 2015), BN after every conv.

    * basic: 3x3 conv(filters, strides) -> BN -> ReLU -> 3x3 conv(filters) -> BN;
      outputs ``filters`` channels (ResNet-18/34).
    * bottleneck: 1x1 conv(filters) -> 3x3 conv(filters, strides) ->
      1x1 conv(4 * filters), BN after each; outputs ``4 * filters`` channels
      (ResNet-50 and deeper). The stride sits on the 3x3 conv ("ResNet v1.5").

    The shortcut is the identity when the shape is unchanged, else a
    projection (1x1 conv with the block's stride + BN). The sum goes through
    a final ReLU. The last BN's gamma can start at zero
    (``zero_init_residual``) so each block starts as the identity, which
    helps deep nets train (Goyal et al., 2017).

    Args:
        filters: channels of the 3x3 convs.
        strides: stride of the block (1 or 2).
        bottleneck: use the 1x1-3x3-1x1 bottleneck form.
        zero_init_residual: initialise the last BN's gamma to zero.
        bn_momentum: momentum of every BatchNormalization layer.
        kernel_regularizer_l2: L2 factor on conv kernels (0 disables).
    """

    def __init__(
        self,
        filters,
        strides=1,
        bottleneck=False,
        zero_init_residual=False,
        bn_momentum=0.99,
        kernel_regularizer_l2=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"filters must be >= 1, got {filters}")
        self.filters = int(filters)
        self.strides = int(strides)
        self.bottleneck = bool(bottleneck)
        self.zero_init_residual = bool(zero_init_residual)
        self.bn_momentum = float(bn_momentum)
        self.kernel_regularizer_l2 = float(kernel_regularizer_l2)
        expansion = BOTTLENECK_EXPANSION if self.bottleneck else 1
        self.output_channels = self.filters * expansion

        if self.bottleneck:
            specs = [(self.filters, 1, 1), (self.filters, 3, self.strides),
                     (self.output_channels, 1, 1)]
        else:
            specs = [(self.filters, 3, self.strides), (self.filters, 3, 1)]
        self.convs = [self._conv(f, k, s, f"conv{i}") for i, (f, k, s) in enumerate(specs)]
        last = len(specs) - 1
        self.bns = [self._bn(f"bn{i}", zero_gamma=self.zero_init_residual and i == last)
                    for i in range(len(specs))]
        self.relu = keras.layers.ReLU(dtype=self.dtype_policy)
        self.add = keras.layers.Add(dtype=self.dtype_policy)
        self.shortcut_conv = None
        self.shortcut_bn = None

    def _conv(self, filters, kernel, strides, name):
        regularizer = (keras.regularizers.L2(self.kernel_regularizer_l2)
                       if self.kernel_regularizer_l2 else None)
        return keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=False,
            kernel_initializer="he_normal", kernel_regularizer=regularizer,
            dtype=self.dtype_policy, name=name,
        )

    def _bn(self, name, zero_gamma=False):
        return BatchNormalization(
            momentum=self.bn_momentum, gamma_initializer="zeros" if zero_gamma else "ones",
            dtype=self.dtype_policy, name=name,
        )

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "ResidualBlock expects (batch, height, width, channels) inputs, "
                f"got shape {tuple(input_shape)}"
            )
        shape = input_shape
        for conv, bn in zip(self.convs, self.bns):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            bn.build(shape)
        # The projection exists only when the input's channels or the stride
        # change the shape, which is known here and not in __init__.
        # Its stride is taken by slicing the input first (see call), so the conv's own is 1.
        if self.strides != 1 or input_shape[-1] != self.output_channels:
            self.shortcut_conv = self._conv(self.output_channels, 1, 1, "shortcut")
            self.shortcut_bn = self._bn("shortcut_bn")
            self.shortcut_conv.build(input_shape)
            self.shortcut_bn.build(self.shortcut_conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = inputs
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = bn(conv(x), training=training)
            if i < last:
                x = self.relu(x)
        shortcut = inputs
        if self.shortcut_conv is not None:
            # A 1x1 conv of stride s is a 1x1 conv of every s-th pixel ("same" padding adds
            # none). Subsampled first: TF 2.21's oneDNN gradient of the strided 1x1 conv
            # segfaults with 9 or fewer input channels and an odd batch size. A 1x1 max pool
            # of stride s picks those pixels, forward and backward, 3-4x faster than
            # x[:, ::s, ::s] and its StridedSliceGrad on TF's CPU kernels.
            if self.strides != 1:
                shortcut = keras.ops.max_pool(shortcut, 1, self.strides, padding="same")
            shortcut = self.shortcut_bn(self.shortcut_conv(shortcut), training=training)
        return self.relu(self.add([x, shortcut]))

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for conv in self.convs:
            shape = conv.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            bottleneck=self.bottleneck,
            zero_init_residual=self.zero_init_residual,
            bn_momentum=self.bn_momentum,
            kernel_regularizer_l2=self.kernel_regularizer_l2,
        )
        return config
