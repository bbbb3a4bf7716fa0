"""Generation and evaluation with a trained VAE: sampling, interpolation, latent
arithmetic, ELBO and IWAE bounds, cross-entropy, nearest training pictures, anomaly scores.

Every function takes the model as two callables, so it does not depend on one
architecture:

* ``encode(x) -> (mean, log_var)``: a batch of inputs ``(N, ...)`` to the mean and
  the log-variance of the Gaussian posterior q(z|x), each ``(N, *latent_shape)``;
* ``decode(z) -> output``: a batch of latent codes ``(M, *latent_shape)`` to a batch
  of decoder outputs ``(M, ...)`` (pixel probabilities for a Bernoulli likelihood,
  means for a Gaussian one).

:func:`vae_parts` builds both from a trained netgraph VAE whose vertices are named
as in the Wolfram Community post: an encoder giving ``"mn"`` (the mean) and ``"sd"``
(half the log-variance, ``log σ``) and a decoder subnet ``"dec"``. The prior is
N(0, I). Inputs and results are NumPy arrays; the arithmetic is float64.

Example:
    >>> import numpy as np
    >>> from netgraph.generate import lerp, slerp
    >>> a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    >>> lerp(a, b, 0.5).tolist()
    [0.5, 0.5]
    >>> np.round(slerp(a, b, 0.5), 4).tolist()      # stays on the unit circle
    [0.7071, 0.7071]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Union

import numpy as np

from .initialize import NetInitialize
from .layer import NetError
from .ports import NetPort
from .surgery import NetExtract

__all__ = [
    "anomaly_scores",
    "attribute_vector",
    "bits_per_dim",
    "cross_entropy",
    "elbo",
    "interpolate",
    "iwae_bound",
    "iwae_log_likelihood",
    "lerp",
    "nearest_neighbours",
    "reconstruct",
    "roc_auc",
    "sample_prior",
    "slerp",
    "slerp_grid",
    "slerp_pairs",
    "traversal_grid",
    "vae_loss",
    "vae_parts",
]

Encode = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Decode = Callable[[np.ndarray], np.ndarray]
Seed = Union[int, np.random.Generator, None]

LOG_2PI = math.log(2.0 * math.pi)
# NOTE: Bernoulli log-probabilities are clamped at -100, as PyTorch's binary
# cross-entropy does, so a pixel predicted with p = 0 or 1 exactly costs 100 nats
# instead of infinity.
LOG_CLAMP = -100.0
# NOTE: below this |sin θ| two latent vectors count as parallel (or antiparallel)
# and slerp falls back to lerp, where sin θ in the denominator would blow up.
PARALLEL = 1e-7


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# --- from a netgraph VAE to the two callables -------------------------------------------------------


def vae_parts(
    net: Any,
    encoder_outputs: tuple[Any, Any] = ("mn", "sd"),
    decoder: Any = "dec",
    *,
    scale: str = "half_log_variance",
    feed: Callable[[np.ndarray], Any] | None = None,
    **options: Any,
) -> tuple[Encode, Decode]:
    """``(encode, decode)`` callables from a trained netgraph VAE.

    ``encode`` evaluates the whole net and reads the two encoder vertices'
    outputs, ``net(x, [NetPort("mn", "Output"), NetPort("sd", "Output")])``;
    ``decode`` is the decoder subnet, ``NetExtract(net, "dec")``, applied to
    latent codes.

    Args:
        net: the trained NetGraph.
        encoder_outputs: the vertices (names, numbers, or ``NetPort`` objects for
            other ports or nested vertices) giving the posterior mean and scale.
        decoder: the decoder vertex (a name, number or path tuple for NetExtract).
        scale: what the second encoder output is: "half_log_variance" (log σ, the
            seed post's ``sd`` = ``0.5 * Linear``), "log_variance" or "sigma".
        feed: a function from a batch of inputs to the net's data; by default the
            batch goes to every input port of the net (an autoencoder's loss
            target is its input).
        **options: evaluation options passed to every call (``target_device``,
            ``batch_size``, ...).

    Returns:
        ``(encode, decode)``: ``encode(x)`` gives ``(mean, log_var)`` and
        ``decode(z)`` the decoder's outputs, all NumPy.

    Example:
        >>> import numpy as np
        >>> from netgraph import NetGraph, NetChain, NetPort, NormalDistribution, exp
        >>> import layers as L
        >>> vae = NetGraph(
        ...     {"enc": NetChain([L.FlattenLayer(), L.LinearLayer(8), "Tanh"]), "mn": L.LinearLayer(2),
        ...      "sd": NetChain([L.LinearLayer(2), L.ElementwiseLayer(lambda x: 0.5 * x)]),
        ...      "expSd": L.ElementwiseLayer(lambda x: exp(x)),
        ...      "eps": L.RandomArrayLayer(NormalDistribution(0, 1), output=2),
        ...      "z": L.ThreadingLayer(lambda m, s, e: m + s * e),
        ...      "dec": NetChain([L.LinearLayer(8), "Tanh", L.LinearLayer((1, 3, 3)), "LogisticSigmoid"]),
        ...      "loss": L.MeanSquaredLossLayer()},
        ...     [(NetPort("Input"), "enc", "mn"), ("enc", "sd", "expSd"),
        ...      (["mn", "expSd", "eps"], "z", "dec", NetPort("loss", "Input")),
        ...      (NetPort("Input"), NetPort("loss", "Target"))],
        ...     input=(1, 3, 3))
        >>> encode, decode = vae_parts(vae)
        >>> mean, log_var = encode(np.zeros((5, 1, 3, 3)))
        >>> mean.shape, log_var.shape, decode(mean).shape
        ((5, 2), (5, 2), (5, 1, 3, 3))
    """
    if scale not in ("half_log_variance", "log_variance", "sigma"):
        raise NetError(f'vae_parts: scale is "half_log_variance", "log_variance" or "sigma"; got {scale!r}')
    ports = [p if isinstance(p, NetPort) else NetPort(p, "Output") for p in encoder_outputs]
    if len(ports) != 2:
        raise NetError(f"vae_parts: encoder_outputs names two vertices (mean, scale); got {encoder_outputs!r}")
    # NOTE: arrays still uninitialized are filled first, exactly as evaluating the net
    # would fill them; a decoder taken out of an uninitialized net would otherwise
    # initialize on its own, with weights that differ from the whole net's.
    net = NetInitialize(net)
    dec = NetExtract(net, decoder)

    def data_for(x: np.ndarray) -> Any:
        if feed is not None:
            return feed(x)
        inputs = net.input_ports
        return x if len(inputs) == 1 else {p: x for p in inputs}

    def encode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = net(data_for(np.asarray(x)), ports, **options)
        mean, second = (np.asarray(out[p], dtype=np.float64) for p in ports)
        if scale == "half_log_variance":
            return mean, 2.0 * second
        if scale == "log_variance":
            return mean, second
        return mean, 2.0 * np.log(np.maximum(second, 1e-300))

    def decode(z: np.ndarray) -> np.ndarray:
        return np.asarray(dec(np.asarray(z), **options))

    return encode, decode


# --- calling the parts ----------------------------------------------------------------------------------


def _posterior(encode: Encode, x: Any) -> tuple[np.ndarray, np.ndarray]:
    mean, log_var = encode(np.asarray(x))
    mean, log_var = np.asarray(mean, dtype=np.float64), np.asarray(log_var, dtype=np.float64)
    if mean.shape != log_var.shape or mean.ndim < 2:
        raise NetError(
            f"encode(x) must give (mean, log_var) of one shape (N, *latent); got {mean.shape} and {log_var.shape}"
        )
    return mean, log_var


def _decoded(decode: Decode, z: np.ndarray) -> np.ndarray:
    out = np.asarray(decode(z), dtype=np.float64)
    if out.shape[:1] != z.shape[:1]:
        raise NetError(f"decode(z) must give one output per latent code: {z.shape[0]} codes, output {out.shape}")
    return out


def _sum_but_first(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1).sum(axis=1)


def _log_likelihood(x: np.ndarray, out: np.ndarray, likelihood: str) -> np.ndarray:
    """log p(x | z) per row, summed over pixels; ``x`` and ``out`` have one shape."""
    if likelihood == "bernoulli":
        p = np.clip(out, 0.0, 1.0)
        with np.errstate(divide="ignore"):
            log_p, log_q = np.maximum(np.log(p), LOG_CLAMP), np.maximum(np.log1p(-p), LOG_CLAMP)
        return _sum_but_first(x * log_p + (1.0 - x) * log_q)
    if likelihood == "gaussian":
        return _sum_but_first(-0.5 * (x - out) ** 2 - 0.5 * LOG_2PI)
    raise NetError(f'likelihood is "bernoulli" or "gaussian"; got {likelihood!r}')


def _sample_terms(
    encode: Encode,
    decode: Decode,
    x: Any,
    k: int,
    seed: Seed,
    likelihood: str,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For k draws z ~ q(z|x) per input: log p(x|z) and log p(z) - log q(z|x), each (N, k),
    and the posterior's mean and log-variance.

    NOTE: draws are made chunk by chunk (at most ``batch_size`` codes per decoder
    call), so a seed reproduces results for the same ``batch_size``.
    """
    if k < 1:
        raise NetError(f"the number of samples must be at least 1; got {k}")
    if likelihood not in ("bernoulli", "gaussian"):
        raise NetError(f'likelihood is "bernoulli" or "gaussian"; got {likelihood!r}')
    x = np.asarray(x, dtype=np.float64)
    if likelihood == "bernoulli" and x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise NetError(
            f"a Bernoulli likelihood needs pixels in [0, 1]; got values in [{x.min():g}, {x.max():g}] "
            f'(rescale them, or use likelihood="gaussian")'
        )
    mean, log_var = _posterior(encode, x)
    n, latent = mean.shape[0], mean.shape[1:]
    std = np.exp(0.5 * log_var)
    rng = _rng(seed)
    log_px = np.empty((n, k))
    log_ratio = np.empty((n, k))
    per_call = max(1, int(batch_size))
    for i0 in range(0, n, per_call):
        i1 = min(n, i0 + per_call)
        block = i1 - i0
        chunk = max(1, per_call // block)
        for j0 in range(0, k, chunk):
            j1 = min(k, j0 + chunk)
            eps = rng.standard_normal((block, j1 - j0, *latent))
            z = mean[i0:i1, None] + std[i0:i1, None] * eps
            flat = z.reshape(block * (j1 - j0), *latent)
            out = _decoded(decode, flat)
            target = np.repeat(x[i0:i1], j1 - j0, axis=0)
            if out.shape != target.shape:
                raise NetError(f"decode(z) gives outputs of shape {out.shape[1:]}, the inputs are {x.shape[1:]}")
            log_px[i0:i1, j0:j1] = _log_likelihood(target, out, likelihood).reshape(block, j1 - j0)
            log_prior = -0.5 * _sum_but_first(flat**2)
            # log q(z|x) = Σ -0.5 ε² - 0.5 log σ² (the 2π terms cancel against the prior's)
            log_q = (-0.5 * _sum_but_first(eps.reshape(flat.shape) ** 2)).reshape(block, j1 - j0)
            log_q -= 0.5 * _sum_but_first(log_var[i0:i1])[:, None]
            log_ratio[i0:i1, j0:j1] = log_prior.reshape(block, j1 - j0) - log_q
    return log_px, log_ratio, mean, log_var


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log Σ exp(a) along ``axis`` without overflow: shift by the maximum first."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # all -inf stays -inf; no inf - inf
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(a - top), axis=axis))


