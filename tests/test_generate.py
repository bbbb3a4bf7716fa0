"""The VAE generation toolkit: interpolation, latent arithmetic, likelihood bounds, anomaly scores.

The likelihood tests use a model whose log-likelihood is known exactly: a 1-D latent
linear-Gaussian model z ~ N(0, 1), x | z ~ N(w z + b, I) in D dimensions, so
x ~ N(b, I + w wᵀ) and the posterior is N(wᵀ(x - b) / (1 + |w|²), 1 / (1 + |w|²)).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import layers as L
from netgraph import NetChain, NetExtract, NetGraph, NetPort, NormalDistribution, exp
from netgraph.generate import (
    anomaly_scores,
    attribute_vector,
    bits_per_dim,
    cross_entropy,
    elbo,
    interpolate,
    iwae_bound,
    iwae_log_likelihood,
    lerp,
    nearest_neighbours,
    reconstruct,
    roc_auc,
    sample_prior,
    slerp,
    slerp_grid,
    slerp_pairs,
    traversal_grid,
    vae_loss,
    vae_parts,
)
from netgraph.layer import NetError

# --- the linear-Gaussian model ------------------------------------------------------------------------

W = np.array([1.5, -1.0, 0.5])
B = np.array([0.2, 0.0, -0.3])
WW = float(W @ W)


def decode(z: np.ndarray) -> np.ndarray:
    return B + z @ W[None, :]


def exact_log_likelihood(x: np.ndarray) -> np.ndarray:
    r = x - B
    quad = (r**2).sum(axis=1) - (r @ W) ** 2 / (1 + WW)  # rᵀ (I + w wᵀ)⁻¹ r
    return -0.5 * len(W) * np.log(2 * np.pi) - 0.5 * np.log(1 + WW) - 0.5 * quad


def exact_posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = (x - B) @ W / (1 + WW)
    return mean[:, None], np.full((len(x), 1), -np.log(1 + WW))


def shifted_posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A poor proposal: the mean one unit off, twice the standard deviation."""
    mean, log_var = exact_posterior(x)
    return mean + 1.0, log_var + np.log(4.0)


def closed_form_elbo(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """E_q log N(x; w z + b, I) - KL(N(m, s²) ‖ N(0, 1)) for q = N(m, s²)."""
    r = x - B - np.outer(mean, W)
    expected = -0.5 * len(W) * np.log(2 * np.pi) - 0.5 * (r**2).sum(axis=1) - 0.5 * WW * var
    kl = 0.5 * (mean**2 + var - 1 - np.log(var))
    return expected - kl


def data(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return B + np.outer(rng.standard_normal(n), W) + rng.standard_normal((n, len(W)))


# --- interpolation ------------------------------------------------------------------------------------------


def test_lerp_endpoints_and_steps():
    a, b = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])
    np.testing.assert_array_equal(lerp(a, b, 0.0), a)
    np.testing.assert_array_equal(lerp(a, b, 1.0), b)
    path = lerp(a, b, np.linspace(0, 1, 5))
    assert path.shape == (5, 3)
    np.testing.assert_allclose(path[2], (a + b) / 2)


def test_slerp_endpoints():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=8), rng.normal(size=8)
        np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-12)
        np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-12)


