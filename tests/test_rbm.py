"""layers.RBM and its likelihood tools against NumPy references and brute force."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src import testing

from apps.unsupervised_pretraining.rbm_training import fit_rbm
from layers import RBM
from layers.rbm_likelihood import (
    ais_log_partition,
    exact_log_partition,
    log_likelihood,
    pseudo_log_likelihood,
)


def random_rbm(n_visible, n_hidden, visible="bernoulli", scale=1.0, seed=0, **kwargs):
    rbm = RBM(n_hidden, visible=visible, seed=seed, **kwargs)
    rbm.build((None, n_visible))
    rng = np.random.default_rng(seed)
    rbm.kernel.assign(rng.normal(0, scale, (n_visible, n_hidden)).astype("float32"))
    rbm.visible_bias.assign(rng.normal(0, 1, n_visible).astype("float32"))
    rbm.hidden_bias.assign(rng.normal(0, 1, n_hidden).astype("float32"))
    return rbm


def numpy_params(rbm):
    return [np.asarray(w, np.float64) for w in (rbm.kernel, rbm.visible_bias, rbm.hidden_bias)]


class RBMLayerContractTest(testing.TestCase):
    def test_bernoulli_pcd_contract(self):
        self.run_layer_test(
            RBM,
            init_kwargs={"units": 4, "persistent": True, "chains": 3, "seed": 1},
            input_shape=(2, 6),
            expected_output_shape=(2, 4),
            expected_num_trainable_weights=3,  # kernel, visible_bias, hidden_bias
            expected_num_non_trainable_weights=1,  # the persistent chains
            expected_num_seed_generators=1,
            supports_masking=False,
        )

    def test_gaussian_cd_contract(self):
        self.run_layer_test(
            RBM,
            init_kwargs={"units": 3, "visible": "gaussian", "cd_k": 2},
            input_shape=(2, 5),
            expected_output_shape=(2, 3),
            expected_num_trainable_weights=3,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            supports_masking=False,
        )


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_and_conditionals_match_numpy(visible):
    rbm = random_rbm(5, 3, visible)
    W, b, c = numpy_params(rbm)
    v = np.random.default_rng(1).random((4, 5))
    if visible == "bernoulli":
        v = (v > 0.5).astype(np.float64)
    # F(v) = -log sum_h exp(-E(v, h)), by brute force over all 2^3 hidden states.
    energies = []
    for h in itertools.product([0.0, 1.0], repeat=3):
        h = np.array(h)
        visible_energy = -v @ b if visible == "bernoulli" else 0.5 * ((v - b) ** 2).sum(1)
        energies.append(visible_energy - h @ c - (v @ W) @ h)
    expected_free = -np.log(np.exp(-np.stack(energies)).sum(0))
    np.testing.assert_allclose(rbm.free_energy(v.astype("float32")), expected_free, rtol=1e-5, atol=1e-5)

    np.testing.assert_allclose(rbm(v.astype("float32")), 1 / (1 + np.exp(-(v @ W + c))), atol=1e-6)
    np.testing.assert_allclose(rbm.prob_h(v.astype("float32")), rbm(v.astype("float32")))
    h = (np.random.default_rng(2).random((4, 3)) > 0.5).astype(np.float64)
    logits = h @ W.T + b
    expected_mean = 1 / (1 + np.exp(-logits)) if visible == "bernoulli" else logits
    np.testing.assert_allclose(rbm.mean_v(h.astype("float32")), expected_mean, atol=1e-5)


def test_samples_follow_their_conditionals():
    rbm = random_rbm(6, 4)
    v = np.ones((20000, 6), "float32")
    p, h = rbm.sample_h(v)
    assert set(np.unique(h)) <= {0.0, 1.0}
    np.testing.assert_allclose(np.mean(h, 0), p[0], atol=0.02)
    mean, sample = rbm.gibbs_step(v)
    assert sample.shape == (20000, 6) and set(np.unique(sample)) <= {0.0, 1.0}
    gaussian = random_rbm(3, 2, "gaussian")
    mean, sample = gaussian.sample_v(np.zeros((20000, 2), "float32"))
    np.testing.assert_allclose(np.std(np.asarray(sample) - np.asarray(mean), 0), 1.0, atol=0.03)


@pytest.mark.parametrize("visible,persistent", [("bernoulli", False), ("bernoulli", True),
                                                ("gaussian", True)])
def test_cd_objective_gradient_is_the_cd_update(visible, persistent, monkeypatch):
    rbm = random_rbm(7, 5, visible, scale=0.3, persistent=persistent, chains=6, cd_k=2)
    v = np.random.default_rng(3).random((8, 7)).astype("float32")
    # Fix the negative samples so both sides see the same ones.
    v_model = (np.random.default_rng(4).random((6 if persistent else 8, 7)) > 0.5).astype("float32")
    monkeypatch.setattr(rbm, "model_samples", lambda data: tf.constant(v_model))
    variables = [rbm.kernel, rbm.visible_bias, rbm.hidden_bias]
    with tf.GradientTape() as tape:
        objective, p_h = rbm.cd_objective(tf.constant(v))
    gradients = tape.gradient(objective, variables)
    # The CD update written out (Hinton's guide, 3): data minus model statistics, negated.
    W, b, c = numpy_params(rbm)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    p_data, p_model = sigmoid(v @ W + c), sigmoid(v_model @ W + c)
    expected = [-(v.T @ p_data / len(v) - v_model.T @ p_model / len(v_model)),
                -(v.mean(0) - v_model.mean(0)), -(p_data.mean(0) - p_model.mean(0))]
    for got, want, var in zip(gradients, expected, variables):
        assert got.shape == var.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    gap = np.mean(np.asarray(rbm.free_energy(v))) - np.mean(np.asarray(rbm.free_energy(v_model)))
    np.testing.assert_allclose(objective, gap, rtol=1e-5)
    np.testing.assert_allclose(p_h, rbm(v), atol=1e-6)


def test_cd_gradient_pulls_toward_the_data():
    # Data with every unit on; a model whose visible bias keeps units off.
    rbm = RBM(4, seed=0)
    rbm.build((None, 6))
    rbm.visible_bias.assign(np.full(6, -6.0, "float32"))
    with tf.GradientTape() as tape:
        objective, _ = rbm.cd_objective(tf.ones((32, 6)))
    g_visible = tape.gradient(objective, rbm.visible_bias)
    # Gradient descent raises every visible bias: the data has more "on" than the model.
    assert np.all(np.asarray(g_visible) < -0.9)


def test_persistent_chains_advance_and_hold_binary_hidden_states():
    rbm = random_rbm(6, 4, persistent=True, chains=5)
    states = [np.asarray(rbm.chain).copy()]
    for _ in range(3):
        rbm.cd_objective(np.ones((3, 6), "float32"))
        states.append(np.asarray(rbm.chain).copy())
    assert all(s.shape == (5, 4) and set(np.unique(s)) <= {0.0, 1.0} for s in states)
    assert len({s.tobytes() for s in states}) > 1  # the chains move


def test_exact_log_partition_matches_brute_force():
    rbm = random_rbm(4, 3)
    W, b, c = numpy_params(rbm)
    total = [b @ np.array(v) + c @ np.array(h) + np.array(v) @ W @ np.array(h)
             for v in itertools.product([0, 1], repeat=4) for h in itertools.product([0, 1], repeat=3)]
    assert exact_log_partition(rbm) == pytest.approx(np.log(np.sum(np.exp(total))), abs=1e-9)


def test_exact_log_partition_refuses_too_many_hidden_units():
    rbm = RBM(21)
    rbm.build((None, 3))
    with pytest.raises(ValueError, match="ais_log_partition"):
        exact_log_partition(rbm)


@pytest.mark.parametrize("visible,scale", [("bernoulli", 0.5), ("gaussian", 0.2)])
def test_ais_agrees_with_exact_log_partition(visible, scale):
    rbm = random_rbm(30, 12, visible, scale=scale, seed=5)
    exact = exact_log_partition(rbm)
    estimate, stderr = ais_log_partition(rbm, num_betas=3000, runs=200, seed=0)
    assert abs(estimate - exact) < 0.1, (estimate, exact, stderr)
    assert stderr < 0.1


def toy_patterns(n=300, seed=0):
    """Three 16-pixel prototypes with 5% of pixels flipped."""
    rng = np.random.default_rng(seed)
    prototypes = (rng.random((3, 16)) > 0.5).astype("float32")
    x = prototypes[rng.integers(0, 3, n)]
    flips = rng.random(x.shape) < 0.05
    return np.where(flips, 1 - x, x).astype("float32")


@pytest.mark.parametrize("persistent", [False, True])
def test_training_raises_the_exact_log_likelihood(persistent):
    x = toy_patterns()
    keras.utils.set_random_seed(0)
    untrained = RBM(8, seed=0)
    untrained.build((None, 16))
    before = log_likelihood(untrained, x, exact_log_partition(untrained))
    # PCD with plain SGD: momentum makes its chains lag on so few batches per epoch.
    momentum = (0, 0, 0) if persistent else (0.5, 0.9, 5)
    rbm = fit_rbm(x, 8, epochs=30, batch_size=20, persistent=persistent, learning_rate=0.1,
                  momentum=momentum, monitor=False, verbose=0, seed=0)
    after = log_likelihood(rbm, x, exact_log_partition(rbm))
    # 16 fair coins: -11.09 nats; the 3-prototype mixture with 5% noise: about -4.6.
    assert before < -10.5 and after > -7.0, (before, after)
    assert pseudo_log_likelihood(rbm, x) > pseudo_log_likelihood(untrained, x)


def test_stacked_rbms_round_trip_through_keras_file(tmp_path):
    first, second = RBM(6, persistent=True, chains=4, seed=1), RBM(3, visible="bernoulli", seed=2)
    model = keras.Sequential([keras.Input((10,)), first, second])
    x = np.random.default_rng(0).random((5, 10)).astype("float32")
    first.cd_objective(x)  # move the chains off their initial state
    model.save(tmp_path / "dbn.keras")
    loaded = keras.saving.load_model(tmp_path / "dbn.keras")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    np.testing.assert_array_equal(loaded.layers[0].chain, first.chain)
    assert loaded.layers[0].get_config() == first.get_config()


def test_as_dense_computes_the_same_features():
    rbm = random_rbm(6, 4)
    x = np.random.default_rng(0).random((3, 6)).astype("float32")
    np.testing.assert_allclose(rbm.as_dense()(x), rbm(x), atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"units": 0}, "units"), ({"units": 2, "visible": "poisson"}, "visible"),
    ({"units": 2, "cd_k": 0}, "cd_k"), ({"units": 2, "persistent": True, "chains": 0}, "chains"),
])
def test_bad_arguments_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RBM(**kwargs)


def test_wrong_input_rank_is_a_clear_error():
    with pytest.raises(ValueError, match="batch, visible units"):
        RBM(3).build((None, 4, 4))


def test_pcd_defaults_to_plain_sgd_and_refuses_a_high_momentum():
    """CD's default schedule (0.5, then 0.9 from epoch 5) made PCD diverge silently."""
    x = (np.random.default_rng(0).random((60, 12)) > 0.5).astype("float32")

    class Momentum(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.seen = getattr(self, "seen", []) + [float(self.model.optimizer.momentum)]

    probe = Momentum()
    fit_rbm(x, 4, epochs=7, batch_size=20, persistent=True, monitor=False, verbose=0, seed=0,
            callbacks=[probe])
    assert probe.seen == [0.0] * 7
    fit_rbm(x, 4, epochs=7, batch_size=20, monitor=False, verbose=0, seed=0, callbacks=[probe])
    assert probe.seen[7:] == [0.5] * 5 + [0.9] * 2  # CD keeps Hinton's schedule
    with pytest.raises(ValueError, match="PCD diverges with momentum above 0.5"):
        fit_rbm(x, 4, epochs=1, persistent=True, momentum=(0.5, 0.9, 5), verbose=0)


def test_under_mixed_bfloat16_only_the_matmuls_are_bfloat16():
    """Sampling from bfloat16 probabilities would round P(h=1)=0.9995 to 1; the RBM keeps its
    probabilities, samples and free energies in float32 and computes the matmuls in bfloat16."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        rbm = RBM(1, seed=3)
        rbm.build((None, 1))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    rbm.kernel.assign([[1.0]])
    rbm.hidden_bias.assign([np.log(0.9995 / 0.0005) - 1.0])  # P(h=1 | v=1) = 0.9995
    v = np.ones((200000, 1), "float32")
    p, h = rbm.sample_h(v)
    assert p.dtype == "float32" and h.dtype == "float32"
    np.testing.assert_allclose(np.asarray(p)[0], 0.9995, atol=2e-5)
    assert 0 < 200000 - int(np.sum(h)) < 250  # about 100 units stay off; none would in bfloat16
    assert rbm.free_energy(v[:2]).dtype == "float32"
    assert rbm(v[:2]).dtype == "bfloat16"  # the layer's own output follows its policy
    x = np.random.default_rng(0).random((64, 1)).astype("float32")
    exact = x @ np.asarray(rbm.kernel) + np.asarray(rbm.hidden_bias)
    np.testing.assert_allclose(rbm.hidden_logits(x), exact, rtol=1e-2)
