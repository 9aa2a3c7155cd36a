"""Start from a trained model: load the layers that match, freeze the backbone, unfreeze later.

The recipe of Keras' transfer-learning guide, for any app: `model.init_from` loads a
trained model's layers into the new one (a new head where the class count differs);
with `model.freeze_backbone` only the output layer trains (a frozen layer's BatchNorm
runs in inference mode); `model.unfreeze_after_epochs=N` then trains every layer with a
fresh optimizer at `optimizer.fine_tune_learning_rate`. The pipeline runs each phase as
one `fit`; training/pipeline/callbacks.py's backup records the phase, so a resume is exact.
"""

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import List, NamedTuple

import keras
import yaml

from training.errors import ConfigError, DataError, model_file_damage
from training.run_dir import RunDir

SHOWN_LAYERS = 8  # layer names printed per line of the init_from report


class Phase(NamedTuple):
    index: int
    start: int  # first epoch
    end: int  # one past the last epoch
    frozen: bool
    optimizer: object  # the OptimizerConfig of the phase


def phases(config) -> List[Phase]:
    """The run's fit phases: one, or frozen then unfrozen with `model.unfreeze_after_epochs`."""
    m, opt = config.model, config.optimizer
    if not m.freeze_backbone or m.unfreeze_after_epochs is None:
        return [Phase(0, 0, config.epochs, m.freeze_backbone, opt)]
    tuned = dataclasses.replace(opt, learning_rate=opt.fine_tune_learning_rate or opt.learning_rate / 10,
                                warmup_epochs=0.0)
    return [Phase(0, 0, m.unfreeze_after_epochs, True, opt),
            Phase(1, m.unfreeze_after_epochs, config.epochs, False, tuned)]


def head(model):
    """The output layer: the last layer with weights."""
    weighted = _weighted(model)
    if not weighted:
        raise ConfigError(f"Model {model.name} has no layer with weights to train")
    return weighted[-1]


def set_backbone_frozen(model, frozen):
    """Freeze (or unfreeze) every layer but the head; frozen BatchNorm layers run in inference mode."""
    out = head(model)
    for layer in model.layers:
        if layer is not out:
            layer.trainable = not frozen


def _names(layers):
    shown = ", ".join(layers[:SHOWN_LAYERS])
    return shown + (f", ... ({len(layers)} in all)" if len(layers) > SHOWN_LAYERS else "")


def _weighted(model):
    return [layer for layer in model.layers if layer.weights]


def _shapes(layer):
    return [tuple(w.shape) for w in layer.weights]


def source_path(source):
    """The file `model.init_from` names (a run dir's model.keras), or a DataError."""
    path = Path(source)
    if path.is_dir():
        path = RunDir(path).model
    if not path.is_file():
        raise DataError(f"model.init_from={source}: {path} does not exist; give a finished run dir, "
                        "a .keras file or a .weights.h5 file")
    if not path.name.endswith((".keras", ".weights.h5")):
        raise ConfigError(f"model.init_from={source} must be a run dir, a .keras or a .weights.h5 file")
    return path


def _source_run_file(path, file, parse):
    """`parse` of the file `file(RunDir)` of the run that `path` (its model.keras or a
    checkpoint) comes from, or None."""
    for run_dir in (path.parent, path.parent.parent):
        try:
            return parse(file(RunDir(run_dir)).read_text())
        except (OSError, ValueError, yaml.YAMLError):
            continue
    return None


def source_classes(path):
    """(class names, whether multi-label) of the run `path` comes from (its metrics.json), or
    (None, None)."""
    metrics = _source_run_file(path, lambda run: run.metrics, json.loads)
    if not isinstance(metrics, dict):
        return None, None
    return metrics.get("class_names"), metrics.get("labels") == "multi"


def source_model_option(source, key):
    """`model.<key>` of the run `model.init_from=source` comes from (its config.yaml), or None."""
    config = _source_run_file(source_path(source), lambda run: run.config, yaml.safe_load)
    model = config.get("model") if isinstance(config, dict) else None
    return model.get(key) if isinstance(model, dict) else None


