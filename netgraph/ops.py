"""Primitives on tensors: the forward computation and its derivative, side by side.

Each primitive returns ``(output, vjp)``; ``vjp(g, needs)`` returns one
cotangent per positional input (``None`` where ``needs`` says nobody asked).
Broadcasting is undone by the engine (:func:`netgraph.autograd.unbroadcast`),
so a rule may return a cotangent of the broadcast shape. A rule never
modifies ``g`` in place. Math goes through ``xp``, the module owning the
array, so NumPy and CuPy share every line.

Example:
    >>> import numpy as np
    >>> from netgraph import ops
    >>> from netgraph.autograd import Tensor
    >>> ops.matmul(Tensor(np.eye(2)), Tensor(np.array([[1.0], [2.0]]))).data.ravel().tolist()
    [1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import backend
from .autograd import Tensor, primitive
from .backend import array_module

# --- arithmetic -------------------------------------------------------------


@primitive
def add(a, b):
    return a + b, lambda g, needs: (g, g)


@primitive
def sub(a, b):
    return a - b, lambda g, needs: (g, -g if needs[1] else None)


@primitive
def mul(a, b):
    # keeps: both inputs
    return a * b, lambda g, needs: (g * b if needs[0] else None, g * a if needs[1] else None)


@primitive
def div(a, b):
    out = a / b  # keeps: b and the output

    def vjp(g, needs):
        ga = g / b
        return ga if needs[0] else None, -ga * out if needs[1] else None

    return out, vjp


@primitive
def neg(a):
    return -a, lambda g, needs: (-g,)


@primitive
def power(a, exponent: float):
    """``a ** exponent`` for a constant exponent."""
    out = a**exponent  # keeps: the input
    return out, lambda g, needs: (g * (exponent * a ** (exponent - 1)),)


@primitive
def matmul(a, b):
    """Matrix product over the last two axes (leading axes broadcast)."""

    def vjp(g, needs):
        ga = backend.matmul(g, b.swapaxes(-1, -2)) if needs[0] else None
        gb = backend.matmul(a.swapaxes(-1, -2), g) if needs[1] else None
        return ga, gb

    return backend.matmul(a, b), vjp


@primitive
def affine(x, weights, biases=None):
    """``x @ weights.T + biases`` for ``x`` (N, in), ``weights`` (out, in) and ``biases`` (out,):
    LinearLayer's map as one primitive. The biases are added in place into the product, and
    each gradient comes out laid out as its array (the weights' one as g.T·x, not as the
    transpose of a product), so the optimiser's passes run over contiguous memory, and the
    input's column-major when ``x`` is (a flattened batch-last convolution output), so the layers
    before it multiply arrays of one layout. Keeps ``x`` and ``weights``.

    Example:
        >>> import numpy as np
        >>> affine.raw(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]]), np.array([0.5]))[0].tolist()
        [[11.5]]
    """
    y = backend.matmul(x, weights.T)
    if biases is not None:
        y += biases

    def vjp(g, needs):
        gx = None
        if needs[0]:  # in x's layout (column-major for a flattened batch-last convolution output)
            column_major = x.ndim == 2 and x.strides[0] < x.strides[1]
            gx = backend.matmul(weights.T, g.T).T if column_major else backend.matmul(g, weights)
        gw = backend.matmul(g.T, x) if needs[1] else None
        gb = g.sum(axis=0) if biases is not None and needs[2] else None
        return gx, gw, gb

    return y, vjp


# --- reductions -----------------------------------------------------------------


def _normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _expand_back(g, axes: tuple[int, ...], keepdims: bool):
    if keepdims:
        return g
    xp = array_module(g)
    return xp.expand_dims(g, axes) if axes else g


@primitive
def sum(x, axis=None, keepdims: bool = False):  # noqa: A001 - mirrors numpy's name
    xp = array_module(x)
    axes = _normalize_axes(axis, x.ndim)
    shape = x.shape
    out = xp.sum(x, axis=axes, keepdims=keepdims)
    return out, lambda g, needs: (xp.broadcast_to(_expand_back(g, axes, keepdims), shape),)


def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (a sum times a constant)."""
    axes = _normalize_axes(axis, x.ndim)
    count = 1
    for a in axes:
        count *= x.shape[a]
    return mul(sum(x, axis=axes, keepdims=keepdims), 1.0 / count)


