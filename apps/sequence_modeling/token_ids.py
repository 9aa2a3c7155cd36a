"""Text as token ids, for the backends whose compiled steps cannot hold strings (JAX, PyTorch).

Under TensorFlow the text tasks keep their string preprocessing (TextVectorization, the code
point lookup) inside the model, so model.keras and the export take raw text. Under another
backend the words or characters become ids in tf.data instead, of one fixed length (one
compiled step, not one per batch length); the model takes the ids, and its first layer,
TokenVocabulary, keeps the vocabulary in model.keras. The export turns text into ids in TF
again, around the converted model call, and generation needs no data: both read the
vocabulary from the model.
"""

import itertools

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_app_templates")
class TokenVocabulary(keras.layers.Layer):
    """Passes token ids through and keeps the vocabulary they index (index 0: padding, 1:
    unknown) in its config, so a model that takes ids carries its vocabulary in .keras, as one
    with TextVectorization does. Written by hand because Keras' lookup layers run TF ops,
    which a JAX or PyTorch step cannot."""

    def __init__(self, vocabulary, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        # Plain str/int, not NumPy scalars, so the config serialises.
        self.vocabulary = [v if isinstance(v, str) else int(v) for v in vocabulary]

    def get_vocabulary(self):
        return list(self.vocabulary)

    def call(self, ids):
        return ids

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary}


def takes_ids(model):
    """True if `model`'s input is token ids rather than strings."""
    return model.inputs[0].dtype != "string"


def words_to_ids(vocabulary, length):
    """TextVectorization that maps texts to `length` word ids of `vocabulary` (as
    TextVectorization.get_vocabulary gives it), cut or padded with 0; runs in tf.data and TF
    graphs under any backend."""
    return keras.layers.TextVectorization(vocabulary=vocabulary, output_sequence_length=length)


def ids_to_texts(model, separator):
    """A ServingSignature.examples function: a batch of `model`'s token ids back to the texts
    they stand for (words joined by `separator`, or characters), so that the export's warm-up
    requests are real examples. Padding is left out; an unknown id (1) becomes a token outside
    the vocabulary (a private-use character, or `unknown<N>`), which maps back to 1."""
    tokens = [v if isinstance(v, str) else chr(max(v, 0))
              for v in model.get_layer("vocabulary").get_vocabulary()]
    known = set(tokens[2:])
    candidates = (f"unknown{n}" if separator else chr(0xE000 + n) for n in itertools.count())
    tokens[1] = next(t for t in candidates if t not in known)

    def examples(ids):
        return [np.array([separator.join(tokens[i] for i in row if i > 0) for row in np.asarray(ids)],
                         dtype=object)]

    return examples


def lookup_tables(layer):
    """The TF lookup table of a Keras TextVectorization or IntegerLookup `layer`, for
    ServingSignature.resources: under JAX a Keras layer is no TF trackable, so the export
    saves the table only if named. TextVectorization keeps its StringLookup in a private
    attribute, which has no public name."""
    lookup = getattr(layer, "_lookup_layer", layer)
    return [lookup.lookup_table]


def chars_to_ids(texts, lookup, length):
    """([batch, length] int32 ids of each text's last `length` characters, padded with 0 on
    the right; [batch] how many are real). `lookup`: an IntegerLookup of code points."""
    codes = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")[:, -length:]
    ids = tf.cast(lookup(codes.to_tensor(0, shape=[None, length])), tf.int32)
    return ids, tf.cast(codes.row_lengths(), tf.int32)


def code_point_lookup(model):
    """IntegerLookup of code points -> ids with the vocabulary of `model`'s TokenVocabulary."""
    return keras.layers.IntegerLookup(mask_token=0,
                                      vocabulary=model.get_layer("vocabulary").get_vocabulary())