def test_slerp_keeps_the_norm_of_equal_norm_endpoints_and_the_angle_is_linear():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=16), rng.normal(size=16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    t = np.linspace(0, 1, 11)
    path = slerp(a, b, t)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
    theta = np.arccos(unit(a) @ unit(b))
    angles = np.arccos(np.clip(unit(path) @ unit(a), -1, 1))
    np.testing.assert_allclose(angles, t * theta, atol=1e-7)
    midpoint_lerp = lerp(a, b, 0.5)
    assert np.linalg.norm(midpoint_lerp) < np.linalg.norm(slerp(a, b, 0.5))  # why slerp: lerp cuts inside


def test_slerp_falls_back_to_lerp_for_parallel_vectors():
    a = np.array([1.0, 2.0, -1.0])
    t = np.linspace(0, 1, 7)
    for b in (3 * a, -2 * a, a, np.zeros(3)):
        path = slerp(a, b, t)
        assert np.all(np.isfinite(path))
        np.testing.assert_allclose(path, lerp(a, b, t), atol=1e-12)


def test_slerp_works_on_batches_of_vectors():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    b[1] = 2 * a[1]  # one parallel row among them
    together = slerp(a, b, 0.3)
    for i in range(4):
        np.testing.assert_allclose(together[i], slerp(a[i], b[i], 0.3), atol=1e-12)
    assert slerp(a, b, np.linspace(0, 1, 3)).shape == (3, 4, 5)


def test_interpolate_and_slerp_grid():
    za, zb = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    lin = interpolate(lambda z: z, za, zb, 3)
    np.testing.assert_allclose(lin, [[2, 0], [1, 1], [0, 2]])
    sph = interpolate(lambda z: z, za, zb, 3, kind="spherical")
    np.testing.assert_allclose(np.linalg.norm(sph, axis=1), 2.0)
    spatial = interpolate(lambda z: z.sum(axis=(1, 2)), np.zeros((2, 2)), np.ones((2, 2)), 4)
    np.testing.assert_allclose(spatial, [0, 4 / 3, 8 / 3, 4])
    with pytest.raises(NetError, match="kind"):
        interpolate(lambda z: z, za, zb, 3, kind="cubic")

    rng = np.random.default_rng(3)
    pairs = [(rng.normal(size=4), rng.normal(size=4)) for _ in range(3)]
    grid = slerp_grid(lambda z: 10 * z, pairs)
    assert grid.shape == (3, 8, 4)  # 8 values of μ over [0.4, 0.7] by default, as in seed 002
    for p, (za, zb) in enumerate(pairs):
        np.testing.assert_allclose(grid[p], 10 * slerp(za, zb, np.linspace(0.4, 0.7, 8)))
    assert slerp_grid(lambda z: z, np.stack([np.stack(p) for p in pairs]), mus=[0.5]).shape == (3, 1, 4)


def test_slerp_pairs_slerps_between_posterior_means():
    rng = np.random.default_rng(5)
    xa, xb = rng.normal(size=(3, 2, 2)), rng.normal(size=(3, 2, 2))  # a latent shape (2, 2): the angle over all 4
    encode = lambda x: (2 * x, np.full(x.shape, 7.0))  # the log-variance plays no part
    found = slerp_pairs(encode, lambda z: z + 1, xa, xb)
    assert found.grid.shape == (3, 8, 2, 2) and np.allclose(found.mus, np.linspace(0.4, 0.7, 8))
    np.testing.assert_allclose(found.grid, slerp_grid(lambda z: z + 1, list(zip(2 * xa, 2 * xb))))
    np.testing.assert_allclose(found.starts, 2 * xa + 1)
    np.testing.assert_allclose(found.ends, 2 * xb + 1)
    a, b = xa.reshape(3, -1), xb.reshape(3, -1)
    cosines = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(found.angles, np.degrees(np.arccos(cosines)))
    same = slerp_pairs(encode, lambda z: z, xa, -xa, mus=[0.25])
    assert same.grid.shape == (3, 1, 2, 2) and np.allclose(same.angles, 180)  # antiparallel codes: 180°
    with pytest.raises(NetError, match="differ in shape"):
        slerp_pairs(encode, lambda z: z, xa, xb[:, :1])


# --- latent arithmetic and sampling ------------------------------------------------------------------------------


def test_attribute_vector_on_a_linear_encoder():
    rng = np.random.default_rng(4)
    proj = rng.normal(size=(6, 3))
    encode = lambda x: (x @ proj, np.zeros((len(x), 3)))
    base = rng.normal(size=(50, 6))
    wing = rng.normal(size=6)
    vector = attribute_vector(encode, base + wing, base)
    np.testing.assert_allclose(vector, wing @ proj, atol=1e-12)
    # adding it to a code without the attribute gives the code with it
    np.testing.assert_allclose(encode(base[:1])[0] + vector, encode(base[:1] + wing)[0], atol=1e-12)


def test_traversal_grid():
    z = np.array([0.1, 0.2, 0.3])
    grid = traversal_grid(lambda c: c * 2, z, -1, [-1.0, 1.0])
    np.testing.assert_allclose(grid, [[0.2, 0.4, -2.0], [0.2, 0.4, 2.0]])
    relative = traversal_grid(lambda c: c, z, 0, [1.0], relative=True)
    np.testing.assert_allclose(relative, [[1.1, 0.2, 0.3]])
    batch = traversal_grid(lambda c: c, np.zeros((2, 3)), 1, np.linspace(-2, 2, 5))
    assert batch.shape == (2, 5, 3) and np.allclose(batch[:, :, 1], np.linspace(-2, 2, 5))
    with pytest.raises(NetError, match="dim 3"):
        traversal_grid(lambda c: c, z, 3, [0.0])


def test_sample_prior_temperature_and_seed():
    images, z = sample_prior(lambda c: c, 4000, 3, temperature=0.5, seed=7, return_latents=True)
    assert images.shape == (4000, 3)
    assert abs(z.std() - 0.5) < 0.02
    np.testing.assert_array_equal(
        sample_prior(lambda c: c, 5, (2, 2), seed=1), sample_prior(lambda c: c, 5, (2, 2), seed=1)
    )


def test_reconstruct_with_and_without_sampling():
    x = data(2000)
    mean = reconstruct(exact_posterior, decode, x)
    np.testing.assert_allclose(mean, decode(exact_posterior(x)[0]))
    sampled = reconstruct(exact_posterior, decode, x, sample=True, seed=0)
    z = (sampled - B) @ W / WW  # decode is injective on its line
    spread = z - exact_posterior(x)[0][:, 0]
    assert abs(spread.var() - 1 / (1 + WW)) < 0.03


# --- likelihood bounds -----------------------------------------------------------------------------------------------


def test_elbo_equals_the_closed_form():
    x = data(8)
    mean, log_var = shifted_posterior(x)
    expected = closed_form_elbo(x, mean[:, 0], np.exp(log_var[:, 0]))
    samples = 20000
    terms = elbo(shifted_posterior, decode, x, "gaussian", samples=samples, seed=0, parts=True)
    kl = 0.5 * (mean[:, 0] ** 2 + np.exp(log_var[:, 0]) - 1 - log_var[:, 0])
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-12)  # the KL term is exact
    np.testing.assert_allclose(terms["elbo"], terms["reconstruction"] - terms["kl"])
    # Monte Carlo error of the reconstruction term: Var = s²(w·r)² + s⁴|w|⁴/2
    s2 = np.exp(log_var[:, 0])
    r = x - B - np.outer(mean[:, 0], W)
    tolerance = 5 * np.sqrt((s2 * (r @ W) ** 2 + 0.5 * s2**2 * WW**2) / samples)
    assert np.all(np.abs(terms["elbo"] - expected) < tolerance)


