"""SavedModel export in TF Serving's layout: `<export_dir>/<name>/<int version>/`.

A version is written to a hidden temp dir inside `<name>/` and renamed into
place, so TF Serving (which only loads all-digit directories) never sees a
half-written model and an existing version is never overwritten. Directories
get the umask's permissions (not mkdtemp's 0700), so a TF Serving running as
another user can read them. The layout itself (versions, models.config, model
names) is serving's: `serving/layout.py`.
"""

import os
import secrets
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from serving.layout import model_name_problem, versions, write_models_config
from training.errors import ExportError

TMP_PREFIX = ".tmp-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_abandoned_temps(model_dir):
    """Delete `.tmp-<version>-<pid>-*` dirs whose exporting process is gone (killed mid-export)."""
    for path in Path(model_dir).glob(f"{TMP_PREFIX}*"):
        parts = path.name[len(TMP_PREFIX):].split("-")
        if len(parts) == 3 and parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(path, ignore_errors=True)


def export_saved_model(model, signature, export_dir, name, extra_signatures=None):
    """Write `model` with `signature` as `serving_default` (and `extra_signatures`, a dict
    of them by name); return the version dir."""
    problem = model_name_problem(name)
    if problem:
        raise ExportError(f"Model name {name!r} {problem}")
    model_dir = Path(export_dir) / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"Cannot create {model_dir} ({e.strerror}); choose another export.dir") from None
    remove_abandoned_temps(model_dir)
    version = (versions(model_dir) or [0])[-1] + 1
    tmp = model_dir / f"{TMP_PREFIX}{version}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()  # mode 0777 less the umask, as the version dir will have
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for endpoint, sig in {"serving_default": signature, **(extra_signatures or {})}.items():
            archive.add_endpoint(endpoint, tf.function(sig.fn), input_signature=sig.inputs)
        archive.write_out(str(tmp), verbose=False)
        target = model_dir / str(version)
        # os.rename fails if the target appeared meanwhile: never overwrite a version.
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_models_config(export_dir)
    return target
