"""Export a run's model: right after training (`export_model`) or from a finished run dir
(`export_run`, the `export` command), as a SavedModel for TF Serving or a LiteRT model."""

import keras

from serving.layout import model_name_problem
from training.errors import ExportError
from training.export import litert
from training.export.saved_model import export_in_tensorflow, export_saved_model
from training.run_dir import load_run

WARMUP_EXAMPLES = 3  # per signature: every graph runs once at load, and loading stays quick
EXPORT_FORMATS = ("saved_model", "litert")


def warmup_features(app):
    """A batch of WARMUP_EXAMPLES real examples' features (test split, else train), or None."""
    for split in ("test", "train"):
        ds = app.build_data(split)
        if ds is not None:
            for features, _ in ds.batch(WARMUP_EXAMPLES).take(1):
                return features
    return None


def export_model(app, model, config, name=None, run_dir=None):
    """Export `model` for TF Serving, with warm-up requests; returns the version directory.
    Under PyTorch, `run_dir`'s model.keras is exported by a TensorFlow process."""
    name = name or config.export.name or config.app
    if keras.backend.backend() == "torch":
        return export_in_tensorflow(run_dir or config.run_dir, config.export.dir, name)

    def signatures(served):  # the model itself, or its TF conversion under another backend
        return {"serving_default": app.serving_signature(served), **app.extra_signatures(served)}

    return export_saved_model(model, signatures, config.export.dir, name, warmup_features(app))


def export_run(run_dir, name=None, export_dir=None, format="saved_model", quantize=None,
               int8_io=False, per_tensor=False):
    """Export a finished run's saved model as a SavedModel (TF Serving) or a LiteRT model
    (`quantize`: litert.QUANTIZE); returns the version directory."""
    problem = model_name_problem(name) if name else None
    if problem:  # before the model loads
        raise ExportError(f"--name {name!r} {problem}")
    if format not in EXPORT_FORMATS:
        raise ExportError(f"--format {format!r} is not one of: {', '.join(EXPORT_FORMATS)}")
    if format == "saved_model" and (quantize not in (None, "none") or int8_io or per_tensor):
        raise ExportError("A SavedModel for TF Serving is exported in float; --quantize, "
                          "--int8-io and --per-tensor are for --format litert")
    if format == "litert" and quantize not in (None, *litert.QUANTIZE):
        raise ExportError(f"--quantize {quantize!r} is not one LiteRT takes; choose one of: "
                          f"{', '.join(litert.QUANTIZE)}")
    config, app, model = load_run(run_dir)
    if export_dir:
        config.export.dir = export_dir
    if format == "litert":
        return litert.export_litert(app, model, config, name, quantize or "none", int8_io,
                                    source=run_dir, per_tensor=per_tensor)
    return export_model(app, model, config, name, run_dir=run_dir)
