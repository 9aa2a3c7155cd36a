"""The runtime of one run, set up in order: the backend Keras loaded with is the configured
one, every seed, the tf.distribute strategy, the dtype policy."""

import contextlib

import keras

from training.runtime import backend, precision
from training.runtime.strategy import is_tpu, make_strategy


@contextlib.contextmanager
def start(config):
    """Set up the run's runtime; yields (strategy, precision.Choice). The dtype policy is the
    run's until it ends, then Keras' global policy is what it was before."""
    backend.select(config)  # Keras is loaded: this checks it is the configured backend
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy, config.runtime.logical_cpus)
    choice = precision.resolve(config, tpu=is_tpu(strategy))
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(choice.policy)
    try:
        yield strategy, choice
    finally:
        keras.mixed_precision.set_global_policy(previous)
