"""The majority-class baseline beside every classification result, and the warnings a run ends
with when its model does not clearly beat it.

A model that always answers the most frequent class scores that class's share of the split;
a figure at or below it means the model learned nothing that generalises, whatever its
training accuracy says.
"""

import numpy as np

CLEARLY_ABOVE = 0.05  # accuracy points over the majority-class rate that count as learning


def label_counts(dataset, num_classes):
    """Examples per class of a batched (features, int label) dataset."""
    counts = np.zeros(num_classes, np.int64)
    for labels in dataset.map(lambda features, labels: labels):
        counts += np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)[:num_classes]
    return counts


def majority(counts, class_names):
    """{"class": the most frequent class, "accuracy": its share} of per-class `counts`."""
    counts = np.asarray(counts)
    top = int(np.argmax(counts))
    return {"class": class_names[top], "accuracy": float(counts[top] / max(counts.sum(), 1))}


def balanced(baseline, num_classes):
    """The majority-class `baseline` scored by balanced accuracy: one class's recall is 1, the
    others' 0, so 1 / classes."""
    return {**baseline, "accuracy": 1.0 / num_classes}


def test_warning(accuracy, baseline, measure="accuracy"):
    """A warning line when test `accuracy` (or another `measure`) is not clearly above the
    majority-class baseline's."""
    if accuracy >= baseline["accuracy"] + CLEARLY_ABOVE:
        return None
    return (f"warning: test {measure} {accuracy:.4f} is not clearly above the majority-class rate "
            f"{baseline['accuracy']:.4f} (always answering {baseline['class']!r}): this model "
            "has not learned the task; see the run's training_curves.png and confusion_matrix.png")


def validation_warning(val_accuracies, baseline, steps, learning_rate, measure="accuracy"):
    """A warning line when no epoch's validation accuracy (or `measure`) beat the majority-class
    rate."""
    if not val_accuracies or max(val_accuracies) > baseline["accuracy"] + 1e-6:  # float32 logs
        return None
    return (f"warning: validation {measure} never beat the majority-class rate (best "
            f"{max(val_accuracies):.4f}, always answering {baseline['class']!r} scores "
            f"{baseline['accuracy']:.4f}); likely causes: too few optimizer steps ({steps} in all: "
            f"raise epochs), a learning rate far off (optimizer.learning_rate={learning_rate:g}), "
            "or labels that do not follow the inputs (check the class folders)")
