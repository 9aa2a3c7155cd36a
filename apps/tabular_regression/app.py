"""Tabular regression from a CSV file: the worked example of adding a task by subclassing."""

import keras
import numpy as np
import tensorflow as tf

from apps.tabular_regression.config import TabularRegressionConfig
from training.app import App, ServingSignature
from training.datasets import csv_rows, numeric_column, split_range
from training.errors import DataNotFoundError


class TabularRegression(App):
    name = "tabular_regression"
    description = "Predict one numeric CSV column from the others (normalisation inside the model)."
    config_class = TabularRegressionConfig

    def __init__(self, config):
        super().__init__(config)
        d = config.data
        if not d.path:
            raise DataNotFoundError("No CSV given: pass --set data.path=FILE.csv")
        rows = csv_rows(d.path, {"target": d.target})  # checks the file and the target column
        names = list(rows[0][1]) if rows else []
        self.feature_names = [n for n in names if n != d.target]
        self.x = np.stack([numeric_column(d.path, n, rows) for n in self.feature_names], axis=1)
        self.y = numeric_column(d.path, d.target, rows)
        self.order = np.random.default_rng(config.seed).permutation(len(self.x))  # rows in random order

    def rows(self, split):
        d = self.config.data
        start, stop = split_range(split, len(self.order), d.validation_split, d.test_split, d.limit)
        return self.order[start:stop]

    def build_data(self, split):
        rows = self.rows(split)
        return tf.data.Dataset.from_tensor_slices((self.x[rows], self.y[rows])) if len(rows) else None

    def build_model(self):
        # float32 under mixed precision too: raw features (prices, counts) lose their digits
        # in bfloat16 before they are centred.
        normalize = keras.layers.Normalization(name="normalize", dtype="float32")
        normalize.adapt(self.x[self.rows("train")])  # mean/variance of the training features
        inputs = keras.Input((len(self.feature_names),), name="features")
        x = normalize(inputs)
        for _ in range(2):
            x = keras.layers.Dense(self.config.model.hidden_units, activation="relu")(x)
        return keras.Model(inputs, keras.layers.Dense(1, name="prediction", dtype="float32")(x))

    def compile_args(self):
        return {"optimizer": "adam", "loss": "mse",
                "metrics": [keras.metrics.MeanAbsoluteError(name="mae")]}

    def feature_columns(self):
        return self.feature_names

    def serving_signature(self, model):
        spec = tf.TensorSpec((None, len(self.feature_names)), tf.float32, name="features")
        return ServingSignature([spec], lambda x: {"prediction": model(x, training=False)[:, 0]},
                                scored="prediction")
