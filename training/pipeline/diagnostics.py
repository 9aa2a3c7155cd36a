"""Where a classifier fails, from one pass of its model over the test split: the confusion
matrix, precision/recall/F1 per class with their averages and balanced accuracy, calibration
(expected calibration error and the reliability diagram's bins), and the test examples it
misclassified with the highest confidence (mistakes.csv; mistakes.png when they are images).

The figures are computed here from the confusion counts rather than with scikit-learn's
`classification_report`, which needs every example's label in memory at once; the pass keeps
three numbers per example and the images of the worst mistakes only.
"""

import csv
import heapq
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

SHOWN_MISTAKES = 25  # images in mistakes.png
EXPLAINED = 4  # correct and as many wrong test images in gradcam.png
CSV_MISTAKES = 10_000  # rows of mistakes.csv at most, the most confident first
CALIBRATION_BINS = 15  # equal-width confidence bins, as Guo et al. (2017) measure ECE


@dataclass
class Predictions:
    """Per test example: true class, predicted class and the predicted class's probability;
    and, for images, those of the SHOWN_MISTAKES most confident mistakes and of the first
    EXPLAINED correct predictions ({index: HxWxC array})."""
    true: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    worst_images: dict = field(default_factory=dict)
    correct_images: dict = field(default_factory=dict)

    def confusion(self, num_classes):
        matrix = np.zeros((num_classes, num_classes), np.int64)
        np.add.at(matrix, (self.true, self.predicted), 1)
        return matrix

    def mistakes(self):
        """Indices of the misclassified examples, the most confident first."""
        wrong = np.flatnonzero(self.true != self.predicted)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")]


def _is_image_batch(features):
    return not isinstance(features, dict) and len(features.shape) == 4 and features.shape[-1] in (1, 3)


def predict(model, dataset):
    """Predictions of `model` over batched (features, labels) `dataset`. Under TensorFlow the
    model runs as one traced function: called batch by batch it ran op by op, which took longer
    than training on small data. (Not Keras' predict: under tf.distribute it splits or shards
    the batches.)"""
    forward = lambda x: model(x, training=False)  # noqa: E731
    if keras.backend.backend() == "tensorflow":
        forward = tf.function(forward, reduce_retracing=True, autograph=False)
    true, predicted, confidence, worst = [], [], [], []  # worst: a min-heap of (confidence, index, image)
    correct = {}
    seen = 0
    for features, labels in dataset:
        probabilities = keras.ops.convert_to_numpy(forward(features))
        batch_true = np.asarray(labels).reshape(-1).astype(np.int64)
        batch_predicted = np.argmax(probabilities, axis=-1).astype(np.int64)
        batch_confidence = probabilities[np.arange(len(batch_predicted)), batch_predicted].astype(np.float32)
        if _is_image_batch(features):
            for i in np.flatnonzero(batch_true != batch_predicted):
                item = (float(batch_confidence[i]), seen + int(i))
                if len(worst) < SHOWN_MISTAKES or item > worst[0][:2]:
                    entry = (*item, np.asarray(features[i]))
                    (heapq.heappush if len(worst) < SHOWN_MISTAKES else heapq.heapreplace)(worst, entry)
            for i in np.flatnonzero(batch_true == batch_predicted)[:EXPLAINED - len(correct)]:
                correct[seen + int(i)] = np.asarray(features[i])
        true.append(batch_true)
        predicted.append(batch_predicted)
        confidence.append(batch_confidence)
        seen += len(batch_true)
    join = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)  # noqa: E731
    return Predictions(join(true, np.int64), join(predicted, np.int64), join(confidence, np.float32),
                       {index: image for _, index, image in worst}, correct)


def per_class(matrix, class_names):
    """metrics.json's per-class figures from confusion counts (true class on rows):
    {per_class: {name: {precision, recall, f1, support}}, macro_avg, weighted_avg,
    balanced_accuracy}. A class never predicted has precision 0, one absent from the test
    split recall 0 (scikit-learn's zero_division=0); averages and balanced accuracy count the
    classes present in the test split."""
    matrix = np.asarray(matrix, np.float64)
    hits, support, chosen = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(hits, chosen, out=np.zeros_like(hits), where=chosen > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    present = support > 0
    weights = support / max(support.sum(), 1)

    def average(values, w):
        return {name: float(np.sum(v[present] * w[present])) for name, v in values.items()}

    figures = {"precision": precision, "recall": recall, "f1": f1}
    return {
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(class_names)},
        "macro_avg": average(figures, np.full(len(hits), 1 / max(present.sum(), 1))),
        "weighted_avg": average(figures, weights),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
    }


def weakest_first(per_class_figures):
    """metrics.json's per_class entries as (name, figures), lowest F1 first (ties by name): the
    order of the printed table and of the report's."""
    return sorted(per_class_figures.items(), key=lambda item: (item[1]["f1"], item[0]))


def calibration(predictions, bins=CALIBRATION_BINS):
    """Expected calibration error over equal-width confidence bins, and the bins themselves
    (for the reliability diagram): {ece, bins: [{low, high, examples, confidence, accuracy}]}."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(predictions.confidence, edges[1:-1], right=True), 0, bins - 1)
    correct = predictions.true == predictions.predicted
    table, ece, n = [], 0.0, max(len(correct), 1)
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        confidence = float(predictions.confidence[inside].mean()) if count else None
        accuracy = float(correct[inside].mean()) if count else None
        if count:
            ece += count / n * abs(accuracy - confidence)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "examples": count,
                      "confidence": confidence, "accuracy": accuracy})
    return {"ece": float(ece), "bins": table}


def write_mistakes_csv(predictions, class_names, path, names=None):
    """mistakes.csv: the misclassified test examples, the most confident first (at most
    CSV_MISTAKES): index in the test split, the example as the app names it (App.example_names:
    a file path, a text's start) when it does, true class, predicted class, the predicted
    class's probability. Returns the number of mistakes."""
    order = predictions.mistakes()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["index", *(["example"] if names is not None else []), "true", "predicted",
                         "probability"])
        for i in order[:CSV_MISTAKES]:
            named = [names[i]] if names is not None else []
            writer.writerow([int(i), *named, class_names[predictions.true[i]],
                             class_names[predictions.predicted[i]], f"{predictions.confidence[i]:.4f}"])
    return len(order)
