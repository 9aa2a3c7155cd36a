"""Restricted Boltzmann machine: binary hidden units, Bernoulli or Gaussian visible units."""

import keras
from keras import ops

from layers.serialization import SERIALIZATION_PACKAGE

VISIBLE_TYPES = ("bernoulli", "gaussian")


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class RBM(keras.layers.Layer):
    """A restricted Boltzmann machine whose forward pass is P(h=1 | v).

    Energies (W: kernel, b: visible_bias, c: hidden_bias):

    * bernoulli visible units (values in [0, 1]): E(v, h) = -b.v - c.h - v.W.h
    * gaussian visible units with sigma = 1 (standardise the inputs first):
      E(v, h) = |v - b|^2 / 2 - c.h - v.W.h

    `call(v)` = sigmoid(v.W + c), so trained RBMs stack into a feed-forward
    net (a DBN) and unroll into Dense layers (`as_dense`). The sampling
    methods (`sample_h`, `sample_v`, `gibbs_step`) and `cd_objective` feed
    contrastive-divergence training, which `apps.unsupervised_pretraining.rbm_training.RBMTrainer`
    runs under `model.fit`.

    Under a mixed_bfloat16 policy the matmuls compute in bfloat16 (where the speed is);
    everything else, the probabilities, the sampling and the free energies' sums, stays
    float32: a bfloat16 probability has 8 bits, so P(h=1)=0.9995 would round to 1 and its
    unit would never switch off. Under mixed_float16 the matmuls stay float32 too: CD
    gradients are small, and float16 would flush them to zero without loss scaling.

    Args:
        units: number of hidden units.
        visible: "bernoulli" or "gaussian".
        cd_k: Gibbs steps per negative phase.
        persistent: keep the negative chains between updates (PCD,
            Tieleman 2008) instead of restarting them at the data (CD-k).
        chains: number of persistent chains (PCD only).
        seed: seed of the layer's random stream.
    """

    def __init__(self, units, visible="bernoulli", cd_k=1, persistent=False, chains=64,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        if visible not in VISIBLE_TYPES:
            raise ValueError(f"visible must be one of {VISIBLE_TYPES}, got {visible!r}")
        if int(cd_k) < 1:
            raise ValueError(f"cd_k must be >= 1 Gibbs step, got {cd_k}")
        if persistent and int(chains) < 1:
            raise ValueError(f"persistent CD needs chains >= 1, got {chains}")
        self.units = int(units)
        self.visible = visible
        self.cd_k = int(cd_k)
        self.persistent = bool(persistent)
        self.chains = int(chains)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        n_visible = input_shape[-1]
        if n_visible is None or len(input_shape) != 2:
            raise ValueError(f"RBM expects inputs of shape (batch, visible units), got {input_shape}")
        # Hinton's practical guide, section 8: small random weights, zero hidden biases.
        self.kernel = self.add_weight(
            shape=(n_visible, self.units), name="kernel",
            initializer=keras.initializers.RandomNormal(stddev=0.01, seed=self.seed))
        self.visible_bias = self.add_weight(shape=(n_visible,), name="visible_bias",
                                            initializer="zeros")
        self.hidden_bias = self.add_weight(shape=(self.units,), name="hidden_bias",
                                           initializer="zeros")
        if self.persistent:
            # Only replica 0's chains are kept under a distribution strategy.
            self.chain = self.add_weight(shape=(self.chains, self.units), name="chain",
                                         initializer="zeros", trainable=False,
                                         aggregation="only_first_replica")

    # The conditionals ------------------------------------------------------

    def _matmul(self, x, w):
        """x.w, in float32; computed in bfloat16 under a mixed_bfloat16 policy (class doc)."""
        dtype = "bfloat16" if self.compute_dtype == "bfloat16" else "float32"
        return ops.cast(ops.matmul(ops.cast(x, dtype), ops.cast(w, dtype)), "float32")

    def hidden_logits(self, v):
        return self._matmul(v, self.kernel) + ops.cast(self.hidden_bias, "float32")

    def call(self, inputs):
        return ops.cast(self.prob_h(inputs), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def prob_h(self, v):
        """P(h=1 | v), in float32."""
        return ops.sigmoid(self.hidden_logits(v))

    def mean_v(self, h):
        """E[v | h]: P(v=1 | h) for bernoulli units, the Gaussian mean for gaussian ones."""
        logits = self._matmul(h, ops.transpose(self.kernel)) + ops.cast(self.visible_bias, "float32")
        return ops.sigmoid(logits) if self.visible == "bernoulli" else logits

    def _bernoulli(self, p):
        u = keras.random.uniform(ops.shape(p), dtype=p.dtype, seed=self.seed_generator)
        return ops.cast(u < p, p.dtype)

    def sample_h(self, v):
        """(P(h=1|v), a binary sample of h)."""
        p = self.prob_h(v)
        return p, self._bernoulli(p)

    def sample_v(self, h):
        """(E[v|h], a sample of v): binary for bernoulli units, mean + N(0, 1) for gaussian."""
        mean = self.mean_v(h)
        if self.visible == "bernoulli":
            return mean, self._bernoulli(mean)
        noise = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean, mean + noise

    def gibbs_step(self, v):
        """One v -> h -> v step; returns (E[v'|h], sampled v')."""
        _, h = self.sample_h(v)
        return self.sample_v(h)

    def reconstruct(self, v):
        """Mean-field reconstruction E[v | h = P(h|v)], for monitoring."""
        return self.mean_v(self.prob_h(v))

    def free_energy(self, v, hidden_logits=None):
        """F(v) = -log sum_h exp(-E(v, h)), one value per example.

        Pass `hidden_logits` (= v.W + c) when already computed, to skip a matmul.
        """
        if hidden_logits is None:
            hidden_logits = self.hidden_logits(v)
        hidden_term = ops.sum(ops.softplus(hidden_logits), axis=-1)
        if self.visible == "bernoulli":
            visible_term = -ops.sum(v * self.visible_bias, axis=-1)
        else:
            visible_term = 0.5 * ops.sum(ops.square(v - self.visible_bias), axis=-1)
        return visible_term - hidden_term

    def model_samples(self, v):
        """Negative-phase visible samples (no gradient) for a CD update on batch `v`.

        CD-k runs `cd_k` Gibbs steps from the data and returns the last
        visible mean (Hinton's guide, 3.2). PCD continues the persistent
        chains, which hold hidden states as in scikit-learn's BernoulliRBM,
        and returns their visible samples; `cd_objective` advances the
        chains' hidden states.
        """
        if self.persistent:
            h = ops.cast(self.chain, v.dtype)
            for _ in range(self.cd_k - 1):
                _, h = self.sample_h(self.sample_v(h)[1])
            return ops.stop_gradient(self.sample_v(h)[1])
        _, h = self.sample_h(v)
        for _ in range(self.cd_k - 1):
            _, h = self.sample_h(self.sample_v(h)[1])
        return ops.stop_gradient(self.mean_v(h))

    def cd_objective(self, v):
        """(CD objective, P(h|v)) for one update on batch `v`: mean F(v) - mean F(v_model),
        the model samples held constant, whose gradient (any backend's autodiff) is the CD-k /
        PCD update. Data and model samples share one matmul each way (one concatenated
        batch), as a written-out gradient would. Advances the PCD chains' hidden states."""
        n = ops.shape(v)[0]
        v_model = self.model_samples(v)
        m = ops.shape(v_model)[0]
        both = ops.concatenate([v, v_model], axis=0)
        logits = self.hidden_logits(both)
        # +1/n for data rows, -1/m for model rows: sums become mean(data) - mean(model).
        weights = ops.concatenate([ops.full((n,), 1.0, v.dtype) / ops.cast(n, v.dtype),
                                   ops.full((m,), -1.0, v.dtype) / ops.cast(m, v.dtype)])
        objective = ops.sum(self.free_energy(both, logits) * weights)
        p_h = ops.stop_gradient(ops.sigmoid(logits))
        if self.persistent:
            self.chain.assign(ops.cast(self._bernoulli(p_h[n:]), self.chain.dtype))
        return objective, p_h[:n]

    def init_from_data_mean(self, mean):
        """Hinton's guide, 8: visible bias = logit of the data mean (the mean itself for
        gaussian units). Persistent chains start with all hidden units off, so their
        first visible samples follow that base rate."""
        mean = ops.convert_to_tensor(mean, self.visible_bias.dtype)
        if self.visible == "bernoulli":
            p = ops.clip(mean, 1e-3, 1 - 1e-3)
            self.visible_bias.assign(ops.log(p) - ops.log1p(-p))
        else:
            self.visible_bias.assign(mean)
        if self.persistent:
            self.chain.assign(ops.zeros_like(self.chain))

    def as_dense(self, name=None):
        """A built keras Dense(units, sigmoid) with this RBM's kernel and hidden bias."""
        dense = keras.layers.Dense(self.units, activation="sigmoid", name=name)
        dense.build((None, self.kernel.shape[0]))
        dense.set_weights([ops.convert_to_numpy(self.kernel),
                           ops.convert_to_numpy(self.hidden_bias)])
        return dense

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, visible=self.visible, cd_k=self.cd_k,
                      persistent=self.persistent, chains=self.chains, seed=self.seed)
        return config
