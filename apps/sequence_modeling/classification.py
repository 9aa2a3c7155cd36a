"""task=classification: images read row by row (Fashion-MNIST offline: 28 steps of 28 pixels),
your own labelled texts (class folders of .txt files in data.dir, or data.path=FILE.csv; see
texts.py) or a TFDS text set by name (imdb_reviews). TextVectorization is adapted on the
training split and kept in the model, so the export takes raw strings (under JAX or PyTorch the
model takes word ids and the export turns strings into them: token_ids.py)."""

import functools

import keras
import tensorflow as tf

from apps.image_classification.data import IDX_DIRS, ImageSource, is_folder_of_classes
from apps.sequence_modeling import texts, token_ids
from apps.sequence_modeling.task import (
    Task,
    recurrent_softmax,
    sparse_classification_args,
    token_ids_input,
)
from training.app import classification_signature, multi_label_args, multi_label_signature
from training.datasets import tfds_info, tfds_labelled
from training.errors import DataError

TEXT_SHOWN = 80  # characters of a text in mistakes.csv


class Classification(Task):
    def __init__(self, config):
        super().__init__(config)
        d = config.data
        self.images = None
        self.own_texts = bool(d.path or (d.dir and is_folder_of_classes(d)))
        self._texts = None
        if not self.own_texts and not d.name:
            d.name = "fashion_mnist"  # config.yaml records the data set the run read
        if not self.own_texts and self._is_image_set(d.name):
            self.images = ImageSource(d.name, d.dir, d.validation_split, d.limit, d.download)
        self.vectorizer = None

    @staticmethod
    def _is_image_set(name):
        if name in IDX_DIRS:
            return True
        try:
            return "image" in tfds_info(name).features
        except Exception:  # unknown or unprepared: leave it to the text path's clear error
            return False

    @property
    def labelled_texts(self):
        """Your own labelled texts (read once): a CSV file or class folders of .txt files."""
        d = self.config.data
        if self._texts is None:
            separator = d.label_separator if d.labels == "multi" else None
            self._texts = (texts.csv_texts(d.path, d.text_column, d.label_column, d.validation_split,
                                           d.test_split, separator) if d.path else
                           texts.text_folders(d.dir, d.validation_split, d.test_split, d.classes))
        return self._texts

    def labels(self, split):
        """Your own texts' and the IDX images' class ids (TFDS texts: None, read from the data)."""
        if self.images is not None:
            return self.images.labels(split)
        if not self.own_texts:
            return None
        return self.labelled_texts.labels(split, self.config.data.limit)

    def example_names(self, split):
        """Your own texts' first TEXT_SHOWN characters, on one line (TFDS texts: their index)."""
        if not self.own_texts:
            return None
        shown = self.labelled_texts.splits[split][0][:self.config.data.limit]
        return [" ".join(text.split())[:TEXT_SHOWN] for text in shown]

    def build_data(self, split):
        d = self.config.data
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

    def build_model(self):
        m = self.config.model
        vocabulary = None
        if self.images is not None:
            shape = self.images.info().shape
            inputs = keras.Input(shape, dtype="uint8", name="image")
            x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
            x = keras.layers.Reshape((shape[0], shape[1] * shape[2]), name="rows")(x)  # steps = rows
        else:
            if self.strings_in_model:
                inputs = keras.Input((), dtype="string", name="text")
                x = self.vectorizer(inputs)
            else:
                inputs, x = token_ids_input(self.config.data.text_length, self.vectorizer)
            vocabulary = self.vectorizer.vocabulary_size()
        return recurrent_softmax(inputs, x, m, len(self.class_names()), f"{m.cell}_classification",
                                 vocabulary, multi_label=self.is_multi_label())

    def is_multi_label(self):
        return self.config.data.labels == "multi"

    def compile_args(self):
        if self.is_multi_label():
            return multi_label_args(len(self.class_names()))
        return sparse_classification_args()

    def class_names(self):
        if self.images is not None:
            return self.images.info().class_names
        if self.own_texts:
            return self.labelled_texts.class_names
        return list(tfds_info(self.config.data.name, self.config.data.dir).features["label"].names)

    def serving_signature(self, model):
        if self.images is not None:
            shape = (None,) + tuple(model.inputs[0].shape[1:])
            return classification_signature(model, tf.TensorSpec(shape, tf.uint8, name="image"),
                                            self.class_names())
        spec = tf.TensorSpec((None,), tf.string, name="text")
        signature = (functools.partial(multi_label_signature, thresholds=self.thresholds)
                     if self.is_multi_label() else classification_signature)
        if token_ids.takes_ids(model):
            to_ids = token_ids.words_to_ids(model.get_layer("vocabulary").get_vocabulary(),
                                            model.inputs[0].shape[1])
            return signature(
                lambda text, training: model(tf.cast(to_ids(text), tf.int32), training=training),
                spec, self.class_names(), resources=token_ids.lookup_tables(to_ids),
                examples=token_ids.ids_to_texts(model, " "))
        return signature(model, spec, self.class_names())
