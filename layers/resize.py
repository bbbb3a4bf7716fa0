"""Resampling and padding: ResizeLayer and PaddingLayer.

ResizeLayer interpolates along each resized level with a small matrix (one
matrix product per level, so the gradient is the transposed product);
PaddingLayer pads with a constant, or by gathering edge, mirrored or periodic
elements along each padded level, whose gradient adds the padded cotangent back.

Example:
    >>> import numpy as np
    >>> from netgraph import Scaled
    >>> from layers import PaddingLayer, ResizeLayer
    >>> PaddingLayer([(1, 2)])(np.array([5.0, 6.0])).tolist()
    [0.0, 5.0, 6.0, 0.0, 0.0]
    >>> ResizeLayer([Scaled(2)], resampling="Nearest", input=(1, 2))(np.array([[1.0, 2.0]])).tolist()
    [[1.0, 1.0, 2.0, 2.0]]
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from netgraph import ops
from netgraph.autograd import primitive
from netgraph.backend import array_module
from netgraph.layer import Context, NetError, Shape, ShapeError, UnaryLayer, format_shape, is_whole
from netgraph.ports import All, Automatic, Scaled

# --- ResizeLayer --------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _host_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
    """The (n_out, n_in) matrix that resamples one line, half-pixel centres.

    Output sample j sits at input coordinate ``(j + 0.5) * n_in / n_out - 0.5``
    (align_corners=False). "Linear" mixes the two neighbours, clamping at the
    borders; "Nearest" takes input pixel ``floor((j + 0.5) * n_in / n_out)``,
    which for an integer upscaling m repeats every pixel m times.
    """
    scale = n_in / n_out
    rows = np.arange(n_out)
    matrix = np.zeros((n_out, n_in))
    if method == "Nearest":
        matrix[rows, np.minimum(np.floor((rows + 0.5) * scale).astype(int), n_in - 1)] = 1.0
    else:
        source = np.clip((rows + 0.5) * scale - 0.5, 0, n_in - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        weight = source - low
        np.add.at(matrix, (rows, low), 1.0 - weight)
        np.add.at(matrix, (rows, high), weight)
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=256)
def _matrix(n_in: int, n_out: int, method: str, xp: Any, dtype: Any) -> Any:
    """The resampling matrix on the device, in the working precision (never modified)."""
    return xp.asarray(_host_matrix(n_in, n_out, method), dtype=dtype)


def _size(entry: Any, n: int) -> int:
    if entry is All:
        return n
    if isinstance(entry, Scaled):
        return max(1, math.floor(entry.ratio * n + 1e-9))
    return int(entry)


@primitive
def repeat(x, *, repeats: int, axis: int):
    """Every element ``repeats`` times along ``axis`` (as ``numpy.repeat``); the
    gradient adds each group back with ``repeats - 1`` strided additions (NumPy
    reduces a short trailing axis slowly)."""
    xp = array_module(x)

    def vjp(g, needs):
        lead = (slice(None),) * axis
        total = g[lead + (slice(0, None, repeats),)]
        for k in range(1, repeats):
            total = total + g[lead + (slice(k, None, repeats),)]
        return (total,)

    return xp.repeat(x, repeats, axis=axis), vjp


class ResizeLayer(UnaryLayer):
    """Resizes the last ``len(dims)`` levels of each example; the levels before them
    (the channel level of an image) are unchanged.

    Each entry of ``dims`` is a size, ``Scaled(r)`` (r times the input size,
    rounded down, at least 1) or ``All`` (unchanged). ``resampling`` is
    "Linear" (the default, also for ``Automatic``: piecewise linear in each
    resized level, i.e. bilinear for images) or "Nearest".

    NOTE: samples are placed at half-pixel centres (align_corners=False), as
    PyTorch's ``interpolate(..., align_corners=False)`` and OpenCV's
    INTER_LINEAR do: output sample j reads input coordinate
    ``(j + 0.5) * n_in / n_out - 0.5``, clamped to the border. "Nearest" takes
    pixel ``floor((j + 0.5) * n_in / n_out)``, so ``Scaled(m)`` for an integer
    m repeats every pixel m times, and other ratios pick the pixel whose cell
    holds the output sample's centre.

    Example:
        >>> import numpy as np
        >>> from netgraph import Scaled
        >>> x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
        >>> ResizeLayer([Scaled(2), Scaled(2)], resampling="Nearest", input=(1, 2, 2))(x)[0].tolist()
        [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]
        >>> ResizeLayer([4, 4], input=(1, 2, 2))(x)[0].tolist()
        [[1.0, 1.25, 1.75, 2.0], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3.0, 3.25, 3.75, 4.0]]
    """

    def __init__(self, dims: Any, *, resampling: Any = "Linear", input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        entries = tuple(dims) if isinstance(dims, (list, tuple)) else (dims,)
        if not entries:
            raise NetError("ResizeLayer: give at least one dimension")
        for d in entries:
            valid_int = is_whole(d) and d >= 1
            if not (valid_int or d is All or (isinstance(d, Scaled) and d.ratio > 0)):
                raise NetError(f"ResizeLayer: each dimension must be a positive int, Scaled(r) or All, got {d!r}")
        self.dims = tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in entries)
        if resampling is Automatic:
            resampling = "Linear"
        if resampling not in ("Linear", "Nearest"):
            raise NetError(f'ResizeLayer: resampling must be "Linear" or "Nearest", got {resampling!r}')
        self.resampling = resampling
        self._finish_init()

    def output_shape(self, input_shape):
        k = len(self.dims)
        if len(input_shape) < k + 1:
            raise ShapeError(
                f"{self.describe()}: resizing {k} levels needs an input of rank {k + 1} or more "
                f"(channels first), got {format_shape(input_shape)}"
            )
        lead, resized = input_shape[:-k], input_shape[-k:]
        return lead + tuple(_size(d, n) for d, n in zip(self.dims, resized))

    def apply(self, x, ctx: Context):
        k = len(self.dims)
        for i, (n_in, n_out) in enumerate(zip(x.shape[-k:], self.port_shapes["Output"][-k:])):
            if n_in != n_out:
                x = self._resize_axis(x, x.ndim - k + i, n_in, n_out, ctx)
        return x

    def _resize_axis(self, x, axis: int, n_in: int, n_out: int, ctx: Context):
        before, after = x.shape[:axis], x.shape[axis + 1 :]
        if self.resampling == "Nearest" and n_out % n_in == 0:  # integer upscaling: repeat
            return repeat(x, repeats=n_out // n_in, axis=axis)
        matrix = _matrix(n_in, n_out, self.resampling, ctx.xp, np.dtype(x.dtype))
        if not after:  # the last level: one product (lines, n_in) @ (n_in, n_out)
            lines = ops.reshape(x, (-1, n_in))
            return ops.reshape(ops.matmul(lines, matrix.T), (*before, n_out))
        stack = ops.reshape(x, (-1, n_in, math.prod(after)))  # (n_out, n_in) @ each (n_in, rest)
        return ops.reshape(ops.matmul(matrix, stack), (*before, n_out, *after))

    def config(self) -> dict[str, Any]:
        return {"dims": self.dims, "resampling": self.resampling}


# --- PaddingLayer -------------------------------------------------------------------------

_MODES = {"Fixed": "edge", "Reflected": "reflect", "Periodic": "wrap"}


@functools.lru_cache(maxsize=256)
def _gather_plan(n: int, before: int, after: int, mode: str) -> tuple[np.ndarray, tuple]:
    """Source index of every padded position along one level, and the same map
    as runs ``(first output position, length, first source index, step)`` with
    step 1, -1 or 0, so that the gradient adds whole slices back."""
    index = np.pad(np.arange(n), (before, after), mode=_MODES[mode])
    runs = []
    start = 0
    while start < len(index):
        step = int(index[start + 1] - index[start]) if start + 1 < len(index) else 1
        end = start + 1
        if step in (-1, 0, 1):
            while end < len(index) and index[end] - index[end - 1] == step:
                end += 1
        else:
            step = 1
        runs.append((start, end - start, int(index[start]), step))
        start = end
    index.setflags(write=False)
    return index, tuple(runs)


@functools.lru_cache(maxsize=256)
def _device_index(n: int, before: int, after: int, mode: str, xp: Any) -> Any:
    return xp.asarray(_gather_plan(n, before, after, mode)[0])


@primitive
def take_runs(x, *, index, runs: tuple, axis: int):
    """``x`` gathered along ``axis`` at ``index``, whose structure ``runs`` describes
    (see ``_gather_plan``); the gradient adds each run's cotangent slice back."""
    xp = array_module(x)
    shape = x.shape

    def vjp(g, needs):
        gx = xp.zeros(shape, g.dtype)
        lead = (slice(None),) * axis
        for out, length, source, step in runs:
            part = g[lead + (slice(out, out + length),)]
            if step == 0:
                gx[lead + (source,)] += part.sum(axis=axis)
            elif step == 1:
                gx[lead + (slice(source, source + length),)] += part
            else:
                gx[lead + (slice(source - length + 1, source + 1),)] += xp.flip(part, axis=axis)
        return (gx,)

    return xp.take(x, index, axis=axis), vjp


