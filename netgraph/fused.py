"""Fused GPU kernels for traced elementwise functions (the one GPU-only path of the engine).

On NumPy a traced function runs as a :class:`~netgraph.symbolic.Program`: one ``xp`` call per
distinct operation, each writing a temporary array. On CuPy the same expression is compiled
into a single ``cupy.ElementwiseKernel``: one pass over memory for the value, and one pass
for all the needed partial derivatives of the backward step (``g * ∂f/∂x_i`` for each input
at once). Broadcasting works as in NumPy; un-broadcasting the gradients stays in the autograd.

The code generator is shared by both devices: :func:`kernel_code` (of :mod:`netgraph.symbolic`)
turns an expression into numbered assignments written in the common subset of C++ and Python
(function calls, arithmetic, ``T(constant)`` casts), each operation in the CUDA form of its entry in
:data:`netgraph.symbolic.OPS` (or, for the compiled CPU kernels of
:mod:`netgraph.compiled.elementwise`, in its scalar form); the device functions CUDA lacks are
that entry's helper, defined in :data:`PREAMBLE`. :func:`run_on_numpy` runs those very lines with NumPy, each function
called being the same entry's NumPy form, which is how the CPU tests check the generated code
(its composition, argument order and constants); on a GPU the tests compare the compiled
kernels, CUDA's functions and the helpers with them, with the shared path.

The switch: :func:`set_fused_kernels` (or the environment variable ``NETGRAPH_FUSED_KERNELS=0``)
turns the fused path off, so the shared ``xp`` path runs on CuPy too.

Example:
    >>> from netgraph.symbolic import tanh, trace
    >>> f = trace(lambda x: 0.5 * x * (1 + tanh(x)))
    >>> lines, result = kernel_code([f.expr], 1)
    >>> lines
    [('v1', '(T(0.5) * x0)'), ('v2', 'tanh(x0)'), ('v3', '(T(1) + v2)'), ('v4', '(v1 * v3)')]
    >>> result
    ['v4']
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .autograd import primitive
from .backend import array_module
from .compiled import compiled_kernels_enabled
from .compiled import elementwise as compiled_elementwise
from .symbolic import OPS, Function, Op, backward_roots, kernel_code

__all__ = ["apply_function", "fused_kernels_enabled", "kernel_code", "run_on_numpy", "set_fused_kernels"]


def _definition(op: Op) -> str:
    """The C++ definition of the device function that ``op``'s CUDA form calls (``op.helper``)."""
    parameters = ", ".join(f"T {name}" for name in op.parameters)
    body = op.helper if "return " in op.helper else f" return {op.helper}; "
    return f"template <typename T> __device__ T {op.cuda}({parameters}) {{{body}}}\n"


# The device functions that the CUDA forms call where CUDA has none (sign_, ramp_, ...).
PREAMBLE = "\n" + "".join(_definition(op) for op in OPS.values() if op.helper)

# Every function the CUDA forms call (CUDA's own and the preamble's), as NumPy runs it: the
# operation's NumPy form, the same one the shared path runs.
_NUMPY_FORMS: dict[str, Callable] = {
    op.cuda: functools.partial(op.evaluate, np) for op in OPS.values() if "{" not in op.cuda
}

_enabled = os.environ.get("NETGRAPH_FUSED_KERNELS", "1") not in ("0", "false", "False", "")


def set_fused_kernels(enabled: bool) -> bool:
    """Turn the fused CuPy kernels on or off (they are on by default); returns the previous setting.

    Example:
        >>> previous = set_fused_kernels(False)
        >>> fused_kernels_enabled(np)   # never on NumPy, whatever the switch
        False
        >>> _ = set_fused_kernels(previous)
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def fused_kernels_enabled(xp: Any) -> bool:
    """Whether traced functions run as fused kernels on the array module ``xp`` (CuPy only)."""
    return _enabled and xp is not np and hasattr(xp, "ElementwiseKernel")


# --- NumPy: running the generated lines (for tests) ---------------------------------------------


def run_on_numpy(lines: list[tuple[str, str]], results: list[str], inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Execute generated lines with NumPy (the same text the GPU kernel is compiled from).

    Example:
        >>> from netgraph.symbolic import exp, trace
        >>> f = trace(lambda a, b: a * b + exp(a))
        >>> lines, results = kernel_code([f.expr], 2)
        >>> [float(v) for v in run_on_numpy(lines, results, [np.array([0.0]), np.array([3.0])])[0]]
        [1.0]
    """
    dtype = np.result_type(*inputs)
    scope: dict[str, Any] = {"T": dtype.type, **_NUMPY_FORMS, **{f"x{i}": np.asarray(x) for i, x in enumerate(inputs)}}
    with np.errstate(all="ignore"):
        for name, text in lines:
            scope[name] = eval(text, {"__builtins__": {}}, scope)  # noqa: S307 - our own generated code
        shape = np.broadcast_shapes(*[np.shape(x) for x in inputs])
        values = [np.asarray(eval(r, {"__builtins__": {}}, scope), dtype=dtype) for r in results]  # noqa: S307
        return [np.broadcast_to(v, shape) for v in values]


