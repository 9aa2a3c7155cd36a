"""The DBN app's config keys; imports no TensorFlow (training/registry.py: config_class)."""

from dataclasses import dataclass, field
from typing import List, Literal, Optional

from apps.image_classification.config import ImageDataConfig
from training.config import Config, IntOrAuto, ModelConfig, OptimizerConfig, option

# Persistent CD's chains lag weights that move faster, and training diverges (rbm_training.fit_rbm).
PCD_MAX_MOMENTUM = 0.5


@dataclass
class DBNModelConfig(ModelConfig):
    hidden: List[int] = option([500, 500, 2000], "hidden units of each RBM, bottom to top", ge=1,
                               check=lambda units: None if units else "must name at least one RBM")
    visible: Literal["bernoulli", "gaussian"] = option(
        "bernoulli", "first RBM's visible units: pixels in [0, 1], or standardised")
    pretrained: bool = option(True, "false: the same net from a random initialisation")
    dropout: float = option(0.0, "after each hidden layer, while fine-tuning", ge=0, lt=1)


@dataclass
class PretrainConfig:
    """How each RBM of the stack is trained (see rbm_training.fit_rbm)."""

    epochs: int = option(10, "epochs per RBM", ge=1)
    batch_size: int = option(64, "per replica", ge=1)
    learning_rate: float = option(0.05, "SGD step (bernoulli visible units)", gt=0)
    gaussian_learning_rate: float = option(0.001, "SGD step of a first RBM with gaussian visible units",
                                           gt=0)
    cd_k: int = option(1, "Gibbs steps of contrastive divergence", ge=1)
    persistent: bool = option(False, "persistent CD; it needs momentum <= 0.5 (see fit_rbm)")
    weight_decay: float = option(2e-4, "L2 cost on the weights only", ge=0)
    momentum: float = option(0.5, "SGD momentum of the first epochs", ge=0, lt=1)
    final_momentum: float = option(0.9, "SGD momentum from momentum_switch_epoch on", ge=0, lt=1)
    momentum_switch_epoch: int = option(5, "epoch at which the momentum switches", ge=0)
    sparsity_target: Optional[float] = option(None, "target mean activation of each hidden unit",
                                              gt=0, lt=1)
    sparsity_cost: float = option(0.0, "weight of the sparsity term", ge=0)

    def check(self):
        """PCD's chains lag weights that move with high momentum, and training diverges."""
        if self.persistent and max(self.momentum, self.final_momentum) > PCD_MAX_MOMENTUM:
            return (f"persistent CD diverges with momentum above {PCD_MAX_MOMENTUM} (final_momentum is "
                    f"{self.final_momentum:g}): add --set pretrain.momentum=0.5 --set "
                    "pretrain.final_momentum=0.5, or 0 for both (plain SGD)")
        return None


@dataclass
class DBNDataConfig(ImageDataConfig):
    labeled: Optional[int] = option(None, "fine-tune on this many labelled train examples (semi-supervised)",
                                    ge=1)

    def check(self):
        if self.labels == "multi":
            return "data.labels=multi is the image_classification app's; the DBN learns one class"
        return super().check()


@dataclass
class DBNConfig(Config):
    app: str = "unsupervised_pretraining"
    epochs: IntOrAuto = option(20, "fine-tuning epochs (pretrain.epochs is per RBM); auto: from the "
                            "data (training/run_length.py)", ge=1)
    data: DBNDataConfig = field(default_factory=DBNDataConfig)
    model: DBNModelConfig = field(default_factory=DBNModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(learning_rate=1e-3))
    compare_random_init: bool = option(False, "also train the net from random weights on the same labels")