def test_elbo_with_the_exact_posterior_is_the_log_likelihood():
    x = data(6)
    value = elbo(exact_posterior, decode, x, "gaussian", samples=20000, seed=1)
    np.testing.assert_allclose(value, exact_log_likelihood(x), atol=0.02)


def test_vae_loss_is_the_mean_negative_elbo_and_its_terms():
    x = np.random.default_rng(6).random((5, 3, 2, 2))
    encode = lambda x: (x.reshape(len(x), -1)[:, :3], np.log(x.reshape(len(x), -1)[:, 3:6]))
    decode = lambda z: np.broadcast_to(1 / (1 + np.exp(-z.sum(axis=1)))[:, None, None, None], (len(z), 3, 2, 2))
    loss = vae_loss(encode, decode, x, seed=4)
    terms = elbo(encode, decode, x, seed=4, parts=True)
    assert loss["reconstruction"] == pytest.approx(-np.mean(terms["reconstruction"]))
    assert loss["kl"] == pytest.approx(np.mean(terms["kl"])) and loss["kl"] > 0
    assert loss["loss"] == pytest.approx(-np.mean(terms["elbo"]))
    gaussian = vae_loss(encode, decode, x, "gaussian", seed=4)
    assert gaussian["kl"] == pytest.approx(loss["kl"]) and gaussian["reconstruction"] != loss["reconstruction"]


