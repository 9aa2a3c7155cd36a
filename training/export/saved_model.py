"""SavedModel export in TF Serving's layout: `<export_dir>/<name>/<int version>/`, with
TF Serving's warm-up file of a few real examples in `assets.extra/`.

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
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from serving.layout import MAX_VERSION, NOT_A_VERSION, model_name_problem, versions, write_models_config
from serving.warmup import write_warmup
from training.contract import ServingOutputs
from training.errors import AppContractError, ExportError, described

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


class NextVersion:
    """The next version of `model_dir`, written into `.tmp` and renamed to `.path` when the
    `with` block ends without an error; on an error (or a kill, see remove_abandoned_temps)
    the temp dir is deleted, so no half-written version is ever left."""

    def __init__(self, model_dir, what="export.dir"):
        model_dir = Path(model_dir)
        try:
            model_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"Cannot create {model_dir} ({e.strerror}); choose another {what}") from None
        remove_abandoned_temps(model_dir)
        odd = []
        self.version = (versions(model_dir, odd) or [0])[-1] + 1
        for path in odd:
            print(f"note: {path} {NOT_A_VERSION}", flush=True)
        if self.version > MAX_VERSION:
            raise ExportError(f"{model_dir} already holds version {MAX_VERSION}, TF Serving's "
                              f"largest; choose another {what}")
        self.path = model_dir / str(self.version)
        self.tmp = model_dir / f"{TMP_PREFIX}{self.version}-{os.getpid()}-{secrets.token_hex(4)}"

    def __enter__(self):
        self.tmp.mkdir()  # mode 0777 less the umask, as the version dir will have
        return self

    def __exit__(self, error_type, error, traceback):
        if error_type is None:
            try:
                # os.rename fails if the target appeared meanwhile: never overwrite a version.
                os.rename(self.tmp, self.path)
                return False
            except BaseException:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def checked_name(name):
    problem = model_name_problem(name)
    if problem:
        raise ExportError(f"Model name {name!r} {problem}")
    return name


class ConvertedModel:
    """A Keras model of another backend than TensorFlow, as a serving function sees it:
    calling it runs its forward pass converted for TF by Keras' own export (jax2tf under JAX);
    its other attributes (inputs, get_layer, ...) are the model's. The app's serving
    function keeps its TF pre- and post-processing around that call."""

    def __init__(self, model):
        self._model = model
        self._converter = keras.export.ExportArchive()  # holds the converted TF variables
        self._converter.track(model)
        specs = [tf.TensorSpec((None,) + tuple(t.shape[1:]), t.dtype, name=t.name)
                 for t in model.inputs]
        self._call = self._converter.add_endpoint(
            "call", lambda *xs: model(xs[0] if len(xs) == 1 else list(xs), training=False),
            input_signature=specs)

    def __call__(self, inputs, training=False):
        return self._call(*inputs) if isinstance(inputs, (list, tuple)) else self._call(inputs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def export_in_tensorflow(run_dir, export_dir, name):
    """Export finished run `run_dir` from a TensorFlow process and return the version dir:
    the export of a run trained under PyTorch. Keras' PyTorch export goes through torch_xla
    (not in CPU installs of PyTorch) and serves only a whole layer, with no room for the
    app's TF pre- and post-processing; model.keras does not depend on the backend, so
    TensorFlow writes the same SavedModel as a TensorFlow run's."""
    result = subprocess.run(
        [sys.executable, "-m", "training", "export", "--run", str(run_dir), "--export-dir",
         str(export_dir), "--name", name],
        capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no message"]
        raise ExportError(f"The export of {run_dir} under tensorflow failed: {lines[-1]}")
    return Path(result.stdout.strip().splitlines()[-1])


def export_saved_model(model, signatures, export_dir, name, warmup_features=None):
    """Write `model` with `signatures` (a dict of ServingSignatures by name, `serving_default`
    among them, or a function of the served model that returns one) and return the version
    dir. With `warmup_features` (a batch of the app's features), the version gets TF Serving's
    warm-up file of them (serving/warmup.py). Under another backend than TensorFlow the served
    model is a ConvertedModel, which is why `signatures` may be a function of it."""
    archive = keras.export.ExportArchive()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        archive.track(model)
    with NextVersion(Path(export_dir) / checked_name(name)) as version:
        try:
            # Under another backend the endpoints capture the converted variables, which
            # write_out saves.
            served = model if backend == "tensorflow" else ConvertedModel(model)
            signatures = signatures(served) if callable(signatures) else signatures
            for endpoint, sig in signatures.items():
                fn = ServingOutputs(endpoint, sig.fn)
                function = tf.function(fn, input_signature=sig.inputs)
                function.get_concrete_function()  # traced here: the check, then write_out saves it
                fn.check()
                for resource in sig.resources:
                    archive.track(resource)
                archive.add_endpoint(endpoint, function)
        except AppContractError:
            raise
        except Exception as e:
            if backend == "tensorflow":
                raise
            raise ExportError(
                f"The export under {backend} failed ({described(e)}), e.g. a serving function "
                "that calls another Keras model than the app's. The run's model.keras does not "
                "depend on the backend: export it under TensorFlow with `KERAS_BACKEND=tensorflow "
                "python -m training export --run RUN_DIR`") from None
        archive.write_out(str(version.tmp), verbose=False)
        if warmup_features is not None:
            requests = warmup_requests(signatures, warmup_features)
            if requests:
                write_warmup(version.tmp, name, requests)
    write_models_config(export_dir)
    return version.path


def _fits(spec, array):
    """Can NumPy `array` be fed as TensorSpec `spec`?"""
    if spec.dtype == tf.string:
        kind_fits = array.dtype.kind in "OSU"
    else:
        kind_fits = array.dtype == spec.dtype.as_numpy_dtype
    return kind_fits and spec.shape.is_compatible_with(array.shape)


def warmup_requests(signatures, features, log=print):
    """TF Serving warm-up requests, one per example of `features` (a batch, as build_data's
    examples come, batched) for each signature (name -> ServingSignature): a list of
    (signature name, {input name: NumPy batch of one}). A signature whose inputs the
    features do not fit gets none, with a note saying how to give it some."""
    requests = []
    for name, signature in signatures.items():
        inputs = [np.asarray(t) for t in signature.example_inputs(features)]
        specs = signature.inputs
        if len(inputs) != len(specs) or not all(map(_fits, specs, inputs)):
            log(f"note: no warm-up requests for signature {name!r}: the app's examples do not "
                "fit its inputs; give its ServingSignature an `examples` function")
            continue
        for row in range(len(inputs[0])):
            requests.append((name, {spec.name: a[row:row + 1] for spec, a in zip(specs, inputs)}))
    return requests
