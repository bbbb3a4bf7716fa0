"""The ADAM update as one compiled pass over memory (:meth:`netgraph.optimizers.Optimizer._adam`).

NumPy's update makes eleven passes over the parameters' size (moments scaled, the square of the
gradient, the root, the quotient, ...); here each parameter, its gradient and its two moments are
read once and written once. The arithmetic is the shared path's, operation for operation, in
the parameters' precision, so the two agree to the last bit but for rounding in ``sqrt``.

Example:
    >>> import numpy as np
    >>> w, g = np.ones(3, np.float32), np.full(3, 0.5, np.float32)
    >>> m, v = np.zeros_like(w), np.zeros_like(w)
    >>> adam(w, g, m, v, beta1=0.9, beta2=0.999, epsilon=1e-5, step_size=0.001)
    True
    >>> m.tolist() == [np.float32(0.05)] * 3
    True
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import in_parallel
from . import kernel
from .layout import flat, is_flat, memory_order

__all__ = ["adam", "adam_kernel"]


@kernel(error_model="numpy")
def adam_kernel(w, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, epsilon, step_size):
    """ADAM's step on vectors, in place: m, v the moments; the scalars in the vectors' precision.

    NOTE: the operations and their order are those of the shared path (m·β1 + g·(1-β1), then
    v·β2 + (g·g)·(1-β2), then w - (m / (√v + ε))·step), so that rounding matches it.
    """
    for i in range(w.size):
        gradient = g[i]
        moment = m[i] * beta1 + gradient * one_minus_beta1
        second = v[i] * beta2 + (gradient * gradient) * one_minus_beta2
        m[i] = moment
        v[i] = second
        w[i] = w[i] - (moment / (math.sqrt(second) + epsilon)) * step_size


def adam(
    w: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    *,
    beta1: float,
    beta2: float,
    epsilon: float,
    step_size: float,
) -> bool:
    """One ADAM step on ``w`` in place (``m``, ``v`` its moments, ``step_size`` the learning rate with
    Wolfram's bias correction folded in), split over netgraph's threads. Returns False, changing
    nothing, where the kernel does not take the arrays: a dtype other than float32/float64 or not
    the same for all, or ``w``, ``m`` and ``v`` not laid out alike as one dense block (a gradient
    laid out otherwise is copied into ``w``'s order).

    Example:
        >>> w = np.ones(4); m = v = np.zeros(4)
        >>> adam(w.astype(np.float16), w, m, v, beta1=0.9, beta2=0.999, epsilon=1e-5, step_size=0.1)
        False
    """
    dtype = w.dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype or a.shape != w.shape for a in (g, m, v)):
        return False
    order = memory_order(w)
    if not all(is_flat(a, order) for a in (w, m, v)):
        return False
    vectors = [flat(a, order) for a in (w, g, m, v)]
    scalars = [dtype.type(c) for c in (beta1, 1 - beta1, beta2, 1 - beta2, epsilon, step_size)]

    def update(begin: int, end: int) -> None:
        adam_kernel(*[vector[begin:end] for vector in vectors], *scalars)

    # NOTE: the size given is the parameters' count, not the 7 arrays read and written: one fused pass
    # over 1M parameters takes about as long as handing half of it to another thread (measured).
    in_parallel(np, update, w.size, w.size)
    return True
