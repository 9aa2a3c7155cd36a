"""BatchNorm statistics that match the weights: recomputed over training batches ("precise BN").

Keras' BatchNormalization keeps moving averages (momentum 0.99) of each training batch's mean
and variance, and inference and validation normalize with them. Their time constant is 100
steps, and the weights they average over keep changing, so after a short run (a few hundred
images, or the first epoch of a long one) they are far from the statistics the weights
produce: a model at 99% training accuracy scored at chance in inference mode. As pycls and
detectron2 do, the statistics are recomputed here with the current weights over a fixed sample
of training batches: before each validation, and before the model is saved, tested and
exported. Keras has no such facility, hence written here.

How: the model runs in inference mode on one batch, except each trainable BatchNormalization,
which runs in training mode with momentum 0, so its moving mean and variance become that
batch's (per layer, as the layers above it normalize with their batch statistics, as in
training). Everything else is as at inference: augmentation layers pass images through and
dropout keeps every unit; with the augmentation on, the statistics of shifted and flipped
images tested 0.8-0.9 points below these (benchmarks/small_data.py runs at 50 and 100 images
per class). Over the batches, weighted by
their sizes, the mean is the mean of the batch means and the variance E[x^2] - mean^2 over all
the examples seen. Frozen layers (trainable=False, as in a frozen backbone) run in
inference mode and keep theirs. Under tf.distribute the batches run in cross-replica context
on the run's own sample, so every replica and every worker gets the same statistics.
"""

import contextlib

import keras
import numpy as np

SAMPLE_BUFFER_BATCHES = 10  # the sample is drawn from the first this-many x its size examples


def batch_norm_layers(model):
    """The model's BatchNormalization layers whose statistics train (nested ones included)."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
            and layer.built]


def normalized_batch(config, replicas):
    """The examples BatchNorm normalizes together in training: one replica's batch under
    tf.distribute (Keras' BatchNorm is per replica there); the whole global batch under JAX's
    DataParallel, whose compiled step takes the mean over the sharded batch."""
    if keras.backend.backend() == "tensorflow":
        return config.batch_size
    return config.batch_size * replicas


def sample_batches(app, config, batches, batch_size):
    """A fixed sample of `batches` batches of `batch_size` training examples (the same every
    time it is iterated, so a resumed run recomputes what an uninterrupted one did), or None."""
    import tensorflow as tf

    ds = app.build_data("train")
    if ds is None or batches < 1:
        return None
    size = batch_size * batches
    ds = ds.shuffle(min(config.data.shuffle_buffer, SAMPLE_BUFFER_BATCHES * size),
                    seed=config.seed, reshuffle_each_iteration=False).take(size)
    ds = ds.batch(batch_size)
    if config.data.cache and app.fits_in_memory("train"):
        ds = ds.cache()
    return ds.prefetch(tf.data.AUTOTUNE)


class BatchNormStatistics:
    """`recompute()` sets every trainable BatchNormalization of `model` to the population
    statistics of `batches` (an iterable of (features, label) batches) under the current weights."""

    def __init__(self, model, batches):
        self.model = model
        self.batches = batches
        self._forward = None

    def _layers_forward(self, layers):
        """A function: features -> the layers' [mean, variance, ...] after a training-mode pass."""
        model = self.model

        def forward(features):
            with _in_training_mode(layers):
                model(features, training=False)
            return [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]

        if keras.backend.backend() != "tensorflow":
            return lambda features: [keras.ops.convert_to_numpy(v) for v in forward(features)]
        import tensorflow as tf

        def graph_forward(features):
            return [tf.identity(v.value) for v in forward(features)]

        return tf.function(graph_forward, reduce_retracing=True, autograph=False)

    def recompute(self):
        """Returns the number of layers set (0: the model has none, or there is no sample)."""
        layers = batch_norm_layers(self.model)
        if not layers or self.batches is None:
            return 0
        momenta = [layer.momentum for layer in layers]
        key = [id(layer) for layer in layers]  # a phase that unfreezes layers needs a new graph
        if self._forward is None or self._forward[0] != key:
            self._forward = (key, self._layers_forward(layers))
        forward = self._forward[1]
        sums, count = None, 0
        try:
            for layer in layers:  # the graph is traced (first call) with momentum 0 and keeps it
                layer.momentum = 0.0
            with self._scope():
                for features, _ in self.batches:
                    if keras.backend.backend() != "tensorflow":
                        features = _to_numpy(features)
                    size = int(keras.tree.flatten(features)[0].shape[0])
                    values = [np.asarray(v, np.float64) for v in forward(features)]
                    moments = [size * m for mean, var in zip(values[::2], values[1::2])
                               for m in (mean, var + mean ** 2)]
                    sums = moments if sums is None else [s + m for s, m in zip(sums, moments)]
                    count += size
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
        if not count:
            return 0
        with self._scope():
            for i, layer in enumerate(layers):
                mean, second = sums[2 * i] / count, sums[2 * i + 1] / count
                layer.moving_mean.assign(mean.astype(np.float32))
                layer.moving_variance.assign(np.maximum(second - mean ** 2, 0.0).astype(np.float32))
        return len(layers)

    def _scope(self):
        """The strategy the model's variables were made in (TensorFlow), else no scope."""
        strategy = getattr(self.model, "distribute_strategy", None)
        return strategy.scope() if strategy is not None else contextlib.nullcontext()


@contextlib.contextmanager
def _in_training_mode(layers):
    """`layers` run in training mode whatever the model is called with (Keras has no per-layer
    switch: each layer's call is wrapped on the instance while the block runs)."""
    def forced(call):
        return lambda *args, training=None, **kwargs: call(*args, training=True, **kwargs)

    for layer in layers:
        layer.call = forced(layer.call)
    try:
        yield
    finally:
        for layer in layers:
            del layer.call  # back to the class's


def _to_numpy(features):
    return keras.tree.map_structure(np.asarray, features)


class RecomputeBeforeValidation(keras.callbacks.Callback):
    """Fit's callback: the statistics are recomputed before each validation (fit's evaluate
    calls on_test_begin), or at the end of each epoch of a run without a validation split;
    placed before the callbacks that checkpoint or test at the epoch's end."""

    def __init__(self, statistics, has_validation):
        super().__init__()
        self.statistics = statistics
        self.has_validation = has_validation

    def on_test_begin(self, logs=None):
        self.statistics.recompute()

    def on_epoch_end(self, epoch, logs=None):
        if not self.has_validation:
            self.statistics.recompute()
