"""Symbolic elementwise expressions: what ElementwiseLayer and ThreadingLayer keep.

A Python function such as ``lambda x: -exp(2 * x)`` is *traced* once: it is
called with symbolic variables, and the arithmetic operators and the math
functions of this module build an expression tree instead of numbers. The
tree is what a layer keeps. It prints in a Wolfram-like form, it is
differentiated symbolically, it compiles to a short list of ``xp`` calls (one
fused kernel on the GPU later), and it is stored as JSON, never pickled.

Every operation is one entry (an :class:`Op`) of the table :data:`OPS`: its
name, how it evaluates on ``xp`` arrays, its derivative as expressions, how it
prints, how a fused CUDA kernel writes it, and the NumPy ufuncs traced to it.
The table lives here, with the expression tree, because the derivatives are
expressions of that tree; :mod:`netgraph.fused`, which builds on this module,
generates its kernels from the same entries (their CUDA forms are plain text,
so nothing here needs CuPy).

Example:
    >>> from netgraph.symbolic import exp, trace
    >>> f = trace(lambda x: -exp(2 * x))
    >>> print(f)
    -Exp[2*#]&
    >>> print(f.derivative(0))
    -2*Exp[2*#]&
    >>> float(f.evaluate([0.0]))
    -1.0
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import array_module

_SQRT_2 = math.sqrt(2.0)


class TracingError(TypeError):
    """A function given to ElementwiseLayer/ThreadingLayer could not be traced."""


ALLOWED = (
    "arithmetic (+ - * / ** and unary -, abs()), comparisons inside where(), and netgraph's "
    "exp, log, sqrt, power, tanh, sin, cos, tan, arctan, erf, log1p, expm1, ramp, "
    "logistic_sigmoid, softplus, leaky_ramp, sign, floor, ceiling, maximum, minimum, clip, where"
)


# --- the expression tree ------------------------------------------------------------


class Expr:
    """A node of an elementwise expression: an operation applied to sub-expressions."""

    __slots__ = ("op", "args")
    __array_priority__ = 200

    def __init__(self, op: str, args: tuple):
        self.op = op
        self.args = args

    # Python operators build nodes (the constructors simplify constants).
    def __add__(self, o):
        return _make("add", self, o)

    def __radd__(self, o):
        return _make("add", o, self)

    def __sub__(self, o):
        return _make("sub", self, o)

    def __rsub__(self, o):
        return _make("sub", o, self)

    def __mul__(self, o):
        return _make("mul", self, o)

    def __rmul__(self, o):
        return _make("mul", o, self)

    def __truediv__(self, o):
        return _make("div", self, o)

    def __rtruediv__(self, o):
        return _make("div", o, self)

    def __pow__(self, o):
        return _make("pow", self, o)

    def __rpow__(self, o):
        return _make("pow", o, self)

    def __neg__(self):
        return _make("neg", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _make("abs", self)

    def __gt__(self, o):
        return _make("gt", self, o)

    def __ge__(self, o):
        return _make("ge", self, o)

    def __lt__(self, o):
        return _make("gt", o, self)

    def __le__(self, o):
        return _make("ge", o, self)

    def __bool__(self):
        raise TracingError(
            "an elementwise function was used in a Python condition (if/and/or/min()/max()) "
            "while being traced; write it with where(), maximum() or minimum() instead. "
            f"Allowed: {ALLOWED}"
        )

    def __float__(self):
        raise TracingError(
            "an elementwise function called a non-traceable function (such as math.exp) on its "
            f"argument; use netgraph's math functions instead. Allowed: {ALLOWED}"
        )

    __int__ = __index__ = __float__

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = _NUMPY_UFUNCS.get(ufunc.__name__)
        if method != "__call__" or name is None or kwargs:
            raise TracingError(f"numpy.{ufunc.__name__} cannot be traced. Allowed: {ALLOWED}")
        return _make(name, *inputs)

    def __repr__(self) -> str:
        return f"Expr({to_wolfram(self)})"


def var(index: int) -> Expr:
    """The ``index``-th argument (0-based) of the traced function."""
    return Expr("var", (index,))


def const(value: float) -> Expr:
    return Expr("const", (float(value),))


def _is_const(e: Any, value: float | None = None) -> bool:
    if isinstance(e, Expr):
        return e.op == "const" and (value is None or e.args[0] == value)
    return isinstance(e, numbers.Real) and (value is None or e == value)


def _value(e: Any) -> float:
    return e.args[0] if isinstance(e, Expr) else float(e)


def _as_expr(e: Any) -> Expr:
    if isinstance(e, Expr):
        return e
    if isinstance(e, numbers.Real) and not isinstance(e, bool):
        return const(e)
    if isinstance(e, np.ndarray) and e.ndim == 0:
        return const(float(e))
    raise TracingError(
        f"a value of type {type(e).__name__} appeared in an elementwise expression; only numbers "
        f"and the function's arguments may. Allowed: {ALLOWED}"
    )


def _make(op: str, *args: Any) -> Expr:
    """Build ``op(args)``, folding constants and dropping neutral elements."""
    args = tuple(_as_expr(a) for a in args)
    if all(a.op == "const" for a in args):
        return const(OPS[op].evaluate(np, *[np.float64(a.args[0]) for a in args]))
    a = args[0]
    b = args[1] if len(args) > 1 else None
    if op == "add":
        if _is_const(a, 0.0):
            return b
        if _is_const(b, 0.0):
            return a
    elif op == "sub":
        if _is_const(b, 0.0):
            return a
        if _is_const(a, 0.0):
            return _make("neg", b)
    elif op == "mul":
        if _is_const(a, 0.0) or _is_const(b, 0.0):
            return const(0.0)
        if _is_const(a, 1.0):
            return b
        if _is_const(b, 1.0):
            return a
        if _is_const(a, -1.0):
            return _make("neg", b)
        if _is_const(b):  # constants first: 2*x, not x*2
            return _make("mul", b, a)
    elif op == "div":
        if _is_const(b, 1.0):
            return a
        if _is_const(a, 0.0):
            return const(0.0)
    elif op == "where" and _is_const(b) and _is_const(args[2]) and _value(b) == _value(args[2]):
        return b
    elif op == "neg" and a.op == "neg":
        return a.args[0]
    elif op == "pow":
        if _is_const(b, 1.0):
            return a
        if _is_const(b, 0.0):
            return const(1.0)
    return Expr(op, args)


# --- the operation table --------------------------------------------------------------


@dataclass(frozen=True)
class Select:
    """The derivative of an operation whose value is one of its arguments (If, Max, Min).

    ``condition(*args)`` is an expression that holds where the value is ``args[branches[0]]``
    and fails where it is ``args[branches[1]]``; the derivative is the same choice between
    the two branches' derivatives, ``If[condition, d first, d second]``.

    NOTE: not the chain rule's ``step*d first + (1 - step)*d second``: the branch not taken
    never enters the derivative, so an infinite or NaN derivative there (Log's at 0, say)
    does not become 0*inf = NaN.
    """

    condition: Callable
    branches: tuple[int, int] = (0, 1)


@dataclass(frozen=True)
class Op:
    """Everything the library knows about one elementwise operation (one entry of :data:`OPS`).

    name:       the operation's name in the tree and in saved files (so a name never changes).
    evaluate:   the NumPy form ``(xp, *arrays) -> array``, the same lines on NumPy and CuPy.
    derivative: the partial derivatives ``(node, *args) -> tuple`` (d node / d arg_i, as
                expressions or numbers) that the chain rule joins; or a :class:`Select`.
    wolfram:    the printed form: a template over ``{0}, {1}, ...``, or a name printed ``Name[args]``.
    cuda:       the form in a fused kernel (netgraph.fused): a template, or a function name
                called ``name(args)``, in the subset of C++ and Python the kernels are written in.
    precedence: for parenthesising when printing (higher binds tighter).
    ufuncs:     the NumPy ufuncs (by ``__name__``) that trace to this operation.
    helper:     where ``cuda`` names a function CUDA lacks: the C++ expression it returns, over
                the NumPy form's parameter names (the kernels' preamble defines it).
    """

    name: str
    evaluate: Callable
    derivative: Callable | Select
    wolfram: str
    cuda: str
    precedence: int = 100
    ufuncs: tuple[str, ...] = ()
    helper: str = ""

    @property
    def parameters(self) -> tuple[str, ...]:
        """The names of the arguments of the NumPy form (after ``xp``)."""
        return tuple(inspect.signature(self.evaluate).parameters)[1:]

    @property
    def n_args(self) -> int:
        return len(self.parameters)


def _xp(name: str) -> Callable:
    """The NumPy form of a one-argument function that NumPy and CuPy both have: ``xp.<name>(a)``."""

    def evaluate(xp, a):
        return getattr(xp, name)(a)

    evaluate.__name__ = name
    return evaluate


def _step(x):  # 1 where x > 0 else 0, as an expression
    return _make("gt", x, 0.0)


def _erf(xp, x):
    # NOTE: NumPy has no erf. In float32 the complementary-error-function fit of
    # Numerical Recipes is enough (fractional error < 1.2e-7); in float64 a
    # Maclaurin series (|x| < 2) and a continued fraction for erfc (|x| >= 2)
    # give ~1e-15, so float64 gradient checks see the true function.
    if getattr(x, "dtype", np.float64) == np.float32:
        return _erf_fit(xp, x)
    x = xp.asarray(x, dtype=np.float64)
    z = xp.minimum(xp.abs(x), 2.0)
    term, total = z, z.copy()
    for n in range(1, 40):
        term = term * (-z * z) / n
        total = total + term / (2 * n + 1)
    small = total * (2.0 / math.sqrt(math.pi))
    big_x = xp.maximum(xp.abs(x), 2.0)
    frac = big_x
    for k in range(60, 0, -1):  # erfc(x) = e^-x² / √π / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
        frac = big_x + (k / 2.0) / frac
    big = 1.0 - xp.exp(-big_x * big_x) / (math.sqrt(math.pi) * frac)
    return xp.sign(x) * xp.where(xp.abs(x) < 2.0, small, big)


def _erf_fit(xp, x):
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))
                    )
                )
            )
        )
    )
    erfc = t * xp.exp(poly)
    return xp.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _sigmoid(xp, a):
    # NOTE: 0.5*(1+tanh(a/2)) equals 1/(1+exp(-a)) and never overflows.
    return 0.5 * (1.0 + xp.tanh(0.5 * a))


def _softplus(xp, a):
    # NOTE: log(1+e^a) = max(a,0) + log1p(e^-|a|), stable for large |a|.
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


def _extreme(name: str) -> Callable:
    """xp.maximum or xp.minimum, with a scalar operand turned into an array laid out like the other.

    NOTE: NumPy (2.4) takes maximum/minimum against a scalar in a loop that is not vectorised:
    Ramp over 692 K float32 values takes 255 µs so, and 150 µs against an array of zeros made
    by ``zeros_like`` (which keeps the batch-last layout; an array in another layout is slower
    still).
    """

    def evaluate(xp, a, b):
        function = getattr(xp, name)
        if not hasattr(a, "ndim") and getattr(b, "ndim", 0):
            a = xp.full_like(b, a)
        elif not hasattr(b, "ndim") and getattr(a, "ndim", 0):
            b = xp.full_like(a, b)
        return function(a, b)

    return evaluate


_maximum, _minimum = _extreme("maximum"), _extreme("minimum")


def _where(xp, c, a, b):
    return xp.where(c != 0, a, b)


def _compare(fn):
    def compare(xp, a, b):
        # 1.0 / 0.0 in the inputs' precision (True * 1.0 would be float64 for float32 inputs)
        return fn(a, b).astype(xp.result_type(a, b)) if hasattr(a, "dtype") or hasattr(b, "dtype") else fn(a, b) * 1.0

    return compare


_ZERO = lambda *args: tuple(const(0.0) for _ in args[1:])  # noqa: E731


def _pow_partials(n, a, b):
    """d a^b / d a and d a^b / d b (the latter, a^b Log[a], not built for a constant exponent)."""
    return b * a ** (b - 1.0), n * _make("log", a) if not _is_const(b) else 0.0


def _table(*ops: Op) -> dict[str, Op]:
    """The operations by name, each name and each traced ufunc once."""
    table = {op.name: op for op in ops}
    ufuncs = [u for op in ops for u in op.ufuncs]
    assert len(table) == len(ops) and len(set(ufuncs)) == len(ufuncs), "an operation or a ufunc twice"
    return table


# One entry per operation: Op(name, NumPy form, partial derivatives, Wolfram form, CUDA form,
# precedence=, ufuncs=, helper=); see Op. CUDA helpers' names end in "_", so none shadows a
# CUDA function.
# fmt: off
OPS: dict[str, Op] = _table(
    Op("add", lambda xp, a, b: a + b, lambda n, a, b: (1.0, 1.0), "{0} + {1}", "({0} + {1})", 10, ("add",)),
    Op("sub", lambda xp, a, b: a - b, lambda n, a, b: (1.0, -1.0), "{0} - {1}", "({0} - {1})", 10, ("subtract",)),
    Op("mul", lambda xp, a, b: a * b, lambda n, a, b: (b, a), "{0}*{1}", "({0} * {1})", 20, ("multiply",)),
    Op("div", lambda xp, a, b: a / b, lambda n, a, b: (1.0 / b, -n / b), "{0}/{1}", "({0} / {1})", 20,
       ("divide", "true_divide")),
    Op("neg", lambda xp, a: -a, lambda n, a: (-1.0,), "-{0}", "(-{0})", 15, ("negative",)),
    Op("pow", lambda xp, a, b: xp.power(a, b), _pow_partials, "{0}^{1}", "pow", 30, ("power",)),
    Op("exp", _xp("exp"), lambda n, a: (n,), "Exp", "exp", ufuncs=("exp",)),
    Op("log", _xp("log"), lambda n, a: (1.0 / a,), "Log", "log", ufuncs=("log",)),
    Op("sqrt", _xp("sqrt"), lambda n, a: (0.5 / n,), "Sqrt", "sqrt", ufuncs=("sqrt",)),
    Op("log1p", _xp("log1p"), lambda n, a: (1.0 / (1.0 + a),), "Log1p", "log1p", ufuncs=("log1p",)),
    Op("expm1", _xp("expm1"), lambda n, a: (n + 1.0,), "Expm1", "expm1", ufuncs=("expm1",)),
    Op("tanh", _xp("tanh"), lambda n, a: (1.0 - n * n,), "Tanh", "tanh", ufuncs=("tanh",)),
    Op("sin", _xp("sin"), lambda n, a: (_make("cos", a),), "Sin", "sin", ufuncs=("sin",)),
    Op("cos", _xp("cos"), lambda n, a: (-_make("sin", a),), "Cos", "cos", ufuncs=("cos",)),
    Op("tan", _xp("tan"), lambda n, a: (1.0 + n * n,), "Tan", "tan", ufuncs=("tan",)),
    Op("arctan", _xp("arctan"), lambda n, a: (1.0 / (1.0 + a * a),), "ArcTan", "atan", ufuncs=("arctan",)),
    Op("erf", _erf, lambda n, a: ((2.0 / math.sqrt(math.pi)) * _make("exp", -(a * a)),), "Erf", "erf"),
    Op("abs", _xp("abs"), lambda n, a: (_make("sign", a),), "Abs", "fabs", ufuncs=("absolute",)),
    Op("sign", _xp("sign"), _ZERO, "Sign", "sign_", ufuncs=("sign",),
       helper="a > T(0) ? T(1) : (a < T(0) ? T(-1) : T(0))"),
    Op("floor", _xp("floor"), _ZERO, "Floor", "floor", ufuncs=("floor",)),
    Op("ceiling", _xp("ceil"), _ZERO, "Ceiling", "ceil", ufuncs=("ceil",)),
    Op("ramp", lambda xp, a: _maximum(xp, a, 0.0), lambda n, a: (_step(a),), "Ramp", "ramp_",
       helper="a > T(0) ? a : T(0)"),
    Op("logistic_sigmoid", _sigmoid, lambda n, a: (n * (1.0 - n),), "LogisticSigmoid", "sigmoid_",
       helper="T(0.5) * (T(1) + tanh(T(0.5) * a))"),
    Op("softplus", _softplus, lambda n, a: (_make("logistic_sigmoid", a),), "SoftPlus", "softplus_",
       helper="(a > T(0) ? a : T(0)) + log1p(exp(-fabs(a)))"),
    Op("maximum", _maximum, Select(lambda a, b: _make("ge", a, b)), "Max", "max_", ufuncs=("maximum",),
       helper="(a != a || b != b) ? a + b : (a >= b ? a : b)"),
    Op("minimum", _minimum, Select(lambda a, b: _make("ge", b, a)), "Min", "min_", ufuncs=("minimum",),
       helper="(a != a || b != b) ? a + b : (a <= b ? a : b)"),
    Op("gt", _compare(lambda a, b: a > b), _ZERO, "{0} > {1}", "gt_", 5, helper="a > b ? T(1) : T(0)"),
    Op("ge", _compare(lambda a, b: a >= b), _ZERO, "{0} >= {1}", "ge_", 5, helper="a >= b ? T(1) : T(0)"),
    Op("where", _where, Select(lambda c, a, b: c, (1, 2)), "If", "where_", helper="c != T(0) ? a : b"),
)
# fmt: on

# NumPy ufunc name -> operation, for tracing ``numpy.exp(x)`` and friends on expressions
_NUMPY_UFUNCS: dict[str, str] = {ufunc: op.name for op in OPS.values() for ufunc in op.ufuncs}


# --- public math functions: symbolic on expressions, numeric on numbers and arrays ------


def _apply(op: str, *args: Any) -> Any:
    if any(isinstance(a, Expr) for a in args):
        return _make(op, *args)
    return OPS[op].evaluate(array_module(*args), *args)


def _function(op: str, doc: str) -> Callable:
    """A public math function with the operation's number of arguments (so it can be traced itself)."""
    n = OPS[op].n_args
    if n == 1:

        def fn(x):
            return _apply(op, x)
    elif n == 2:

        def fn(a, b):
            return _apply(op, a, b)
    else:

        def fn(c, a, b):
            return _apply(op, c, a, b)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = doc
    return fn