def init_from(model, source, class_names=None, multi_label=False):
    """Load `source`'s matching layers into `model`; print which were loaded; return their names.

    A run dir or `.keras` file: each layer with the same name and weight shapes. A
    `.weights.h5` file holds no layer names, so Keras' own matching applies: each layer's
    place in the model (its class and position) and shapes (`load_weights(skip_mismatch)`).
    The head is left out when the source run's classes (its metrics.json) are not
    `class_names`: a head of other classes, even as many, is a bad start; so is a softmax
    head for a multi-label run (`multi_label`: sigmoids), or the other way round.
    """
    path = source_path(source)
    theirs, their_multi_label = source_classes(path)
    skip = []
    if class_names is not None and theirs is not None and list(theirs) != list(class_names):
        skip = [head(model).name]
        print(f"init_from {source}: its classes ({', '.join(theirs[:5])}"
              f"{', ...' if len(theirs) > 5 else ''}) are not this run's: a new head", flush=True)
    elif theirs is not None and their_multi_label != multi_label:
        skip = [head(model).name]
        print(f"init_from {source}: its head is {'multi' if their_multi_label else 'single'}-label, "
              f"this run is {'multi' if multi_label else 'single'}-label: a new head", flush=True)
    if path.name.endswith(".keras"):
        loaded, new = _by_name(model, path, skip)
    else:
        loaded, new = _by_position(model, path, skip)
    if not loaded:
        raise DataError(f"model.init_from={source}: none of its layers has this model's layer "
                        "names and weight shapes, so nothing would load; give a run of this app "
                        "and model.arch, or leave model.init_from out to train from scratch")
    print(f"init_from {source}: loaded {len(loaded)} of {len(loaded) + len(new)} layers with "
          f"weights: {_names(loaded) or 'none'}", flush=True)
    if new:
        print(f"  not loaded (initialised afresh): {_names(new)}", flush=True)
    return loaded


@contextlib.contextmanager
def _readable(path):
    """A DataError for a source that cannot be read: a torn zip or HDF5 file, an unknown
    layer (Keras and h5py raise many types)."""
    try:
        yield
    except Exception as e:
        raise DataError(f"model.init_from: {path} cannot be loaded ({model_file_damage(path, e)}): "
                        "it is damaged or not a Keras file; give a finished run dir, a .keras or "
                        "a .weights.h5 file") from None


def _by_name(model, path, skip=()):
    with _readable(path):
        donor = keras.saving.load_model(path, compile=False)
    theirs = {layer.name: layer for layer in _weighted(donor)}
    loaded, new = [], []
    for layer in _weighted(model):
        match = theirs.get(layer.name)
        if layer.name in skip:
            new.append(f"{layer.name} (other classes)")
        elif match is not None and _shapes(match) == _shapes(layer):
            layer.set_weights(match.get_weights())
            loaded.append(layer.name)
        else:
            why = "no such layer" if match is None else f"shapes {_shapes(match)} there"
            new.append(f"{layer.name} ({why})")
    return loaded, new


def _file_shapes(path, model):
    """Each layer's weight shapes in weights file `path`, found where Keras writes them:
    `layers/<class in snake case>[_<n-th of that class>]` (keras.src.saving.saving_lib)."""
    import h5py
    from keras.src.utils.naming import to_snake_case

    seen, shapes = {}, {}
    with h5py.File(path, "r") as f:
        for layer in model.layers:
            base = to_snake_case(type(layer).__name__)
            seen[base] = seen.get(base, -1) + 1
            group = f.get(f"layers/{base}" + (f"_{seen[base]}" if seen[base] else ""))
            shapes[layer.name] = sorted(_dataset_shapes(group, h5py.Dataset)) if group is not None else []
    return shapes


def _dataset_shapes(group, dataset_type):
    found = []
    group.visititems(lambda name, item: found.append(tuple(item.shape))
                     if isinstance(item, dataset_type) else None)
    return found


def _by_position(model, path, skip=()):
    kept = {name: model.get_layer(name).get_weights() for name in skip}
    with _readable(path):
        theirs = _file_shapes(path, model)
        model.load_weights(path, skip_mismatch=True)  # Keras skips the layers whose shapes differ
    for name, weights in kept.items():
        model.get_layer(name).set_weights(weights)
    loaded, new = [], []
    for layer in _weighted(model):
        if layer.name in skip:
            new.append(f"{layer.name} (other classes)")
        elif theirs[layer.name] == sorted(_shapes(layer)):
            loaded.append(layer.name)
        else:
            new.append(f"{layer.name} (shapes {theirs[layer.name] or 'none'} there)")
    return loaded, new
