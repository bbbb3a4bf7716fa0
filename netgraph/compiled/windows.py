"""Compiled window copies and scatter-adds of the convolution lowering (im2col and col2im).

The convolution layers lower a cross-correlation to matrix products over a column matrix whose
rows are (input channel, kernel offset) and whose columns are (output position, example). Its
NumPy form (``layers.convolution._im2col`` and ``_col2im_add``) copies the windows through a
strided view in one pass, and adds a column block back into the padded input with one
three-operand pass per kernel offset, each reading and writing the whole result again. The
kernels here do the same work in one loop each: the copy reads every window cell once, and
the scatter-add reads the column block once while the channel of the result it adds into stays
in the cache.

Layout. Every array is given as it lies in memory, batch-last: the padded input or result as
(C, *padded, N) and the column block as (C, *kernel, *block, N), the example index fastest. The
kernel sees both as flat memory with element strides (:func:`flat`), so any non-negative
strides will do, and fewer than three spatial dimensions as unit ones in front: one loop serves
1, 2 and 3 spatial dimensions, any stride and dilation. Where a window row is one run of memory
(stride 1 along the last spatial axis, whole batches), it is moved as one run of OW·N values.
Channel groups need nothing: the column block's rows are (channel, offset) whatever the groups,
and the products take the groups apart afterwards. Each call does a part, a range of channels
and a range of examples, so that :func:`netgraph.backend.in_parallel` can hand the parts to its
threads; the parts write disjoint memory.

The blocks of output rows. A column block holds the output positions ``first_row`` to
``first_row + OD`` along the first spatial dimension, as the products go block by block.

Example:
    >>> import numpy as np
    >>> x = np.arange(6.0).reshape(1, 6, 1)  # one channel, 6 cells, one example
    >>> cols = np.empty((1, 2, 3, 1))  # kernel 2, 3 positions at stride 2
    >>> im2col(x, cols, (2,), (1,), 0, (0, 1, 0, 1))
    >>> cols.ravel().tolist()
    [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
"""

from __future__ import annotations

import numpy as np

from netgraph.compiled import kernel
from netgraph.compiled.layout import memory_span

__all__ = ["col2im_add", "im2col"]


def _three(values: tuple[int, ...], fill: int = 1) -> tuple[int, int, int]:
    """Per-dimension geometry of 1 to 3 spatial dimensions as three, the missing ones first."""
    padded = (fill,) * (3 - len(values)) + tuple(values)
    return int(padded[0]), int(padded[1]), int(padded[2])


@kernel
def _windows(x, xs, cols, block, geometry, first, parts, scatter):  # pragma: no cover
    """The one loop of both passes: ``scatter`` False copies windows of ``x`` into ``cols``,
    True adds ``cols`` into ``x`` at the same cells. ``xs``: x's element strides (C, D, H, W, N);
    ``block``: cols' sizes (KD, KH, KW, OD, OH, OW, N); ``geometry``: strides then dilations;
    ``first``: the block's first position per axis; ``parts``: (c_begin, c_end, n_begin, n_end)."""
    kd, kh, kw, od, oh, ow, n = block
    sd, sh, sw, dd, dh, dw = geometry
    fd, fh, fw = first
    xc, xd, xh, xw, xn = xs
    c_begin, c_end, n_begin, n_end = parts
    whole_rows = n_begin == 0 and n_end == n and xn == 1 and xw == n and sw == 1  # (OW, N) runs at stride 1
    # NOTE: the innermost loops index with unsigned ints: Numba then skips the check for negative
    # indices (wrapping around from the end), which otherwise keeps LLVM from vectorising them (10x).
    run = np.uint64(ow * n if whole_rows else n_end - n_begin)
    step = np.uint64(xn)
    for c in range(c_begin, c_end):
        for a in range(kd):
            for b in range(kh):
                for e in range(kw):
                    for i in range(od):
                        z = (fd + i) * sd + a * dd
                        for j in range(oh):
                            y = (fh + j) * sh + b * dh
                            row = ((((((c * kd + a) * kh + b) * kw + e) * od + i) * oh + j) * ow) * n
                            source = c * xc + z * xd + y * xh
                            for k in range(1 if whole_rows else ow):
                                start = np.uint64(source + ((fw + k) * sw + e * dw) * xw + n_begin * xn)
                                target = np.uint64(row + k * n + n_begin)
                                if scatter and xn == 1:
                                    for m in range(run):
                                        x[start + m] += cols[target + m]
                                elif scatter:
                                    for m in range(run):
                                        x[start + m * step] += cols[target + m]
                                elif xn == 1:
                                    for m in range(run):
                                        cols[target + m] = x[start + m]
                                else:
                                    for m in range(run):
                                        cols[target + m] = x[start + m * step]


def _call(
    x: np.ndarray,
    cols: np.ndarray,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    first_row: int,
    parts: tuple[int, int, int, int],
    scatter: bool,
) -> None:
    d = x.ndim - 2
    if cols.ndim != 2 * d + 2 or not cols.flags.c_contiguous:
        raise ValueError(f"the column block must be C-contiguous (C, *kernel, *block, N), got shape {cols.shape}")
    values, strides = memory_span(x)
    padding = (1,) * (3 - d)
    xs = (strides[0], *(0,) * (3 - d), *strides[1:])
    block = (*padding, *cols.shape[1 : 1 + d], *padding, *cols.shape[1 + d :])
    geometry = (*_three(stride), *_three(dilation))
    first = _three((first_row, *(0,) * (d - 1)), fill=0)
    _windows(values, xs, cols.reshape(-1), block, geometry, first, parts, scatter)


def im2col(
    x: np.ndarray,
    cols: np.ndarray,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    first_row: int,
    parts: tuple[int, int, int, int],
) -> None:
    """Copy the windows of ``x`` (C, *padded, N) into ``cols`` (C, *kernel, *block, N), for the
    channels ``parts[0]:parts[1]`` and examples ``parts[2]:parts[3]``.

    ``block`` are the output positions whose first spatial index starts at ``first_row``;
    ``stride`` and ``dilation`` have one entry per spatial dimension (1 to 3). ``x`` may have
    any non-negative strides; ``cols``, C-contiguous, is written in place.

    Example:
        >>> x = np.arange(4.0).reshape(1, 4, 1)  # one channel of 4 cells, one example
        >>> cols = np.empty((1, 2, 3, 1))  # kernel 2 at 3 positions
        >>> im2col(x, cols, (1,), (1,), 0, (0, 1, 0, 1))
        >>> cols[0, :, :, 0].tolist()
        [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]
    """
    _call(x, cols, stride, dilation, first_row, parts, False)


def col2im_add(
    result: np.ndarray,
    cols: np.ndarray,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    first_row: int,
    parts: tuple[int, int, int, int],
) -> None:
    """Add every entry of ``cols`` (C, *kernel, *block, N) into ``result`` (C, *padded, N) at the
    cell :func:`im2col` reads it from (its adjoint), for the channels ``parts[0]:parts[1]`` and
    examples ``parts[2]:parts[3]``.

    NOTE: the additions into one cell come in the order of the kernel offsets, as in the NumPy
    form, which adds one offset at a time over the whole block: both give the same bits.

    Example:
        >>> result = np.zeros((1, 4, 1))
        >>> col2im_add(result, np.ones((1, 2, 3, 1)), (1,), (1,), 0, (0, 1, 0, 1))
        >>> result.ravel().tolist()
        [1.0, 2.0, 2.0, 1.0]
    """
    _call(result, cols, stride, dilation, first_row, parts, True)
