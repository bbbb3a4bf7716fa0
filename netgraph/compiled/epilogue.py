"""Compiled kernels of the bias-and-activation epilogue (:mod:`netgraph.epilogue` runs them).

A convolution, deconvolution or linear layer followed by Ramp, LeakyRamp or a bias-only
elementwise layer ends in ``out = act(y + b [+ c])``: the forward kernels below do that in
one pass over the producer's fresh output (in place, or into a compact array where the output
is a view with gaps, such as a cropped deconvolution's), and the backward kernels give
``gy = g·act'`` and the biases' gradient (the sum of ``gy`` over everything but the channels)
in one more.

The kernels work in memory order, on one-dimensional views of the arrays' buffers, so that
every inner loop runs over contiguous memory (Numba vectorises it) whatever the array's view:

- *runs* (channel-major): a channel's values lie in ``rows`` runs of ``length`` values at
  stride 1; run ``r`` of channel ``c`` starts at ``start + c·channel_stride + r·row_stride``.
  A batch-last convolution output (memory (C, *spatial, N)) is one run a channel; a cropped
  deconvolution output is one run per output row (out_w·N values), with gaps between rows.
- *rows* (channel-minor): ``rows`` runs of the ``channels`` values, row ``r`` at
  ``start + r·row_stride``: a linear layer's (N, O) output.

Each kernel covers the channels ``c0 ≤ c < c1``, so that netgraph's threads split a pass by
channel and write disjoint memory (the biases' gradient included).

``kind`` is :data:`IDENTITY`, :data:`RAMP` or :data:`LEAKY`. The arithmetic is the shared
path's, operation for operation, in the arrays' own precision: ``(y + b) + c``, then
``max(v, 0)`` or ``v if v >= 0 else α·v``, and ``g·1``, ``g·0`` or ``g·α`` backward (a NaN or
an infinity in ``g`` propagates as there). Only the biases' gradient is summed differently:
in float64, in the vector lanes of the machine (see :func:`runs_backward`).

Example:
    >>> import numpy as np
    >>> y = np.array([[-1.0, 2.0], [3.0, -4.0]])  # two channels, one run of two values each
    >>> flat, mask = y.reshape(-1), np.empty(0, np.bool_)
    >>> runs_forward(flat, 0, 2, 0, flat, 0, 2, 0, 1, 2, 0, 2, np.array([0.5, 0.5]), True, 0.0, False, RAMP, 0.0,
    ...              mask, 0, 0, 0)
    >>> y.tolist()
    [[0.0, 2.5], [3.5, 0.0]]
"""

from __future__ import annotations

import numpy as np

from . import kernel

__all__ = ["IDENTITY", "LEAKY", "RAMP", "rows_backward", "rows_forward", "runs_backward", "runs_forward"]

IDENTITY, RAMP, LEAKY = 0, 1, 2


@kernel
def runs_forward(
    y, start, channel_stride, row_stride, out, out_start, out_channel_stride, out_row_stride,
    rows, length, c0, c1, biases, use_biases, shift, use_shift, kind, slope,
    mask, mask_start, mask_channel_stride, mask_row_stride,
):  # fmt: skip
    """``out ← act(y + b[c] [+ shift])`` over the runs of channels ``c0..c1`` (``out`` may be ``y``: in
    place); for LEAKY also ``mask ← (y + b [+ shift] >= 0)``. ``shift`` and ``slope`` are scalars of
    ``y``'s dtype."""
    in_place = (
        y.ctypes.data == out.ctypes.data
        and start == out_start
        and channel_stride == out_channel_stride
        and (row_stride == out_row_stride or rows == 1)
    )

    def activate(source, target, keep, b):  # inlined: with source and target one view, a vector loop
        for i in range(source.size):
            v = source[i]
            if use_biases:
                v = v + b
            if use_shift:
                v = v + shift
            if kind == LEAKY:
                positive = v >= 0
                keep[i] = positive
                target[i] = v if positive else slope * v
            elif kind == RAMP:
                target[i] = 0.0 if v <= 0 else v  # NOTE: a NaN stays NaN, as in max(v, 0)
            else:
                target[i] = v

    for c in range(c0, c1):
        b = shift
        if use_biases:
            b = biases[c]
        for r in range(rows):
            at = start + c * channel_stride + r * row_stride
            m = mask_start + c * mask_channel_stride + r * mask_row_stride
            keep = mask[m : m + length] if kind == LEAKY else mask
            if in_place:
                run = y[at : at + length]
                activate(run, run, keep, b)
            else:
                to = out_start + c * out_channel_stride + r * out_row_stride
                activate(y[at : at + length], out[to : to + length], keep, b)


