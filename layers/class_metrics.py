"""Balanced accuracy and macro F1 as Keras metrics, which every single-label classifier of the
pipeline gets (training/pipeline/compile.py): in history.csv (train and val_), in the test
metrics, and so open to callbacks.monitor and `tune --objective`. Registered like the layers,
since a model.keras names its compiled metrics. Accuracy hides a class that is never predicted
when the class is rare; these two weigh every class alike.

Written by hand: Keras' F1Score takes one-hot labels (the apps' labels are class ids) and has
no balanced accuracy. Both keep the confusion matrix of the epoch, in keras.ops, so they run
under every backend and strategy (Keras sums the variables across replicas).
"""

import keras
from keras import ops

from layers.serialization import SERIALIZATION_PACKAGE


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Counts (true class, argmax class) pairs of the batches seen; `result` is the subclass'."""

    def __init__(self, num_classes, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.matrix = self.add_variable((num_classes, num_classes), initializer="zeros",
                                        dtype="float32", name="confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), self.num_classes)
        predicted = ops.one_hot(ops.argmax(ops.reshape(y_pred, (-1, self.num_classes)), axis=-1),
                                self.num_classes)
        if sample_weight is not None:
            truth = truth * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.matrix.assign_add(ops.matmul(ops.transpose(truth), predicted))

    def reset_state(self):
        self.matrix.assign(ops.zeros(self.matrix.shape, "float32"))

    def recalls(self):
        """Recall of each class, and which classes had examples."""
        support = ops.sum(self.matrix, axis=1)
        return ops.diagonal(self.matrix) / ops.maximum(support, 1.0), support > 0

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class BalancedAccuracy(ConfusionMatrixMetric):
    """The mean recall of the classes that had examples (scikit-learn's balanced_accuracy_score)."""

    def __init__(self, num_classes, name="balanced_accuracy", dtype=None):
        super().__init__(num_classes, name=name, dtype=dtype)

    def result(self):
        recall, present = self.recalls()
        present = ops.cast(present, "float32")
        return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class MacroF1(ConfusionMatrixMetric):
    """The mean F1 of the classes that had examples or predictions (scikit-learn's
    f1_score(average="macro") over the labels present)."""

    def __init__(self, num_classes, name="macro_f1", dtype=None):
        super().__init__(num_classes, name=name, dtype=dtype)

    def result(self):
        true_positives = ops.diagonal(self.matrix)
        support, predicted = ops.sum(self.matrix, axis=1), ops.sum(self.matrix, axis=0)
        f1 = 2 * true_positives / ops.maximum(support + predicted, 1.0)
        present = ops.cast((support + predicted) > 0, "float32")
        return ops.sum(f1 * present) / ops.maximum(ops.sum(present), 1.0)
