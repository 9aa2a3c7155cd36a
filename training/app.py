"""The App contract: what a new task writes to get the shared pipeline.

The pipeline calls the hooks in this order, once per run:

    app = MyApp(config)                    # config: an instance of MyApp.config_class
    app.build_data("train" | "validation" | "test")
    with strategy.scope():
        app.pretrain(run_dir, compile_options)   # optional unsupervised stage
        model = app.build_model()
        model.compile(**app.compile_args())   # config.optimizer overrides the optimizer
    model.fit(...); model.evaluate(...)
    app.report(model, test_dataset, run_dir)  # optional extra figures and metrics
    app.serving_signature(model)              # at export, with app.extra_signatures(model)

`run_dir` is the run directory as a `pathlib.Path` (training/run_dir.py names its files).

To add a task, subclass `App`, set `name`, `description` and `config_class`,
implement the three required hooks, and declare the class in your package's
entry-point group `keras_app_templates.apps` (see training/registry.py).

This module imports no TensorFlow at load time, so the command line can list
apps and their configs instantly; the hooks run after TensorFlow is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from training.config import Config
from training.errors import AppContractError

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


@dataclass
class ServingSignature:
    """What TF Serving receives and returns for `serving_default`.

    inputs: tf.TensorSpecs of the raw request tensors, each with a `name`
        (the request key), e.g. uint8 images or strings.
    fn: takes those tensors as positional arguments, in order, and returns a
        dict of named output tensors, e.g. {"probabilities": ..., "class_id": ...}.
    scored: the output that is the model's own output, which the loss and metrics compare
        with the labels (`evaluate --artifact` scores an export by it); None: no such output.
    examples: turns a batch of the app's features (as build_data yields them) into this
        signature's inputs, a list in order, for the export's warm-up requests; None: the
        features are the inputs.
    resources: TF objects `fn` uses that no tracked model holds (the lookup table of a
        layer made for serving under JAX, whose Keras layers are not TF trackables), which
        the SavedModel must save.
    """

    inputs: List[tf.TensorSpec]
    fn: Callable[..., Dict[str, tf.Tensor]]
    scored: Optional[str] = "outputs"
    examples: Optional[Callable] = None
    resources: List = field(default_factory=list)

    def example_inputs(self, features):
        """This signature's inputs, in order, made of a batch of the app's features."""
        from training.datasets import input_list

        return self.examples(features) if self.examples is not None else input_list(features)


def classification_signature(model, spec, class_names, resources=(), examples=None):
    """Serving for a softmax classifier: `spec` in; probabilities, class_id, class_name out.
    `model` may be any callable taking (inputs, training=False); `resources` and `examples`
    as in ServingSignature."""
    import tensorflow as tf

    names = tf.constant(class_names)

    def serve(inputs):
        probabilities = model(inputs, training=False)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(names, class_id)}

    return ServingSignature([spec], serve, scored="probabilities", examples=examples,
                            resources=list(resources))


def multi_label_args(num_labels):
    """compile_args of a multi-label classifier (a sigmoid per label, 0/1 float labels): binary
    cross-entropy; micro and macro F1 at 0.5 (the run's own thresholds are chosen after fit,
    training/pipeline/multi_label.py) and the mean average precision, Keras' area under each
    label's precision-recall curve averaged over the labels."""
    import keras

    return {"optimizer": "adam", "loss": keras.losses.BinaryCrossentropy(),
            "metrics": [keras.metrics.F1Score(average="micro", threshold=0.5, name="micro_f1"),
                        keras.metrics.F1Score(average="macro", threshold=0.5, name="macro_f1"),
                        keras.metrics.AUC(curve="PR", multi_label=True, num_labels=num_labels,
                                          name="map")]}


def multi_label_signature(model, spec, label_names, thresholds=None, resources=(), examples=None):
    """Serving for a multi-label classifier: `spec` in; each label's probability, whether it is
    above its threshold (`thresholds`, chosen on validation; None: 0.5 each) and the names of
    those above it (the others ""; TF Serving answers dense tensors) out."""
    import tensorflow as tf

    names = tf.constant(label_names)
    cut = tf.constant(thresholds if thresholds is not None else [0.5] * len(label_names),
                      tf.float32)

    def serve(inputs):
        probabilities = model(inputs, training=False)
        above = probabilities >= cut
        shown = tf.where(above, tf.broadcast_to(names, tf.shape(above)), tf.constant(""))
        return {"probabilities": probabilities, "above_threshold": above, "labels": shown}

    return ServingSignature([spec], serve, scored="probabilities", examples=examples,
                            resources=list(resources))


SHOWN_CLASSES = 5  # class names in the line that starts a run


