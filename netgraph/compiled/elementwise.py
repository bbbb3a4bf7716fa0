"""Traced elementwise functions as compiled CPU kernels: one loop over memory for the value, one
for the backward step (the CPU's counterpart of the fused CuPy kernels of :mod:`netgraph.fused`).

NumPy runs a traced function as a :class:`~netgraph.symbolic.Program`, one pass over memory and
one temporary for each operation. Here the same expression becomes the Python source of a Numba
kernel: :func:`~netgraph.symbolic.kernel_code` writes it as numbered assignments, each operation in
the scalar form of its entry in :data:`~netgraph.symbolic.OPS`, inside one loop over the elements.
The backward kernel computes ``g * ∂f/∂x_i`` for every needed input in the same loop.

The source of each kernel is written once to ``cache_dir()/kernels/<digest>.py`` (the digest is
the source's own) and imported from there, so Numba's disk cache keeps its machine code next to
it and the next process loads it instead of compiling.

What runs here, and what goes to the shared path instead (:func:`forward` and :func:`backward`
then return None):

- inputs of one floating dtype (float32 or float64), all of one shape, plus 0-d arrays and
  Python numbers; any other broadcasting runs on the shared path;
- the loop fuses :data:`MINIMUM_FUSED` operations or more, and every constant is finite;
- operations that call the C math library (exp, log, tanh, pow, ...: see :func:`in_loop`), and
  PolyGamma, which has no scalar form, run before the loop as NumPy passes on each thread's part
  (NumPy's vectorised versions are several times faster than the library's per-element calls),
  and the loop reads their values: it fuses the arithmetic, comparisons and selections around them;
- the loop runs in the memory order of the first input (so the batch-last layout of a
  convolution's output costs no copy); an input laid out otherwise is first copied into that order,
  and the result has the first input's layout.

Each kernel keeps the shared path's arithmetic: every intermediate value is rounded to the
element type (``T(...)``), as the shared path rounds each operation's array, so float32 stays
float32 and results agree to the last bits of the math library's functions. Division by zero,
logarithms of negatives and NaN give what NumPy gives (``error_model="numpy"``, and scalar forms
written to let NaN through as NumPy's functions do).

Example:
    >>> import numpy as np
    >>> from netgraph.symbolic import exp, trace
    >>> f = trace(lambda x: -exp(2 * x) + 1 + 2 * x)
    >>> x = np.linspace(-1, 1, 5, dtype=np.float32)
    >>> bool(np.allclose(forward(f, [x]), f.evaluate([x]), rtol=1e-6))
    True
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..backend import in_parallel
from ..symbolic import OPS, Expr, Function, Op, Program, backward_roots, kernel_code, postorder, to_json, var
from . import Kernel, cache_dir
from .layout import empty_in_order, flat, memory_order

__all__ = [
    "HOIST_LIBRARY_CALLS",
    "MINIMUM_FUSED",
    "MINIMUM_SIZE",
    "backward",
    "cached_sources",
    "forward",
    "in_loop",
    "kernel_source",
    "pays_off",
    "supported",
]

#: Element types the kernels are written for.
FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Values (of the output) below which a traced function stays on the shared path (see :func:`pays_off`).
MINIMUM_SIZE = 1 << 14

#: Operations in the loop below which a pass stays on the shared path (see :func:`pays_off`).
MINIMUM_FUSED = 2

#: Whether operations that call the C math library (see :func:`in_loop`) run as NumPy passes
#: before the kernel rather than in its loop.
HOIST_LIBRARY_CALLS = True

# Calls in a scalar form that compile to a vector instruction (or a few) inside the loop.
_VECTOR_CALLS = frozenset({"T", "abs", "math.sqrt", "np.floor", "np.ceil", "np.rint", "np.trunc"})

_lock = threading.RLock()
_UNSUPPORTED = "unsupported"  # the entry of a function that has no compiled pass for some key


def in_loop(op: Op) -> bool:
    """Whether ``op`` runs inside a compiled loop: it has a scalar form that calls no function of the
    C math library (exp, log, tanh, pow, ...).

    NOTE: LLVM vectorises such a loop but for those calls, which stay one call per element into
    the C library (Numba has vector versions only with Intel's SVML): 3 ns per element for expf,
    15 for tanhf, where NumPy's own vectorised loops take 0.5. Those operations therefore run as
    NumPy passes before the kernel, their values read by it as inputs; the arithmetic, comparisons
    and selections around them are what the loop fuses.

    Example:
        >>> from netgraph.symbolic import OPS
        >>> in_loop(OPS["ramp"]), in_loop(OPS["sqrt"]), in_loop(OPS["exp"]), in_loop(OPS["polygamma"])
        (True, True, False, False)
    """
    calls = re.findall(r"([\w.]+)\(", op.scalar if "{" in op.scalar else f"{op.scalar}(")
    return bool(op.scalar) and "**" not in op.scalar and set(calls) <= _VECTOR_CALLS


def _node_in_loop(node: Expr) -> bool:
    # NOTE: a square, x ** 2, is a product in the loop (LLVM writes it so), as it is in NumPy's power.
    squared = node.op == "pow" and node.args[1].op == "const" and node.args[1].args[0] == 2.0
    return squared or in_loop(OPS[node.op])


# --- the source ----------------------------------------------------------------------------------


def _split(roots: Sequence[Expr], count: int) -> tuple[list[Expr], list[Expr]]:
    """``roots`` with each outermost operation that does not run in the loop replaced by a new
    variable (numbered from ``count`` on), and the expressions those variables stand for."""
    hoisted: list[Expr] = []
    numbers: dict[str, int] = {}  # an expression's JSON -> its variable
    built: dict[int, Expr] = {}
    stack: list[tuple[Expr, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in built:
            continue
        if node.op in ("var", "const"):
            built[id(node)] = node
        elif not OPS[node.op].scalar or (HOIST_LIBRARY_CALLS and not _node_in_loop(node)):
            key = repr(to_json(node))
            if key not in numbers:
                numbers[key] = count + len(hoisted)
                hoisted.append(node)
            built[id(node)] = var(numbers[key])
        elif expanded:
            built[id(node)] = Expr(node.op, tuple(built[id(a)] for a in node.args))
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args) if id(a) not in built)
    return [built[id(root)] for root in roots], hoisted


def kernel_source(roots: Sequence[Expr], scalars: Sequence[bool], dtype: Any, name: str, title: str) -> str:
    """The Python source of a kernel ``name(in0, …, out0, …)`` that writes each of ``roots`` into an output.

    Variable ``x{i}`` of the expressions is the input ``in{i}``: a number where ``scalars[i]``, else
    a vector. Vectors are 1-D and contiguous. Every operation is written in its scalar form.
    Raises ValueError where an operation has none or a constant is not finite.

    Example:
        >>> from netgraph.symbolic import ramp, trace
        >>> print(kernel_source([trace(ramp).expr], [False], np.float32, "forward", "Ramp").split("def ")[1])
        forward(in0, out0):
            for i in range(out0.size):
                x0 = in0[i]
                v1 = T((x0 if not x0 <= T(0) else T(0)))
                out0[i] = v1
        <BLANKLINE>
    """
    dtype = np.dtype(dtype)
    lines, results = kernel_code(roots, len(scalars), "scalar")
    parameters = [f"in{i}" for i in range(len(scalars))]
    outputs = [f"out{j}" for j in range(len(results))]
    used = set(re.findall(r"\bx\d+\b", " ".join([text for _, text in lines] + results)))
    loads_before = [f"    x{i} = T(in{i})" for i, scalar in enumerate(scalars) if scalar and f"x{i}" in used]
    loads = [f"        x{i} = in{i}[i]" for i, scalar in enumerate(scalars) if not scalar and f"x{i}" in used]
    return "\n".join(
        [
            f'"""{title}, over {dtype.name} values. Generated by netgraph.compiled.elementwise."""',
            "",
            "import math",
            "",
            "import numpy as np",
            "",
            "from netgraph.compiled import kernel",
            "",
            f"T = np.{dtype.name}",
            "",
            "",
            '@kernel(error_model="numpy")',
            f"def {name}({', '.join(parameters + outputs)}):",
            *loads_before,
            f"    for i in range({outputs[0]}.size):",
            *loads,
            *[f"        {v} = T({text})" for v, text in lines],
            *[f"        {out}[i] = {value}" for out, value in zip(outputs, results)],
            "",
        ]
    )


def _load(source: str) -> ModuleType:
    """Import ``source`` from its file under ``cache_dir()/kernels`` (written there once)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    name = f"netgraph_kernel_{digest}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    folder = cache_dir() / "kernels"
    path = folder / f"{digest}.py"
    if not path.is_file() or path.read_text() != source:
        # NOTE: written once and never touched again: Numba's cache is valid while the source
        # file keeps its time stamp and size. Written under a temporary name and renamed, so a
        # process reading it never sees half a file.
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp"
        partial.write_text(source)
        os.replace(partial, path)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Pass:
    """One compiled pass for a function and a key: the NumPy passes that come first (their values
    are the kernel's last inputs) and the kernel.

    ``call`` is the kernel until its first call is done (and recorded), then its Numba dispatcher
    itself: a pass always calls it with the same argument types, and the dispatcher alone costs
    a few hundred nanoseconds less a call.
    """

    before: tuple[Program, ...]
    before_scalars: tuple[bool, ...]
    kernel: Kernel
    call: Any = None


def _pass(function: Function, needs: tuple[bool, ...] | None, dtype: np.dtype, scalars: tuple[bool, ...]) -> Any:
    """The compiled pass for this function and key, made on first need; None where there is none."""
    key = ("elementwise", needs, dtype.char, scalars, HOIST_LIBRARY_CALLS, MINIMUM_FUSED)
    found = function.kernels.get(key)
    if found is None:
        with _lock:
            found = function.kernels.get(key)
            if found is None:
                try:
                    found = _make_pass(function, needs, dtype, scalars)
                except (ValueError, OSError):  # a constant NaN, or no writable cache
                    found = None
                function.kernels[key] = _UNSUPPORTED if found is None else found
    return None if found is _UNSUPPORTED else found


def _analyse(
    function: Function, needs: tuple[bool, ...] | None, scalars: tuple[bool, ...]
) -> tuple[list[Expr], list[Expr], tuple[bool, ...]] | None:
    """(the kernel's roots, the expressions NumPy computes first, which inputs of the kernel are
    numbers) for a pass, or None where the loop would fuse fewer than :data:`MINIMUM_FUSED` operations
    or cannot be written (a constant that is not finite)."""
    if needs is None:
        roots, count = [function.expr], function.arity
    else:
        roots, count = backward_roots(function, needs), function.arity + 1
        scalars = (*scalars, False)  # g is a vector
    roots, hoisted = _split(roots, count)
    try:
        fused = len(kernel_code(roots, count + len(hoisted), "scalar")[0])
    except ValueError:
        return None
    if fused < max(MINIMUM_FUSED, 1):
        return None
    before_scalars = tuple(all(scalars[n.args[0]] for n in postorder(e) if n.op == "var") for e in hoisted)
    return roots, hoisted, (*scalars, *before_scalars)


def _make_pass(function: Function, needs: tuple[bool, ...] | None, dtype: np.dtype, scalars: tuple[bool, ...]) -> Any:
    analysed = _analyse(function, needs, scalars)
    if analysed is None:
        return None
    roots, hoisted, all_scalars = analysed
    name = "forward" if needs is None else "backward"
    count = len(all_scalars) - len(hoisted)
    title = f"{function} ({name}{'' if needs is None else f' by inputs {[i for i, n in enumerate(needs) if n]}'})"
    kernel = getattr(_load(kernel_source(roots, all_scalars, dtype, name, title)), name)
    assert isinstance(kernel, Kernel)
    kernel.name = f"elementwise {title}"
    return Pass(tuple(Program(e, count) for e in hoisted), all_scalars[count:], kernel)


# --- the inputs ------------------------------------------------------------------------------------


def _inputs(inputs: Sequence[Any]) -> tuple[np.dtype, tuple[int, ...], np.ndarray, tuple[bool, ...]] | None:
    """(dtype, shape, first array, which inputs are numbers) where the kernels take these inputs, else None."""
    first = inputs[0]
    if not isinstance(first, np.ndarray) or first.dtype not in FLOAT_TYPES:
        return None
    dtype, shape, reference, scalars = first.dtype, None, None, []
    for x in inputs:
        if isinstance(x, np.ndarray):
            if x.dtype != dtype:
                return None
            if x.ndim == 0:
                scalars.append(True)
                continue
            if shape is None:
                shape, reference = x.shape, x
            elif x.shape != shape:
                return None
            scalars.append(False)
        elif isinstance(x, (float, int)) and not isinstance(x, bool):
            scalars.append(True)
        else:
            return None
    if reference is None:
        return None
    return dtype, shape, reference, tuple(scalars)


def _run(step: Pass, arguments: list[Any], outputs: list[np.ndarray]) -> None:
    """Run ``step`` on the vectors (and numbers) ``arguments`` into ``outputs``, split over netgraph's
    threads: each thread runs the NumPy passes and the kernel on its part."""
    length, dtype = outputs[0].size, outputs[0].dtype
    vectors = [isinstance(a, np.ndarray) for a in arguments]

    def work(begin: int, end: int) -> None:
        parts = [a[begin:end] if vector else a for a, vector in zip(arguments, vectors)]
        for program, scalar in zip(step.before, step.before_scalars):
            value = program.run(parts[: program.arity])
            parts.append(dtype.type(value) if scalar else value)
        call(*parts, *[out[begin:end] for out in outputs])

    call = step.call or step.kernel
    in_parallel(np, work, length, length * (sum(vectors) + len(outputs) + len(step.before)))
    step.call = step.kernel.dispatcher


# --- the two passes -----------------------------------------------------------------------------


def supported(function: Function, inputs: Sequence[Any]) -> bool:
    """Whether :func:`forward` takes this function and these inputs (checked without compiling).

    Example:
        >>> from netgraph.symbolic import leaky_ramp, ramp, trace
        >>> x = np.zeros((3, 4), np.float32)
        >>> supported(trace(lambda x: leaky_ramp(x, 0.1)), [x]), supported(trace(ramp), [x])  # 3 operations, 1
        (True, False)
        >>> supported(trace(lambda a, b: a * b + a), [x, np.zeros(4, np.float32)])  # broadcasting
        False
    """
    plan = _inputs(inputs)
    return plan is not None and _analyse(function, None, plan[3]) is not None


def pays_off(function: Function, inputs: Sequence[Any]) -> bool:
    """Whether the compiled pass is worth its call here: outputs of :data:`MINIMUM_SIZE` values or more.

    The other half of the rule is the function's: a pass whose loop would fuse fewer than
    :data:`MINIMUM_FUSED` operations is never compiled (:func:`supported` is False).

    NOTE: measured (float32, 2 threads, medians of interleaved runs; shared time / compiled time)
    at 692 K values, forward and backward: LeakyRamp 17 and 14, SELU 5 and 15 (its Expm1 a NumPy
    pass), the VAE's KL term -0.5*(1 + #2 - #1^2 - Exp[#2]) 3.1 and 2.3; Ramp alone 1.4 and 1.1
    but 0.6 at 20 K values, where NumPy's one pass is as fast and the call costs ~8 µs more (so
    one operation stays on the shared path); LogisticSigmoid is one library operation: 1.0. At
    20 K values the fused ones gain 1.0-3.0, at 5 K values 0.7-1.3: hence 16 K.

    Example:
        >>> from netgraph.symbolic import leaky_ramp, trace
        >>> f = trace(lambda x: leaky_ramp(x, 0.1))
        >>> pays_off(f, [np.zeros(10, np.float32)]), pays_off(f, [np.zeros(10**6, np.float32)])
        (False, True)
    """
    return max((x.size for x in inputs if isinstance(x, np.ndarray)), default=0) >= MINIMUM_SIZE


def forward(function: Function, inputs: Sequence[Any]) -> np.ndarray | None:
    """f(x0, …) in one compiled pass; None where the kernels do not take these inputs (see the module).

    Example:
        >>> from netgraph.symbolic import trace
        >>> forward(trace(lambda a, b: a * b + 1), [np.array([2.0, 3.0]), 10.0]).tolist()
        [21.0, 31.0]
    """
    plan = _inputs(inputs)
    if plan is None:
        return None
    dtype, shape, reference, scalars = plan
    step = _pass(function, None, dtype, scalars)
    if step is None:
        return None
    order = memory_order(reference)
    arguments = [dtype.type(x) if scalar else flat(x, order) for x, scalar in zip(inputs, scalars)]
    out, flat_out = empty_in_order(shape, dtype, order)
    _run(step, arguments, [flat_out])
    return out


def backward(
    function: Function, inputs: Sequence[Any], g: np.ndarray, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...] | None:
    """(g·∂f/∂x_i for each needed i, None for the rest) in one compiled pass, each of g's shape;
    None where the kernels do not take these inputs.

    Example:
        >>> from netgraph.symbolic import trace
        >>> f = trace(lambda a, b: (a - b) ** 2)
        >>> a, b = np.array([2.0, 3.0]), np.array([5.0, 7.0])
        >>> [None if d is None else d.tolist() for d in backward(f, [a, b], np.full(2, 10.0), [False, True])]
        [None, [60.0, 80.0]]
    """
    needs = tuple(bool(n) for n in needs)
    plan = _inputs(inputs)
    if plan is None or not any(needs) or not isinstance(g, np.ndarray):
        return None
    dtype, shape, reference, scalars = plan
    if g.dtype != dtype or g.shape != shape:
        return None
    step = _pass(function, needs, dtype, scalars)
    if step is None:
        return None
    order = memory_order(reference)
    arguments = [dtype.type(x) if scalar else flat(x, order) for x, scalar in zip(inputs, scalars)]
    made = [empty_in_order(shape, dtype, order) for need in needs if need]
    _run(step, [*arguments, flat(g, order)], [vector for _, vector in made])
    found = iter(out for out, _ in made)
    return tuple(next(found) if need else None for need in needs)


def cached_sources() -> list[Path]:
    """The generated kernel sources kept in ``cache_dir()/kernels``.

    Example:
        >>> all(path.suffix == ".py" for path in cached_sources())
        True
    """
    folder = cache_dir() / "kernels"
    return sorted(folder.glob("*.py")) if folder.is_dir() else []