# --- sampling and reconstruction ---------------------------------------------------------------------------


def sample_prior(
    decode: Decode,
    n: int,
    latent_size: int | tuple[int, ...],
    temperature: float = 1.0,
    seed: Seed = None,
    *,
    return_latents: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Decode ``n`` draws from the prior, z ~ N(0, temperature² I).

    Args:
        decode: latent codes to outputs.
        n: how many samples.
        latent_size: the latent dimension (or shape, for spatial latents).
        temperature: the prior's standard deviation is scaled by it; below 1 gives
            more typical, less varied samples.
        seed: an int or a NumPy Generator, for reproducible draws.
        return_latents: also return the codes.

    Returns:
        The decoded batch ``(n, ...)``, or ``(outputs, z)``.

    Example:
        >>> import numpy as np
        >>> images, z = sample_prior(lambda z: np.tanh(z), 4, 3, temperature=0.5, seed=0, return_latents=True)
        >>> images.shape, bool(np.allclose(images, np.tanh(z)))
        ((4, 3), True)
    """
    shape = (latent_size,) if isinstance(latent_size, (int, np.integer)) else tuple(latent_size)
    z = float(temperature) * _rng(seed).standard_normal((int(n), *shape))
    out = _decoded(decode, z)
    return (out, z) if return_latents else out


def reconstruct(encode: Encode, decode: Decode, x: Any, sample: bool = False, seed: Seed = None) -> np.ndarray:
    """Decode each input's posterior mean, or with ``sample=True`` a draw z ~ q(z|x).

    Args:
        encode, decode: the model (see the module doc).
        x: a batch of inputs ``(N, ...)``.
        sample: decode z = μ + σ ε instead of μ.
        seed: an int or a NumPy Generator, for ``sample=True``.

    Returns:
        The decoded batch ``(N, ...)``.

    Example:
        >>> import numpy as np
        >>> encode = lambda x: (x[:, :1], np.zeros((len(x), 1)))
        >>> reconstruct(encode, lambda z: np.hstack([z, z]), np.array([[1.0, 9.0], [2.0, 9.0]])).tolist()
        [[1.0, 1.0], [2.0, 2.0]]
    """
    mean, log_var = _posterior(encode, x)
    z = mean + np.exp(0.5 * log_var) * _rng(seed).standard_normal(mean.shape) if sample else mean
    return _decoded(decode, z)


# --- interpolation ------------------------------------------------------------------------------------------


def _steps(a: np.ndarray, t: Any) -> np.ndarray:
    """``t`` shaped to broadcast against ``a``: a scalar as is, a 1-D array on a new first axis."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 0:
        return t
    if t.ndim != 1:
        raise NetError(f"t is a number or a 1-D array of numbers; got shape {t.shape}")
    return t.reshape(-1, *([1] * a.ndim))


def lerp(a: Any, b: Any, t: Any) -> np.ndarray:
    """Linear interpolation ``(1 - t) a + t b``.

    Args:
        a, b: vectors (or batches of vectors along the last axis).
        t: a number, or a 1-D array: then the results are stacked on a new first axis.

    Example:
        >>> lerp([0.0, 2.0], [4.0, 6.0], [0.0, 0.25, 1.0]).tolist()
        [[0.0, 2.0], [1.0, 3.0], [4.0, 6.0]]
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    t = _steps(a, t)
    return (1.0 - t) * a + t * b


def slerp(a: Any, b: Any, t: Any) -> np.ndarray:
    """Spherical interpolation (White 2016, "Sampling Generative Networks"):

    ``sin((1 - t) θ) / sin θ · a + sin(t θ) / sin θ · b``, θ the angle between a and b.

    NOTE: θ is computed from the *normalised* vectors, ``arccos(â · b̂)``; the
    seed-002 formula writes ``arccos(q1 · q2)``, which is the same only for unit
    vectors. With endpoints of equal norm the path keeps that norm and the
    angle from ``a`` grows linearly in t. For (anti)parallel endpoints (and zero
    vectors) sin θ vanishes and the result falls back to :func:`lerp`.

    Args:
        a, b: vectors (or batches of vectors along the last axis).
        t: a number, or a 1-D array: then the results are stacked on a new first axis.

    Example:
        >>> import numpy as np
        >>> path = slerp([2.0, 0.0], [0.0, 2.0], np.linspace(0, 1, 3))
        >>> np.round(path, 4).tolist(), np.round(np.linalg.norm(path, axis=-1), 6).tolist()
        ([[2.0, 0.0], [1.4142, 1.4142], [0.0, 2.0]], [2.0, 2.0, 2.0])
        >>> slerp([1.0, 1.0], [2.0, 2.0], 0.5).tolist()    # parallel: lerp
        [1.5, 1.5]
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if a.ndim == 0:
        raise NetError("slerp interpolates vectors; got numbers")
    t = _steps(a, t)
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.clip(np.sum(a * b, axis=-1, keepdims=True) / (na * nb), -1.0, 1.0)
    theta = np.arccos(np.nan_to_num(cos, nan=1.0))  # a zero vector counts as parallel
    sin = np.sin(theta)
    parallel = np.abs(sin) < PARALLEL
    safe = np.where(parallel, 1.0, sin)
    spherical = (np.sin((1.0 - t) * theta) * a + np.sin(t * theta) * b) / safe
    return np.where(parallel, (1.0 - t) * a + t * b, spherical)


def _flat(z: Any) -> np.ndarray:
    return np.asarray(z, dtype=np.float64).reshape(-1)


def interpolate(decode: Decode, za: Any, zb: Any, steps: int, kind: str = "linear") -> np.ndarray:
    """Decode ``steps`` codes evenly spaced from ``za`` to ``zb`` (both ends included).

    Args:
        decode: latent codes to outputs.
        za, zb: two latent codes (any latent shape).
        steps: number of codes, at least 2.
        kind: "linear" (:func:`lerp`) or "spherical" (:func:`slerp`).

    Returns:
        The decoded path ``(steps, ...)``.

    Example:
        >>> import numpy as np
        >>> interpolate(lambda z: z * 10, np.array([0.0, 1.0]), np.array([1.0, 0.0]), 3).tolist()
        [[0.0, 10.0], [5.0, 5.0], [10.0, 0.0]]
    """
    if steps < 2:
        raise NetError(f"interpolate: steps is at least 2 (the two ends); got {steps}")
    za, zb = np.asarray(za, dtype=np.float64), np.asarray(zb, dtype=np.float64)
    if za.shape != zb.shape:
        raise NetError(f"interpolate: the two codes differ in shape, {za.shape} and {zb.shape}")
    t = np.linspace(0.0, 1.0, int(steps))
    if kind == "linear":
        path = lerp(_flat(za), _flat(zb), t)
    elif kind == "spherical":
        path = slerp(_flat(za), _flat(zb), t)
    else:
        raise NetError(f'interpolate: kind is "linear" or "spherical"; got {kind!r}')
    return _decoded(decode, path.reshape(len(t), *za.shape))


def slerp_grid(decode: Decode, pairs: Any, mus: int | Sequence[float] = 8) -> np.ndarray:
    """The seed-002 grid: for each pair of codes, decodes of ``slerp(za, zb, μ)`` at each μ.

    The winged-horse study took 8 horse codes, paired each with a random bird
    code, and decoded 8 values of μ evenly spaced over [0.4, 0.7]: mixtures that
    look like neither end alone.

    Args:
        decode: latent codes to outputs.
        pairs: a sequence of ``(za, zb)`` pairs, or an array ``(P, 2, *latent)``.
        mus: the interpolation parameters, or how many to space evenly over [0.4, 0.7].

    Returns:
        ``(P, len(mus), ...)``: one row per pair, ready for
        :func:`netgraph.images.interpolation_strip`.

    Example:
        >>> import numpy as np
        >>> pairs = [(np.array([1.0, 0.0]), np.array([0.0, 1.0])), (np.array([0.0, 3.0]), np.array([3.0, 0.0]))]
        >>> grid = slerp_grid(lambda z: z, pairs, mus=4)
        >>> grid.shape, np.round(np.linalg.norm(grid, axis=-1), 6).tolist()
        ((2, 4, 2), [[1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0]])
    """
    mu = np.linspace(0.4, 0.7, int(mus)) if isinstance(mus, (int, np.integer)) else np.asarray(mus, dtype=np.float64)
    pairs = [(np.asarray(za, dtype=np.float64), np.asarray(zb, dtype=np.float64)) for za, zb in pairs]
    if not pairs:
        raise NetError("slerp_grid: no pairs")
    shape = pairs[0][0].shape
    if any(za.shape != shape or zb.shape != shape for za, zb in pairs):
        raise NetError("slerp_grid: every code must have the same shape")
    codes = np.stack([slerp(_flat(za), _flat(zb), mu) for za, zb in pairs])  # (P, M, L)
    out = _decoded(decode, codes.reshape(len(pairs) * len(mu), *shape))
    return out.reshape(len(pairs), len(mu), *out.shape[1:])


class SlerpPairs(NamedTuple):
    """What :func:`slerp_pairs` gives: ``grid`` ``(P, M, ...)``, the decoded slerps, one row per pair; ``starts``
    and ``ends`` ``(P, ...)``, the decodes of the two codes of each pair; ``angles`` ``(P,)``, the angle between
    the two codes in degrees; ``mus`` ``(M,)``, the interpolation parameters."""

    grid: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    angles: np.ndarray
    mus: np.ndarray


def slerp_pairs(encode: Encode, decode: Decode, xa: Any, xb: Any, mus: int | Sequence[float] = 8) -> SlerpPairs:
    """:func:`slerp_grid` for pairs of inputs: input ``i`` of ``xa`` and input ``i`` of ``xb`` to their
    posterior means, slerped at each μ and decoded; with the decodes of both means and the angle between them.

    The winged-horse study paired each horse picture with a bird picture this way: the grid's rows go from the
    bird (μ = 0) to the horse (μ = 1), and the angle says how far apart the two codes are on the sphere.

    Args:
        encode, decode: the model (see the module doc).
        xa, xb: two batches of inputs of one length ``P``, the pairs' first and second ends.
        mus: the interpolation parameters, or how many to space evenly over [0.4, 0.7].

    Returns:
        A :class:`SlerpPairs`.

    Example:
        >>> import numpy as np
        >>> encode = lambda x: (x, np.zeros_like(x))                  # the code of x is x itself
        >>> found = slerp_pairs(encode, lambda z: 10 * z, np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]), [0.5])
        >>> found.grid.shape, np.round(found.angles, 6).tolist(), found.ends.tolist()
        ((1, 1, 2), [90.0], [[0.0, 20.0]])
    """
    za, zb = _posterior(encode, xa)[0], _posterior(encode, xb)[0]
    if za.shape != zb.shape:
        raise NetError(f"slerp_pairs: the two ends differ in shape, {za.shape} and {zb.shape}")
    mu = np.linspace(0.4, 0.7, int(mus)) if isinstance(mus, (int, np.integer)) else np.asarray(mus, dtype=np.float64)
    grid = slerp_grid(decode, list(zip(za, zb)), mu)
    a, b = za.reshape(len(za), -1), zb.reshape(len(zb), -1)
    cosines = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    angles = np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))
    return SlerpPairs(grid, _decoded(decode, za), _decoded(decode, zb), angles, mu)


