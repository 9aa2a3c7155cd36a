"""report.html: one page per run, self-contained (its figures inlined as data: URIs; no script,
no style sheet or font from the network): what ran, the test metrics against the majority-class
baseline and the warnings, the curves, the confusion matrix, the per-class table, calibration,
the worst mistakes, Grad-CAM, the app's own figures, and the config.

Written at the end of every run from the run directory's own files (`kat report --run RUN`
writes it again, for runs made before it existed too).
"""

import base64
import csv
import html
import json
import os

from training.pipeline import diagnostics

SHOWN_CLASS_ROWS = 200  # of the per-class table (weakest first); metrics.json has every class
SHOWN_MISTAKE_ROWS = 30  # of mistakes.csv
FIGURES = (  # RunDir's name for the file, heading, what it shows
    ("training_curves", "Training curves", "loss and metrics per epoch, train and validation"),
    ("confusion_matrix", "Confusion matrix", "test split, rows normalised; true class on rows"),
    ("calibration", "Calibration", "accuracy against confidence per confidence bin"),
    ("mistakes_png", "The worst mistakes", "test images misclassified with the highest confidence"),
    ("gradcam", "Grad-CAM", "where the predicted class's score comes from, right and wrong"),
)
STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}td,th{padding:.2em .7em;
border-bottom:1px solid #eee;text-align:right}td:first-child,th:first-child{text-align:left}
.scroll{max-height:28em;overflow:auto;display:inline-block}img{max-width:100%;height:auto}
.warn{background:#fff4e5;padding:.4em .8em;border-left:4px solid #f0a030}.note{color:#666}
pre{background:#f6f6f6;padding:1em;overflow:auto}"""


def _png(path):
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _summary(metrics):
    """The headline: test metrics (accuracy against the majority-class baseline), the run."""
    test = dict(metrics.get("test", {}))
    rows = [(k, _number(v)) for k, v in test.items()]
    baseline = metrics.get("baseline", {}).get("test")
    if baseline:
        rows.append(("majority-class baseline accuracy",
                     f"{baseline['accuracy']:.4f} (always {baseline['class']!r})"))
    for key in ("balanced_accuracy",):
        if key in metrics:
            rows.append((key.replace("_", " "), _number(metrics[key])))
    if "calibration" in metrics:
        rows.append(("expected calibration error", _number(metrics["calibration"]["ece"])))
    run = [("app", metrics.get("app")), ("epochs", metrics.get("epochs_completed")),
           ("training time", f"{metrics.get('train_seconds', 0):.0f} s"),
           ("examples (train / validation / test)", " / ".join(
               f"{metrics.get(k, 0):,}" for k in ("train_examples", "validation_examples", "test_examples"))),
           ("parameters", f"{metrics.get('params', 0):,}"), ("strategy", metrics.get("strategy")),
           ("backend", metrics.get("backend")),
           ("precision", (metrics.get("precision") or {}).get("policy")),
           ("export", metrics.get("export", "not exported"))]
    warnings = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in metrics.get("warnings", []))
    return (f"<h2>Test</h2>{_table(('metric', 'value'), rows)}{warnings}"
            f"<h2>Run</h2>{_table(('', ''), [(k, v) for k, v in run if v is not None])}")


def _per_class(metrics):
    rows = diagnostics.weakest_first(metrics["per_class"])
    shown = [(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", f"{r['support']:,}")
             for name, r in rows[:SHOWN_CLASS_ROWS]]
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        a = metrics[key]
        shown.append((label, f"{a['precision']:.3f}", f"{a['recall']:.3f}", f"{a['f1']:.3f}", ""))
    more = (f'<p class="note">{len(rows) - SHOWN_CLASS_ROWS:,} more classes in metrics.json '
            "(per_class)</p>" if len(rows) > SHOWN_CLASS_ROWS else "")
    return ("<h2>Per class, weakest F1 first</h2><div class=scroll>"
            + _table(("class", "precision", "recall", "F1", "support"), shown) + f"</div>{more}")


def _per_label(metrics):
    """A multi-label run's labels at their thresholds, weakest F1 first."""
    found = metrics["multi_label"]
    rows = sorted(found["per_label"].items(), key=lambda item: item[1]["f1"])
    shown = [(name, f"{r['threshold']:.2f}", f"{r['precision']:.3f}", f"{r['recall']:.3f}",
              f"{r['f1']:.3f}", f"{r.get('average_precision', float('nan')):.3f}", f"{r['support']:,}")
             for name, r in rows[:SHOWN_CLASS_ROWS]]
    fixed = found["at_0.5"]
    note = (f'<p class="note">micro F1 {found["micro_f1"]:.4f}, macro F1 {found["macro_f1"]:.4f} at '
            f'the thresholds chosen on validation; at 0.5: {fixed["micro_f1"]:.4f}, '
            f'{fixed["macro_f1"]:.4f}; mean average precision {found["map"]:.4f}</p>')
    return ("<h2>Per label, weakest F1 first</h2><div class=scroll>"
            + _table(("label", "threshold", "precision", "recall", "F1", "average precision",
                      "support"), shown) + f"</div>{note}")


def _mistakes(run_dir, metrics):
    with open(run_dir.mistakes_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = [row for _, row in zip(range(SHOWN_MISTAKE_ROWS), reader)]
    count = metrics.get("mistakes", len(rows))
    note = f'<p class="note">{count:,} mistakes in all: mistakes.csv, the most confident first</p>'
    return "<h3>mistakes.csv</h3><div class=scroll>" + _table(header, rows) + f"</div>{note}"


def build(run_dir, metrics):
    """The page's HTML, from `run_dir`'s files (a RunDir) and its metrics."""
    title = f"{metrics.get('app', 'run')}: {run_dir.path.name}"
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="note">{html.escape(str(run_dir.path))}</p>',
             _summary(metrics)]
    if "multi_label" in metrics:
        parts.append(_per_label(metrics))
    shown = set()
    for name, heading, what in FIGURES:
        path = getattr(run_dir, name)
        if path.is_file():
            shown.add(path)
            parts.append(f'<h2>{heading}</h2><p class="note">{what}</p>{_png(path)}')
        if path == run_dir.confusion_matrix and "per_class" in metrics:
            parts.append(_per_class(metrics))
        if path == run_dir.mistakes_png and run_dir.mistakes_csv.is_file():
            parts.append(_mistakes(run_dir, metrics))
    others = sorted(p for p in run_dir.path.glob("*.png") if p not in shown)
    if others:
        parts.append("<h2>The app's figures</h2>" + "".join(
            f'<h3>{html.escape(p.name)}</h3>{_png(p)}' for p in others))
    if run_dir.config.is_file():
        parts.append(f"<h2>Config</h2><pre>{html.escape(run_dir.config.read_text())}</pre>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>")


def write(run_dir, metrics=None):
    """Write run_dir/report.html (replacing an older one whole); returns its path."""
    if metrics is None:
        metrics = json.loads(run_dir.metrics.read_text())
    temporary = run_dir.report.with_suffix(".html.tmp")
    temporary.write_text(build(run_dir, metrics), encoding="utf-8")
    os.replace(temporary, run_dir.report)
    return run_dir.report
