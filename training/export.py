"""SavedModel export in TF Serving's layout: `<export_dir>/<name>/<int version>/`.

A version is written to a hidden temp dir inside `<name>/` and renamed into
place, so TF Serving (which only loads all-digit directories) never sees a
half-written model and an existing version is never overwritten.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class ExportError(RuntimeError):
    """The export could not be written; nothing was left half-written."""


def versions(model_dir):
    """Existing integer versions under `model_dir`, ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def export_saved_model(model, signature, export_dir, name):
    """Write `model` with `signature` as `serving_default`; return the version dir."""
    if not MODEL_NAME_RE.match(name):
        raise ExportError(f"Model name {name!r} may only use letters, digits, '_', '.' and '-'")
    model_dir = Path(export_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = (versions(model_dir) or [0])[-1] + 1
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", tf.function(signature.fn),
                             input_signature=signature.inputs)
        archive.write_out(str(tmp), verbose=False)
        target = model_dir / str(version)
        # os.rename fails if the target appeared meanwhile: never overwrite a version.
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_models_config(export_dir)
    return target


def write_models_config(export_dir):
    """Write `<export_dir>/models.config`, TF Serving's model_config_list for every model."""
    export_dir = Path(export_dir).resolve()
    names = sorted(p.name for p in export_dir.iterdir() if p.is_dir() and versions(p))
    entries = "".join(
        f"  config {{\n    name: '{n}'\n    base_path: '{export_dir / n}'\n"
        f"    model_platform: 'tensorflow'\n  }}\n" for n in names)
    path = export_dir / "models.config"
    tmp = path.with_suffix(".config.tmp")
    tmp.write_text(f"model_config_list {{\n{entries}}}\n")
    os.replace(tmp, path)
    return path
