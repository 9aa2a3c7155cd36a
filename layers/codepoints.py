"""Strings to Unicode code points, for character-level models."""

import keras
import tensorflow as tf

from layers.serialization import SERIALIZATION_PACKAGE


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class UnicodeCodepoints(keras.layers.Layer):
    """[batch] UTF-8 strings -> [batch, longest] int32 code points, padded with 0.

    Written by hand because Keras' character-split TextVectorization and
    StringLookup save their vocabulary one token per line, so "\\n" and "\\r"
    tokens do not survive `.keras` save/load; integer code points (looked up
    with IntegerLookup, mask 0) do.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("trainable", False)  # nothing to train; kept in get_config
        super().__init__(**kwargs)

    def call(self, strings):
        return tf.strings.unicode_decode(strings, "UTF-8", errors="replace").to_tensor(0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (None,)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape) + (None,), dtype="int32")
