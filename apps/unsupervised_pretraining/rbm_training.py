"""Train one RBM under `model.fit`: CD-k / PCD train_step, momentum schedule, monitoring.

`fit_rbm` is the plain entry point; the DBN app (`app.py`) stacks RBMs
trained with it into a Deep Belief Network.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from apps.unsupervised_pretraining.config import PCD_MAX_MOMENTUM
from layers.rbm import RBM
from layers.rbm_likelihood import pseudo_log_likelihood
from training.runtime import backend

CD_MOMENTUM = (0.5, 0.9, 5)  # Hinton's guide, section 9
PCD_MOMENTUM = (0.0, 0.0, 0)  # plain SGD, as scikit-learn's BernoulliRBM
HISTORY_FILE = "history.csv"  # each RBM's per-epoch log, in its own log_dir
MONITOR_EXAMPLES = 1000  # size of the fixed train/validation samples the monitor scores


class RBMTrainer(keras.Model):
    """Wraps an RBM layer; `fit` trains it by contrastive divergence, under any Keras backend.

    The loss is the layer's CD objective (`RBM.cd_objective`: mean free energy of the data
    minus that of the model's samples, held constant), whose gradient is the CD update, plus
    weight_decay / 2 * |W|^2 on the weights only (Hinton's "weight cost") and an optional
    sparsity term pulling each hidden unit's mean activation on the batch toward
    `sparsity_target`. Keras' own train step differentiates it and any Keras optimizer
    applies it; no backend-specific train_step. The trainer computes in float32 whatever the
    global policy; under mixed_bfloat16 only the RBM's matmuls run in bfloat16 (layers.RBM), so
    the probabilities and samples keep float32's precision.

    Logged: `loss`, the CD objective with those terms (not a likelihood; it may be negative),
    per step; `val_reconstruction_error`, the mean squared error of the mean-field
    reconstruction of validation data (Keras' val_loss, renamed by RBMLogNames; per training
    step it would cost one more matmul per batch, so `RBMMonitor` adds it for a training
    sample).
    """

    def __init__(self, rbm, weight_decay=1e-4, sparsity_target=None, sparsity_cost=0.0, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.rbm = rbm
        self.weight_decay = float(weight_decay)
        self.sparsity_target = sparsity_target
        self.sparsity_cost = float(sparsity_cost)

    def build(self, input_shape):
        if not self.rbm.built:
            self.rbm.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=False):
        """Training: adds the CD loss and returns P(h|v); otherwise the reconstruction."""
        rbm = self.rbm
        v = ops.cast(inputs, rbm.kernel.dtype)
        if not training:
            return rbm.reconstruct(v)
        objective, p_h = rbm.cd_objective(v)
        if self.weight_decay:
            objective += 0.5 * self.weight_decay * ops.sum(ops.square(rbm.kernel))
        if self.sparsity_target is not None and self.sparsity_cost:
            # Hinton's guide, 11: the sparsity cross-entropy's derivative with respect to
            # each hidden unit's total input is (q - target); the mean total input is linear
            # in the weights, so this term's gradient is exactly that.
            q_minus_p = ops.stop_gradient(self.sparsity_cost
                                          * (ops.mean(p_h, axis=0) - self.sparsity_target))
            mean_input = ops.matmul(ops.mean(v, axis=0, keepdims=True), rbm.kernel)[0] + rbm.hidden_bias
            objective += ops.sum(q_minus_p * mean_input)
        self.add_loss(objective)
        return p_h

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:
            return super().compute_loss(x, y, y_pred, sample_weight, training)  # the CD loss
        v = ops.cast(x[0] if isinstance(x, (tuple, list)) else x, y_pred.dtype)
        return ops.mean(ops.square(v - y_pred))  # validation: the reconstruction error


class RBMLogNames(keras.callbacks.Callback):
    """Keras logs the validation reconstruction error as val_loss (RBMTrainer.compute_loss);
    this names it `val_reconstruction_error` before the history and CSV logs see it."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_loss" in logs:
            logs["val_reconstruction_error"] = logs.pop("val_loss")


class MomentumSchedule(keras.callbacks.Callback):
    """SGD momentum `initial` for the first `switch_epoch` epochs, then `final`
    (Hinton's guide, section 9: 0.5 then 0.9).

    Keras' SGD reads `momentum` as a Python float when the train function is
    traced, so a change retraces it (once).
    """

    def __init__(self, initial=0.5, final=0.9, switch_epoch=5):
        super().__init__()
        self.initial, self.final, self.switch_epoch = initial, final, switch_epoch

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not isinstance(optimizer, keras.optimizers.SGD):
            return
        momentum = self.initial if epoch < self.switch_epoch else self.final
        if optimizer.momentum != momentum:
            optimizer.momentum = momentum
            self.model.make_train_function(force=True)


class RBMMonitor(keras.callbacks.Callback):
    """Adds Hinton's overfitting signals to each epoch's logs.

    reconstruction_error: mean squared error of the mean-field
    reconstruction of a fixed training sample. free_energy_train /
    free_energy_val: mean free energy of that sample and of validation data;
    free_energy_gap = val - train, which grows when the RBM overfits.
    pseudo_log_likelihood: on the validation sample (the training sample
    without one), bernoulli units only.
    """

    def __init__(self, train_sample, validation_sample=None, seed=0):
        super().__init__()
        self.train_sample = train_sample
        self.validation_sample = validation_sample
        self.seed = seed

    def _free_energy(self, rbm, v):
        return float(ops.mean(rbm.free_energy(ops.convert_to_tensor(v, rbm.kernel.dtype))))

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        rbm = self.model.rbm
        sample = ops.convert_to_tensor(self.train_sample, rbm.kernel.dtype)
        logs["reconstruction_error"] = float(ops.mean(ops.square(sample - rbm.reconstruct(sample))))
        logs["free_energy_train"] = self._free_energy(rbm, self.train_sample)
        scored = self.train_sample
        if self.validation_sample is not None:
            logs["free_energy_val"] = self._free_energy(rbm, self.validation_sample)
            logs["free_energy_gap"] = logs["free_energy_val"] - logs["free_energy_train"]
            scored = self.validation_sample
        if rbm.visible == "bernoulli":
            logs["pseudo_log_likelihood"] = pseudo_log_likelihood(rbm, scored, self.seed + epoch)


def _as_batched(x, batch_size, shuffle_seed):
    """(batched dataset of visible vectors, number of visible units)."""
    if isinstance(x, tf.data.Dataset):
        ds = x
        if isinstance(ds.element_spec, tuple):  # (features, labels): keep the features
            ds = ds.map(lambda *e: e[0])
        rank = len(ds.element_spec.shape)
        if rank == 1:
            ds = ds.batch(batch_size)
        elif rank != 2:
            raise ValueError(f"fit_rbm needs vectors: a dataset of shape (visible,) or "
                             f"(batch, visible), got {ds.element_spec.shape}")
        return ds.prefetch(tf.data.AUTOTUNE), ds.element_spec.shape[-1]
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"fit_rbm needs a 2-D array (examples, visible units), got {x.shape}")
    # Shuffle row indices and gather whole batches: shuffling 60k 784-float
    # examples one by one costs more than a PCD step on them.
    table = tf.constant(x)
    ds = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=shuffle_seed,
                                               reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda rows: tf.gather(table, rows))
    return ds.prefetch(tf.data.AUTOTUNE), x.shape[1]


