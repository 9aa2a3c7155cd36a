"""Custom Keras 3 layers with no task knowledge.

Every layer here is registered for `.keras` serialization under the package
name ``keras_app_templates`` and meets Keras' own layer contract
(``keras.src.testing.TestCase.run_layer_test``).
"""

from layers.batch_normalization import BatchNormalization
from layers.codepoints import UnicodeCodepoints
from layers.depthwise_separable import DepthwiseSeparableBlock
from layers.rbm import RBM
from layers.residual import ResidualBlock

__all__ = ["BatchNormalization", "DepthwiseSeparableBlock", "RBM", "ResidualBlock", "UnicodeCodepoints"]