# --- CuPy: compiled kernels, cached per function and per set of needed gradients ---------------

_kernels: dict[tuple[str, tuple[bool, ...] | None], Any] = {}


def _kernel(function: Function, needs: tuple[bool, ...] | None) -> Any:
    import cupy

    key = (str(function.to_json()), needs)
    kernel = _kernels.get(key)
    if kernel is None:
        arity = function.arity
        if needs is None:  # forward: x0..x{n-1} -> y
            lines, results = kernel_code([function.expr], arity)
            params_in = ", ".join(f"T x{i}" for i in range(arity))
            outputs = ["y"]
        else:  # backward: x0..x{n-1}, g (= x{n}) -> gx_i for each needed i
            lines, results = kernel_code(backward_roots(function, needs), arity + 1)
            params_in = ", ".join([f"T x{i}" for i in range(arity)] + [f"T x{arity}"])
            outputs = [f"gx{i}" for i, need in enumerate(needs) if need]
        body = "".join(f"T {name} = {text};\n" for name, text in lines)
        body += "".join(f"{out} = {value};\n" for out, value in zip(outputs, results))
        digest = hashlib.sha1(f"{key}".encode()).hexdigest()[:12]
        kernel = cupy.ElementwiseKernel(
            params_in,
            ", ".join(f"T {o}" for o in outputs),
            body,
            f"netgraph_{'forward' if needs is None else 'backward'}_{digest}",
            preamble=PREAMBLE,
        )
        _kernels[key] = kernel
    return kernel


def forward(function: Function, inputs: Sequence[Any]) -> Any:
    """f(x0, …) in one CuPy kernel (inputs of one dtype, broadcast together)."""
    return _kernel(function, None)(*inputs)


def backward(function: Function, inputs: Sequence[Any], g: Any, needs: Sequence[bool]) -> tuple[Any, ...]:
    """(g·∂f/∂x_i for each needed i, None for the rest) in one CuPy kernel, each of g's shape."""
    import cupy

    needs = tuple(bool(n) for n in needs)
    if not any(needs):
        return tuple(None for _ in needs)
    outputs = [cupy.empty(g.shape, dtype=g.dtype) for n in needs if n]
    _kernel(function, needs)(*inputs, g, *outputs)
    found = iter(outputs)
    return tuple(next(found) if need else None for need in needs)


# --- the primitive -------------------------------------------------------------------------------


@primitive
def apply_function(*inputs, function: Function):
    """Evaluate the traced ``function`` elementwise (with broadcasting) as one primitive.

    On CuPy with fused kernels on, the value is one kernel and the backward step one more. On
    NumPy with compiled kernels on, where they take the function and its inputs and pay off
    (:mod:`netgraph.compiled.elementwise`), the same: one compiled loop each. Otherwise the
    shared :class:`~netgraph.symbolic.Program` runs, and its derivative programs (compiled once
    per function) give the backward step. Keeps the inputs for backward.
    """
    xp = array_module(*inputs)
    if fused_kernels_enabled(xp):
        return forward(function, inputs), lambda g, needs: backward(function, inputs, g, needs)
    if compiled_kernels_enabled(xp) and compiled_elementwise.pays_off(function, inputs):
        out = compiled_elementwise.forward(function, inputs)
        if out is not None:

            def compiled_vjp(g, needs):
                gradients = compiled_elementwise.backward(function, inputs, g, needs)
                return gradients if gradients is not None else _shared_vjp(function, inputs, g, needs)

            return out, compiled_vjp
    return function.program.run(inputs), lambda g, needs: _shared_vjp(function, inputs, g, needs)


def _shared_vjp(function: Function, inputs: Sequence[Any], g: Any, needs: Sequence[bool]) -> tuple[Any, ...]:
    """(g·∂f/∂x_i for each needed i, None for the rest) by the shared derivative programs."""
    return tuple(g * program.run(inputs) if need else None for program, need in zip(function.partial_programs, needs))
