"""Unsupervised pretraining: a Deep Belief Network on images, then fine-tuning.

Greedy layer-wise (Hinton, Osindero & Teh, 2006): RBM 1 learns the pixels,
RBM 2 learns RBM 1's hidden probabilities, and so on, each fed through
tf.data from the layers below. The stack is then unrolled into a sigmoid
MLP classifier initialised from the RBM weights and fine-tuned with
backprop by the shared pipeline (same run dir, metrics and export as every
app). With `data.labeled=N` only N labelled examples are used for
fine-tuning (semi-supervised) and, with `compare_random_init`, the same net
is also trained from a random initialisation on the same labels.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from apps.image_classification.app import ImageClassification
from apps.unsupervised_pretraining import plots
from apps.unsupervised_pretraining.config import DBNConfig
from apps.unsupervised_pretraining.rbm_training import fit_rbm
from training import plots as shared_plots
from training.app import App

FEATURE_BATCH = 1024  # batch for computing a layer's features once, before caching


class UnsupervisedPretraining(ImageClassification):
    name = "unsupervised_pretraining"
    description = "Deep Belief Network: greedy layer-wise RBM pretraining, then fine-tuning."
    config_class = DBNConfig

    # The image app's resolve_auto sets model.augment, which the DBN's MLP does not have.
    resolve_auto = App.resolve_auto
    # data.labeled keeps a sample of the training split: its labels are read from build_data.
    labels = App.labels

    def __init__(self, config):
        super().__init__(config)
        self.rbms = []
        self.normalizer = None

    # -- data -----------------------------------------------------------------
    def build_data(self, split):
        ds = super().build_data(split)
        labeled = self.config.data.labeled
        if split == "train" and labeled is not None and ds is not None:
            # A fixed random subset per seed: reshuffle_each_iteration=False.
            ds = ds.shuffle(int(ds.cardinality()), seed=self.config.seed,
                            reshuffle_each_iteration=False).take(labeled)
        return ds

    def _pixels(self, split):
        """Batched visible vectors of a split's images (labels dropped), or None."""
        ds = self.source.dataset(split)
        if ds is None:
            return None
        return ds.map(lambda image, label: tf.reshape(tf.cast(image, tf.float32) / 255.0, [-1])
                      ).batch(FEATURE_BATCH)

    # -- pretraining ----------------------------------------------------------
    def pretrain(self, run_dir, compile_options):
        if not self.config.model.pretrained:
            return
        p, m = self.config.pretrain, self.config.model
        out = os.path.join(run_dir, "pretraining")
        os.makedirs(out, exist_ok=True)
        train, val = self._pixels("train"), self._pixels("validation")
        if m.visible == "gaussian":
            self.normalizer = keras.layers.Normalization(name="standardize", dtype="float32")
            self.normalizer.adapt(train)
            train, val = (d.map(self.normalizer) if d is not None else None for d in (train, val))
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        histories = []
        for i, units in enumerate(m.hidden):
            path = os.path.join(out, f"rbm_{i + 1}.keras")
            visible = m.visible if i == 0 else "bernoulli"
            if os.path.exists(path):  # a resumed run keeps the RBMs it already trained
                rbm = keras.saving.load_model(path).layers[-1]
                print(f"Pretraining: loaded RBM {i + 1} from {path}")
            else:
                print(f"Pretraining RBM {i + 1}/{len(m.hidden)}: "
                      f"{train.element_spec.shape[-1]} -> {units} ({visible} visible units)")
                rbm = fit_rbm(
                    self._shuffled(train), units, epochs=p.epochs, visible=visible,
                    learning_rate=p.gaussian_learning_rate if visible == "gaussian" else p.learning_rate,
                    batch_size=p.batch_size * replicas, cd_k=p.cd_k, persistent=p.persistent,
                    momentum=(p.momentum, p.final_momentum, p.momentum_switch_epoch),
                    weight_decay=p.weight_decay, sparsity_target=p.sparsity_target,
                    sparsity_cost=p.sparsity_cost, validation_data=val,
                    log_dir=os.path.join(out, f"rbm_{i + 1}"), verbose=self.config.runtime.keras_verbose(),
                    seed=self.config.seed + i, **compile_options)
                keras.Sequential([keras.Input((rbm.kernel.shape[0],)), rbm]).save(path)
                histories.append(rbm.history)
            self.rbms.append(rbm)
            train, val = (self._features(d, rbm) if d is not None else None for d in (train, val))
        if histories:
            plots.pretraining_curves(histories, os.path.join(run_dir, "pretraining_curves.png"))
        self._plot_first_layer(run_dir)

    def _shuffled(self, batched):
        """Example-level shuffle of a batched, cached feature stream (fit_rbm batches it)."""
        return batched.unbatch().shuffle(60000, seed=self.config.seed)

    def _features(self, batched, rbm):
        """The next layer's input: this RBM's P(h|v) in float32 (under mixed precision too),
        computed once per example and cached.
        Under TensorFlow the RBM runs inside tf.data's map; another backend's layer cannot
        run in a TF graph, so its features are computed batch by batch and held in memory."""
        if keras.backend.backend() == "tensorflow":
            return batched.map(rbm.prob_h, num_parallel_calls=tf.data.AUTOTUNE).cache()
        features = np.concatenate([keras.ops.convert_to_numpy(rbm.prob_h(np.asarray(b)))
                                   for b in batched])
        return tf.data.Dataset.from_tensor_slices(features).batch(FEATURE_BATCH)

    def _plot_first_layer(self, run_dir):
        shape = self.info.shape[:2] if self.info.shape[-1] == 1 else self.info.shape
        rbm = self.rbms[0]
        plots.filters_grid(rbm.kernel, shape, os.path.join(run_dir, "rbm_filters.png"))
        images = np.asarray(next(iter(self._pixels("train").unbatch().batch(10))))
        visible = self.normalizer(images) if self.normalizer is not None else images
        rebuilt = keras.ops.convert_to_numpy(rbm.reconstruct(visible))
        if self.normalizer is not None:  # back to pixel scale for display
            rebuilt = (rebuilt * np.sqrt(keras.ops.convert_to_numpy(self.normalizer.variance))
                       + keras.ops.convert_to_numpy(self.normalizer.mean))
        shared_plots.reconstructions(images, rebuilt, shape,
                                     os.path.join(run_dir, "rbm_reconstructions.png"),
                                     "inputs (top) and RBM reconstructions (bottom)")

    # -- the fine-tuned classifier ---------------------------------------------
    def build_model(self):
        return self._classifier(pretrained=self.config.model.pretrained)

    def _classifier(self, pretrained):
        m = self.config.model
        inputs = keras.Input(self.info.shape, dtype="uint8", name="image")
        x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
        x = keras.layers.Flatten(name="flatten")(x)
        if m.visible == "gaussian":
            if self.normalizer is None:  # random init: fit the standardisation anyway
                self.normalizer = keras.layers.Normalization(name="standardize", dtype="float32")
                self.normalizer.adapt(self._pixels("train"))
            x = self.normalizer(x)
        for i, units in enumerate(m.hidden):
            name = f"hidden_{i + 1}"
            if pretrained:
                dense = self.rbms[i].as_dense(name=name)
            else:
                dense = keras.layers.Dense(units, activation="sigmoid", name=name)
            x = dense(x)
            if m.dropout:
                x = keras.layers.Dropout(m.dropout, name=f"dropout_{i + 1}")(x)
        outputs = keras.layers.Dense(self.info.num_classes, activation="softmax", dtype="float32",
                                     name="probabilities")(x)
        return keras.Model(inputs, outputs, name="dbn" if pretrained else "mlp_random_init")

    # -- report ----------------------------------------------------------------
    def report(self, model, test_data, run_dir):
        if not (self.config.compare_random_init and self.config.model.pretrained):
            return {}
        print("Training the same net from a random initialisation on the same labels...")
        keras.utils.set_random_seed(self.config.seed)
        baseline = self._classifier(pretrained=False)
        baseline.compile(optimizer=keras.optimizers.deserialize(
                             keras.optimizers.serialize(model.optimizer)),
                         steps_per_execution=model.steps_per_execution, **{
                             k: v for k, v in self.compile_args().items() if k != "optimizer"})
        batch = self.config.batch_size
        train = self.build_data("train").shuffle(60000, seed=self.config.seed).batch(batch)
        val = self.build_data("validation")
        val = val.batch(batch) if val is not None else None
        # Mirror the pipeline: keep the best validation epoch.
        keep_best = [keras.callbacks.EarlyStopping(monitor="val_loss" if val else "loss",
                                                   patience=self.config.epochs,
                                                   restore_best_weights=True)]
        baseline.fit(train, validation_data=val, epochs=self.config.epochs, callbacks=keep_best,
                     shuffle=False,
                     verbose=self.config.runtime.keras_verbose())
        random_init = baseline.evaluate(test_data, return_dict=True, verbose=0)
        pretrained = model.evaluate(test_data, return_dict=True, verbose=0)
        gain = 100 * (pretrained["accuracy"] - random_init["accuracy"])
        print(f"Test accuracy with {self.config.data.labeled or 'all'} labels: pretrained "
              f"{pretrained['accuracy']:.4f}, random init {random_init['accuracy']:.4f} "
              f"({gain:+.2f} points)")
        return {"random_init_test": {k: float(v) for k, v in random_init.items()},
                "pretraining_gain_points": float(gain)}
