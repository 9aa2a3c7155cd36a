"""Sequence modeling with recurrent nets (SimpleRNN, GRU, LSTM): three tasks.

* classification: row-sequential images (Fashion-MNIST offline: 28 steps of 28
  pixels), texts of your own (class folders of .txt files in data.dir, or
  data.path=FILE.csv; see texts.py) or any TFDS text set by name (imdb_reviews),
  with TextVectorization adapted on the training split and kept in the model, so
  the export takes raw strings (under JAX or PyTorch the model takes word ids and the
  export turns strings into them: token_ids.py);
* language_model: next-character prediction on a local text file
  (data.path) or a TFDS text set (tiny_shakespeare); reports perplexity;
  `python -m training generate --run DIR` samples text;
* forecasting: next-step prediction from windows of one CSV column; reports the
  test MAE next to the naive last-value baseline's.
"""

from dataclasses import dataclass, field
from typing import List, Literal, Optional

import keras
import numpy as np
import tensorflow as tf

from apps.image_classification.data import IDX_DIRS, ImageSource, is_folder_of_classes
from apps.sequence_modeling import data as sequence_data
from apps.sequence_modeling import texts, token_ids
from apps.sequence_modeling.model import Perplexity, char_codes, recurrent_stack, sample_next
from layers import UnicodeCodepoints
from training.app import App, ServingSignature, classification_signature
from training.backend import resolve as resolve_backend
from training.config import Config, DataConfig, IntOrAuto, ModelConfig, OptimizerConfig, option
from training.datasets import split_range, tfds_info, tfds_labelled
from training.errors import ConfigError, DataError

Task = Literal["classification", "language_model", "forecasting"]
Cell = Literal["simple_rnn", "gru", "lstm"]


@dataclass
class SequenceDataConfig(DataConfig):
    name: str = option("", "classification: an image set read row by row (default: fashion_mnist) "
                       "or a TFDS text set; language_model: a TFDS text set, unless data.path")
    path: str = option("", "local text file (language_model), or CSV file (forecasting; "
                       "classification: labelled texts)")
    column: str = option("", "the CSV column to forecast")
    text_column: str = option("text", "classification CSV: the column of texts")
    label_column: str = option("label", "classification CSV: the column of labels")
    classes: Optional[List[str]] = option(None, "classification from class folders: use only these")
    sequence_length: int = option(100, "characters per language-model window; steps per forecast window",
                                 ge=1)
    max_tokens: int = option(20000, "vocabulary size for text classification", ge=3)
    text_length: int = option(0, "words kept per text (text classification), longer texts are cut; "
                              f"0: from the data, the {texts.LENGTH_PERCENTILE}th percentile of the "
                              f"training texts' word counts, at most {texts.MAX_TEXT_LENGTH}", ge=0)
    test_split: float = option(0.2, "held out for testing: forecasting's most recent fraction; texts "
                               "without a test/ folder, by hash", ge=0, lt=1)


@dataclass
class SequenceModelConfig(ModelConfig):
    cell: Cell = option("lstm", "recurrent cell")
    units: int = option(128, "units per recurrent layer", ge=1)
    layers: int = option(1, "stacked recurrent layers", ge=1)
    bidirectional: bool = option(False, "read each sequence both ways")
    dropout: float = option(0.0, "dropout on the recurrent layers' inputs", ge=0, lt=1)
    embedding_dim: int = option(64, "embedding size (text tasks)", ge=1)


@dataclass
class SequenceModelingConfig(Config):
    app: str = "sequence_modeling"
    task: Task = option("classification",
                        "what to predict: a label, the next character, or the next CSV value")
    epochs: IntOrAuto = 10
    data: SequenceDataConfig = field(default_factory=SequenceDataConfig)
    model: SequenceModelConfig = field(default_factory=SequenceModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(learning_rate=2e-3))


