"""task=language_model: next-character prediction on a local text file (data.path) or a TFDS
text set (tiny_shakespeare); reports perplexity, and `python -m training generate --run DIR`
samples text."""

import keras
import numpy as np
import tensorflow as tf

from apps.sequence_modeling import data as sequence_data
from apps.sequence_modeling import token_ids
from apps.sequence_modeling.model import Perplexity, char_codes, sample_next
from apps.sequence_modeling.task import (
    Task,
    recurrent_softmax,
    sparse_classification_args,
    token_ids_input,
)
from layers import UnicodeCodepoints
from training.app import ServingSignature


class LanguageModel(Task):
    def __init__(self, config):
        super().__init__(config)
        self.vectorizer = None
        self.char_lookup = None

    def build_data(self, split):
        d = self.config.data
        if split != "train" and self.vectorizer is None:
            self.build_data("train")  # the vocabulary is the training text's
        text = sequence_data.text_corpus(split, d.path, d.name, d.validation_split, d.dir,
                                         d.download)
        if split == "train" and self.vectorizer is None:
            # Characters as they are (no lowercasing): code points -> vocabulary ids.
            lookup = keras.layers.IntegerLookup(mask_token=0, name="vocabulary")
            lookup.adapt(tf.data.Dataset.from_tensors(
                tf.strings.unicode_decode(text, "UTF-8", errors="replace")))
            codes = UnicodeCodepoints(name="codepoints")  # the model's, under TensorFlow
            self.vectorizer = lambda s: lookup(codes(s))
            self.char_lookup = lookup
        fraction_key = None if split == "train" else "data.validation_split"
        if self.too_short(split, len(text), "characters", fraction_key):
            return None
        length = d.sequence_length

        def ids(window):  # [length] ids of a window of `length` characters
            return token_ids.chars_to_ids(window[None], self.char_lookup, length)[0][0]

        ds = sequence_data.char_windows(text, length, ids, d.limit)
        return ds if self.strings_in_model else ds.map(lambda window, y: (ids(window), y))

    def build_model(self):
        m = self.config.model
        if self.strings_in_model:
            inputs = keras.Input((), dtype="string", name="text")
            x = self.vectorizer(inputs)
        else:
            inputs, x = token_ids_input(self.config.data.sequence_length, self.char_lookup)
        vocabulary = self.char_lookup.vocabulary_size()
        return recurrent_softmax(inputs, x, m, vocabulary, f"{m.cell}_language_model", vocabulary,
                                 return_sequences=True)

    def compile_args(self):
        return sparse_classification_args(Perplexity())

    def serving_signature(self, model):
        codes = tf.constant(char_codes(model), tf.int32)
        if token_ids.takes_ids(model):
            lookup, length = token_ids.code_point_lookup(model), model.inputs[0].shape[1]
            # The SavedModel must hold the lookup table; warm-up texts come from the ids.
            ids_extras = {"resources": token_ids.lookup_tables(lookup),
                          "examples": token_ids.ids_to_texts(model, "")}

            def probabilities_and_count(text):  # of the last `length` characters
                ids, count = token_ids.chars_to_ids(text, lookup, length)
                return model(ids, training=False), count
        else:
            ids_extras = {}

            def probabilities_and_count(text):
                return model(text, training=False), tf.strings.length(text, unit="UTF8_CHAR")

        def next_char(text):
            probabilities, count = probabilities_and_count(text)  # [batch, chars, vocabulary]
            p = tf.gather(probabilities, tf.maximum(count - 1, 0), batch_dims=1)
            code = tf.gather(codes, tf.argmax(p, axis=-1))
            return {"next_char_probabilities": p,
                    "next_char": tf.strings.unicode_encode(code[:, None], "UTF-8")}

        return ServingSignature([tf.TensorSpec((None,), tf.string, name="text")], next_char,
                                scored=None,  # the model's output is every position's
                                **ids_extras)

    def generate(self, model, prompt="", length=200, temperature=1.0, seed=None, progress=None):
        """`prompt` followed by `length` sampled characters; `progress`, if given, is called
        with (characters done, length) after each one."""
        codes = char_codes(model)
        rng = np.random.default_rng(seed)
        text = prompt or chr(codes[2])  # 0: padding, 1: unknown
        window = self.config.data.sequence_length
        if token_ids.takes_ids(model):  # one compiled call: the window's ids, padded
            ids = {code: i for i, code in enumerate(codes)}

            def predict(context):
                window_ids = np.zeros((1, window), np.int32)
                window_ids[0, :len(context)] = [ids.get(ord(c), 1) for c in context]
                return model.predict_on_batch(window_ids)[0, len(context) - 1]
        else:  # one graph for every context: the input is always one string, whatever its length
            tf_predict = tf.function(lambda context: model(context, training=False)[0, -1])

            def predict(context):
                return tf_predict(tf.constant([context]))

        for done in range(1, length + 1):
            p = np.array(predict(text[-window:]))
            p[:2] = 0  # never emit padding or the unknown token
            text += chr(codes[sample_next(p, temperature, rng)])
            if progress is not None:
                progress(done, length)
        return text
