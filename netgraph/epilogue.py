"""Bias plus activation in one pass: the epilogue of a convolution, deconvolution or linear layer.

A convolution followed by Ramp runs, layer by layer, as four passes over its output: the
product, the biases added, the activation (which keeps its input for backward) and, backward,
the activation's derivative times the cotangent, then the biases' gradient summed from that.
When the compiled plan of a graph fuses the two layers (:mod:`netgraph.graph`), the producer
computes without its biases and :func:`bias_activation` does the rest: ``out = act(y + b [+ c])``
written into the producer's fresh output in one pass, and backward ``gy = g·act'`` with the
biases' gradient in one more.

The activations (:class:`Activation`, read from an ElementwiseLayer's traced function by
:func:`activation_of`):

- ``identity``: the biases alone, and the constant of a bias-only layer (``x + c``, ``c + x``,
  ``x - c``) when there is one;
- ``ramp``: max(v, 0). Backward needs only the output: it is positive exactly where the input is;
- ``leaky_ramp`` with a slope α ≠ 0: v for v ≥ 0, α·v otherwise. The output's sign does not tell
  the input's (α < 0, or α·v rounding to -0 for a tiny negative v), so the forward pass keeps a
  mask of v ≥ 0, one byte per value, instead of the input.

Both paths do the unfused layers' arithmetic, operation for operation in the arrays' precision,
so the values are exactly the unfused graph's (laid out in memory as the unfused activation lays
out its result, so the layers after it compute exactly as they would unfused), and so are the
gradients in the activation's input; the biases' gradient is the same sum in another order. The shared path runs through
``xp`` (NumPy and CuPy). The compiled path (:mod:`netgraph.compiled.epilogue`, NumPy with Numba,
float32 and float64) runs on the arrays' memory in place, channel by channel over netgraph's
threads; it takes over wherever the arrays' layouts allow it (:func:`memory_layout`), which covers
the layers' own outputs: batch-last convolution outputs, cropped deconvolution outputs and
row-major linear outputs.

Example:
    >>> import numpy as np
    >>> from netgraph.autograd import Tensor
    >>> y = np.array([[-1.0, 2.0], [3.0, -4.0]])  # two examples of two channels
    >>> out = bias_activation(Tensor(y), np.array([0.5, 0.5]), activation=Activation("ramp"))
    >>> out.data.tolist()
    [[0.0, 2.5], [3.5, 0.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .autograd import primitive
from .backend import array_module, in_parallel
from .compiled import compiled_kernels_enabled
from .compiled import epilogue as kernels
from .compiled.layout import element_strides, memory_span
from .symbolic import Expr, Function

__all__ = ["Activation", "MemoryLayout", "activation_of", "bias_activation", "memory_layout"]

_KINDS = {"identity": kernels.IDENTITY, "ramp": kernels.RAMP, "leaky_ramp": kernels.LEAKY}

#: Values below which the shared path runs: the compiled path's fixed cost (finding the arrays'
#: memory, a kernel call over some twenty arguments, forward and backward: about 40 µs in all on a
#: 2-core AMD EPYC) is then more than its one pass saves. Measured on a (32, O) linear output with
#: Ramp, forward and backward: at 2,048 values 44 µs compiled against 13 shared; even at 65,536
#: (73 against 74); at 165,888 (seed-001's Linear 5184 at batch 32), 109 against 152.
COMPILED_MINIMUM = 1 << 16


@dataclass(frozen=True)
class Activation:
    """What follows the biases: ``kind`` "identity", "ramp" or "leaky_ramp" (with ``slope``), after
    adding ``shift`` (the constant of a bias-only layer; ``x - c`` is kept as ``-c``) when it is not None.

    Example:
        >>> Activation("leaky_ramp", slope=0.02)
        Activation(kind='leaky_ramp', slope=0.02, shift=None)
    """

    kind: str
    slope: float = 0.0
    shift: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Activation: kind must be one of {sorted(_KINDS)}, got {self.kind!r}")
        if self.kind == "leaky_ramp" and not self.slope:
            raise ValueError("Activation: a leaky_ramp needs a slope other than 0")


def _is_var(e: Expr) -> bool:
    return e.op == "var" and e.args[0] == 0


def _constant(e: Expr) -> float | None:
    return float(e.args[0]) if e.op == "const" else None


def activation_of(function: Function) -> Activation | None:
    """The :class:`Activation` that a traced one-argument function is, or None.

    Recognised, in the forms tracing gives them: ``Ramp`` (``ramp(x)``), ``leaky_ramp(x, α)``
    (``where(x >= 0, x, α·x)``, α ≠ 0), and bias-only functions ``x + c``, ``c + x``,
    ``x - c`` and ``x`` itself.

    Example:
        >>> from netgraph.symbolic import leaky_ramp, ramp, trace
        >>> activation_of(trace(lambda x: leaky_ramp(x, 0.1)))
        Activation(kind='leaky_ramp', slope=0.1, shift=None)
        >>> activation_of(trace(lambda x: x - 2)).shift, activation_of(trace(lambda x: 2 * x))
        (-2.0, None)
    """
    if function.arity != 1:
        return None
    e = function.expr
    if _is_var(e):
        return Activation("identity")
    if e.op == "ramp" and _is_var(e.args[0]):
        return Activation("ramp")
    if e.op in ("add", "sub"):
        a, b = e.args
        if _is_var(a) and _constant(b) is not None:
            return Activation("identity", shift=_constant(b) if e.op == "add" else -_constant(b))
        if e.op == "add" and _is_var(b) and _constant(a) is not None:
            return Activation("identity", shift=_constant(a))  # NOTE: c + v and v + c round alike
        return None
    if e.op == "where":
        condition, if_true, if_false = e.args
        leaky = (
            condition.op == "ge"
            and _is_var(condition.args[0])
            and _constant(condition.args[1]) == 0.0
            and _is_var(if_true)
            and if_false.op == "mul"
            and _constant(if_false.args[0]) is not None
            and _is_var(if_false.args[1])
        )
        if leaky and _constant(if_false.args[0]) != 0.0:
            return Activation("leaky_ramp", slope=_constant(if_false.args[0]))
    return None


# --- where the values lie in memory --------------------------------------------------------------


@dataclass(frozen=True)
class MemoryLayout:
    """How the compiled kernels walk an (N, C, *rest) array (:mod:`netgraph.compiled.epilogue`).

    ``channel_major``: each channel is ``rows`` runs of ``length`` contiguous values, the run
    made of the axes of the memory view (C, *rest, N) from ``split`` on. Otherwise channels are
    the contiguous axis of an (N, C) array: ``rows`` = N runs of ``length`` = C values.
    """

    channel_major: bool
    split: int
    rows: int
    length: int


def _channel_memory(a: Any) -> Any:
    """(N, C, *rest) -> the view (C, *rest, N): the batch-last memory order."""
    return a.transpose(1, *range(2, a.ndim), 0)


def _merged_stride(shape: tuple[int, ...], strides: tuple[int, ...]) -> int | None:
    """The stride of the one axis that ``shape``/``strides`` (in items) merge into, or None if they
    do not (size-1 axes merge with anything); 0 for no axes."""
    axes = [(n, s) for n, s in zip(shape, strides) if n != 1]
    for (_, outer), (n, inner) in zip(axes, axes[1:]):
        if outer != inner * n:
            return None
    return axes[-1][1] if axes else 0


def _run_start(a: Any) -> int | None:
    """Where the longest contiguous run of ``a``'s batch-last memory view (C, *rest, N) begins (an axis
    of that view, at least 1), or None when its last axis is not contiguous."""
    strides = element_strides(a)
    if strides is None:
        return None
    shape, mem_strides = (*a.shape[1:], a.shape[0]), (*strides[1:], strides[0])
    split = None
    for first in range(a.ndim - 1, 0, -1):
        if _merged_stride(shape[first:], mem_strides[first:]) not in (0, 1):
            break
        split = first
    return split


def memory_layout(*arrays: Any) -> MemoryLayout | None:
    """How the compiled kernels walk ``arrays`` (of one shape (N, C, *rest)) together, or None where
    they cannot.

    Channel-minor for (N, C) arrays whose channels are contiguous; otherwise channel-major, the
    runs made of the axes from which every array's batch-last memory view is contiguous (the
    longest such runs), when the axes before them merge into one stride in each array.

    Example:
        >>> import numpy as np
        >>> memory_layout(np.moveaxis(np.zeros((4, 5, 6, 3)), -1, 0))  # batch-last (3, 4, 5, 6)
        MemoryLayout(channel_major=True, split=1, rows=1, length=90)
        >>> cropped = np.moveaxis(np.zeros((4, 5, 8, 3)), -1, 0)[..., 1:7]  # rows of 6·3 values, with gaps
        >>> memory_layout(np.moveaxis(np.zeros((4, 5, 6, 3)), -1, 0), cropped)
        MemoryLayout(channel_major=True, split=2, rows=5, length=18)
        >>> memory_layout(np.zeros((3, 8)))
        MemoryLayout(channel_major=False, split=0, rows=3, length=8)
        >>> memory_layout(np.zeros((3, 4, 5, 6))) is None  # C-ordered: examples are not the fastest axis
        True
    """
    a = arrays[0]
    if a.ndim < 2 or a.size == 0:
        return None
    if a.ndim == 2 and all(x.strides[1] == x.itemsize for x in arrays):
        layout = MemoryLayout(False, 0, a.shape[0], a.shape[1])
    else:
        starts = [_run_start(x) for x in arrays]
        if None in starts:
            return None
        split, shape = max(starts), (*a.shape[1:], a.shape[0])
        layout = MemoryLayout(True, split, math.prod(shape[1:split]), math.prod(shape[split:]))
    return layout if all(_strides_in(x, layout) is not None for x in arrays) else None


def _is_dense(a: Any) -> bool:
    """Whether ``a``'s values fill its memory without gaps (contiguous in some order of its axes)."""
    strides = element_strides(a)
    if strides is None:
        return False
    expected = 1
    for stride, n in sorted((s, n) for s, n in zip(strides, a.shape) if n != 1):
        if stride != expected:
            return False
        expected *= n
    return True