class SequenceModeling(App):
    name = "sequence_modeling"
    description = "RNN/GRU/LSTM: sequence classification, character language model, forecasting."
    config_class = SequenceModelingConfig

    def __init__(self, config):
        super().__init__(config)
        d = config.data
        self.images = None
        self.own_texts = config.task == "classification" and bool(
            d.path or (d.dir and is_folder_of_classes(d)))
        self._texts = None
        if config.task == "classification" and not self.own_texts and not d.name:
            d.name = "fashion_mnist"  # config.yaml records the data set the run read
        if config.task == "classification" and not self.own_texts and self._is_image_set(d.name):
            self.images = ImageSource(d.name, d.dir, d.validation_split, d.limit, d.download)
        # Under JAX/PyTorch a compiled step cannot hold strings: text becomes ids in tf.data.
        # The backend the run trains (or trained) under: a run trained under JAX takes ids when
        # exported under TensorFlow too.
        self.strings_in_model = resolve_backend(config.runtime.backend) == "tensorflow"
        if config.task == "forecasting" and not (d.path and d.column):
            raise ConfigError("Forecasting needs data.path=FILE.csv and data.column=NAME")
        self.vectorizer = None
        self._series = None

    @staticmethod
    def _is_image_set(name):
        if name in IDX_DIRS:
            return True
        try:
            return "image" in tfds_info(name).features
        except Exception:  # unknown or unprepared: leave it to the text path's clear error
            return False

    # -- data ---------------------------------------------------------------
    @property
    def labelled_texts(self):
        """Your own labelled texts (read once): a CSV file or class folders of .txt files."""
        d = self.config.data
        if self._texts is None:
            self._texts = (texts.csv_texts(d.path, d.text_column, d.label_column, d.validation_split,
                                           d.test_split) if d.path else
                           texts.text_folders(d.dir, d.validation_split, d.test_split, d.classes))
        return self._texts

    def build_data(self, split):
        c, d = self.config, self.config.data
        if c.task == "classification":
            if self.images is not None:
                return self.images.dataset(split)
            if split != "train" and self.vectorizer is None and not self.strings_in_model:
                self.build_data("train")  # the ids are the training split's vocabulary's
            if self.own_texts:
                ds = self.labelled_texts.dataset(split, d.limit)
            else:
                ds = tfds_labelled(d.name, split, d.validation_split, d.dir, d.download, d.limit)
            if ds is None and split == "train":
                raise DataError("The training split holds no texts: texts are split by a hash of "
                                "the text, so identical texts share one split; give more distinct "
                                "texts, or lower data.validation_split and data.test_split")
            if ds is None:
                return None
            if split == "train" and self.vectorizer is None:
                if not d.text_length:  # one fixed length: config.yaml records it
                    d.text_length = texts.length_from_data(ds.map(lambda text, label: text))
                self.vectorizer = keras.layers.TextVectorization(
                    d.max_tokens, output_sequence_length=d.text_length, name="vectorize")
                self.vectorizer.adapt(ds.map(lambda text, label: text).batch(256))
            if not self.strings_in_model:
                ds = ds.map(lambda text, label: (tf.cast(self.vectorizer(text), tf.int32), label))
            return ds
        if c.task == "language_model":
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
            if self._too_short(split, len(text), "characters", fraction_key):
                return None
            length = d.sequence_length

            def ids(window):  # [length] ids of a window of `length` characters
                return token_ids.chars_to_ids(window[None], self.char_lookup, length)[0][0]

            ds = sequence_data.char_windows(text, length, ids, d.limit)
            return ds if self.strings_in_model else ds.map(lambda window, y: (ids(window), y))
        values = self._series_split(split)
        fraction_key = {"validation": "data.validation_split", "test": "data.test_split"}.get(split)
        if self._too_short(split, len(values), "values", fraction_key):
            return None
        ds = sequence_data.next_step_windows(values, d.sequence_length)
        return ds.take(d.limit) if d.limit is not None else ds

    def _too_short(self, split, length, unit, fraction_key):
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

    def _series_split(self, split):
        """The forecasting series' `split`, in time order: train, validation, test (the most recent)."""
        d = self.config.data
        if self._series is None:
            self._series = sequence_data.csv_column(d.path, d.column)
        start, stop = split_range(split, len(self._series), d.validation_split, d.test_split)
        return self._series[start:stop]

    # -- model --------------------------------------------------------------
    def build_model(self):
        m, task = self.config.model, self.config.task
        if task == "forecasting":
            return self._forecaster()
        if self.images is not None:
            shape = self.images.info().shape
            inputs = keras.Input(shape, dtype="uint8", name="image")
            x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
            x = keras.layers.Reshape((shape[0], shape[1] * shape[2]), name="rows")(x)  # steps = rows
        elif self.strings_in_model:
            inputs = keras.Input((), dtype="string", name="text")
            x = self.vectorizer(inputs)
        else:
            length = self.config.data.sequence_length if task == "language_model" else \
                self.config.data.text_length
            inputs = keras.Input((length,), dtype="int32", name="token_ids")
            lookup = self.char_lookup if task == "language_model" else self.vectorizer
            x = token_ids.TokenVocabulary(lookup.get_vocabulary(), name="vocabulary")(inputs)
        if self.images is None:
            x = keras.layers.Embedding(self._vocabulary_size(), m.embedding_dim,
                                       mask_zero=True, name="embedding")(x)
        language_model = task == "language_model"
        x = recurrent_stack(x, m.cell, m.units, m.layers, m.bidirectional, m.dropout,
                            return_sequences=language_model)
        classes = self._vocabulary_size() if language_model else len(self.class_names())
        outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32",
                                     name="probabilities")(x)
        return keras.Model(inputs, outputs, name=f"{m.cell}_{task}")

    def _vocabulary_size(self):
        if self.config.task == "language_model":
            return self.char_lookup.vocabulary_size()
        return self.vectorizer.vocabulary_size()

    def _forecaster(self):
        m, window = self.config.model, self.config.data.sequence_length
        train = self._series_split("train")
        mean, std = float(np.mean(train)), float(np.std(train) or 1.0)
        inputs = keras.Input((window,), dtype="float32", name="window")
        x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="standardize")(inputs)
        x = keras.layers.Reshape((window, 1), name="steps")(x)
        x = recurrent_stack(x, m.cell, m.units, m.layers, m.bidirectional, m.dropout)
        x = keras.layers.Dense(1, dtype="float32", name="standardized_forecast")(x)
        outputs = keras.layers.Rescaling(std, offset=mean, name="forecast")(x)
        return keras.Model(inputs, outputs, name=f"{m.cell}_forecaster")

    def compile_args(self):
        if self.config.task == "forecasting":
            return {"optimizer": "adam", "loss": keras.losses.Huber(),
                    "metrics": [keras.metrics.MeanAbsoluteError(name="mae")]}
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if self.config.task == "language_model":
            metrics.append(Perplexity())
        return {"optimizer": "adam", "loss": keras.losses.SparseCategoricalCrossentropy(),
                "metrics": metrics}

    def class_names(self):
        if self.config.task != "classification":
            return None
        if self.images is not None:
            return self.images.info().class_names
        if self.own_texts:
            return self.labelled_texts.class_names
        return list(tfds_info(self.config.data.name, self.config.data.dir).features["label"].names)

    # -- serving ------------------------------------------------------------
    def serving_signature(self, model):
        task = self.config.task
        if task == "forecasting":
            spec = tf.TensorSpec((None, self.config.data.sequence_length), tf.float32, name="window")
            return ServingSignature([spec], lambda w: {"forecast": model(w, training=False)[:, 0]},
                                    scored="forecast")
        if task == "classification":
            if self.images is not None:
                shape = (None,) + tuple(model.inputs[0].shape[1:])
                spec = tf.TensorSpec(shape, tf.uint8, name="image")
            else:
                spec = tf.TensorSpec((None,), tf.string, name="text")
                if token_ids.takes_ids(model):
                    to_ids = token_ids.words_to_ids(model.get_layer("vocabulary").get_vocabulary(),
                                                    model.inputs[0].shape[1])
                    return classification_signature(
                        lambda text, training: model(tf.cast(to_ids(text), tf.int32), training=training),
                        spec, self.class_names(), token_ids.lookup_tables(to_ids),
                        token_ids.ids_to_texts(model, " "))
            return classification_signature(model, spec, self.class_names())
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

    # -- reports and generation ---------------------------------------------
    def report(self, model, test_data, run_dir):
        if test_data is not None and self.config.task == "forecasting":
            d = self.config.data
            test = self._series_split("test")
            naive = float(np.mean(np.abs(test[d.sequence_length:] - test[d.sequence_length - 1:-1])))
            mae = model.evaluate(test_data, return_dict=True, verbose=0)["mae"]
            return {"test_mae": float(mae), "naive_last_value_mae": naive,
                    "mae_vs_naive": float(mae) / naive if naive else float("nan")}
        return {}

    def generate(self, model, prompt="", length=200, temperature=1.0, seed=None, progress=None):
        """`prompt` followed by `length` sampled characters (language_model runs); `progress`,
        if given, is called with (characters done, length) after each one."""
        if self.config.task != "language_model":
            raise ConfigError(f"generate needs a language_model run; this run's task is "
                              f"{self.config.task}")
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