exp = _function("exp", "e**x.")
log = _function("log", "Natural logarithm.")
sqrt = _function("sqrt", "Square root.")
log1p = _function("log1p", "log(1 + x), accurate for small x.")
expm1 = _function("expm1", "e**x - 1, accurate for small x.")
tanh = _function("tanh", "Hyperbolic tangent.")
sin = _function("sin", "Sine.")
cos = _function("cos", "Cosine.")
tan = _function("tan", "Tangent.")
arctan = _function("arctan", "Inverse tangent.")
erf = _function("erf", "Error function (Wolfram's Erf).")
sign = _function("sign", "Sign: -1, 0 or 1.")
floor = _function("floor", "Largest integer <= x.")
ceiling = _function("ceiling", "Smallest integer >= x.")
ramp = _function("ramp", "Wolfram's Ramp: max(x, 0).")
logistic_sigmoid = _function("logistic_sigmoid", "1 / (1 + e**-x), computed stably.")
softplus = _function("softplus", "log(1 + e**x), computed stably.")
maximum = _function("maximum", "Elementwise maximum of two values (Wolfram's Max).")
minimum = _function("minimum", "Elementwise minimum of two values (Wolfram's Min).")
_where_fn = _function("where", "")


def power(x: Any, exponent: Any) -> Any:
    """x ** exponent (Wolfram's Power)."""
    return x**exponent


