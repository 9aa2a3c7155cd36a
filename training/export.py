"""SavedModel export in TF Serving's layout: `<export_dir>/<name>/<int version>/`.

A version is written to a hidden temp dir inside `<name>/` and renamed into
place, so TF Serving (which only loads all-digit directories) never sees a
half-written model and an existing version is never overwritten. The layout
itself (versions, models.config) is serving's: `serving/layout.py`.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from serving.layout import versions, write_models_config
from training.errors import ExportError

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


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
