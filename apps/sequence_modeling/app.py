"""Sequence modeling with recurrent nets (SimpleRNN, GRU, LSTM): one app, three tasks chosen
by `task`, each in its own module (classification.py, language_model.py, forecasting.py)
over one recurrent stack (model.py); the keys are in config.py."""

from apps.sequence_modeling.classification import Classification
from apps.sequence_modeling.config import SequenceModelingConfig
from apps.sequence_modeling.forecasting import Forecasting
from apps.sequence_modeling.language_model import LanguageModel
from training.app import App
from training.errors import ConfigError

TASKS = {"classification": Classification, "language_model": LanguageModel,
         "forecasting": Forecasting}


class SequenceModeling(App):
    name = "sequence_modeling"
    description = "RNN/GRU/LSTM: sequence classification, character language model, forecasting."
    config_class = SequenceModelingConfig

    def __init__(self, config):
        super().__init__(config)
        self.task = TASKS[config.task](config)

    def build_data(self, split):
        return self.task.build_data(split)

    def build_model(self):
        return self.task.build_model()

    def compile_args(self):
        return self.task.compile_args()

    def class_names(self):
        return self.task.class_names()

    def is_multi_label(self):
        return self.task.is_multi_label()

    def labels(self, split):
        return self.task.labels(split)

    @property
    def thresholds(self):
        return self.task.thresholds

    @thresholds.setter
    def thresholds(self, value):  # the pipeline's choice, which the task's export serves
        self.task.thresholds = value

    def example_names(self, split):
        return self.task.example_names(split)

    def serving_signature(self, model):
        return self.task.serving_signature(model)

    def report(self, model, test_data, run_dir):
        return self.task.report(model, test_data, run_dir)

    def generate(self, model, prompt="", length=200, temperature=1.0, seed=None, progress=None):
        """`prompt` followed by `length` sampled characters (language_model runs); `progress`,
        if given, is called with (characters done, length) after each one."""
        if not isinstance(self.task, LanguageModel):
            raise ConfigError(f"generate needs a language_model run; this run's task is "
                              f"{self.config.task}")
        return self.task.generate(model, prompt, length, temperature, seed, progress)
