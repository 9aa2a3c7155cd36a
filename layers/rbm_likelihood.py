"""Log-likelihood of an RBM: exact log Z by enumeration, AIS, pseudo-log-likelihood.

Written in NumPy float64 by hand because neither Keras nor TF ships RBM
partition-function estimators; these run once per evaluation, not per step.
"""

import numpy as np
from keras import ops

MAX_EXACT_HIDDEN = 20  # 2^20 hidden configurations is about a second of work


def _params(rbm):
    return tuple(np.asarray(ops.convert_to_numpy(w), np.float64)
                 for w in (rbm.kernel, rbm.visible_bias, rbm.hidden_bias))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _logsumexp(x):
    top = np.max(x)
    return top + np.log(np.sum(np.exp(x - top)))


def exact_log_partition(rbm, chunk=1 << 16):
    """log Z, summing over every hidden configuration (units <= 20).

    For each h the visible units integrate out in closed form:
    bernoulli: c.h + sum_i softplus(b_i + (W h)_i);
    gaussian (sigma 1): c.h + (|b + W h|^2 - |b|^2) / 2 + n/2 log(2 pi).
    """
    kernel, b, c = _params(rbm)
    n_visible, n_hidden = kernel.shape
    if n_hidden > MAX_EXACT_HIDDEN:
        raise ValueError(f"Exact log Z enumerates 2^units hidden states; {n_hidden} units is too "
                         f"many (at most {MAX_EXACT_HIDDEN}). Use ais_log_partition instead.")
    bits = 1 << np.arange(n_hidden)
    terms = []
    for start in range(0, 1 << n_hidden, chunk):
        codes = np.arange(start, min(start + chunk, 1 << n_hidden))
        h = ((codes[:, None] & bits) > 0).astype(np.float64)
        visible_input = b + h @ kernel.T
        if rbm.visible == "bernoulli":
            term = h @ c + _softplus(visible_input).sum(axis=1)
        else:
            term = (h @ c + 0.5 * (np.square(visible_input).sum(axis=1) - np.square(b).sum())
                    + 0.5 * n_visible * np.log(2 * np.pi))
        terms.append(term)
    return float(_logsumexp(np.concatenate(terms)))


def ais_log_partition(rbm, num_betas=10000, runs=100, seed=0):
    """log Z by annealed importance sampling (Salakhutdinov & Murray, 2008).

    Anneals from a base model with no weights and the RBM's own visible
    biases (log Z known in closed form) to the RBM through `num_betas`
    inverse temperatures, with `runs` independent chains. Returns
    (log Z estimate, standard error of the log-mean weight).
    """
    kernel, b, c = _params(rbm)
    n_visible, n_hidden = kernel.shape
    rng = np.random.default_rng(seed)
    betas = np.linspace(0.0, 1.0, int(num_betas))
    bernoulli = rbm.visible == "bernoulli"

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    def log_p(v, beta):  # unnormalised log p_beta(v); the visible part is beta-independent
        visible = v @ b if bernoulli else -0.5 * np.square(v - b).sum(axis=1)
        return visible + _softplus(beta * (v @ kernel + c)).sum(axis=1)

    if bernoulli:
        log_z_base = _softplus(b).sum() + n_hidden * np.log(2.0)
        v = (rng.random((runs, n_visible)) < sigmoid(b)).astype(np.float64)
    else:
        log_z_base = 0.5 * n_visible * np.log(2 * np.pi) + n_hidden * np.log(2.0)
        v = b + rng.standard_normal((runs, n_visible))
    log_w = np.zeros(runs)
    for k in range(1, len(betas)):
        beta = betas[k]
        log_w += log_p(v, beta) - log_p(v, betas[k - 1])
        h = (rng.random((runs, n_hidden)) < sigmoid(beta * (v @ kernel + c))).astype(np.float64)
        mean = b + beta * (h @ kernel.T)
        if bernoulli:
            v = (rng.random((runs, n_visible)) < sigmoid(mean)).astype(np.float64)
        else:
            v = mean + rng.standard_normal((runs, n_visible))
    log_mean_w = _logsumexp(log_w) - np.log(runs)
    weights = np.exp(log_w - log_w.max())
    stderr = float(np.std(weights) / np.sqrt(runs) / max(np.mean(weights), 1e-300))
    return float(log_z_base + log_mean_w), stderr


def log_likelihood(rbm, v, log_z):
    """Mean log p(v) = -F(v) - log Z over the rows of `v`."""
    free = ops.convert_to_numpy(rbm.free_energy(ops.convert_to_tensor(v, rbm.kernel.dtype)))
    return float(-np.mean(free) - log_z)


def pseudo_log_likelihood(rbm, v, seed=0):
    """Stochastic pseudo-log-likelihood of binarised `v` (bernoulli units only).

    For each row, one random unit i is flipped:
    PLL ~= n_visible * log sigmoid(F(v with i flipped) - F(v)),
    the estimate scikit-learn's BernoulliRBM.score_samples reports.
    """
    if rbm.visible != "bernoulli":
        raise ValueError("The pseudo-log-likelihood is defined here for bernoulli visible units")
    v = (np.asarray(v) > 0.5).astype(np.float32)
    rng = np.random.default_rng(seed)
    flipped = v.copy()
    rows = np.arange(len(v))
    cols = rng.integers(0, v.shape[1], len(v))
    flipped[rows, cols] = 1 - flipped[rows, cols]
    f_v = rbm.free_energy(ops.convert_to_tensor(v, rbm.kernel.dtype))
    f_flipped = rbm.free_energy(ops.convert_to_tensor(flipped, rbm.kernel.dtype))
    return float(v.shape[1] * np.mean(ops.convert_to_numpy(ops.log_sigmoid(f_flipped - f_v))))