def test_iwae_with_the_exact_posterior_is_exact_for_every_k():
    x = data(5)
    for k in (1, 2, 17):
        np.testing.assert_allclose(
            iwae_log_likelihood(exact_posterior, decode, x, k, seed=k, likelihood="gaussian"),
            exact_log_likelihood(x),
            rtol=1e-12,
        )


def test_iwae_bound_rises_with_k_towards_the_exact_value():
    x = data(400, seed=5)
    exact = exact_log_likelihood(x)
    gaps = []
    for k in (1, 4, 16, 1024):
        bound = iwae_log_likelihood(shifted_posterior, decode, x, k, seed=k, likelihood="gaussian")
        gaps.append(float(np.mean(exact - bound)))
    assert gaps == sorted(gaps, reverse=True), gaps
    assert gaps[0] > 1.0 and abs(gaps[-1]) < 0.02, gaps
    # k = 1 is an unbiased estimate of the ELBO
    elbo_mean = closed_form_elbo(x, shifted_posterior(x)[0][:, 0], np.exp(shifted_posterior(x)[1][:, 0])).mean()
    one = iwae_log_likelihood(shifted_posterior, decode, x, 1, seed=9, likelihood="gaussian")
    assert abs(one.mean() - elbo_mean) < 4 * one.std() / np.sqrt(len(one))


def test_iwae_bound_gives_mean_and_standard_error():
    x = data(50)
    mean, se = iwae_bound(exact_posterior, decode, x, 3, seed=0, likelihood="gaussian")
    exact = exact_log_likelihood(x)
    assert mean == pytest.approx(exact.mean(), rel=1e-12)
    assert se == pytest.approx(exact.std(ddof=1) / np.sqrt(50), rel=1e-9)
    assert np.isnan(iwae_bound(exact_posterior, decode, x[:1], 3, likelihood="gaussian")[1])


def test_chunking_does_not_change_the_bound_with_the_exact_posterior():
    x = data(7)
    small = iwae_log_likelihood(exact_posterior, decode, x, 50, seed=0, likelihood="gaussian", batch_size=3)
    large = iwae_log_likelihood(exact_posterior, decode, x, 50, seed=0, likelihood="gaussian", batch_size=10**6)
    np.testing.assert_allclose(small, large, rtol=1e-12)


def test_log_sum_exp_is_stable_for_large_images():
    d = 20000  # log-weights near -10⁴·…: exp() alone would underflow to 0
    w, b = np.full(d, 0.01), np.zeros(d)
    ww = float(w @ w)
    x = np.random.default_rng(0).normal(size=(2, d)) * 3
    enc = lambda x: (((x - b) @ w / (1 + ww))[:, None], np.full((len(x), 1), -np.log(1 + ww)))
    dec = lambda z: b + z @ w[None, :]
    bound = iwae_log_likelihood(enc, dec, x, 8, seed=0, likelihood="gaussian")
    quad = (x**2).sum(1) - (x @ w) ** 2 / (1 + ww)
    exact = -0.5 * d * np.log(2 * np.pi) - 0.5 * np.log(1 + ww) - 0.5 * quad
    assert np.all(exact < -1e4)
    np.testing.assert_allclose(bound, exact, rtol=1e-10)