def _strides_in(a: Any, layout: MemoryLayout) -> tuple[int, int] | None:
    """(channel stride, row stride) of ``a`` walked by ``layout``, in items; None when ``a``'s memory
    does not fit the layout."""
    strides = element_strides(a)
    if strides is None or a.ndim < 2:
        return None
    if not layout.channel_major:
        return (1, strides[0]) if a.ndim == 2 and strides[1] == 1 else None
    shape, mem_strides, k = (*a.shape[1:], a.shape[0]), (*strides[1:], strides[0]), layout.split
    run, rows = _merged_stride(shape[k:], mem_strides[k:]), _merged_stride(shape[1:k], mem_strides[1:k])
    return (mem_strides[0], rows) if run in (0, 1) and rows is not None else None


def _place(a: Any, layout: MemoryLayout) -> tuple[Any, int, int, int] | None:
    """(buffer, start, channel stride, row stride) of ``a`` walked by ``layout``, in items (the buffer
    :func:`~netgraph.compiled.layout.memory_span`'s view, starting at ``a``'s first value); None when
    ``a``'s memory does not fit the layout."""
    strides = _strides_in(a, layout)
    return None if strides is None else (memory_span(a)[0], 0, *strides)


def _compact(xp: Any, like: Any, layout: MemoryLayout, dtype: Any) -> Any:
    """A new array of ``like``'s shape laid out compactly in ``layout``'s order (batch-last or row-major)."""
    if not layout.channel_major:
        return xp.empty(like.shape, dtype)
    return xp.moveaxis(xp.empty(_channel_memory(like).shape, dtype), -1, 0)


