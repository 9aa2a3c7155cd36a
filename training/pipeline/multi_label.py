"""Multi-label runs (App.is_multi_label): each label's decision threshold, chosen on the
validation split to maximise that label's F1, and the test figures at those thresholds and at
a fixed 0.5: micro and macro F1, each label's precision, recall, F1 and average precision, and
their mean (mAP).

A sigmoid's 0.5 suits a label only when it is as common as not; a rare label's probabilities
seldom reach it, so a threshold per label, chosen where the model was not trained, recovers
recall that 0.5 gives away. The thresholds go into metrics.json ("thresholds") and from there
into the SavedModel's `above_threshold` and `labels` outputs, predict and LiteRT's model.json.
"""

import numpy as np

CANDIDATES = 200  # thresholds tried per label: quantiles of its validation probabilities
DEFAULT = 0.5


def predict(model, ds):
    """(labels, probabilities), each (examples, labels), of a batched dataset."""
    truth, scores = [], []
    for batch in ds:
        features, labels = batch[0], batch[1]
        truth.append(np.asarray(labels))
        scores.append(np.asarray(model(features, training=False)))
    return np.concatenate(truth), np.concatenate(scores)


def _f1(truth, decided):
    true_positives = np.sum(truth & decided, axis=0)
    return 2 * true_positives / np.maximum(truth.sum(axis=0) + decided.sum(axis=0), 1)


def choose(truth, scores):
    """Each label's threshold with the highest F1 on (truth, scores); 0.5 for a label with no
    positive example (nothing to choose by), and on ties the one nearest 0.5."""
    truth = truth > 0.5
    chosen = []
    for k in range(truth.shape[1]):
        if not truth[:, k].any():
            chosen.append(DEFAULT)
            continue
        candidates = np.unique(np.concatenate([
            np.quantile(scores[:, k], np.linspace(0, 1, CANDIDATES)), [DEFAULT]]))
        f1 = np.array([_f1(truth[:, k:k + 1], scores[:, k:k + 1] >= t)[0] for t in candidates])
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        chosen.append(float(candidates[best[np.argmin(np.abs(candidates[best] - DEFAULT))]]))
    return chosen


def average_precision(truth, scores):
    """Each label's average precision: the mean of the precision at each positive example's
    rank, the examples ranked by probability (scikit-learn's average_precision_score without
    ties); NaN for a label without positives."""
    result = []
    for k in range(truth.shape[1]):
        order = np.argsort(-scores[:, k], kind="stable")
        hits = truth[order, k] > 0.5
        if not hits.any():
            result.append(float("nan"))
            continue
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        result.append(float(precision[hits].mean()))
    return result


def scores_at(truth, scores, thresholds, names):
    """micro_f1, macro_f1 and per_label {name: precision, recall, f1, support, threshold} of
    (truth, scores) decided at `thresholds`."""
    truth = truth > 0.5
    decided = scores >= np.asarray(thresholds)[None, :]
    true_positives = np.sum(truth & decided, axis=0)
    support, predicted = truth.sum(axis=0), decided.sum(axis=0)
    precision = true_positives / np.maximum(predicted, 1)
    recall = true_positives / np.maximum(support, 1)
    f1 = _f1(truth, decided)
    micro = 2 * true_positives.sum() / max(support.sum() + predicted.sum(), 1)
    present = (support + predicted) > 0
    return {"micro_f1": float(micro),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "per_label": {name: {"precision": float(precision[k]), "recall": float(recall[k]),
                                 "f1": float(f1[k]), "support": int(support[k]),
                                 "threshold": float(thresholds[k])}
                          for k, name in enumerate(names)}}


def thresholds_from_validation(app, model, val_ds):
    """The app's thresholds chosen on `val_ds` (0.5 each without one); one line says which."""
    names = app.class_names()
    if val_ds is None:
        print("Multi-label thresholds: 0.5 for every label (no validation split to choose them "
              "on)", flush=True)
        return [DEFAULT] * len(names)
    chosen = choose(*predict(model, val_ds))
    shown = ", ".join(f"{n} {t:.2f}" for n, t in list(zip(names, chosen))[:10])
    print(f"Multi-label thresholds, chosen on the validation split for each label's best F1: "
          f"{shown}{', ...' if len(names) > 10 else ''}", flush=True)
    return chosen


def test_figures(app, model, test_ds):
    """metrics.json's multi-label entries of the test split: the figures at the run's
    thresholds ("per_label", "micro_f1", "macro_f1", "map"), and micro/macro F1 at 0.5 for
    comparison ("at_0.5")."""
    names = app.class_names()
    truth, scores = predict(model, test_ds)
    thresholds = app.thresholds or [DEFAULT] * len(names)
    figures = scores_at(truth, scores, thresholds, names)
    precision = average_precision(truth, scores)
    for name, value in zip(names, precision):
        figures["per_label"][name]["average_precision"] = value
    known = [p for p in precision if not np.isnan(p)]
    figures["map"] = float(np.mean(known)) if known else float("nan")
    fixed = scores_at(truth, scores, [DEFAULT] * len(names), names)
    figures["at_0.5"] = {"micro_f1": fixed["micro_f1"], "macro_f1": fixed["macro_f1"]}
    return {"multi_label": figures, "thresholds": dict(zip(names, thresholds))}


def table(metrics):
    """The end of a multi-label `train`: micro/macro F1 at the run's thresholds and at 0.5, mAP,
    and the weakest labels' figures."""
    found = metrics["multi_label"]
    rows = sorted(found["per_label"].items(), key=lambda item: item[1]["f1"])
    width = min(max(12, *(len(name) for name, _ in rows)), 28)
    lines = [f"Per label on the test split, at the thresholds chosen on validation, weakest F1 "
             f"first:\n  {'label':{width}s}  threshold  precision  recall     f1  support"]
    for name, r in rows[:20]:
        lines.append(f"  {name[:width]:{width}s}  {r['threshold']:9.2f}  {r['precision']:9.3f}  "
                     f"{r['recall']:6.3f}  {r['f1']:5.3f}  {r['support']:7,d}")
    if len(rows) > 20:
        lines.append(f"  ... {len(rows) - 20} more in metrics.json (multi_label.per_label)")
    fixed = found["at_0.5"]
    lines.append(f"  micro F1 {found['micro_f1']:.4f}, macro F1 {found['macro_f1']:.4f} (at 0.5: "
                 f"{fixed['micro_f1']:.4f}, {fixed['macro_f1']:.4f}); mean average precision "
                 f"{found['map']:.4f}")
    return "\n".join(lines)