def test_bernoulli_likelihood_by_hand():
    x = np.array([[1.0, 0.0, 1.0, 0.5]])
    probs = np.array([0.8, 0.3, 0.0, 0.5])  # p = 0 for an on pixel: the log is clamped at -100
    encode = lambda x: (np.array([[0.5, -1.0]]), np.array([[0.0, np.log(0.25)]]))
    decode_const = lambda z: np.tile(probs, (len(z), 1))
    by_hand = np.log(0.8) + np.log(0.7) - 100.0 + np.log(0.5)
    kl = 0.5 * (0.25 + 1.0 + 0.25 - 1 - 0 - np.log(0.25))
    terms = elbo(encode, decode_const, x, "bernoulli", samples=3, seed=0, parts=True)
    np.testing.assert_allclose(terms["reconstruction"], [by_hand])
    np.testing.assert_allclose(terms["elbo"], [by_hand - kl])
    # with q = the prior and a decoder that ignores z, every importance weight is p(x|z)
    prior = lambda x: (np.zeros((len(x), 2)), np.zeros((len(x), 2)))
    np.testing.assert_allclose(iwae_log_likelihood(prior, decode_const, x, 10, seed=0), [by_hand], rtol=1e-12)
    np.testing.assert_allclose(bits_per_dim(terms["elbo"], x.shape[1:]), -(by_hand - kl) / (4 * np.log(2)))


def test_bad_calls():
    x = data(3)
    with pytest.raises(NetError, match="likelihood"):
        elbo(exact_posterior, decode, x, "poisson")
    with pytest.raises(NetError, match=r"pixels in \[0, 1\]"):
        elbo(exact_posterior, decode, x, "bernoulli")
    with pytest.raises(NetError, match="at least 1"):
        iwae_log_likelihood(exact_posterior, decode, x, 0)
    with pytest.raises(NetError, match="one shape"):
        elbo(lambda x: (np.zeros((3, 2)), np.zeros((3, 1))), decode, x, "gaussian")
    with pytest.raises(NetError, match="shape"):
        elbo(exact_posterior, lambda z: np.zeros((len(z), 5)), x, "gaussian")


# --- anomaly scores and ROC AUC --------------------------------------------------------------------------------------


def brute_force_auc(normal, anomalous) -> float:
    wins = sum(1.0 if a > n else 0.5 if a == n else 0.0 for n, a in itertools.product(normal, anomalous))
    return wins / (len(normal) * len(anomalous))


def test_roc_auc_against_a_pair_count():
    rng = np.random.default_rng(6)
    for _ in range(30):
        normal = rng.integers(0, 6, size=rng.integers(1, 25)).astype(float)  # many ties
        anomalous = rng.integers(2, 8, size=rng.integers(1, 25)).astype(float)
        assert roc_auc(normal, anomalous) == pytest.approx(brute_force_auc(normal, anomalous), abs=1e-12)
    assert roc_auc([1, 2], [3, 4]) == 1.0 and roc_auc([3, 4], [1, 2]) == 0.0 and roc_auc([1, 1], [1]) == 0.5
    with pytest.raises(NetError):
        roc_auc([], [1.0])
    with pytest.raises(NetError, match="NaN"):
        roc_auc([np.nan], [1.0])


def test_anomaly_scores_separate_outliers():
    normal = data(100, seed=7)
    outliers = data(100, seed=8) + np.array([3.0, 3.0, 3.0])  # off the model's line
    scores = anomaly_scores(exact_posterior, decode, np.vstack([normal, outliers]), k=8, likelihood="gaussian")
    np.testing.assert_allclose(scores[:100], -exact_log_likelihood(normal), rtol=1e-12)
    assert roc_auc(scores[:100], scores[100:]) > 0.95


# --- a netgraph VAE built as in the seed post -------------------------------------------------------------------------


