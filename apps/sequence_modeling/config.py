"""The sequence app's config keys, every task's; imports no TensorFlow (training/registry.py:
config_class)."""

from dataclasses import dataclass, field
from typing import List, Literal, Optional

from training.config import (
    Config,
    DataConfig,
    IntOrAuto,
    LabelKind,
    ModelConfig,
    OptimizerConfig,
    label_separator,
    option,
)

LENGTH_PERCENTILE = 95  # data.text_length=0: the training texts' word count at this percentile,
MAX_TEXT_LENGTH = 1000  # but at most this many words: one 262 KB page made a step take 117 s

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
    labels: LabelKind = option(
        "single", "classification CSV: multi: a text may have several labels (or none of them), "
        "separated by data.label_separator in the label column: a sigmoid per label, each with "
        "a threshold chosen on validation")
    label_separator: str = option(";", "data.labels=multi: what separates a row's labels",
                                  check=label_separator)
    classes: Optional[List[str]] = option(None, "classification from class folders: use only these")
    sequence_length: int = option(100, "characters per language-model window; steps per forecast window",
                                 ge=1)
    max_tokens: int = option(20000, "vocabulary size for text classification", ge=3)
    text_length: int = option(0, "words kept per text (text classification), longer texts are cut; "
                              f"0: from the data, the {LENGTH_PERCENTILE}th percentile of the "
                              f"training texts' word counts, at most {MAX_TEXT_LENGTH}", ge=0)
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

    def check(self):
        if self.data.labels == "multi" and (self.task != "classification" or not self.data.path):
            return ("data.labels=multi is for task=classification on a CSV file (data.path=FILE.csv "
                    "with a label column of labels separated by data.label_separator)")
        return super().check()