# --- latent arithmetic ----------------------------------------------------------------------------------------


def attribute_vector(encode: Encode, with_attribute: Any, without_attribute: Any) -> np.ndarray:
    """The mean posterior-mean code of inputs with an attribute minus that of inputs without it.

    Adding it to a code adds the attribute (White 2016; the seed-002 "wing
    vector"); subtracting removes it.

    Args:
        encode: inputs to ``(mean, log_var)``.
        with_attribute: a batch of inputs showing the attribute.
        without_attribute: a batch of inputs without it.

    Returns:
        The vector, of the latent's shape.

    Example:
        >>> import numpy as np
        >>> encode = lambda x: (x, np.zeros_like(x))          # the identity "encoder"
        >>> attribute_vector(encode, np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[0.0, 1.0]])).tolist()
        [2.0, 4.0]
    """
    with_mean = _posterior(encode, with_attribute)[0].mean(axis=0)
    without_mean = _posterior(encode, without_attribute)[0].mean(axis=0)
    return with_mean - without_mean


def traversal_grid(decode: Decode, z: Any, dim: int, values: Any, *, relative: bool = False) -> np.ndarray:
    """Decode ``z`` with one latent coordinate swept over ``values``.

    Args:
        decode: latent codes to outputs.
        z: one code (a vector ``(L,)``, or any latent shape that is not 2-D), or
            a batch of vector codes ``(n, L)``: a 2-D array is read as a batch.
        dim: the coordinate, a NumPy index (from 0, negative from the end) into
            the flattened latent.
        values: the values to set it to.
        relative: add ``values`` to the coordinate instead of setting it.

    Returns:
        ``(len(values), ...)`` for one code, ``(n, len(values), ...)`` for a batch
        of vectors.

    Example:
        >>> import numpy as np
        >>> traversal_grid(lambda z: z, np.array([0.5, 0.5]), 1, [-1.0, 0.0, 1.0]).tolist()
        [[0.5, -1.0], [0.5, 0.0], [0.5, 1.0]]
    """
    z = np.asarray(z, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    batch = z.ndim == 2
    codes = z if batch else z.reshape(1, -1)
    size = codes.shape[1]
    if not -size <= dim < size:
        raise NetError(f"traversal_grid: dim {dim} is outside the latent's {size} coordinates")
    swept = np.repeat(codes[:, None, :], len(values), axis=1)  # (n, V, L)
    swept[:, :, dim] = swept[:, :, dim] + values if relative else values
    latent = z.shape[1:] if batch else z.shape
    out = _decoded(decode, swept.reshape(-1, *latent))
    out = out.reshape(codes.shape[0], len(values), *out.shape[1:])
    return out if batch else out[0]


# --- likelihood bounds ----------------------------------------------------------------------------------------


def elbo(
    encode: Encode,
    decode: Decode,
    x: Any,
    likelihood: str = "bernoulli",
    samples: int = 1,
    seed: Seed = None,
    *,
    batch_size: int = 1024,
    parts: bool = False,
) -> np.ndarray | dict[str, np.ndarray]:
    """The evidence lower bound per input, in nats: E_q[log p(x|z)] - KL(q(z|x) ‖ N(0, I)).

    The expectation is a Monte Carlo mean over ``samples`` draws z = μ + σ ε; the
    KL term is exact (Gaussian posterior against the N(0, I) prior).

    NOTE on likelihoods. "bernoulli": ``decode`` gives pixel probabilities p and
    log p(x|z) = Σ x log p + (1 - x) log(1 - p), each log clamped at -100 as
    PyTorch's binary cross-entropy; with grey (not binarised) pixels this is the
    cross-entropy most VAE code reports, not a normalised density. "gaussian":
    ``decode`` gives means and the variance is fixed at 1, log p(x|z) =
    Σ -(x - mean)²/2 - log(2π)/2, *constant included* (so values are a true
    log-density; code that reports "0.5·SSE" drops D·log(2π)/2).

    Args:
        encode, decode: the model (see the module doc).
        x: a batch of inputs ``(N, ...)``, the same shape as the decoder's outputs.
        likelihood: "bernoulli" or "gaussian".
        samples: Monte Carlo draws per input.
        seed: an int or a NumPy Generator.
        batch_size: the most latent codes per decoder call.
        parts: also return the terms, as ``{"elbo", "reconstruction", "kl"}``.

    Returns:
        ``(N,)`` ELBO values (a lower bound on log p(x); the loss is its negative),
        or the dict of terms.

    Example:
        >>> import numpy as np
        >>> encode = lambda x: (np.zeros((len(x), 2)), np.zeros((len(x), 2)))   # q = prior: KL = 0
        >>> decode = lambda z: np.full((len(z), 4), 0.5)                         # every pixel p = 1/2
        >>> value = elbo(encode, decode, np.ones((3, 4)), seed=0)
        >>> np.allclose(value, 4 * np.log(0.5)), np.round(bits_per_dim(value, 4), 6).tolist()
        (True, [1.0, 1.0, 1.0])
    """
    log_px, _, mean, log_var = _sample_terms(encode, decode, x, samples, seed, likelihood, batch_size)
    kl = 0.5 * _sum_but_first(mean**2 + np.exp(log_var) - 1.0 - log_var)
    reconstruction = log_px.mean(axis=1)
    value = reconstruction - kl
    return {"elbo": value, "reconstruction": reconstruction, "kl": kl} if parts else value


def vae_loss(
    encode: Encode, decode: Decode, x: Any, likelihood: str = "bernoulli", seed: Seed = None, *, batch_size: int = 1024
) -> dict[str, float]:
    """A VAE's training objective on ``x`` with one z ~ q(z|x) per input, in nats per input: the means of the
    reconstruction loss (minus :func:`elbo`'s ``"reconstruction"``: for "bernoulli" the binary cross-entropy
    summed over the pixels), of the KL term and of their sum (the negative ELBO), as
    ``{"reconstruction", "kl", "loss"}``.

    Example:
        >>> import numpy as np
        >>> encode = lambda x: (np.ones((len(x), 2)), np.zeros((len(x), 2)))   # KL = ½ Σ mean² = 1
        >>> decode = lambda z: np.full((len(z), 4), 0.5)                        # 4 pixels at p = 1/2
        >>> loss = vae_loss(encode, decode, np.ones((3, 4)), seed=0)
        >>> {name: round(value, 4) for name, value in loss.items()}
        {'reconstruction': 2.7726, 'kl': 1.0, 'loss': 3.7726}
    """
    terms = elbo(encode, decode, x, likelihood=likelihood, seed=seed, batch_size=batch_size, parts=True)
    reconstruction, kl = -float(np.mean(terms["reconstruction"])), float(np.mean(terms["kl"]))
    return {"reconstruction": reconstruction, "kl": kl, "loss": reconstruction + kl}


def iwae_log_likelihood(
    encode: Encode,
    decode: Decode,
    x: Any,
    k: int,
    seed: Seed = None,
    *,
    likelihood: str = "bernoulli",
    batch_size: int = 1024,
) -> np.ndarray:
    """The importance-weighted bound (Burda et al. 2015) per input, in nats:

    ``log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x)``, z_i ~ q(z|x).

    It is at most log p(x), equals the ELBO's expectation for k = 1, and rises to
    log p(x) as k grows. NOTE: the sum is taken in log space with log-sum-exp
    (shifted by the largest term), since the weights under- or overflow float64
    for images. Likelihoods as in :func:`elbo`.

    Args:
        encode, decode: the model.
        x: a batch of inputs ``(N, ...)``.
        k: importance samples per input (5000 is the usual figure for reported NLLs).
        seed: an int or a NumPy Generator.
        likelihood: "bernoulli" or "gaussian".
        batch_size: the most latent codes per decoder call (k decoder passes per input).

    Returns:
        ``(N,)`` bounds.

    Example:
        >>> import numpy as np
        >>> # z ~ N(0, 1), x | z ~ N(z, 1): p(x) = N(x; 0, 2); the exact posterior is N(x/2, 1/2)
        >>> encode = lambda x: (x / 2, np.full_like(x, np.log(0.5)))
        >>> x = np.array([[0.0], [1.0]])
        >>> bound = iwae_log_likelihood(encode, lambda z: z, x, k=3, seed=0, likelihood="gaussian")
        >>> bool(np.allclose(bound, -0.5 * np.log(4 * np.pi) - x[:, 0] ** 2 / 4))   # exact at any k
        True
    """
    log_px, log_ratio, _, _ = _sample_terms(encode, decode, x, k, seed, likelihood, batch_size)
    return _logsumexp(log_px + log_ratio, axis=1) - math.log(k)


def iwae_bound(
    encode: Encode,
    decode: Decode,
    x: Any,
    k: int,
    seed: Seed = None,
    *,
    likelihood: str = "bernoulli",
    batch_size: int = 1024,
) -> tuple[float, float]:
    """The mean over inputs of :func:`iwae_log_likelihood`, with its standard error.

    Returns:
        ``(mean, standard_error)`` in nats per input; the standard error is the
        sample standard deviation over inputs (ddof 1) over √N, NaN for one input.

    Example:
        >>> import numpy as np
        >>> encode = lambda x: (x / 2, np.full_like(x, np.log(0.5)))
        >>> mean, se = iwae_bound(encode, lambda z: z, np.zeros((4, 1)), k=2, likelihood="gaussian")
        >>> bool(np.isclose(mean, -0.5 * np.log(4 * np.pi))), se
        (True, 0.0)
    """
    values = iwae_log_likelihood(encode, decode, x, k, seed, likelihood=likelihood, batch_size=batch_size)
    n = len(values)
    se = float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(np.mean(values)), se


def bits_per_dim(log_likelihood: Any, dims: int | Sequence[int]) -> np.ndarray:
    """Negative log-likelihood in bits per dimension: ``-log_likelihood / (D ln 2)``.

    Args:
        log_likelihood: nats per input, e.g. from :func:`elbo` or :func:`iwae_log_likelihood`.
        dims: D, or the shape of one input (its product is D).

    Example:
        >>> import numpy as np
        >>> float(bits_per_dim(-784 * np.log(2), (1, 28, 28)))
        1.0
    """
    d = int(np.prod(dims)) if not isinstance(dims, (int, np.integer)) else int(dims)
    return -np.asarray(log_likelihood, dtype=np.float64) / (d * math.log(2.0))


def cross_entropy(x: Any, probabilities: Any) -> np.ndarray:
    """The binary cross-entropy of each input under a decoder's pixel probabilities, summed over its values, in nats:
    -Σ x log p + (1 - x) log(1 - p), each log clamped at -100 as in :func:`elbo` (the Bernoulli likelihood's
    negative, for the decoded posterior mean or any other code).

    Args:
        x: a batch of inputs ``(N, ...)`` in [0, 1].
        probabilities: the decoder's outputs, the shape of ``x``.

    Returns:
        ``(N,)`` nats per input.

    Example:
        >>> import numpy as np
        >>> np.round(cross_entropy(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])), 6).tolist()  # 2 ln 2
        [1.386294]
    """
    x, p = np.asarray(x, dtype=np.float64), np.asarray(probabilities, dtype=np.float64)
    if x.shape != p.shape or x.ndim < 1:
        raise NetError(f"cross_entropy: inputs {x.shape} and probabilities {p.shape} differ in shape")
    return -_log_likelihood(x, p, "bernoulli")


def nearest_neighbours(x: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    """For each input, the nearest of ``references`` (Euclidean distance over all values) and the root mean square
    difference to it: how close generated samples come to the training data, next to how close unseen data comes, puts
    a number on memorisation.

    Args:
        x: a batch ``(N, ...)``, e.g. samples from the prior.
        references: a batch ``(M, ...)`` of the same shape per item, e.g. the training pictures.

    Returns:
        ``(index, rms)``: ``(N,)`` indices into ``references`` and ``(N,)`` RMS differences.

    Example:
        >>> import numpy as np
        >>> references = np.stack([np.zeros((1, 2, 2)), np.ones((1, 2, 2))])
        >>> index, rms = nearest_neighbours(np.full((2, 1, 2, 2), [[[[0.2]]], [[[0.9]]]]), references)
        >>> index.tolist(), np.round(rms, 6).tolist()
        ([0, 1], [0.2, 0.1])
    """
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    b = np.asarray(references, dtype=np.float64).reshape(len(references), -1)
    if a.shape[1] != b.shape[1] or not len(b):
        raise NetError(f"nearest_neighbours: {a.shape[1]} values per input against {b.shape} references")
    squared = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
    index = squared.argmin(axis=1)
    return index, np.sqrt(np.maximum(squared[np.arange(len(a)), index], 0) / a.shape[1])


# --- anomaly scores ----------------------------------------------------------------------------------------------


def anomaly_scores(
    encode: Encode,
    decode: Decode,
    x: Any,
    k: int = 64,
    seed: Seed = None,
    *,
    likelihood: str = "bernoulli",
    batch_size: int = 1024,
) -> np.ndarray:
    """Per-input anomaly scores: the negative IWAE bound with ``k`` samples (higher is more anomalous).

    NOTE: likelihood scores can rank out-of-distribution inputs as *more* likely
    than training data (simple, low-variance pictures especially); check the
    score with :func:`roc_auc` on held-out normal and anomalous inputs.

    Args:
        encode, decode: the model.
        x: a batch of inputs ``(N, ...)``.
        k: importance samples per input.
        seed, likelihood, batch_size: as in :func:`iwae_log_likelihood`.

    Returns:
        ``(N,)`` scores in nats.

    Example:
        >>> import numpy as np
        >>> encode = lambda x: (x / 2, np.full_like(x, np.log(0.5)))
        >>> scores = anomaly_scores(encode, lambda z: z, np.array([[0.0], [3.0]]), k=4, likelihood="gaussian")
        >>> bool(scores[1] > scores[0])
        True
    """
    return -iwae_log_likelihood(encode, decode, x, k, seed, likelihood=likelihood, batch_size=batch_size)


def roc_auc(scores_normal: Any, scores_anomalous: Any) -> float:
    """Area under the ROC curve of a score that should be higher for anomalies.

    It is the probability that a random anomalous input scores above a random
    normal one, ties counting one half (the Mann-Whitney U statistic over the
    product of the group sizes), computed from average ranks in O(n log n).

    Args:
        scores_normal: scores of normal inputs.
        scores_anomalous: scores of anomalous inputs.

    Returns:
        The AUC in [0, 1]: 1 separates perfectly, 0.5 is chance.

    Example:
        >>> roc_auc([0.1, 0.4, 0.35], [0.8, 0.4])
        0.9166666666666666
    """
    normal = np.asarray(scores_normal, dtype=np.float64).reshape(-1)
    anomalous = np.asarray(scores_anomalous, dtype=np.float64).reshape(-1)
    if normal.size == 0 or anomalous.size == 0:
        raise NetError("roc_auc needs at least one normal and one anomalous score")
    both = np.concatenate([normal, anomalous])
    if np.isnan(both).any():
        raise NetError("roc_auc: the scores contain NaN")
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # ranks from 1; a tie shares its mean rank
    ranks = average_rank[inverse.reshape(-1)]
    m = anomalous.size
    u = ranks[normal.size :].sum() - m * (m + 1) / 2.0
    return float(u / (m * normal.size))
