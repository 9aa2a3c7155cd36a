"""Workaround for Keras 3 `fit` under MultiWorkerMirroredStrategy (TF backend).

Upstream (keras-team/keras#20585, tensorflow/tensorflow#72388), two spots in
keras/src/backend/tensorflow/trainer.py break multi-worker training:

1. `_maybe_symbolic_build` all-reduces the first *data batch* with
   strategy.reduce("MEAN", ..., axis=None) just to learn shapes; across
   workers that is a collective on integer labels / uint8 images.
   Here: take this worker's first local replica batch instead.
2. `reduce_per_replica` reduces metric values with
   strategy.reduce("MEAN", v, axis=0), which fails on scalars.
   Here: reduce scalars with axis=None.

`apply()` is called only for strategy=multi_worker. tests/test_distribution.py
checks that upstream still has both spots, so we learn when to drop this.
"""

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer

_ORIGINAL_REDUCE = tf_trainer.reduce_per_replica
ORIGINAL_SYMBOLIC_BUILD = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
_applied = False


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tree.map_structure(
                lambda x: self.distribute_strategy.experimental_local_results(x)[0]
                if isinstance(x, tf.distribute.DistributedValues) else x, batch)
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _reduce_per_replica(values, strategy, reduction):
    multi_worker = tf_trainer._collective_all_reduce_multi_worker(strategy)
    if not multi_worker or reduction not in ("mean", "auto"):
        return _ORIGINAL_REDUCE(values, strategy, reduction)

    def reduce(v):
        scalar = strategy.experimental_local_results(v)[0].shape.rank == 0
        return strategy.reduce("MEAN", v, axis=None if scalar else 0)

    return tree.map_structure(reduce, values)


def apply():
    """Patch Keras' TF trainer for multi-worker runs (idempotent)."""
    global _applied
    if not _applied:
        tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
        tf_trainer.reduce_per_replica = _reduce_per_replica
        _applied = True
