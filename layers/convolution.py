"""ConvolutionLayer, DeconvolutionLayer and PoolingLayer, over 1, 2 or 3 spatial dimensions.

Examples are channels first: ``(C, L)``, ``(C, H, W)`` or ``(C, D, H, W)``. An int kernel size
takes its dimensionality from the input; a tuple fixes it. ``interleaving=True`` (the Wolfram
Language's ``Interleaving -> True``) puts the channels last on both ports instead: ``(L, C)``,
``(H, W, C)``, ``(D, H, W, C)``. The weights keep their layout either way.

Interleaving. The kernels below work channels first. An interleaved layer moves the channel
axis of its input batch (N, *spatial, C) to the front and that of its output back to the end,
each a transposed view, not a copy: the convolution copies its input once anyway (padding, or
the batch-last relayout below) and that one copy reads the view; its output, batch-last in
memory, goes out as a view whose next interleaved layer moves it back to exactly the batch-last
array it wants. The gradients go through the same two views. The one cost is that copy reading
the channels at stride 1 rather than rows: for a batch of 32 images of 32×32×64 (float32, one
core) about 9 ms instead of 4.5, next to 75 ms or more for the 3×3, 64-channel convolution's
products. Without interleaving nothing is moved at all.

Lowering. Convolution is cross-correlation computed as one matrix product per channel group:
``im2col`` copies the windows of the padded input, read through a strided view, into a matrix
whose rows are (input channel, kernel offset) and whose columns are (output position, example);
the weights, a (group, output channels, rows) stack, multiply it in one batched ``matmul``. The
adjoint in the input, ``col2im``, multiplies by the transposed weights and adds every column
entry back where it was read from (a loop over the kernel offsets only). The transposed
convolution (DeconvolutionLayer) *is* that adjoint, so its forward pass is the convolution's
backward-data pass and its backward-data pass is a convolution. Pooling reads the same strided
windows and reduces them. All of it goes through ``xp``, so NumPy and CuPy share every line; on
NumPy with Numba, the window copies and scatter-adds may run as compiled loops instead
(:mod:`netgraph.compiled.windows`, bit for bit the same), and how each pass is lowered (those
kernels or NumPy's copies, the column block size, the products' transposition and cut over the
threads: :class:`Lowering`) is timed once per shape on the machine by :mod:`netgraph.tuning`.

Layout. The layers take and give (N, C, *spatial) arrays, but what they allocate is laid out
(C, *spatial, N) in memory, the example index fastest ("batch-last"). Products then write and
read their column matrices as views, and each window copy or scatter-add moves runs of
out_w·N values at stride 1 (N at larger strides) instead of rows of out_w, which is what makes
them cheap next to the products. The copies, the scatter-adds and the products are split over
the CPU threads (:func:`netgraph.backend.in_parallel`, :func:`netgraph.backend.matmul`).

Example:
    >>> import numpy as np
    >>> from layers import ConvolutionLayer, PoolingLayer
    >>> conv = ConvolutionLayer(1, (2, 2), weights=[[[[1, 2], [0, 0]]]], biases=[0], input=(1, 3, 3))
    >>> conv(np.array([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]])).tolist()
    [[[5.0, 8.0], [14.0, 17.0]]]
    >>> PoolingLayer(2, 2, input=(1, 4, 4))(np.arange(1.0, 17).reshape(1, 4, 4)).tolist()
    [[[6.0, 8.0], [14.0, 16.0]]]
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from netgraph import ops, tuning
from netgraph.autograd import Tensor, primitive
from netgraph.backend import (
    PARALLEL_MINIMUM,
    array_module,
    cpu_threads,
    in_parallel,
    matmul,
    products_split,
    transposes,
)
from netgraph.compiled import compiled_kernels_enabled, windows
from netgraph.epilogue import Activation, bias_activation
from netgraph.layer import Context, NetError, Shape, ShapeError, UnaryLayer, format_shape, is_whole
from netgraph.ports import Automatic

# --- geometry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Per spatial dimension: kernel size, stride, dilation and (begin, end) padding.

    For a convolution or pooling the padding is added to the input; for a transposed
    convolution it is cropped from the full output.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]

    @property
    def span(self) -> tuple[int, ...]:
        """Extent of one dilated window: dil·(k − 1) + 1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    def positions(self, padded: tuple[int, ...]) -> tuple[int, ...]:
        """Window positions along each padded dimension: ⌊(padded − span)/stride⌋ + 1."""
        return tuple((n - s) // st + 1 for n, s, st in zip(padded, self.span, self.stride))

    def offset_index(self, offset: tuple[int, ...], out: tuple[int, ...], first: int = 0) -> tuple[slice, ...]:
        """The cells read by kernel offset ``offset`` at every one of the ``out`` positions
        (along the first spatial dimension, the positions from ``first`` on)."""
        firsts = (first, *(0,) * (len(out) - 1))
        starts = (k * d + s * f for k, d, s, f in zip(offset, self.dilation, self.stride, firsts))
        taps = (slice(b, b + s * (o - 1) + 1, s) for b, s, o in zip(starts, self.stride, out))
        return (slice(None), slice(None), *taps)

    def offsets(self):
        return itertools.product(*(range(k) for k in self.kernel))


def _batch_last(xp, shape: tuple[int, ...], value: float | None, dtype):
    """An array of ``shape`` (N, C, *spatial) filled with ``value`` (None: left uninitialised),
    laid out (C, *spatial, N) in memory.

    NOTE: the matrix products see channels as rows and (position, example) as columns, so
    arrays in this layout convert to and from them with views instead of copies, and the window
    copies below move runs of whole batches (N·out_w values at stride 1) instead of single rows.
    """
    memory = (shape[1], *shape[2:], shape[0])
    return xp.moveaxis(xp.empty(memory, dtype) if value is None else xp.full(memory, value, dtype), -1, 0)


def _is_batch_last(x) -> bool:
    return x.strides[0] == x.itemsize and x.strides[1] >= x.strides[-1] if x.ndim > 2 else False


def _new(xp, shape: tuple[int, ...], value: float | None, dtype, batch_last: bool):
    """A new array of ``shape`` filled with ``value`` (None: uninitialised), batch-last or C-ordered."""
    if batch_last:
        return _batch_last(xp, shape, value, dtype)
    return xp.empty(shape, dtype) if value is None else xp.full(shape, value, dtype)


def _as_batch_last(x):
    """``x`` itself if it is batch-last, else a batch-last copy."""
    return _pad(x, ((0, 0),) * (x.ndim - 2))


def _pad(x, pads, value=0.0, relayout=True):
    """``x`` (N, C, *spatial) padded spatially with ``value``, laid out batch-last.

    ``x`` itself when there is no padding and it is already batch-last (or ``relayout`` is off).
    """
    if not any(b or e for b, e in pads) and (_is_batch_last(x) or not relayout):
        return x
    n, c, *spatial = x.shape
    padded = _batch_last(array_module(x), (n, c, *(s + b + e for s, (b, e) in zip(spatial, pads))), value, x.dtype)
    padded[(slice(None), slice(None), *(slice(b, b + s) for s, (b, _) in zip(spatial, pads)))] = x
    return padded


def _crop(x, pads):
    return x[(slice(None), slice(None), *(slice(b, n - e) for (b, e), n in zip(pads, x.shape[2:])))]


def _windows(xpad, window: Window, out: tuple[int, ...]):
    """Strided view (N, C, *out, *kernel) of the windows of ``xpad``, to be read only."""
    xp = array_module(xpad)
    spatial = xpad.strides[2:]
    strides = (
        *xpad.strides[:2],
        *(b * s for b, s in zip(spatial, window.stride)),
        *(b * d for b, d in zip(spatial, window.dilation)),
    )
    as_strided = importlib.import_module(f"{xp.__name__}.lib.stride_tricks").as_strided  # numpy or cupy
    return as_strided(xpad, (*xpad.shape[:2], *out, *window.kernel), strides)


# --- im2col / col2im and the three products of a convolution ------------------------------------


COLUMN_BLOCK = 1 << 22
"""Values in one block of a column matrix (16 MB in float32), unless tuning chooses otherwise. The
products go block by block over the first output dimension, so a block is copied, multiplied and
dropped while it is still in the cache; a column matrix bigger than one block (∏kernel times the
input) is never held whole."""

COMPILED_COPY_CHANNELS = 32
"""Channels from which the fixed rules copy windows with the compiled kernel rather than NumPy's
strided copy (measured: 1.1-1.3 times faster from 32 channels on, 0.8-0.9 times with 1 to 16;
the compiled scatter-add wins everywhere, 1.2-4 times, and is always the rule)."""


@dataclass(frozen=True)
class Lowering:
    """How one pass of a convolution runs: what :mod:`netgraph.tuning` chooses per shape.

    Attributes:
        windows: "numpy" (strided copies, one scatter-add per kernel offset) or "compiled"
            (:mod:`netgraph.compiled.windows`, one loop each).
        block: values per column block (None: :data:`COLUMN_BLOCK`).
        transpose: compute the products the other way round from :func:`netgraph.backend.transposes`'s rule.
        split: how each product is cut over the threads (None: :func:`netgraph.backend.matmul`'s rule).
        rows_in_parallel: each thread copies and multiplies the windows of its own share of the
            output rows, whole (the forward pass and the weights' gradient; not the adjoint).
    """

    windows: str = "numpy"
    block: int | None = None
    transpose: bool = False
    split: str | None = None
    rows_in_parallel: bool = False

    def product(self, a, b, out=None):
        """``a @ b`` under this lowering's product settings."""
        rule = transposes(a.shape[-2], a.shape[-1], b.shape[-1])
        return matmul(a, b, out=out, transpose=rule != self.transpose, split=self.split)


def _blocks(values_per_row: int, rows: int, block: int | None = None, first: int = 0) -> list[tuple[int, int]]:
    """Ranges of ``rows`` output rows (first spatial dimension) from ``first`` on, whose column blocks
    hold ~``block`` values (:data:`COLUMN_BLOCK` when None)."""
    step = max(1, (block or COLUMN_BLOCK) // max(1, values_per_row))
    return [(first + a, first + min(a + step, rows)) for a in range(0, rows, step)]


def _im2col(xpad, window: Window, out: tuple[int, ...], groups: int, rows: tuple[int, int], compiled: bool = False):
    """(N, C, *padded), batch-last -> (groups, C/groups·∏kernel, (b−a)·∏out[1:]·N): the windows of the
    output rows ``rows`` = (a, b), one copy through the window view (or the compiled kernel's loop)."""
    xp, (n, c), d = array_module(xpad), xpad.shape[:2], len(out)
    if compiled:
        cols = xp.empty((c, *window.kernel, rows[1] - rows[0], *out[1:], n), xpad.dtype)
        memory = xpad.transpose(1, *range(2, 2 + d), 0)  # (C, *padded, N), as it lies in memory
        length, parts = _parts(c, n)

        def copy_compiled(begin: int, end: int) -> None:
            windows.im2col(memory, cols, window.stride, window.dilation, rows[0], parts(begin, end))

        in_parallel(xp, copy_compiled, length, cols.size)
        return cols.reshape(groups, c // groups * math.prod(window.kernel), -1)
    view = _windows(xpad, window, out)[:, :, rows[0] : rows[1]]  # axes: n, c, *out, *kernel
    view = view.transpose(1, *range(2 + d, 2 + 2 * d), *range(2, 2 + d), 0)  # c, *kernel, *out, n
    cols = xp.empty(view.shape, xpad.dtype)
    length, part = _split(c, n)

    def copy(begin: int, end: int) -> None:
        cols[part(begin, end)] = view[part(begin, end)]

    in_parallel(xp, copy, length, cols.size)
    return cols.reshape(groups, c // groups * math.prod(window.kernel), -1)


def _col2im_add(result, cols, window: Window, out: tuple[int, ...], rows: tuple[int, int], compiled: bool = False):
    """Adjoint of :func:`_im2col`: adds every entry of the block ``cols`` back into ``result``
    (memory order (C, *padded, N)) at the cell it was read from."""
    xp, (c, n) = array_module(cols), (result.shape[0], result.shape[-1])
    block = (rows[1] - rows[0], *out[1:])
    cols = cols.reshape(c, *window.kernel, *block, n)
    if compiled:
        length, parts = _parts(c, n)
        cols = xp.ascontiguousarray(cols)

        def scatter_compiled(begin: int, end: int) -> None:
            windows.col2im_add(result, cols, window.stride, window.dilation, rows[0], parts(begin, end))

        in_parallel(xp, scatter_compiled, length, cols.size)
        return
    length, part = _split(c, n)

    def scatter(begin: int, end: int) -> None:
        into, cols_part = result[part(begin, end)], cols[part(begin, end)]
        for offset in window.offsets():  # a loop over the kernel offsets only
            taps = window.offset_index(offset, block, rows[0])[2:]
            into[(slice(None), *taps)] += cols_part[(slice(None), *offset)]

    in_parallel(xp, scatter, length, cols.size)


def _split(c: int, n: int) -> tuple[int, Callable[[int, int], tuple]]:
    """How :func:`in_parallel` cuts a pass over arrays holding channels on the first axis and
    examples on the last (fastest) one: the length to split, and the index of a part.

    By channel, which keeps every copied run whole, unless there are fewer channels than
    threads (a first layer's one or three): then by example.
    """
    if c >= cpu_threads():
        return c, lambda begin, end: (slice(begin, end),)
    return n, lambda begin, end: (..., slice(begin, end))


def _parts(c: int, n: int) -> tuple[int, Callable[[int, int], tuple[int, int, int, int]]]:
    """:func:`_split` for the compiled kernels: a part as (channel begin, end, example begin, end)."""
    if c >= cpu_threads():
        return c, lambda begin, end: (begin, end, 0, n)
    return n, lambda begin, end: (0, c, begin, end)


def _rows(y, groups: int):
    """(N, O, *out) -> (groups, O/groups, ∏out·N); a view when ``y`` is batch-last."""
    n, o = y.shape[:2]
    return y.reshape(n, groups, o // groups, -1).transpose(1, 2, 3, 0).reshape(groups, o // groups, -1)


def _unrows(rows, n: int, out: tuple[int, ...]):
    """(groups, O/groups, ∏out·N) -> (N, O, *out); a view whose memory stays batch-last."""
    g, og = rows.shape[:2]
    return array_module(rows).moveaxis(rows.reshape(g * og, *out, n), -1, 0)


def _matrices(weights, groups: int):
    """Weights (O, C/groups, *kernel) -> (groups, O/groups, C/groups·∏kernel)."""
    return weights.reshape(groups, weights.shape[0] // groups, -1)


# --- the lowering of each pass: fixed rules, or chosen on this machine ------------------------------


def _default_lowering(xp, channels: int, scatter: bool) -> Lowering:
    """The fixed rules: compiled scatter-adds, compiled window copies from :data:`COMPILED_COPY_CHANNELS`
    channels, NumPy's otherwise and wherever the compiled kernels are off."""
    compiled = compiled_kernels_enabled(xp) and (scatter or channels >= COMPILED_COPY_CHANNELS)
    return Lowering(windows="compiled" if compiled else "numpy")


def _lowering(name: str, xpad, other, window: Window, groups: int, columns: int, scatter: bool, run) -> Lowering:
    """The lowering of one pass (``name``) over the padded input (or result) ``xpad`` and ``other``
    (weights or cotangent): the fixed rules, or :func:`netgraph.tuning.choose`'s on this machine.

    ``columns``: the values of the whole column matrix; ``run(lowering)`` runs the pass.
    """
    xp = array_module(xpad, other)
    default = _default_lowering(xp, xpad.shape[1], scatter)
    if xp is not np or not tuning.autotuning_enabled():
        return default
    inner = other.shape[1] if name.startswith("weights") else other.shape[0]  # O, from the cotangent or weights
    work = columns * inner // groups  # multiply-adds of the pass's products
    if work < tuning.TUNING_MINIMUM:
        return default
    stages: list[tuple[str, list]] = []
    if compiled_kernels_enabled(xp) and name != "weights, reused":
        stages.append(("windows", ["numpy", "compiled"]))
    if name in ("adjoint", "forward, weights"):  # the passes that keep no column matrix for later
        stages.append(("block", [b for b in (COLUMN_BLOCK >> 2, COLUMN_BLOCK >> 4) if b < columns]))
    stages.append(("transpose", [False, True]))
    if cpu_threads() > 1 and products_split():
        # NOTE: not "none": one thread wins such products only while other programs hold the other
        # cores, and a choice timed then would stay after they are gone.
        stages.append(("split", [None, "rows", "columns"]))
        if name != "adjoint":
            stages.append(("rows_in_parallel", [False, True]))
    threads = f"{cpu_threads()} threads" + (", products split" if products_split() else "")
    threads += ", compiled" if compiled_kernels_enabled(xp) else ""
    geometry = f"kernel {window.kernel} stride {window.stride} dilation {window.dilation} groups {groups}"
    key = (name, tuple(xpad.shape), str(xpad.dtype), tuple(other.shape), geometry, threads)
    choice = tuning.choose(key, dict(vars(default)), stages, lambda c: run(Lowering(**c)), work)
    return Lowering(**choice)


def _correlate(xpad, window: Window, out: tuple[int, ...], groups: int, weights=None, y=None, saved=None):
    """The cross-correlation of ``xpad`` with ``weights`` -> (N, O, *out), and/or, given a cotangent
    ``y`` (N, O, *out), the gradient in the weights of ⟨y, correlation⟩ -> (O, C/groups, *kernel).

    Both come from the same column blocks, one matrix product per group and block. When all
    the columns fit one block, the block is put in the list ``saved`` (if given) and taken from
    it when there, so a backward pass reuses the forward pass's copy. The lowering (copies,
    blocks, products) follows the fixed rules or the choice tuned on this machine for the shape.
    """
    n, c = xpad.shape[:2]
    columns = c * math.prod(window.kernel) * math.prod(out) * n
    if weights is not None:
        name, other = ("forward, weights" if y is not None else "forward"), weights
    else:
        name, other = ("weights, reused" if saved else "weights"), y

    def run(lowering: Lowering):  # timing runs touch no list of the caller's
        return _correlate_with(lowering, xpad, window, out, groups, weights, y, list(saved) if saved else None)

    lowering = _lowering(name, xpad, other, window, groups, columns, False, run)
    return _correlate_with(lowering, xpad, window, out, groups, weights, y, saved)


def _correlate_with(lowering: Lowering, xpad, window: Window, out, groups: int, weights, y, saved):
    """:func:`_correlate` under the given lowering.

    The output rows are cut into shares, one per thread when ``lowering.rows_in_parallel`` (each
    thread then copies the windows of its rows and multiplies them on its own, one hand-off per
    pass instead of one per copy and product), else one share; each share goes block by block, the
    blocks of all shares together no bigger than one block of the lowering (memory as without shares).
    ``saved`` passes the column blocks from the forward pass to the weights' gradient, as
    ``[(rows, cols), ...]``, when each share is one block.
    """
    xp, (n, c) = array_module(xpad), xpad.shape[:2]
    width = math.prod(out[1:]) * n  # columns per output row
    result = y_rows = None
    if weights is not None:
        o = weights.shape[0]
        result = xp.empty((groups, o // groups, out[0] * width), xpad.dtype)
    if y is not None:
        y_rows = _rows(y, groups)
    kept = saved.pop() if saved else None
    if kept is not None:
        shares = [[rows] for rows, _ in kept]
    else:
        per_row = c * math.prod(window.kernel) * width
        ranges = _shares(out[0], lowering.rows_in_parallel)
        block = (lowering.block or COLUMN_BLOCK) // len(ranges)  # the threads' blocks together: one block
        shares = [_blocks(per_row, b - a, block, a) for a, b in ranges]
    keep = kept is None and saved is not None and all(len(blocks) == 1 for blocks in shares)
    cols_of = dict(kept or ())  # rows -> columns kept by the forward pass
    gradients: list = [None] * len(shares)
    new_kept: list = [None] * len(shares)

    def run_share(index: int) -> None:
        gradient = None
        for a, b in shares[index]:
            cols = cols_of.get((a, b))
            if cols is None:
                cols = _im2col(xpad, window, out, groups, (a, b), lowering.windows == "compiled")
            if keep:
                new_kept[index] = ((a, b), cols)
            if weights is not None:
                lowering.product(_matrices(weights, groups), cols, out=result[..., a * width : b * width])
            if y is not None:
                part = lowering.product(y_rows[..., a * width : b * width], cols.swapaxes(1, 2))
                gradient = part if gradient is None else xp.add(gradient, part, out=gradient)
        gradients[index] = gradient

    def run_shares(begin: int, end: int) -> None:
        for index in range(begin, end):
            run_share(index)

    if lowering.rows_in_parallel and len(shares) > 1:
        in_parallel(xp, run_shares, len(shares), PARALLEL_MINIMUM)
    else:
        run_shares(0, len(shares))
    if keep:
        saved.append(new_kept)
    filter_gradient = gradients[0]
    for gradient in gradients[1:] if y is not None else ():  # in the order of the rows, not of the threads
        filter_gradient = xp.add(filter_gradient, gradient, out=filter_gradient)
    if filter_gradient is not None:
        filter_gradient = filter_gradient.reshape(y.shape[1], -1, *window.kernel)
    return None if result is None else _unrows(result, n, out), filter_gradient


def _shares(rows: int, in_parallel_: bool) -> list[tuple[int, int]]:
    """The output rows cut into one range per thread (``in_parallel_``), or one range."""
    parts = min(cpu_threads(), rows) if in_parallel_ else 1
    return [(rows * i // parts, rows * (i + 1) // parts) for i in range(parts)]


def _correlate_adjoint(y, weights, window: Window, padded_shape: tuple[int, ...], groups: int):
    """Adjoint of the cross-correlation in its (padded) input: GEMM, then col2im, block by block
    -> (N, C, *padded), batch-last."""
    n, c, out = padded_shape[0], padded_shape[1], y.shape[2:]
    columns = c * math.prod(window.kernel) * math.prod(out) * n
    probe = _Shape(padded_shape, y.dtype)

    def run(lowering: Lowering):
        return _correlate_adjoint_with(lowering, y, weights, window, padded_shape, groups)

    lowering = _lowering("adjoint", probe, weights, window, groups, columns, True, run)
    return _correlate_adjoint_with(lowering, y, weights, window, padded_shape, groups)


@dataclass(frozen=True)
class _Shape:
    """What :func:`_lowering` reads of an array that is yet to be made: its shape and dtype."""

    shape: tuple[int, ...]
    dtype: Any


def _correlate_adjoint_with(lowering: Lowering, y, weights, window: Window, padded_shape: tuple[int, ...], groups):
    """:func:`_correlate_adjoint` under the given lowering."""
    xp, (n, c), out = array_module(y), padded_shape[:2], y.shape[2:]
    width = math.prod(out[1:]) * n
    y_rows, transposed = _rows(y, groups), _matrices(weights, groups).swapaxes(1, 2)
    result = xp.zeros((c, *padded_shape[2:], n), y.dtype)  # batch-last, as _batch_last
    compiled = lowering.windows == "compiled"
    for a, b in _blocks(c * math.prod(window.kernel) * width, out[0], lowering.block):
        cols = lowering.product(transposed, y_rows[..., a * width : b * width])
        _col2im_add(result, cols, window, out, (a, b), compiled)
    return xp.moveaxis(result, -1, 0)


def _add_biases(y, biases):
    if biases is not None:
        y += biases.reshape(-1, *(1,) * (y.ndim - 2))
    return y


def _bias_gradient(g):
    return g.sum(axis=(0, *range(2, g.ndim)))


# --- primitives ------------------------------------------------------------------------------


@primitive
def convolution(x, weights, biases=None, *, window: Window, groups: int = 1):
    """Cross-correlation of ``x`` (N, C, *spatial) with ``weights`` (O, C/groups, *kernel), plus ``biases``.

    Keeps the weights, the padded input and, when it fits one block (:data:`COLUMN_BLOCK`),
    the column matrix; a bigger one is not kept: the weights' gradient copies the windows again,
    block by block, instead of holding ∏kernel times the input's size.

    Example:
        >>> import numpy as np
        >>> w = Window(kernel=(2,), stride=(1,), dilation=(1,), pads=((0, 0),))
        >>> convolution.raw(np.array([[[1.0, 2, 4]]]), np.array([[[1.0, -1]]]), window=w)[0].tolist()
        [[[-1.0, -2.0]]]
    """
    xpad = _pad(x, window.pads)  # batch-last, for long runs in the window copy
    padded_shape, out = xpad.shape, window.positions(xpad.shape[2:])
    saved: list = []  # the column matrix, if it fits one block
    y = _add_biases(_correlate(xpad, window, out, groups, weights=weights, saved=saved)[0], biases)

    def vjp(g, needs):
        g = _as_batch_last(g)  # both products read it as a (channel, position·example) matrix
        gx = _correlate_adjoint(g, weights, window, padded_shape, groups) if needs[0] else None
        gw = _correlate(xpad, window, out, groups, y=g, saved=saved)[1] if needs[1] else None
        gb = _bias_gradient(g) if biases is not None and needs[2] else None
        return None if gx is None else _crop(gx, window.pads), gw, gb

    return y, vjp


@primitive
def deconvolution(x, weights, biases=None, *, window: Window, groups: int = 1):
    """Transposed convolution: the adjoint of :func:`convolution` in its input, cropped by ``window.pads``.

    ``x`` is (N, C, *spatial) and ``weights`` (C, O/groups, *kernel). The forward pass is the
    convolution's backward-data pass (GEMM, col2im); the backward pass copies the windows of the
    padded cotangent once per block and uses them for both gradients. Keeps the input and the
    weights.

    Example:
        >>> import numpy as np
        >>> w = Window(kernel=(2,), stride=(2,), dilation=(1,), pads=((0, 0),))
        >>> deconvolution.raw(np.array([[[1.0, 10]]]), np.array([[[1.0, 2]]]), window=w)[0].tolist()
        [[[1.0, 2.0, 10.0, 20.0]]]
    """
    n, spatial = x.shape[0], x.shape[2:]
    full = tuple(s * (size - 1) + sp for s, size, sp in zip(window.stride, spatial, window.span))
    z = _correlate_adjoint(x, weights, window, (n, weights.shape[1] * groups, *full), groups)
    z = _add_biases(_crop(z, window.pads), biases)  # a view into the full output, which is ours

    def vjp(g, needs):
        gpad = _pad(g, window.pads)  # cropped cells: zero cotangent
        gx, gw = _correlate(gpad, window, spatial, groups, weights if needs[0] else None, x if needs[1] else None)
        return gx, gw, _bias_gradient(g) if biases is not None and needs[2] else None

    return z, vjp


@primitive
def max_pooling(x, *, window: Window):
    """Maximum over each window; padded cells are -inf, so they never win.

    The gradient goes to the first maximal cell of each window. Keeps which kernel offset won
    (one byte per output value).
    """
    xp = array_module(x)
    xpad = _pad(x, window.pads, value=-np.inf, relayout=False)
    padded_shape, out, offsets = xpad.shape, window.positions(xpad.shape[2:]), list(window.offsets())
    batch_last = _is_batch_last(xpad)  # pooling keeps its input's layout
    y = _new(xp, (*xpad.shape[:2], *out), None, xpad.dtype, batch_last)
    y[...] = xpad[window.offset_index(offsets[0], out)]
    winner = xp.zeros_like(y, dtype=np.uint8 if len(offsets) < 256 else np.int32)  # which offset won
    for k, offset in enumerate(offsets[1:], 1):
        cells = xpad[window.offset_index(offset, out)]
        winner = xp.where(cells > y, winner.dtype.type(k), winner)  # strictly greater: ties keep the first
        xp.maximum(y, cells, out=y)

    def vjp(g, needs):
        gpad = _new(xp, padded_shape, 0, g.dtype, batch_last)
        for k, offset in enumerate(offsets):
            gpad[window.offset_index(offset, out)] += (winner == k) * g
        return (_crop(gpad, window.pads),)

    return y, vjp


@primitive
def total_pooling(x, *, window: Window, scale: float = 1.0):
    """``scale`` times the sum over each window, padded cells (zeros) included. Keeps nothing."""
    xp = array_module(x)
    xpad = _pad(x, window.pads, relayout=False)
    padded_shape, out, offsets = xpad.shape, window.positions(xpad.shape[2:]), list(window.offsets())
    batch_last = _is_batch_last(xpad)  # pooling keeps its input's layout
    y = _new(xp, (*xpad.shape[:2], *out), None, xpad.dtype, batch_last)
    y[...] = xpad[window.offset_index(offsets[0], out)]
    for offset in offsets[1:]:
        y += xpad[window.offset_index(offset, out)]
    if scale != 1.0:
        y *= scale

    def vjp(g, needs):
        gpad = _new(xp, padded_shape, 0, g.dtype, batch_last)
        gs = g * scale if scale != 1.0 else g
        for offset in offsets:
            gpad[window.offset_index(offset, out)] += gs
        return (_crop(gpad, window.pads),)

    return y, vjp


# --- option handling ---------------------------------------------------------------------------


def _ints(value: Any, what: str, minimum: int, many: bool = True) -> tuple[int, ...] | int:
    """An int, or (when ``many``) a tuple of ints from a list or tuple; each at least ``minimum``."""
    items = value if many and isinstance(value, (list, tuple)) else [value]
    if not items or not all(is_whole(v) for v in items):
        raise NetError(f"{what} must be {'an int or a list of ints' if many else 'an int'}, got {value!r}")
    if any(v < minimum for v in items):
        raise NetError(f"{what} must be at least {minimum}, got {value!r}")
    return tuple(int(v) for v in items) if isinstance(value, (list, tuple)) else int(value)


def _pad_spec(value: Any, what: str) -> Any:
    if isinstance(value, str):
        if value != "Same":
            raise NetError(f'{what} must be an int, a list, a list of (begin, end) pairs or "Same", got {value!r}')
        return value
    if isinstance(value, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in value):
        pairs = tuple(_ints(v if isinstance(v, (list, tuple)) else (v, v), what, 0) for v in value)
        if any(len(p) != 2 for p in pairs):
            raise NetError(f"{what}: each (begin, end) pair needs two entries, got {value!r}")
        return pairs
    return _ints(value, what, 0)


def _per_dim(value: Any, d: int, what: str, layer: str) -> tuple:
    if not isinstance(value, tuple):
        return (value,) * d
    if len(value) != d:
        raise ShapeError(f"{layer}: {what} {list(value)} has {len(value)} entries for {d} spatial dimensions")
    return value


def _interleaving(value: Any, kind: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise NetError(f"{kind}: interleaving must be True (channels last) or False (channels first), got {value!r}")
    return bool(value)


class _WindowLayer(UnaryLayer):
    """Kernel, stride, dilation, padding and interleaving options shared by the three layers.

    The shape rules, the arrays and the primitives work on channels-first shapes; with
    ``interleaving=True`` the ports are channels last, and :meth:`_channels_first` /
    :meth:`_interleaved` convert a port shape, :meth:`_to_channels_first` /
    :meth:`_from_channels_first` a batch (a transposed view each way, no copy).
    """

    def __init__(self, kernel_size, stride, padding_size, dilation, *, interleaving, input, output) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        kind = type(self).__name__
        self.kernel_size = _ints(kernel_size, f"{kind}: kernel_size", 1)
        self.stride = _ints(stride, f"{kind}: stride", 1)
        self.dilation = _ints(dilation, f"{kind}: dilation", 1)
        self.padding_size = _pad_spec(padding_size, f"{kind}: padding_size")
        self.interleaving = _interleaving(interleaving, kind)

    # -- the channel axis: first (default) or last -------------------------------------------------
    def _channels_first(self, shape: Shape) -> Shape:
        """A port shape as the kernels see it: (C, *spatial)."""
        return (shape[-1], *shape[:-1]) if self.interleaving and len(shape) > 1 else tuple(shape)

    def _interleaved(self, shape: Shape) -> Shape:
        """A channels-first shape as the ports give it: (*spatial, C) when interleaving."""
        return (*shape[1:], shape[0]) if self.interleaving else tuple(shape)

    def _input(self) -> Shape:
        """The input port's shape, channels first."""
        return self._channels_first(self.port_shapes["Input"])

    def _to_channels_first(self, x: Tensor) -> Tensor:
        """A batch (N, *spatial, C) -> (N, C, *spatial) when interleaving: a view, no copy.

        NOTE: the convolution's first step (padding, or the batch-last relayout) copies its input
        anyway, and that one copy reads this view; the output (N, O, *out), batch-last in memory,
        goes back as a view (N, *out, O) too, which the next interleaved layer turns into exactly
        the batch-last array it wants, so a chain of interleaved layers copies no more than a
        channels-first one.
        """
        return ops.transpose(x, (0, x.ndim - 1, *range(1, x.ndim - 1))) if self.interleaving else x

    def _from_channels_first(self, y: Tensor) -> Tensor:
        return ops.transpose(y, (0, *range(2, y.ndim), 1)) if self.interleaving else y

    def _spatial(self, shape: Shape) -> tuple[int, ...]:
        """The spatial dimensions of an input shape (as the port gives it), checked against the
        options' dimensionality."""
        fixed = [
            len(v) for v in (self.kernel_size, self.stride, self.dilation, self.padding_size) if isinstance(v, tuple)
        ]
        d = fixed[0] if fixed else len(shape) - 1
        if len(shape) != d + 1 or not 1 <= d <= 3:
            layout = "channels-last (interleaving=True)" if self.interleaving else "channels-first"
            raise ShapeError(
                f"{self.describe()}: needs a {layout} input of rank 2, 3 or 4 matching its "
                f"{d}-dimensional options, got {format_shape(shape)}"
            )
        return tuple(self._channels_first(shape)[1:])

    def _window(self, spatial: tuple[int, ...]) -> Window:
        d, name = len(spatial), self.describe()
        kernel = _per_dim(self.kernel_size, d, "kernel_size", name)
        stride = _per_dim(self.stride, d, "stride", name)
        dilation = _per_dim(self.dilation, d, "dilation", name)
        if self.padding_size == "Same":
            pads = self._same(spatial, kernel, stride, dilation)
        else:
            pads = tuple(
                p if isinstance(p, tuple) else (p, p) for p in _per_dim(self.padding_size, d, "padding_size", name)
            )
        return Window(kernel, stride, dilation, pads)

    def _same(self, spatial, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
        """Padding for "Same": output ⌈in/stride⌉, the odd cell at the end (as TensorFlow/Keras)."""
        pads = []
        for n, k, s, d in zip(spatial, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)

    def _checked_positions(self, window: Window, spatial: tuple[int, ...]) -> tuple[int, ...]:
        padded = tuple(n + b + e for n, (b, e) in zip(spatial, window.pads))
        out = window.positions(padded)
        if min(out) < 1:
            raise ShapeError(
                f"{self.describe()}: input {format_shape(spatial)} padded to {format_shape(padded)} is smaller "
                f"than the window {format_shape(window.span)} (kernel {format_shape(window.kernel)}, "
                f"dilation {format_shape(window.dilation)})"
            )
        return out

    def _window_config(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("kernel_size", "stride", "padding_size", "dilation", "interleaving")}

    def __repr__(self) -> str:
        """The usual line (kind, port shapes), with ``interleaving=True`` when the channels are last."""
        text = super().__repr__()
        return f"{text[:-1]}, interleaving=True)" if self.interleaving else text


class _FilterLayer(_WindowLayer):
    """Common part of ConvolutionLayer and DeconvolutionLayer: channels, groups, arrays."""

    array_roles = {"Weights": "weights", "Biases": "zeros"}

    def __init__(self, n, kernel_size, stride, padding_size, dilation, channel_groups, weights, biases, **options):
        """``options``: ``interleaving``, ``input`` and ``output``, as :class:`_WindowLayer` takes them."""
        super().__init__(kernel_size, stride, padding_size, dilation, **options)
        self.n = _ints(n, f"{type(self).__name__}: the number of output channels", 1, many=False)
        self.channel_groups = _ints(channel_groups, f"{type(self).__name__}: channel_groups", 1, many=False)
        self.set_arrays({"Weights": _auto(weights), "Biases": _auto(biases)})
        w = self.arrays.get("Weights")
        if w is not None and w.ndim < 3:
            raise NetError(f"{type(self).__name__}: weights must have rank 3 to 5, got shape {w.shape}")
        self._finish_init()

    def _weights_shape(self, c_in: int, kernel: tuple[int, ...]) -> Shape:
        raise NotImplementedError

    def _check_channels(self, c_in: int) -> None:
        g = self.channel_groups
        if c_in % g or self.n % g:
            raise ShapeError(
                f"{self.describe()}: {c_in} input channels and {self.n} output channels must both be "
                f"divisible by channel_groups={g}"
            )

    def _check_given(self, shape: Shape) -> None:
        """``shape``: the input, channels first."""
        expected = self._weights_shape(shape[0], self._window(tuple(shape[1:])).kernel)
        w = self.arrays.get("Weights")
        if w is not None and w.shape != expected:
            raise ShapeError(
                f"{self.describe()}: weights have shape {format_shape(w.shape)}, expected {format_shape(expected)}"
            )

    def array_shapes(self) -> dict[str, Shape]:
        shape = self._input()  # the weights' layout does not depend on interleaving
        shapes = {"Weights": self._weights_shape(shape[0], self._window(tuple(shape[1:])).kernel), "Biases": (self.n,)}
        return {k: v for k, v in shapes.items() if k in self.arrays}

    def fan(self, name: str) -> tuple[int, int]:
        """Fan-in (C_in/groups)·∏kernel and fan-out (n/groups)·∏kernel for Kaiming/Xavier."""
        shape = self._input()
        k = math.prod(self._window(tuple(shape[1:])).kernel)
        g = self.channel_groups
        return shape[0] // g * k, self.n // g * k

    def _arrays(self, ctx: Context):
        biases = ctx.array(self, "Biases") if "Biases" in self.arrays else None
        return ctx.array(self, "Weights"), biases

    def _with_epilogue(self, primitive: Callable, x: Tensor, ctx: Context, activation: Activation) -> Tensor:
        """``primitive`` (convolution or deconvolution) without the biases, then the biases and ``activation``
        in one pass over its output (:func:`~netgraph.epilogue.bias_activation`): a fused step of a plan."""
        weights, biases = self._arrays(ctx)
        window = self._window(self._input()[1:])
        y = primitive(self._to_channels_first(x), weights, window=window, groups=self.channel_groups)
        return self._from_channels_first(bias_activation(y, biases, activation=activation))

    def config(self) -> dict[str, Any]:
        return {"n": self.n, **self._window_config(), "channel_groups": self.channel_groups}


def _auto(value: Any) -> Any:
    return "Automatic" if value is Automatic else value


# --- the layers ----------------------------------------------------------------------------------


class ConvolutionLayer(_FilterLayer):
    """``n`` output channels from a cross-correlation with a learned kernel (not flipped).

    Args:
        n: output channels.
        kernel_size: ``k`` (as many dims as the input has spatially) or ``(kh, kw)``, ``(k,)``, ``(kd, kh, kw)``.
        stride, dilation: an int or one per spatial dimension.
        padding_size: ``p``, ``(p_h, p_w)``, ``((top, bottom), (left, right))`` or ``"Same"``
            (output ⌈in/stride⌉, the odd padded cell at the end, as TensorFlow/Keras).
        channel_groups: input and output channels split into this many groups that see only their own.
        weights, biases: arrays of shape (n, C_in/groups, *kernel) and (n,); ``biases=None`` removes them.
        interleaving: False: ports (C_in, *spatial) and (n, *out); True: (*spatial, C_in) and (*out, n),
            the channels last (Wolfram's ``Interleaving -> True``). The weights' shape is the same.

    Output size per spatial dim: ⌊(in + pb + pe − (dil·(k − 1) + 1))/stride⌋ + 1.

    Example:
        >>> import numpy as np
        >>> conv = ConvolutionLayer(1, (2, 2), weights=[[[[1, 2], [0, 0]]]], biases=[0], input=(1, 3, 3))
        >>> conv(np.array([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]])).tolist()
        [[[5.0, 8.0], [14.0, 17.0]]]
        >>> ConvolutionLayer(3, 2, input=(2, 3, 4), padding_size=((1, 2), (2, 1))).port_shapes["Output"]
        (3, 5, 6)
        >>> ConvolutionLayer(16, 3, interleaving=True, input=(32, 32, 3))
        ConvolutionLayer(32×32×3 → 30×30×16, interleaving=True)
    """

    def __init__(
        self,
        n: int,
        kernel_size: Any,
        stride: Any = 1,
        padding_size: Any = 0,
        dilation: Any = 1,
        channel_groups: int = 1,
        *,
        weights: Any = Automatic,
        biases: Any = Automatic,
        interleaving: bool = False,
        input: Any = None,  # noqa: A002
        output: Any = None,
    ) -> None:
        filters = (n, kernel_size, stride, padding_size, dilation, channel_groups, weights, biases)
        super().__init__(*filters, interleaving=interleaving, input=input, output=output)

    def _weights_shape(self, c_in, kernel):
        return (self.n, c_in // self.channel_groups, *kernel)

    def output_shape(self, input_shape):
        spatial, channels = self._spatial(input_shape), self._channels_first(input_shape)[0]
        self._check_channels(channels)
        self._check_given((channels, *spatial))
        return self._interleaved((self.n, *self._checked_positions(self._window(spatial), spatial)))

    def apply(self, x, ctx):
        window = self._window(self._input()[1:])
        y = convolution(self._to_channels_first(x), *self._arrays(ctx), window=window, groups=self.channel_groups)
        return self._from_channels_first(y)

    def apply_with_epilogue(self, x: Tensor, ctx: Context, activation: Activation) -> Tensor:
        """:meth:`apply`, then ``activation``, the biases added in its pass (see :mod:`netgraph.graph`'s fusion)."""
        return self._with_epilogue(convolution, x, ctx, activation)


class DeconvolutionLayer(_FilterLayer):
    """Transposed convolution: the adjoint of a ConvolutionLayer's map from input to output.

    Same options as :class:`ConvolutionLayer`, but ``padding_size`` is *cropped* from the full
    output, whose size per spatial dim is stride·(in − 1) + dil·(k − 1) + 1; so the output is
    that minus pb + pe. ``"Same"`` gives in·stride: the crop dil·(k − 1) + 1 − stride is split
    as begin = total // 2, end = the rest. Weights have shape (C_in, n/groups, *kernel), with or
    without ``interleaving=True`` (channels last on both ports).

    Example:
        >>> import numpy as np
        >>> up = DeconvolutionLayer(1, 2, stride=2, weights=[[[[1, 2], [3, 4]]]], biases=[0], input=(1, 1, 2))
        >>> up(np.array([[[1.0, 10.0]]])).tolist()
        [[[1.0, 2.0, 10.0, 20.0], [3.0, 4.0, 30.0, 40.0]]]
        >>> DeconvolutionLayer(1, 4, stride=2, padding_size=1, input=(3, 4, 4)).port_shapes["Output"]
        (1, 8, 8)
        >>> DeconvolutionLayer(1, 4, stride=2, padding_size=1, interleaving=True, input=(4, 4, 3)).port_shapes["Output"]
        (8, 8, 1)
    """

    def __init__(
        self,
        n: int,
        kernel_size: Any,
        stride: Any = 1,
        padding_size: Any = 0,
        dilation: Any = 1,
        channel_groups: int = 1,
        *,
        weights: Any = Automatic,
        biases: Any = Automatic,
        interleaving: bool = False,
        input: Any = None,  # noqa: A002
        output: Any = None,
    ) -> None:
        filters = (n, kernel_size, stride, padding_size, dilation, channel_groups, weights, biases)
        super().__init__(*filters, interleaving=interleaving, input=input, output=output)

    def _weights_shape(self, c_in, kernel):
        return (c_in, self.n // self.channel_groups, *kernel)

    def _same(self, spatial, kernel, stride, dilation):
        pads = []
        for k, s, d in zip(kernel, stride, dilation):
            total = d * (k - 1) + 1 - s
            if total < 0:
                raise ShapeError(
                    f'{self.describe()}: padding_size "Same" needs stride {s} <= the window {d * (k - 1) + 1} '
                    f"(kernel {k}, dilation {d})"
                )
            pads.append((total // 2, total - total // 2))
        return tuple(pads)

    def output_shape(self, input_shape):
        spatial, channels = self._spatial(input_shape), self._channels_first(input_shape)[0]
        self._check_channels(channels)
        self._check_given((channels, *spatial))
        window = self._window(spatial)
        full = tuple(s * (n - 1) + sp for s, n, sp in zip(window.stride, spatial, window.span))
        out = tuple(f - b - e for f, (b, e) in zip(full, window.pads))
        if min(out) < 1:
            raise ShapeError(
                f"{self.describe()}: cropping {[list(p) for p in window.pads]} from the full output "
                f"{format_shape(full)} leaves nothing"
            )
        return self._interleaved((self.n, *out))

    def apply(self, x, ctx):
        window = self._window(self._input()[1:])
        z = deconvolution(self._to_channels_first(x), *self._arrays(ctx), window=window, groups=self.channel_groups)
        return self._from_channels_first(z)

    def apply_with_epilogue(self, x: Tensor, ctx: Context, activation: Activation) -> Tensor:
        """:meth:`apply`, then ``activation``, the biases added in its pass (see :mod:`netgraph.graph`'s fusion)."""
        return self._with_epilogue(deconvolution, x, ctx, activation)


class PoolingLayer(_WindowLayer):
    """Max, mean or total over windows, channel by channel.

    ``PoolingLayer(k)`` has stride 1, as in the Wolfram Language (not k). ``function`` is
    "Max", "Mean" or "Total"; ``padding_size`` has the convolution's forms, and each padding
    must be smaller than the kernel. Output per spatial dim: ⌊(in + pb + pe − k)/stride⌋ + 1.
    ``interleaving=True`` takes and gives (*spatial, C), the channels last.

    NOTE: max pooling pads with -inf, so padded cells never win; mean pooling pads with zeros
    and counts them in the denominator (always divides by ∏kernel), as MXNet does by default.

    Example:
        >>> import numpy as np
        >>> pool = PoolingLayer(2, 2, input=(1, 4, 4))
        >>> pool(np.arange(1.0, 17).reshape(1, 4, 4)).tolist()
        [[[6.0, 8.0], [14.0, 16.0]]]
        >>> PoolingLayer(2, function="Mean", input=(1, 3))(np.array([[1.0, 2, 6]])).tolist()
        [[1.5, 4.0]]
        >>> PoolingLayer(2, function="Mean", interleaving=True, input=(3, 1))(np.array([[1.0], [2], [6]])).tolist()
        [[1.5], [4.0]]
    """

    FUNCTIONS = ("Max", "Mean", "Total")

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = 1,
        *,
        function: str = "Max",
        padding_size: Any = 0,
        interleaving: bool = False,
        input: Any = None,  # noqa: A002
        output: Any = None,
    ) -> None:
        super().__init__(kernel_size, stride, padding_size, 1, interleaving=interleaving, input=input, output=output)
        if function not in self.FUNCTIONS:
            raise NetError(f"PoolingLayer: function must be one of {self.FUNCTIONS}, got {function!r}")
        self.function = function
        self._finish_init()

    def output_shape(self, input_shape):
        spatial = self._spatial(input_shape)
        window = self._window(spatial)
        if any(b >= k or e >= k for (b, e), k in zip(window.pads, window.kernel)):
            raise ShapeError(
                f"{self.describe()}: padding {[list(p) for p in window.pads]} must be smaller than "
                f"the kernel {format_shape(window.kernel)}"
            )
        return self._interleaved((self._channels_first(input_shape)[0], *self._checked_positions(window, spatial)))

    def apply(self, x, ctx):
        window, x = self._window(self._input()[1:]), self._to_channels_first(x)
        if self.function == "Max":
            return self._from_channels_first(max_pooling(x, window=window))
        # NOTE: "Mean" divides by the kernel size everywhere, padded cells included (MXNet's default).
        scale = 1.0 / math.prod(window.kernel) if self.function == "Mean" else 1.0
        return self._from_channels_first(total_pooling(x, window=window, scale=scale))

    def config(self) -> dict[str, Any]:
        config = self._window_config()
        del config["dilation"]
        return {**config, "function": self.function}


__all__ = ["ConvolutionLayer", "DeconvolutionLayer", "PoolingLayer", "Window", "convolution", "deconvolution"]
