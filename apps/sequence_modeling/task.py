"""What the sequence app's three tasks share: a Task is the App's hooks for one value of
`task` (classification.py, language_model.py, forecasting.py), and the recurrent softmax
model of the two that predict a class or a character."""

import keras

from apps.sequence_modeling import token_ids
from apps.sequence_modeling.model import recurrent_stack
from training.errors import ConfigError
from training.runtime.backend import resolve as resolve_backend


class Task:
    """One task: its data, model, loss, class names, serving function and report."""

    def __init__(self, config):
        self.config = config
        # Under JAX/PyTorch a compiled step cannot hold strings: text becomes ids in tf.data.
        # The backend the run trains (or trained) under: a run trained under JAX takes ids when
        # exported under TensorFlow too.
        self.strings_in_model = resolve_backend(config.runtime.backend) == "tensorflow"

    thresholds = None  # a multi-label task's, set by the pipeline (App.thresholds)

    def class_names(self):
        return None

    def is_multi_label(self):
        return False

    def labels(self, split):
        return None

    def example_names(self, split):
        return None

    def report(self, model, test_data, run_dir):
        return {}

    def too_short(self, split, length, unit, fraction_key):
        """True if `split` (`length` characters or values) is empty because its fraction,
        config key `fraction_key`, is 0: no such split. A ConfigError if it holds no window of
        data.sequence_length and its next step, as a split that vanished silently would leave
        val_* or test metrics out without a word."""
        d = self.config.data
        window = d.sequence_length
        if length > window:
            return False
        fraction = getattr(d, fraction_key.split(".")[1]) if fraction_key else None
        if length == 0 and fraction == 0:
            return True
        fix = f" or raise {fraction_key} (now {fraction:g})" if fraction_key else ""
        raise ConfigError(f"The {split} split has {length} {unit}, too few for one window of "
                          f"data.sequence_length={window} and its next step: lower "
                          f"data.sequence_length (below {max(length, 1)}){fix}")


def token_ids_input(length, lookup):
    """(inputs, vocabulary ids) of a model that takes `length` token ids (JAX, PyTorch)."""
    inputs = keras.Input((length,), dtype="int32", name="token_ids")
    return inputs, token_ids.TokenVocabulary(lookup.get_vocabulary(), name="vocabulary")(inputs)


def recurrent_softmax(inputs, x, model_config, classes, name, vocabulary=None,
                      return_sequences=False, multi_label=False):
    """The recurrent stack over `x` (embedded first when it holds ids of a `vocabulary` of that
    size), then a softmax over `classes`: per step with `return_sequences`; `multi_label`: a
    sigmoid per class instead."""
    m = model_config
    if vocabulary is not None:
        x = keras.layers.Embedding(vocabulary, m.embedding_dim, mask_zero=True, name="embedding")(x)
    x = recurrent_stack(x, m.cell, m.units, m.layers, m.bidirectional, m.dropout,
                        return_sequences=return_sequences)
    outputs = keras.layers.Dense(classes, activation="sigmoid" if multi_label else "softmax",
                                 dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def sparse_classification_args(*extra_metrics):
    """compile_args of the tasks that predict one of a vocabulary of classes or characters."""
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), *extra_metrics]
    return {"optimizer": "adam", "loss": keras.losses.SparseCategoricalCrossentropy(),
            "metrics": metrics}
