"""Reverse-mode automatic differentiation over primitives.

The whole engine is this file. A :class:`Tensor` wraps one ``xp`` array. A
*primitive* is a function that computes its output from plain arrays and
returns, beside it, its vector-Jacobian product (``vjp``): a closure that maps
the output's cotangent to the cotangents of its inputs. Whatever the closure
captures is exactly what the primitive keeps for backward.

While a :class:`Tape` is recording, every primitive applied to a tensor that
requires a gradient appends one entry to the tape. Entries are appended in the
order they run, so the tape is already topologically sorted: :func:`backward`
walks it once in reverse (a loop, no recursion) and *adds* each cotangent into
the inputs' slots, so a value that fans out to several consumers gets the sum
of their contributions. Broadcasting is undone in one place,
:func:`unbroadcast`, for every primitive. Outside a recording nothing is kept.

Example:
    >>> import numpy as np
    >>> from netgraph import ops
    >>> from netgraph.autograd import Tape, Tensor, backward
    >>> x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> with Tape() as tape:
    ...     y = ops.sum(x * x + x)          # x fans out to three uses
    >>> grads = backward(tape, {y: np.array(1.0)})
    >>> grads[id(x)].tolist()
    [3.0, 5.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from .backend import array_module

_RECORDING: list[Tape] = []


class BackwardTimer(Protocol):
    """What :func:`backward` asks of a timer (netgraph.profile's :class:`~netgraph.profile.Timings`)."""

    def time_backward(self, tape: Tape, propagate: Callable[[Tape, list], dict[int, Any]]) -> dict[int, Any]:
        """Run ``propagate(tape, entries)`` with the tape's entries wrapped in timers; return its result."""
        ...


#: Returns the timer to use for this backward pass, or None (the default: no timing). Set by
#: :mod:`netgraph.profile` through :func:`set_backward_timer`, so that autograd never imports it.
_backward_timer: Callable[[], BackwardTimer | None] = lambda: None  # noqa: E731


def set_backward_timer(active: Callable[[], BackwardTimer | None]) -> None:
    """Install the function that :func:`backward` asks for a timer on every call."""
    global _backward_timer
    _backward_timer = active


class Tensor:
    """An ``xp`` array that may take part in differentiation."""

    __slots__ = ("data", "requires_grad", "__weakref__")
    __array_priority__ = 100  # so that `ndarray * tensor` calls Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data = data
        self.requires_grad = requires_grad

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{grad})"


class Tape:
    """Records the primitives applied while it is active (``with Tape() as tape``)."""

    def __init__(self) -> None:
        self.entries: list[tuple[Callable, tuple, tuple[bool, ...], Tensor]] = []

    def __enter__(self) -> Tape:
        _RECORDING.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _RECORDING.remove(self)

    def clear(self) -> None:
        """Drop every entry, and with them all arrays kept for backward."""
        self.entries.clear()


def is_recording() -> bool:
    """True inside an active :class:`Tape`."""
    return bool(_RECORDING)


def recording_tape() -> Tape | None:
    """The innermost active :class:`Tape`, or None."""
    return _RECORDING[-1] if _RECORDING else None


def primitive(fn: Callable) -> Callable:
    """Turn ``fn(*arrays, **params) -> (output, vjp)`` into an operation on tensors.

    ``vjp(g, needs)`` gets the output cotangent ``g`` and a tuple telling which
    inputs need a gradient; it returns one cotangent (or None) per positional
    input. Inputs that are not tensors are constants.
    """

    @functools.wraps(fn)
    def apply(*args: Any, **params: Any) -> Tensor:
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        out, vjp = fn(*arrays, **params)
        if _RECORDING:
            needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
            if any(needs):
                result = Tensor(out, requires_grad=True)
                _RECORDING[-1].entries.append((vjp, args, needs, result))
                return result
        return Tensor(out)

    apply.raw = fn  # the array-level function, for tests and fused paths
    return apply


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach it."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def backward(tape: Tape, seeds: dict[Tensor, Any]) -> dict[int, Any]:
    """Propagate the cotangents ``seeds`` back through ``tape``.

    Returns cotangents keyed by ``id(tensor)`` for every tensor reached, leaves
    included. Intermediate cotangents are freed as soon as they are used, and
    the tape is cleared at the end, releasing what the primitives kept.
    """
    timer = _backward_timer()  # None unless netgraph.profile.timings() is on
    if timer is not None:
        return timer.time_backward(tape, lambda tape, entries: _propagate(tape, entries, seeds))
    return _propagate(tape, tape.entries, seeds)


def _propagate(tape: Tape, entries: list, seeds: dict[Tensor, Any]) -> dict[int, Any]:
    cotangents: dict[int, Any] = {}
    owned: set[int] = set()  # slots holding an array we allocated, safe to add into in place
    for tensor, seed in seeds.items():
        _accumulate(cotangents, owned, tensor, array_module(tensor.data).asarray(seed))
    for vjp, args, needs, out in reversed(entries):
        g = cotangents.pop(id(out), None)
        owned.discard(id(out))
        if g is None:
            continue
        for arg, need, g_arg in zip(args, needs, vjp(g, needs)):
            if need and g_arg is not None:
                _accumulate(cotangents, owned, arg, g_arg)
    tape.clear()
    return cotangents


def _accumulate(cotangents: dict[int, Any], owned: set[int], tensor: Tensor, g: Any) -> None:
    g = unbroadcast(g, tensor.shape)
    if g.dtype != tensor.dtype:
        g = g.astype(tensor.dtype)
    key = id(tensor)
    if key not in cotangents:
        cotangents[key] = g  # may alias another slot's array: never modified in place
    elif key in owned:
        cotangents[key] += g
    else:
        cotangents[key] = cotangents[key] + g
        owned.add(key)
