"""Build the optimizer and its learning-rate schedule from `config.optimizer`."""

import typing

import keras

from training.config import OptimizerName
from training.errors import ConfigError

OPTIMIZERS = typing.get_args(OptimizerName)[1:]  # after "auto"


def learning_rate(opt, total_steps, steps_per_epoch):
    """Constant, or cosine decay to 0 over the run with optional linear warm-up."""
    if opt.schedule == "constant":
        return opt.learning_rate
    if not total_steps:
        raise ConfigError("optimizer.schedule=cosine needs a known number of steps per epoch; "
                          "the data set's size is unknown, so use --set optimizer.schedule=constant")
    warmup = int(opt.warmup_epochs * (steps_per_epoch or 0))
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - warmup), warmup_target=opt.learning_rate,
            warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(opt.learning_rate, total_steps)


def build_optimizer(opt, default_name, total_steps=None, steps_per_epoch=None):
    """A Keras optimizer; `opt.name=auto` takes the app's default."""
    name = default_name if opt.name == "auto" else opt.name
    if name not in OPTIMIZERS:
        raise ConfigError(f"Unknown optimizer.name {name!r}; choose one of: auto, {', '.join(OPTIMIZERS)}")
    lr = learning_rate(opt, total_steps, steps_per_epoch)
    common = {"learning_rate": lr, "clipnorm": opt.clipnorm}
    if name == "adam":
        return keras.optimizers.Adam(**common)
    if name == "adamw":
        return keras.optimizers.AdamW(weight_decay=opt.weight_decay or 1e-4, **common)
    if name == "sgd":
        return keras.optimizers.SGD(momentum=opt.momentum, nesterov=True,
                                    weight_decay=opt.weight_decay or None, **common)
    return keras.optimizers.RMSprop(momentum=opt.momentum, **common)