def where(condition: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true`` where ``condition`` holds, else ``if_false`` (Wolfram's If).

    Example:
        >>> from netgraph.symbolic import trace, where
        >>> print(trace(lambda x: where(x > 0, x, 0.1 * x)))
        If[# > 0, #, 0.1*#]&
    """
    return _where_fn(condition, if_true, if_false)


def clip(x: Any, low: float, high: float) -> Any:
    """Wolfram's Clip[x, {low, high}]."""
    return minimum(maximum(x, low), high)


def leaky_ramp(x: Any, slope: float = 0.01) -> Any:
    """x for x >= 0, slope*x otherwise (a leaky ReLU)."""
    return where(x >= 0, x, slope * x)


# --- walking, printing, differentiating, serialising --------------------------------


def postorder(root: Expr) -> list[Expr]:
    """Every distinct node under ``root``, children before parents (iterative)."""
    order: list[Expr] = []
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded or node.op in ("var", "const"):
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args) if id(a) not in seen)
    return order


def _format_number(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def to_wolfram(root: Expr, arity: int = 1) -> str:
    """Print an expression in Wolfram's syntax (without the trailing ``&``)."""
    text: dict[int, tuple[str, int]] = {}
    for node in postorder(root):
        if node.op == "var":
            text[id(node)] = ("#" if arity == 1 else f"#{node.args[0] + 1}", 100)
            continue
        if node.op == "const":
            v = node.args[0]
            text[id(node)] = (_format_number(v), 100 if v >= 0 else 15)
            continue
        op = OPS[node.op]
        parts = []
        for i, a in enumerate(node.args):
            s, prec = text[id(a)]
            # right operands of - and / and left of ^ need parentheses at equal precedence
            tight = prec < op.precedence or (prec == op.precedence and (i == 1) != (node.op == "pow"))
            if node.op == "mul" and i == 0 and a.op == "const":
                tight = False  # -0.5*#, as Wolfram prints it
            if "{" in op.wolfram and tight and not (node.op in ("add", "mul") and prec == op.precedence):
                s = f"({s})"
            parts.append(s)
        if "{" in op.wolfram:
            text[id(node)] = (op.wolfram.format(*parts), op.precedence)
        else:
            text[id(node)] = (f"{op.wolfram}[{', '.join(parts)}]", 100)
    return text[id(root)][0]


def differentiate(root: Expr, index: int) -> Expr:
    """d root / d (argument ``index``), simplified (forward accumulation over the tree)."""
    d: dict[int, Expr] = {}
    for node in postorder(root):
        if node.op == "var":
            d[id(node)] = const(1.0 if node.args[0] == index else 0.0)
            continue
        if node.op == "const":
            d[id(node)] = const(0.0)
            continue
        rule = OPS[node.op].derivative
        if isinstance(rule, Select):  # d If[c, a, b] = If[c, da, db]
            first, second = (node.args[i] for i in rule.branches)
            d[id(node)] = _make("where", rule.condition(*node.args), d[id(first)], d[id(second)])
            continue
        total: Any = 0.0  # the chain rule: the sum of partial * d argument
        for arg, partial in zip(node.args, rule(node, *node.args)):
            if not _is_const(d[id(arg)], 0.0) and not _is_const(partial, 0.0):
                total = _make("add", total, _make("mul", partial, d[id(arg)]))
        d[id(node)] = _as_expr(total)
    return d[id(root)]


def to_json(root: Expr) -> Any:
    """A JSON-ready nested list: ``["mul", ["const", 2.0], ["var", 0]]``."""
    built: dict[int, Any] = {}
    for node in postorder(root):
        if node.op in ("var", "const"):
            built[id(node)] = [node.op, node.args[0]]
        else:
            built[id(node)] = [node.op, *[built[id(a)] for a in node.args]]
    return built[id(root)]


def from_json(data: Any, arity: int) -> Expr:
    """Rebuild an expression saved by :func:`to_json`, checking every node."""

    def bad(why: str) -> TracingError:
        return TracingError(f"invalid stored elementwise expression: {why}")

    # iterative rebuild: a stack of (json node, built children so far)
    stack: list[tuple[Any, list[Expr]]] = [(data, [])]
    result: Expr | None = None
    while stack:
        node, children = stack[-1]
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise bad(f"expected [op, ...], got {node!r:.60}")
        op = node[0]
        if op == "var":
            if len(node) != 2 or not isinstance(node[1], int) or not 0 <= node[1] < arity:
                raise bad(f"variable out of range: {node!r:.60}")
            built = var(node[1])
        elif op == "const":
            if len(node) != 2 or not isinstance(node[1], (int, float)) or isinstance(node[1], bool):
                raise bad(f"constant must be a number: {node!r:.60}")
            built = const(node[1])
        elif op in OPS:
            if len(children) < len(node) - 1:
                stack.append((node[len(children) + 1], []))
                continue
            n_args = OPS[op].n_args
            if len(children) != n_args:
                raise bad(f"{op} takes {n_args} arguments, got {len(children)}")
            built = Expr(op, tuple(children))
        else:
            raise bad(f"unknown operation {op!r:.40}")
        stack.pop()
        if stack:
            stack[-1][1].append(built)
        else:
            result = built
    assert result is not None
    return result


# --- a traced function: expression + compiled programs ------------------------------------


class Program:
    """An expression compiled to a flat list of ``xp`` calls over numbered slots."""

    def __init__(self, root: Expr, arity: int):
        self.arity = arity
        self.steps: list[tuple[Callable, tuple[int | float, ...]]] = []
        slot: dict[int, Any] = {}
        seen: dict[tuple, int] = {}  # (op, argument slots) -> slot: equal subexpressions run once
        for node in postorder(root):
            if node.op == "var":
                slot[id(node)] = node.args[0]
            elif node.op == "const":  # constants are inlined as ("c", value)
                slot[id(node)] = ("c", node.args[0])
            else:
                args = tuple(slot[id(a)] for a in node.args)
                key = (node.op, args)
                if key not in seen:
                    self.steps.append((OPS[node.op].evaluate, args))
                    seen[key] = arity + len(self.steps) - 1
                slot[id(node)] = seen[key]
        self.result = slot[id(root)]

    def run(self, inputs: Sequence[Any]) -> Any:
        """Evaluate on arrays (all of one dtype; the result keeps it)."""
        xp = array_module(*inputs)
        values = list(inputs)
        dtype = getattr(inputs[0], "dtype", None)

        def fetch(a):
            return a[1] if isinstance(a, tuple) else values[a]

        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            for evaluate, args in self.steps:
                out = evaluate(xp, *[fetch(a) for a in args])
                if dtype is not None and getattr(out, "dtype", dtype) != dtype:
                    out = out.astype(dtype)
                values.append(out)
        return fetch(self.result)


class Function:
    """A traced elementwise function of ``arity`` arguments.

    Example:
        >>> from netgraph.symbolic import trace
        >>> import numpy as np
        >>> f = trace(lambda a, b: a * b + 1)
        >>> f.arity, str(f)
        (2, '#1*#2 + 1&')
        >>> f.evaluate([np.array([2.0]), np.array([3.0])]).tolist()
        [7.0]
    """

    def __init__(self, expr: Expr, arity: int):
        self.expr = expr
        self.arity = arity
        self._program: Program | None = None
        self._partials: list[Program] | None = None

    def __str__(self) -> str:
        return to_wolfram(self.expr, self.arity) + "&"

    def __repr__(self) -> str:
        return f"Function({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Function) and other.arity == self.arity and to_json(other.expr) == to_json(self.expr)

    def __hash__(self) -> int:
        return hash(str(self))

    def derivative(self, index: int) -> Function:
        return Function(differentiate(self.expr, index), self.arity)

    @property
    def program(self) -> Program:
        if self._program is None:
            self._program = Program(self.expr, self.arity)
        return self._program

    @property
    def partial_programs(self) -> list[Program]:
        if self._partials is None:
            self._partials = [Program(differentiate(self.expr, i), self.arity) for i in range(self.arity)]
        return self._partials

    def evaluate(self, inputs: Sequence[Any]) -> Any:
        return self.program.run(inputs)

    def to_json(self) -> dict:
        return {"arity": self.arity, "expr": to_json(self.expr)}

    @staticmethod
    def from_json(data: Any) -> Function:
        if not isinstance(data, dict) or not isinstance(data.get("arity"), int) or not 1 <= data["arity"] <= 64:
            raise TracingError(f"invalid stored elementwise function: {data!r:.80}")
        return Function(from_json(data.get("expr"), data["arity"]), data["arity"])


def trace(fn: Callable | Expr, arity: int | None = None) -> Function:
    """Trace ``fn`` into a :class:`Function` (arity from its signature by default)."""
    if isinstance(fn, Function):
        return fn
    if arity is None:
        arity = _arity(fn)
    try:
        out = fn(*[var(i) for i in range(arity)])
    except TracingError:
        raise
    except Exception as err:  # noqa: BLE001 - anything else means "not traceable"
        raise TracingError(
            f"could not trace {getattr(fn, '__name__', fn)!r}: {type(err).__name__}: {err}. "
            f"Elementwise functions may use {ALLOWED}"
        ) from None
    return Function(_as_expr(out), arity)


def _arity(fn: Callable) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        raise TracingError(f"{fn!r} is not a Python function that can be traced") from None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in kinds and p.default is inspect.Parameter.empty]
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        raise TracingError(f"{fn!r} takes *args; give the number of inputs explicitly")
    return len(positional)
