"""The recurrent stack shared by the sequence tasks, the language model's perplexity, and
character sampling for generation."""

import keras
import numpy as np

# Keyed by the sequence app's `model.cell` choices.
CELLS = {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def recurrent_stack(x, cell, units, layers, bidirectional=False, dropout=0.0,
                    return_sequences=False):
    """`layers` recurrent layers of `cell` (a key of CELLS); masks from the inputs are honoured."""
    if cell not in CELLS:
        raise ValueError(f"Unknown cell {cell!r}; choose one of: {', '.join(CELLS)}")
    for i in range(layers):
        last = i == layers - 1
        rnn = CELLS[cell](units, return_sequences=return_sequences or not last, dropout=dropout,
                          name=f"{cell}_{i + 1}")
        x = keras.layers.Bidirectional(rnn, name=f"bidirectional_{i + 1}")(x) if bidirectional else rnn(x)
    return x


@keras.saving.register_keras_serializable(package="keras_app_templates")
class Perplexity(keras.metrics.Mean):
    """exp of the mean cross-entropy per predicted character: a language model's usual score,
    in history.csv and the curves next to the loss. Written here because Keras has none (KerasHub
    has one, but that package is not a dependency)."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        losses = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        return super().update_state(losses, sample_weight)

    def result(self):
        return keras.ops.exp(super().result())


def char_codes(model):
    """Code point of each vocabulary id of a language model (0 and 1: padding, unknown)."""
    vocabulary = model.get_layer("vocabulary").get_vocabulary()
    return [max(int(c), 0) for c in vocabulary]


def sample_next(probabilities, temperature, rng):
    """An index drawn from `probabilities` sharpened (T < 1) or flattened (T > 1)."""
    if temperature <= 0:
        return int(np.argmax(probabilities))
    logits = np.log(np.maximum(probabilities, 1e-12)) / temperature
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))
