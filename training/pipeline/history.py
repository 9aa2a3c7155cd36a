"""What an interrupted run left: where its backup resumes, and its history.csv trimmed to
the epochs the backup holds; and what the history says afterwards (the restored epoch)."""

import csv
import json


def resume_point(run_dir):
    """(epochs completed, steps done of the next one) of the interrupted run's backup, from
    its metadata ((0, 0) if none; AtomicBackupAndRestore). `run_dir`: a RunDir."""
    try:
        metadata = json.loads(run_dir.backup_metadata.read_text())
        return int(metadata["epoch"]), int(metadata.get("steps_done", 0))
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def backup_holds(run_dir, config, steps):
    """E.g. "3 completed epoch(s) of 10 and 20 of 50 steps of epoch 4"."""
    epoch, steps_done = resume_point(run_dir)
    return (f"{epoch} completed epoch(s) of {config.epochs}"
            + (f" and {steps_done} of {steps} steps of epoch {epoch + 1}" if steps_done else ""))


def read(run_dir):
    """history.csv's rows, as dicts of strings."""
    with open(run_dir.history, newline="") as f:
        return list(csv.DictReader(f))


def numbers(run_dir, column, rows=None):
    """(row, value) for each history.csv row (or each of `rows`) whose `column` holds a number:
    Keras' CSVLogger writes NA into the val_* columns of a run without validation."""
    if rows is None:
        if not run_dir.history.exists():
            return []
        rows = read(run_dir)
    found = []
    for row in rows:
        try:
            found.append((row, float(row.get(column, ""))))
        except ValueError:  # NA, or no such column
            continue
    return found


def trim(run_dir, completed, monitor):
    """On resume: drop history.csv rows of epochs the backup does not hold (an epoch cut
    short by a kill or SIGTERM); return the best value of `monitor` (a callbacks.Monitor) in
    the rest, or None."""
    if not run_dir.history.exists():
        return None
    rows = read(run_dir)
    kept = [r for r in rows if int(r["epoch"]) < completed]
    if rows:
        with open(run_dir.history, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)
    values = [value for row, value in numbers(run_dir, monitor.name, kept)]
    return values[monitor.best(values)] if values else None


def restored_message(run_dir, monitor, best_value):
    """One line: which epoch restore_best went back to, and its value of `monitor` (a
    callbacks.Monitor)."""
    rows = numbers(run_dir, monitor.name)
    if not rows:
        return f"Restored the best checkpoint ({monitor.name} {best_value:.4f})"
    best, value = rows[monitor.best([value for _, value in rows])]
    return (f"Restored the weights of epoch {int(best['epoch']) + 1} of {len(rows)}, the best "
            f"{monitor.name} ({value:.4f}; callbacks.restore_best=false keeps the last)")
