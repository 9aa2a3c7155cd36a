"""Keras' BatchNormalization, computed by TF's fused kernel where that kernel applies.

Keras 3 computes batch normalization on every backend as moments plus
elementwise ops; on the TensorFlow backend that is about ten kernels forward
and more backward per layer. TF's own `FusedBatchNormV3` does it in one (oneDNN
on CPU, cuDNN on GPU), as tf.keras did with ``fused=True``. Keras 3 has no
switch for it (`keras.layers.BatchNormalization` takes no ``fused``), hence
this subclass.

It is the same layer otherwise: same arguments, weights, weight names, config
and `.keras` entry under the keras_app_templates package, so weights, checkpoints
and configs move both ways between it and `keras.layers.BatchNormalization`.
The moving variance is updated with the biased batch variance, as Keras does
(the kernel reports the Bessel-corrected one, which is undone here). Statistics
are per replica under tf.distribute, as in Keras; ``synchronized=True`` takes
Keras' own (unfused) path.
"""

import keras

from layers.serialization import SERIALIZATION_PACKAGE

FUSED_DTYPES = ("float32", "float16", "bfloat16")


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that runs TF's fused kernel when it can.

    The fused kernel is used when the backend is TensorFlow, the input is 4-D
    with channels last (``axis`` -1 or 3) in a float dtype, and none of
    ``renorm``, ``synchronized`` or a mask asks for more than plain batch
    normalization. Anything else is Keras' own computation.

    ``fused=False`` forces Keras' computation (the benchmarks compare the two);
    it is a choice of kernel, not of model, so it is not part of the config.
    """

    def __init__(self, *args, fused=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused = fused

    def _fusable(self, inputs, mask):
        return (self.fused is not False and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and mask is None
                and not self.renorm and not self.synchronized
                and keras.backend.standardize_dtype(inputs.dtype) in FUSED_DTYPES)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only on the TensorFlow backend (see _fusable)

        channels = inputs.shape[-1]
        # The kernel takes float32 statistics with float16/bfloat16 inputs and
        # accumulates in float32, which is what Keras' upcast achieves.
        scale = self.gamma if self.scale else tf.ones([channels])
        offset = self.beta if self.center else tf.zeros([channels])
        scale, offset = tf.cast(scale, "float32"), tf.cast(offset, "float32")
        if training and self.trainable:
            outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset, mean=tf.constant([], "float32"),
                variance=tf.constant([], "float32"), epsilon=self.epsilon,
                exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
            count = tf.cast(tf.size(inputs) // channels, "float32")
            # n/(n-1) undone; one value per channel (Keras' variance of one value is 0).
            variance = tf.where(count > 1.0, variance * (count - 1.0) / tf.maximum(count, 1.0),
                                tf.zeros_like(variance))
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + variance * (1.0 - self.momentum))
        else:
            outputs = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset,
                mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon, data_format="NHWC", is_training=False)[0]
        return tf.cast(outputs, self.compute_dtype)
