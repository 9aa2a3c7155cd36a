"""The runtime of one run, set up in order: the backend Keras loaded with is the configured
one, every seed, the tf.distribute strategy, the dtype policy."""

import keras

from training.runtime import backend, precision
from training.runtime.strategy import make_strategy


def start(config):
    """Set up the run's runtime; returns its strategy."""
    backend.select(config)  # Keras is loaded: this checks it is the configured backend
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy, config.runtime.logical_cpus)
    precision.set_policy(config)
    return strategy