@kernel(fastmath={"reassoc"})
def runs_backward(
    saved, saved_start, saved_channel_stride, saved_row_stride,
    g, g_start, g_channel_stride, g_row_stride,
    grad, rows, length, c0, c1, kind, slope, grad_biases, want_biases,
):  # fmt: skip
    """``grad ← g·act'`` (``grad`` compact: run ``r`` of channel ``c`` at ``(c·rows + r)·length``) over
    channels ``c0..c1``, and ``grad_biases[c]`` ← the sum of channel ``c``'s values when ``want_biases``.

    ``saved`` is the forward output for RAMP (positive exactly where the input was) and the
    mask for LEAKY.

    NOTE: compiled with reassociation allowed, which lets the float64 sum of a channel run in
    vector lanes (a single running sum is a chain of dependent additions, several times slower);
    the order of its additions then follows the machine's vector width. Each product is one
    multiplication, which reassociation does not touch, so ``grad`` is exact.
    """
    one, zero = g.dtype.type(1), g.dtype.type(0)
    for c in range(c0, c1):
        total = 0.0
        for r in range(rows):
            s = saved_start + c * saved_channel_stride + r * saved_row_stride
            kept = saved[s : s + length]
            a = g_start + c * g_channel_stride + r * g_row_stride
            cotangent = g[a : a + length]
            d = (c * rows + r) * length
            into = grad[d : d + length]
            if kind == LEAKY:
                for i in range(length):
                    into[i] = cotangent[i] * (one if kept[i] else slope)
            else:
                for i in range(length):
                    into[i] = cotangent[i] * (one if kept[i] > 0 else zero)
            if want_biases:
                for i in range(length):
                    total += into[i]
        if want_biases:
            grad_biases[c] = total


@kernel
def rows_forward(
    y, start, row_stride, out, out_start, out_row_stride, rows, channels, c0, c1,
    biases, use_biases, shift, use_shift, kind, slope, mask, mask_start, mask_row_stride,
):  # fmt: skip
    """:func:`runs_forward` for channel-minor arrays: ``rows`` rows of ``channels`` contiguous values."""
    in_place = y.ctypes.data == out.ctypes.data and start == out_start and row_stride == out_row_stride
    steps = biases[c0:c1]

    def activate(source, target, keep):  # inlined: with source and target one view, a vector loop
        for i in range(source.size):
            v = source[i]
            if use_biases:
                v = v + steps[i]
            if use_shift:
                v = v + shift
            if kind == LEAKY:
                positive = v >= 0
                keep[i] = positive
                target[i] = v if positive else slope * v
            elif kind == RAMP:
                target[i] = 0.0 if v <= 0 else v
            else:
                target[i] = v

    for r in range(rows):
        at = start + r * row_stride
        m = mask_start + r * mask_row_stride
        keep = mask[m + c0 : m + c1] if kind == LEAKY else mask
        if in_place:
            row = y[at + c0 : at + c1]
            activate(row, row, keep)
        else:
            to = out_start + r * out_row_stride
            activate(y[at + c0 : at + c1], out[to + c0 : to + c1], keep)


@kernel
def rows_backward(
    saved, saved_start, saved_row_stride, g, g_start, g_row_stride,
    grad, rows, channels, c0, c1, kind, slope, grad_biases, want_biases,
):  # fmt: skip
    """:func:`runs_backward` for channel-minor arrays; ``grad`` compact (rows × channels)."""
    totals = np.zeros(c1 - c0)
    one, zero = g.dtype.type(1), g.dtype.type(0)
    for r in range(rows):
        s = saved_start + r * saved_row_stride
        kept = saved[s + c0 : s + c1]
        a = g_start + r * g_row_stride
        cotangent = g[a + c0 : a + c1]
        d = r * channels
        into = grad[d + c0 : d + c1]
        if kind == LEAKY:
            for i in range(c1 - c0):
                into[i] = cotangent[i] * (one if kept[i] else slope)
        else:
            for i in range(c1 - c0):
                into[i] = cotangent[i] * (one if kept[i] > 0 else zero)
        if want_biases:
            for i in range(c1 - c0):
                totals[i] += into[i]
    if want_biases:
        for i in range(c1 - c0):
            grad_biases[c0 + i] = totals[i]