class PaddingLayer(UnaryLayer):
    """Pads each level i of the example by ``b_i`` elements before and ``e_i`` after.

    ``specs`` is ``[(b1, e1), (b2, e2), ...]``, one pair per level from the
    first, the channel level included (``[(0, 0), (1, 1), (1, 1)]`` pads an
    image only spatially). ``padding`` is a number (the value, 0 by default),
    "Fixed" (repeat the edge element), "Reflected" (mirror without repeating
    the edge, as ``numpy.pad``'s "reflect"; pads longer than the level bounce
    back and forth) or "Periodic" (wrap around).

    Example:
        >>> import numpy as np
        >>> PaddingLayer([(1, 2)])(np.array([5.0, 6.0])).tolist()
        [0.0, 5.0, 6.0, 0.0, 0.0]
        >>> PaddingLayer([(2, 1)], padding="Reflected")(np.array([1.0, 2.0, 3.0])).tolist()
        [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
        >>> PaddingLayer([(0, 0), (1, 1)], padding="Fixed", input=(1, 2)).port_shapes["Output"]
        (1, 4)
    """

    def __init__(self, specs: Any, *, padding: Any = 0, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        try:
            pairs = tuple((int(b), int(e)) for b, e in specs)
        except (TypeError, ValueError):
            raise NetError(f"PaddingLayer: give one (before, after) pair per level, got {specs!r}") from None
        if not pairs or any(b < 0 or e < 0 for b, e in pairs):
            raise NetError(f"PaddingLayer: pads must be non-negative (before, after) pairs, got {specs!r}")
        if isinstance(padding, str):
            if padding not in _MODES:
                raise NetError(
                    f'PaddingLayer: padding must be a number, "Fixed", "Reflected" or "Periodic", got {padding!r}'
                )
        elif not isinstance(padding, (int, float, np.integer, np.floating)) or isinstance(padding, bool):
            raise NetError(f"PaddingLayer: padding must be a number or a method name, got {padding!r}")
        else:
            padding = float(padding)
        self.specs = pairs
        self.padding = padding
        self._finish_init()

    def _check_rank(self, shape: Shape) -> None:
        if len(shape) != len(self.specs):
            raise ShapeError(
                f"{self.describe()}: {len(self.specs)} (before, after) pairs for a rank-{len(shape)} input "
                f"{format_shape(shape)}; give one pair per level, (0, 0) for levels left alone"
            )

    def output_shape(self, input_shape):
        self._check_rank(input_shape)
        return tuple(n + b + e for n, (b, e) in zip(input_shape, self.specs))

    def input_shape(self, output_shape):
        self._check_rank(output_shape)
        shape = tuple(n - b - e for n, (b, e) in zip(output_shape, self.specs))
        if any(n < 1 for n in shape):
            raise ShapeError(f"{self.describe()}: output {format_shape(output_shape)} is smaller than the padding")
        return shape

    def apply(self, x, ctx: Context):
        if not isinstance(self.padding, str):
            return ops.pad(x, ((0, 0), *self.specs), value=self.padding)
        for level, (b, e) in enumerate(self.specs):
            if b or e:
                n = x.shape[level + 1]
                _, runs = _gather_plan(n, b, e, self.padding)
                index = _device_index(n, b, e, self.padding, ctx.xp)
                x = take_runs(x, index=index, runs=runs, axis=level + 1)
        return x

    def config(self) -> dict[str, Any]:
        return {"specs": self.specs, "padding": self.padding}


__all__ = ["PaddingLayer", "ResizeLayer"]