# --- the primitive ---------------------------------------------------------------------------------


def _biases_shape(y: Any) -> tuple[int, ...]:
    return (-1, *(1,) * (y.ndim - 2))


def _forward_shared(xp: Any, y: Any, out: Any, biases: Any, activation: Activation) -> Any:
    """The shared path, from ``y`` into ``out`` (``y`` itself, or a new array); returns what backward keeps."""
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf is NaN, as in the unfused layers
        return _forward_steps(xp, y, out, biases, activation)


def _forward_steps(xp: Any, y: Any, out: Any, biases: Any, activation: Activation) -> Any:
    source = y
    if biases is not None:
        source = xp.add(source, biases.reshape(_biases_shape(y)), out=out)
    if activation.shift is not None:
        source = xp.add(source, y.dtype.type(activation.shift), out=out)
    if activation.kind == "ramp":
        return xp.maximum(source, y.dtype.type(0), out=out)
    if activation.kind == "leaky_ramp":
        mask = source >= 0
        slopes = xp.where(mask, y.dtype.type(1), y.dtype.type(activation.slope))
        xp.multiply(source, slopes, out=out)  # NOTE: v·1 is v exactly, v·α is α·v exactly
        return mask
    if source is not out:
        out[...] = source
    return None


def _backward_shared(xp: Any, g: Any, saved: Any, activation: Activation) -> Any:
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # an infinite g times 0 is NaN, as unfused
        if activation.kind == "ramp":
            return g * (saved > 0).astype(g.dtype)
        if activation.kind == "leaky_ramp":
            return g * xp.where(saved, g.dtype.type(1), g.dtype.type(activation.slope))
        return g