def _sample_and_mean(ds, limit=MONITOR_EXAMPLES):
    """(first `limit` vectors, mean over the whole dataset, batches) in one streamed pass."""
    sample, total, count, batches = [], 0.0, 0, 0
    for batch in ds:
        batches += 1
        batch = batch.numpy()
        if sum(len(s) for s in sample) < limit:
            sample.append(batch)
        total = total + batch.sum(axis=0, dtype=np.float64)
        count += len(batch)
    if not count:
        raise ValueError("fit_rbm got no training examples")
    return np.concatenate(sample)[:limit], (total / count).astype(np.float32), batches


def _with_length(ds, batches):
    """Tell Keras the number of batches, for the progress bar and clean epoch ends."""
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def fit_rbm(x, units, epochs=10, visible="bernoulli", learning_rate=None, batch_size=64,
            cd_k=1, persistent=False, chains=None, momentum=None, weight_decay=1e-4,
            sparsity_target=None, sparsity_cost=0.0, optimizer=None, validation_data=None,
            monitor=True, callbacks=(), steps_per_execution=1, jit_compile=False,
            log_dir=None, verbose="auto", seed=None):
    """Train one RBM on `x` and return the trained `layers.RBM`.

    Args:
        x: NumPy array (examples, visible), or a tf.data.Dataset of vectors
            (batched or not; (features, labels) pairs keep the features).
            Bernoulli units expect values in [0, 1]; gaussian units expect
            standardised values.
        units: hidden units.
        epochs: passes over `x`.
        learning_rate: SGD step on the batch-mean gradient; default 0.05 for
            bernoulli and 0.001 for gaussian visible units (Hinton's guide, 13.2).
        cd_k, persistent, chains: CD-k (default CD-1) or persistent CD with
            `chains` chains (default: one per batch example, as scikit-learn's
            BernoulliRBM).
        momentum: (initial, final, switch_epoch) for the default SGD. Default:
            Hinton's 0.5 then 0.9 from epoch 5 for CD; plain SGD (0, 0, 0), as
            scikit-learn's BernoulliRBM, for PCD. PCD refuses momentum above
            0.5: at 0.9 the chains lag the weights and training diverges (seen
            on Fashion-MNIST: reconstruction error 0.024 -> 0.078 at the switch;
            on scikit-learn's digits, features scored 0.527 against 0.935).
        weight_decay: L2 cost on the weights only.
        sparsity_target, sparsity_cost: optional hidden-activity target.
        optimizer: any Keras optimizer instead of SGD with the momentum schedule.
        validation_data: like `x`; adds val_reconstruction_error and the
            free-energy gap to the logs.
        monitor: log free energies, their gap and the pseudo-log-likelihood per epoch.
        log_dir: if set, write the per-epoch history to `log_dir/HISTORY_FILE`.
        steps_per_execution, jit_compile: passed to `compile` (under JAX every step is
            compiled: training/runtime/backend.py's jit_compile).
    """
    if visible not in ("bernoulli", "gaussian"):
        raise ValueError(f"visible must be 'bernoulli' or 'gaussian', got {visible!r}")
    ds, n_visible = _as_batched(x, batch_size, seed)
    val_ds = _as_batched(validation_data, batch_size, None)[0] if validation_data is not None else None
    if learning_rate is None:
        learning_rate = 0.05 if visible == "bernoulli" else 0.001
    train_sample, data_mean, batches = _sample_and_mean(ds)
    ds = _with_length(ds, batches)
    val_sample = None
    if val_ds is not None:
        val_sample, _, val_batches = _sample_and_mean(val_ds)
        val_ds = _with_length(val_ds, val_batches)

    rbm = RBM(units, visible=visible, cd_k=cd_k, persistent=persistent,
              chains=chains or batch_size, seed=seed)
    trainer = RBMTrainer(rbm, weight_decay=weight_decay, sparsity_target=sparsity_target,
                         sparsity_cost=sparsity_cost)
    rbm.build((None, n_visible))
    rbm.init_from_data_mean(data_mean)

    callbacks = [RBMLogNames(), *callbacks]
    if optimizer is None:
        if momentum is None:
            momentum = PCD_MOMENTUM if persistent else CD_MOMENTUM
        initial, final, switch_epoch = float(momentum[0]), float(momentum[1]), int(momentum[2])
        if persistent and max(initial, final) > PCD_MAX_MOMENTUM:
            raise ValueError(f"momentum={tuple(momentum)} with persistent=True: PCD diverges with "
                             f"momentum above {PCD_MAX_MOMENTUM}; use e.g. (0.5, 0.5, 0), or leave "
                             "momentum out for plain SGD")
        if initial == 0 and final != 0:
            raise ValueError("momentum=(0, final, epoch): SGD builds its momentum slots only for a "
                             "non-zero start; start at e.g. 0.5, or use (0, 0, 0) for plain SGD")
        optimizer = keras.optimizers.SGD(learning_rate, momentum=initial)
        callbacks.insert(0, MomentumSchedule(initial, final, switch_epoch))
    if monitor:
        callbacks.append(RBMMonitor(train_sample, val_sample, seed=seed or 0))
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(log_dir, HISTORY_FILE)))
    trainer.compile(optimizer=optimizer, steps_per_execution=steps_per_execution,
                    jit_compile=backend.jit_compile(jit_compile))
    trainer.fit(ds, epochs=epochs, validation_data=val_ds, callbacks=callbacks, verbose=verbose,
                shuffle=False)  # the data are shuffled above (arrays) or by the caller (datasets)
    rbm.history = trainer.history.history
    return rbm