def seed_style_vae() -> NetGraph:
    return NetGraph(
        {
            "enc": NetChain([L.FlattenLayer(), L.LinearLayer(12), "Tanh"]),
            "mn": L.LinearLayer(3),
            "sd": NetChain([L.LinearLayer(3), L.ElementwiseLayer(lambda x: 0.5 * x)]),
            "expSd": L.ElementwiseLayer(lambda x: exp(x)),
            "eps": L.RandomArrayLayer(NormalDistribution(0, 1), output=3),
            "z": L.ThreadingLayer(lambda m, s, e: m + s * e),
            "dec": NetChain([L.LinearLayer(12), "Tanh", L.LinearLayer((1, 4, 4)), "LogisticSigmoid"]),
            "loss": L.MeanSquaredLossLayer(),
        },
        [
            (NetPort("Input"), "enc", "mn"),
            ("enc", "sd", "expSd"),
            (["mn", "expSd", "eps"], "z", "dec", NetPort("loss", "Input")),
            (NetPort("Input"), NetPort("loss", "Target")),
        ],
        input=(1, 4, 4),
    )


def test_vae_parts_reads_mn_sd_and_extracts_the_decoder():
    net = seed_style_vae()
    x = np.random.default_rng(0).random((6, 1, 4, 4))
    encode, dec = vae_parts(net)
    mean, log_var = encode(x)
    internal = net(x, [NetPort("mn", "Output"), NetPort("sd", "Output")])
    np.testing.assert_allclose(mean, internal[NetPort("mn", "Output")])
    np.testing.assert_allclose(log_var, 2 * internal[NetPort("sd", "Output")])
    z = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_array_equal(dec(z), NetExtract(net, "dec")(z))
    _, as_log_var = vae_parts(net, scale="log_variance")[0](x)
    np.testing.assert_allclose(as_log_var, internal[NetPort("sd", "Output")])
    # the whole toolkit runs on it
    assert np.all(np.isfinite(elbo(encode, dec, x, samples=2, seed=0)))
    assert np.all(iwae_log_likelihood(encode, dec, x, 16, seed=0) <= 0)
    assert sample_prior(dec, 4, 3, seed=0).shape == (4, 1, 4, 4)
    assert slerp_grid(dec, [(mean[0], mean[1]), (mean[2], mean[3])]).shape == (2, 8, 1, 4, 4)


def test_nearest_neighbours_and_cross_entropy():
    """The measures of examples/cake_vae.py: how close samples come to the training pictures, and the cross-entropy
    of pictures under a decoder's pixel probabilities."""
    references = np.stack([np.zeros((1, 2, 2)), np.ones((1, 2, 2))])
    index, gap = nearest_neighbours(np.full((2, 1, 2, 2), [[[[0.2]]], [[[0.9]]]]), references)
    assert index.tolist() == [0, 1] and np.allclose(gap, [0.2, 0.1])
    x = np.array([[1.0, 0.0]])
    assert np.allclose(cross_entropy(x, np.array([[0.5, 0.5]])), [2 * math.log(2)])
    rng = np.random.default_rng(0)
    pictures, others = rng.random((5, 1, 3, 3)), rng.random((7, 1, 3, 3))
    index, gap = nearest_neighbours(pictures, others)
    distances = np.sqrt(((pictures[:, None] - others[None]) ** 2).reshape(5, 7, -1).mean(axis=2))
    assert index.tolist() == distances.argmin(axis=1).tolist() and np.allclose(gap, distances.min(axis=1))
    assert np.allclose(nearest_neighbours(others, others)[1], 0, atol=1e-6)  # each its own nearest
    probabilities = rng.uniform(0.01, 0.99, (5, 1, 3, 3))
    by_hand = -(pictures * np.log(probabilities) + (1 - pictures) * np.log(1 - probabilities)).sum(axis=(1, 2, 3))
    assert np.allclose(cross_entropy(pictures, probabilities), by_hand)
    assert cross_entropy(np.ones((1, 2)), np.zeros((1, 2))).tolist() == [200.0]  # logs clamped at -100
    with pytest.raises(NetError, match="differ in shape"):
        cross_entropy(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(NetError, match="references"):
        nearest_neighbours(np.ones((2, 3)), np.ones((2, 4)))