def _forward_compiled(y: Any, out: Any, biases: Any, activation: Activation) -> Any:
    """The compiled path, from ``y`` into ``out``; returns what backward keeps (the output, the mask, or
    None for the identity), or False where the arrays' memory does not allow it."""
    leaky = activation.kind == "leaky_ramp"
    mask = np.empty_like(y, dtype=np.bool_) if leaky else np.empty(0, np.bool_)
    layout = memory_layout(y, out, mask) if leaky else memory_layout(y, out)
    if layout is None:
        return False
    source, target = _place(y, layout), _place(out, layout)
    kept = _place(mask, layout) if leaky else (mask, 0, 0, 0)
    if source is None or target is None or kept is None:
        return False
    dtype = y.dtype.type
    common = (
        np.empty(0, y.dtype) if biases is None else np.ascontiguousarray(biases.reshape(-1), dtype=y.dtype),
        biases is not None,
        dtype(activation.shift or 0),
        activation.shift is not None,
        _KINDS[activation.kind],
        dtype(activation.slope),
    )
    if layout.channel_major:

        def work(c0: int, c1: int) -> None:
            kernels.runs_forward(*source, *target, layout.rows, layout.length, c0, c1, *common, *kept)

        channels = y.shape[1]
    else:

        def work(c0: int, c1: int) -> None:
            kernels.rows_forward(
                source[0], source[1], source[3], target[0], target[1], target[3], layout.rows, layout.length,
                c0, c1, *common, kept[0], kept[1], kept[3],
            )  # fmt: skip

        channels = layout.length
    in_parallel(np, work, channels, y.size)
    return mask if leaky else out if activation.kind == "ramp" else None


