"""task=forecasting: next-step prediction from windows of one CSV column (data.path,
data.column); reports the test MAE next to the naive last-value baseline's."""

import keras
import numpy as np
import tensorflow as tf

from apps.sequence_modeling import data as sequence_data
from apps.sequence_modeling.model import recurrent_stack
from apps.sequence_modeling.task import Task
from training.app import ServingSignature
from training.datasets import split_range
from training.errors import ConfigError


class Forecasting(Task):
    def __init__(self, config):
        super().__init__(config)
        if not (config.data.path and config.data.column):
            raise ConfigError("Forecasting needs data.path=FILE.csv and data.column=NAME")
        self._series = None

    def series_split(self, split):
        """The series' `split`, in time order: train, validation, test (the most recent)."""
        d = self.config.data
        if self._series is None:
            self._series = sequence_data.csv_column(d.path, d.column)
        start, stop = split_range(split, len(self._series), d.validation_split, d.test_split)
        return self._series[start:stop]

    def build_data(self, split):
        d = self.config.data
        values = self.series_split(split)
        fraction_key = {"validation": "data.validation_split", "test": "data.test_split"}.get(split)
        if self.too_short(split, len(values), "values", fraction_key):
            return None
        ds = sequence_data.next_step_windows(values, d.sequence_length)
        return ds.take(d.limit) if d.limit is not None else ds

    def build_model(self):
        m, window = self.config.model, self.config.data.sequence_length
        train = self.series_split("train")
        mean, std = float(np.mean(train)), float(np.std(train) or 1.0)
        inputs = keras.Input((window,), dtype="float32", name="window")
        # Standardised and restored in float32 under mixed precision too: in bfloat16 a series
        # around 5,000 has steps of 32.
        x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="standardize",
                                   dtype="float32")(inputs)
        x = keras.layers.Reshape((window, 1), name="steps")(x)
        x = recurrent_stack(x, m.cell, m.units, m.layers, m.bidirectional, m.dropout)
        x = keras.layers.Dense(1, dtype="float32", name="standardized_forecast")(x)
        outputs = keras.layers.Rescaling(std, offset=mean, name="forecast", dtype="float32")(x)
        return keras.Model(inputs, outputs, name=f"{m.cell}_forecaster")

    def compile_args(self):
        return {"optimizer": "adam", "loss": keras.losses.Huber(),
                "metrics": [keras.metrics.MeanAbsoluteError(name="mae")]}

    def serving_signature(self, model):
        spec = tf.TensorSpec((None, self.config.data.sequence_length), tf.float32, name="window")
        return ServingSignature([spec], lambda w: {"forecast": model(w, training=False)[:, 0]},
                                scored="forecast")

    def report(self, model, test_data, run_dir):
        if test_data is None:
            return {}
        d = self.config.data
        test = self.series_split("test")
        naive = float(np.mean(np.abs(test[d.sequence_length:] - test[d.sequence_length - 1:-1])))
        mae = model.evaluate(test_data, return_dict=True, verbose=0)["mae"]
        return {"test_mae": float(mae), "naive_last_value_mae": naive,
                "mae_vs_naive": float(mae) / naive if naive else float("nan")}