@primitive
def max(x, axis=None, keepdims: bool = False):  # noqa: A001
    """Maximum over ``axis``; the gradient is shared equally among ties."""
    xp = array_module(x)
    axes = _normalize_axes(axis, x.ndim)
    out = xp.max(x, axis=axes, keepdims=True)

    def vjp(g, needs):
        hit = (x == out).astype(x.dtype)
        hit /= hit.sum(axis=axes, keepdims=True)
        return (hit * _expand_back(g, axes, keepdims),)

    return (out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axes])), vjp


def min(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``."""
    return neg(max(neg(x), axis=axis, keepdims=keepdims))


# --- shape and movement ---------------------------------------------------------


@primitive
def reshape(x, shape: tuple[int, ...]):
    old = x.shape
    return x.reshape(shape), lambda g, needs: (g.reshape(old),)


@primitive
def transpose(x, axes: tuple[int, ...]):
    inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return x.transpose(axes), lambda g, needs: (g.transpose(inverse),)


@primitive
def broadcast_to(x, shape: tuple[int, ...]):
    # the engine's unbroadcast sums the cotangent back to x's shape
    return array_module(x).broadcast_to(x, shape), lambda g, needs: (g,)


@primitive
def getitem(x, index):
    """``x[index]`` for basic or integer-array indices."""
    xp = array_module(x)
    shape, dtype = x.shape, x.dtype

    def vjp(g, needs):
        gx = xp.zeros(shape, dtype)
        if _is_basic_index(index):
            gx[index] = g
        else:
            xp.add.at(gx, index, g)
        return (gx,)

    return x[index], vjp


def _is_basic_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


@primitive
def concatenate(*xs, axis: int = 0):
    xp = array_module(*xs)
    sizes = [x.shape[axis] for x in xs]

    def vjp(g, needs):
        bounds = [0]
        for n in sizes:
            bounds.append(bounds[-1] + n)
        return tuple(
            g[(slice(None),) * (axis % g.ndim) + (slice(lo, hi),)] if need else None
            for lo, hi, need in zip(bounds, bounds[1:], needs)
        )

    return xp.concatenate(xs, axis=axis), vjp


@primitive
def pad(x, pad_width: tuple[tuple[int, int], ...], value: float = 0.0):
    """Constant padding (``pad_width`` per axis, as ``numpy.pad``)."""
    xp = array_module(x)
    crop = tuple(slice(lo, n + lo) for (lo, _), n in zip(pad_width, x.shape))
    return xp.pad(x, pad_width, constant_values=value), lambda g, needs: (g[crop],)


# --- normalised exponentials ----------------------------------------------------


@primitive
def softmax(x, axis: int = -1):
    xp = array_module(x)
    z = xp.exp(x - x.max(axis=axis, keepdims=True))
    out = z / z.sum(axis=axis, keepdims=True)  # keeps: the output
    return out, lambda g, needs: (out * (g - (g * out).sum(axis=axis, keepdims=True)),)


# --- operators on Tensor ----------------------------------------------------------


def _install_operators() -> None:
    T = Tensor  # noqa: N806
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pow__ = lambda a, e: power(a, e)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__getitem__ = lambda a, i: getitem(a, i)
    T.reshape = lambda a, *shape: reshape(a, shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape)
    T.transpose = lambda a, *axes: transpose(a, axes[0] if len(axes) == 1 and isinstance(axes[0], tuple) else axes)
    T.sum = lambda a, axis=None, keepdims=False: sum(a, axis=axis, keepdims=keepdims)
    T.mean = lambda a, axis=None, keepdims=False: mean(a, axis=axis, keepdims=keepdims)


_install_operators()