def _backward_compiled(g: Any, saved: Any, activation: Activation, want_biases: bool):
    """(gy, gb) by the compiled kernels, or None where ``g``'s or the kept array's memory does not allow it."""
    layout = memory_layout(saved, g)
    if layout is None:
        return None
    g_place, saved_place = _place(g, layout), _place(saved, layout)
    if g_place is None or saved_place is None:
        return None
    grad = _compact(np, g, layout, g.dtype)
    grad_flat = memory_span(grad)[0]
    channels = g.shape[1]
    grad_biases = np.empty(channels, g.dtype) if want_biases else np.empty(0, g.dtype)
    kind, slope = _KINDS[activation.kind], g.dtype.type(activation.slope)
    if layout.channel_major:

        def work(c0: int, c1: int) -> None:
            kernels.runs_backward(
                *saved_place, *g_place, grad_flat, layout.rows, layout.length, c0, c1, kind, slope,
                grad_biases, want_biases,
            )  # fmt: skip

    else:

        def work(c0: int, c1: int) -> None:
            kernels.rows_backward(
                saved_place[0], saved_place[1], saved_place[3], g_place[0], g_place[1], g_place[3],
                grad_flat, layout.rows, layout.length, c0, c1, kind, slope, grad_biases, want_biases,
            )  # fmt: skip

    in_parallel(np, work, channels, g.size)
    return grad, grad_biases if want_biases else None


def _compiled(y: Any) -> bool:
    """Whether the compiled path may run for ``y`` (it still needs memory it can walk)."""
    return (
        y.dtype in (np.float32, np.float64) and y.size >= COMPILED_MINIMUM and compiled_kernels_enabled(array_module(y))
    )


@primitive
def bias_activation(y, biases=None, *, activation: Activation):
    """``act(y + biases [+ shift])`` for ``y`` (N, C, *rest) and ``biases`` (C,) or None, written into ``y``.

    NOTE: ``y`` is overwritten: give it only a fresh array that nothing else reads, such as the
    output of a convolution, deconvolution or linear primitive run without its biases. Where ``y``
    is a view with gaps in its memory (a cropped deconvolution output), the result goes into a
    new compact array instead, laid out as an elementwise NumPy operation lays out its result, so
    that the layers after it see the very arrays the unfused graph gives them.

    Keeps the output (Ramp) or a mask of the non-negative inputs (LeakyRamp), nothing for the
    identity. Backward gives ``g·act'`` (batch-last or row-major, as the producer's backward
    wants it, on the compiled path) and the biases' gradient, the sum over every axis but 1.

    Example:
        >>> import numpy as np
        >>> from netgraph.autograd import Tape, Tensor, backward
        >>> y, b = Tensor(np.array([[-1.0, 2.0]]), True), Tensor(np.array([0.0, 1.0]), True)
        >>> with Tape() as tape:
        ...     out = bias_activation(y, b, activation=Activation("leaky_ramp", slope=0.5))
        >>> out.data.tolist()
        [[-0.5, 3.0]]
        >>> grads = backward(tape, {out: np.ones((1, 2))})
        >>> grads[id(y)].tolist(), grads[id(b)].tolist()
        ([[0.5, 1.0]], [0.5, 1.0])
    """
    xp = array_module(y)
    out = y if _is_dense(y) else xp.empty_like(y)
    compiled = _compiled(y)
    saved = _forward_compiled(y, out, biases, activation) if compiled else False
    if saved is False:
        saved = _forward_shared(xp, y, out, biases, activation)
    has_biases = biases is not None

    def vjp(g, needs):
        want_biases = has_biases and needs[1]
        if not needs[0] and not want_biases:
            return None, None
        if compiled and activation.kind != "identity" and g.dtype == out.dtype:
            found = _backward_compiled(g, saved, activation, want_biases)
            if found is not None:
                return found[0] if needs[0] else None, found[1]
        grad = _backward_shared(xp, g, saved, activation)
        with np.errstate(over="ignore", invalid="ignore"):
            grad_biases = grad.sum(axis=(0, *range(2, grad.ndim))) if want_biases else None
        return grad if needs[0] else None, grad_biases

    return out, vjp