class App:
    """Base class of every task template.

    Required hooks: `build_data`, `build_model`, `compile_args`. The others
    have defaults that suit most tasks.
    """

    name = ""  # registered name, used as `--app NAME`
    description = ""  # one line, shown by `python -m training list`
    config_class = Config  # dataclass (subclass of Config) with this app's defaults

    REQUIRED_HOOKS = ("build_data", "build_model", "compile_args")

    def __init__(self, config):
        missing = [h for h in self.REQUIRED_HOOKS if getattr(type(self), h) is getattr(App, h)]
        if missing:
            raise AppContractError(
                f"App {type(self).__name__} must implement {', '.join(h + '()' for h in missing)}; "
                "see the docstrings in training/app.py"
            )
        if not isinstance(config, self.config_class):
            raise AppContractError(f"{type(self).__name__} expects a {self.config_class.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config

    def build_data(self, split: str):
        """Return a tf.data.Dataset of single (features, label) examples for `split`.

        Called before the model is built, once per split: "train",
        "validation" and "test". Return None for a split the task does not
        have (e.g. no validation). Do not batch, cache or prefetch: the
        pipeline does that at the global batch size, and shards the batches
        between workers. Honour `config.data.limit` (cap on examples);
        `training.datasets.split_range` does both for indexable data.
        """
        raise NotImplementedError

    def build_model(self) -> keras.Model:
        """Return an uncompiled keras.Model with named inputs.

        Called inside `strategy.scope()`, after `build_data`, so variables are
        placed for the chosen distribution strategy. Keep preprocessing that
        serving needs (scaling, vocabulary) inside the model.
        """
        raise NotImplementedError

    def compile_args(self) -> dict:
        """Return keyword arguments for `model.compile`: loss and metrics.

        May include an "optimizer" name used when `optimizer.name=auto`. The
        pipeline builds the optimizer from `config.optimizer` (schedule,
        weight decay, clipping) and adds runtime options itself.
        """
        raise NotImplementedError

    def class_names(self) -> Optional[List[str]]:
        """Label names for classification tasks (enables the confusion matrix), else None."""
        return None

    def labels(self, split: str) -> Optional[List[int]]:
        """The class ids of `split`'s examples, in build_data's order, when the app knows them
        without reading the examples (a file listing, a label array): the run counts the
        training split's classes by them (training/pipeline/class_balance.py). None: the
        pipeline reads them from build_data."""
        return None

    def is_multi_label(self) -> bool:
        """Does each example have a set of labels (a 0/1 float per class_names entry) rather
        than one class id? The pipeline then chooses each label's decision threshold on the
        validation split (`thresholds`) and reports per-label figures, not a confusion matrix."""
        return False

    # Multi-label apps: each label's decision threshold, chosen on the validation split after
    # fit (training/pipeline/multi_label.py) or read back from the run; None: 0.5 each.
    thresholds: Optional[List[float]] = None

    def example_names(self, split: str) -> Optional[List[str]]:
        """What tells a person which example each of `split`'s is, in build_data's order: the
        image files' paths, the texts (mistakes.csv names the misclassified ones by it); None:
        their index in the split does."""
        return None

    def describe_data(self) -> str:
        """What the run reads, in a few words, for the line that starts it (the example counts
        follow). Default: the class count and names, if any."""
        names = self.class_names()
        if not names:
            return ""
        shown = ", ".join(names[:SHOWN_CLASSES]) + (", ..." if len(names) > SHOWN_CLASSES else "")
        return f"{len(names)} {'labels' if self.is_multi_label() else 'classes'} ({shown})"

    def resolve_auto(self) -> None:
        """Set the app's own `auto` options in `self.config` to values, once `epochs` and
        `batch_size` are numbers (before config.yaml is written and the model built); say what
        was chosen in one line. Default: none."""

    def serving_signature(self, model: keras.Model) -> ServingSignature:
        """What the exported `serving_default` takes and returns.

        Default: the model's own inputs (by name) and its output as `outputs`.
        Override to accept raw inputs and return named outputs.
        """
        import tensorflow as tf

        specs = [tf.TensorSpec((None,) + tuple(t.shape[1:]), t.dtype, name=t.name)
                 for t in model.inputs]
        return ServingSignature(specs, lambda *xs: {"outputs": model(list(xs), training=False)})

    def extra_signatures(self, model: keras.Model) -> Dict[str, ServingSignature]:
        """More signatures exported next to `serving_default`, by name (TF Serving's
        `signature_name`), e.g. one taking encoded image bytes. Default: none."""
        return {}

    def feature_columns(self) -> Optional[List[str]]:
        """The CSV columns that are the model's input, in order, so `predict` can read a CSV
        with a header (a table app's features); None: a CSV's columns are the input as is."""
        return None

    def pretrain(self, run_dir: Path, compile_options: dict) -> None:
        """Optional unsupervised stage, run before `build_model` (e.g. a DBN's RBMs).

        Called inside `strategy.scope()`, so models fitted here are
        distributed like the main one. `compile_options` holds the run's
        `steps_per_execution` and `jit_compile`, already adjusted to the
        strategy, for any `model.compile` here. Write what you save under
        `run_dir`; if it is already there (a resumed run), load it instead.
        """

    def fits_in_memory(self, split: str) -> bool:
        """May the pipeline keep `split`'s decoded examples in memory (`data.cache`)? Default:
        yes. A source that streams from disk says no when they would not fit."""
        return True

    def callbacks(self, run_dir: Path) -> list:
        """Extra Keras callbacks for fit (the pipeline adds checkpoints, logs, etc.)."""
        return []

    def report(self, model: keras.Model, test_data, run_dir: Path) -> dict:
        """Optional figures written to `run_dir`; returns extra metrics for metrics.json."""
        return {}
