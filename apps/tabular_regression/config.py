"""The tabular example's config keys: a module without TensorFlow, so --help answers at once."""

from dataclasses import dataclass, field

from training.config import Config, DataConfig, ModelConfig, OptimizerConfig, option


@dataclass
class TabularDataConfig(DataConfig):
    path: str = option("", "CSV with a header row and numeric columns")
    target: str = option("", "the column to predict; all others are features")
    test_split: float = option(0.2, "fraction of the rows held out for the test", ge=0, lt=1)


@dataclass
class TabularModelConfig(ModelConfig):
    hidden_units: int = option(64, "width of the two hidden layers", ge=1)


@dataclass
class TabularRegressionConfig(Config):
    app: str = "tabular_regression"
    epochs: int = 30
    batch_size: int = 32
    data: TabularDataConfig = field(default_factory=TabularDataConfig)
    model: TabularModelConfig = field(default_factory=TabularModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(learning_rate=0.01))
