"""Custom Keras 3 layers with no task knowledge, and the metrics a trained model.keras names.

Every layer and metric here is registered for `.keras` serialization under the package
name ``keras_app_templates`` and meets Keras' own layer contract
(``keras.src.testing.TestCase.run_layer_test``).
"""

from layers.batch_normalization import BatchNormalization
from layers.class_metrics import BalancedAccuracy, MacroF1
from layers.codepoints import UnicodeCodepoints
from layers.depthwise_separable import DepthwiseSeparableBlock
from layers.rbm import RBM
from layers.residual import ResidualBlock

__all__ = ["BalancedAccuracy", "BatchNormalization", "DepthwiseSeparableBlock", "MacroF1", "RBM",
           "ResidualBlock", "UnicodeCodepoints"]
