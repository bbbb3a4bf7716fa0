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

The table covers the Wolfram functions of ElementwiseLayer's reference page that NumPy or CUDA
computes: the trigonometric and hyperbolic functions and their inverses (ArcTan with one or two
arguments), CubeRoot, Surd, Gamma, LogGamma (with PolyGamma for their derivatives), Erf, Erfc,
Round, Floor, Ceiling, IntegerPart, FractionalPart, Sign, Unitize, KroneckerDelta, Mod, Min, Max
and Clip. The piecewise-constant ones have derivative 0, jumps included, as in Wolfram's nets.

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

import functools
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
    "arithmetic (+ - * / ** % // and unary -, abs(), round(), math.floor/ceil/trunc), comparisons inside "
    "where(), NumPy ufuncs of the same functions, and netgraph's exp, log, log2, log10, sqrt, cube_root, "
    "surd, power, sin, cos, tan, sinh, cosh, tanh, arcsin, arccos, arctan, arcsinh, arccosh, arctanh, erf, "
    "erfc, gamma, log_gamma, polygamma, log1p, expm1, ramp, logistic_sigmoid, softplus, leaky_ramp, sign, "
    "floor, ceiling, integer_part, fractional_part, mod, unitize, kronecker_delta, maximum, minimum, clip, where"
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

    def __mod__(self, o):  # Python's % takes the sign of the divisor, as Wolfram's Mod
        return _make("mod", self, o)

    def __rmod__(self, o):
        return _make("mod", o, self)

    def __floordiv__(self, o):  # Wolfram's Quotient[m, n] = Floor[m/n]
        return _make("floor", _make("div", self, o))

    def __rfloordiv__(self, o):
        return _make("floor", _make("div", o, self))

    def __neg__(self):
        return _make("neg", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _make("abs", self)

    # round(x), math.floor(x), math.ceil(x), math.trunc(x); np.round and np.clip call the methods
    def __round__(self, ndigits=None):
        return _round(self, ndigits or 0)

    def __floor__(self):
        return _make("floor", self)

    def __ceil__(self):
        return _make("ceiling", self)

    def __trunc__(self):
        return _make("integer_part", self)

    def round(self, decimals=0, out=None):
        if out is not None:
            raise TracingError(f"numpy.round(..., out=) cannot be traced. Allowed: {ALLOWED}")
        return _round(self, decimals)

    def clip(self, min=None, max=None, out=None, **kwargs):  # noqa: A002 - NumPy's names
        if out is not None or kwargs:
            raise TracingError(f"numpy.clip(..., out=) cannot be traced. Allowed: {ALLOWED}")
        if min is None or max is None:  # one bound (NumPy takes None for no bound)
            return self if min is None and max is None else maximum(self, min) if max is None else minimum(self, max)
        return clip(self, min, max)

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
        form = _UFUNC_FORMS.get(ufunc.__name__)
        if method != "__call__" or (name is None and form is None) or kwargs:
            raise TracingError(f"numpy.{ufunc.__name__} cannot be traced. Allowed: {ALLOWED}")
        return _make(name, *inputs) if name is not None else form(*inputs)

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
    _check_orders(op, args)
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


def _check_orders(op: str, args: tuple[Expr, ...]) -> None:
    """Refuse a node whose order argument (PolyGamma's n) is not a constant integer in range."""
    for i in OPS[op].orders:
        a = args[i]
        if a.op != "const" or not float(a.args[0]).is_integer() or not 0 <= a.args[0] <= MAX_POLYGAMMA_ORDER:
            shown = to_wolfram(a) if a.op != "const" else _format_number(a.args[0])
            raise TracingError(
                f"the order of {OPS[op].wolfram}[n, x] must be an integer from 0 to {MAX_POLYGAMMA_ORDER} "
                f"given as a number, not {shown}"
            )


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
                the NumPy form's parameter names, or its whole body when that holds ``return``
                statements (the kernels' preamble defines it).
    orders:     the arguments that must be constant integers from 0 to :data:`MAX_POLYGAMMA_ORDER`
                (PolyGamma's order), checked whenever a node is built or read back.
    scalar:     the form in a compiled CPU kernel (netgraph.compiled.elementwise): a template, or a
                function called ``name(args)``, in the scalar Python that Numba compiles, over the
                modules ``math`` and ``np`` and the element type ``T`` (``T(0)`` is a zero of the
                inputs' precision); NaN and infinities as the NumPy form gives them. Empty where
                there is none: a function using the operation then runs on the shared path.
    """

    name: str
    evaluate: Callable
    derivative: Callable | Select
    wolfram: str
    cuda: str
    precedence: int = 100
    ufuncs: tuple[str, ...] = ()
    helper: str = ""
    orders: tuple[int, ...] = ()
    scalar: str = ""

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


# --- special functions on xp arrays (NumPy has none of these; CuPy's live in cupyx.scipy) ------
#
# NOTE: Gamma, LogGamma, PolyGamma and Erfc are written once on ``xp`` like every other NumPy
# form, so the shared path runs the same lines on NumPy and CuPy and SciPy stays out of the
# dependencies (``np.vectorize(math.gamma)`` would be a Python loop per element, and impossible on
# the GPU). They compute in float64 (a float32 input gets a float32 result), to a relative 1e-15
# (Gamma: 2e-13 near its overflow at 171), so float64 gradient checks see the true functions. The fused
# kernels call CUDA's own ``tgamma``, ``lgamma`` and ``erfc``, and for PolyGamma the same
# algorithm as here, written in C++ (``_POLYGAMMA_BODY``).

# Lanczos' approximation with g = 7 and 9 terms: Γ(z + 1) = √(2π) t^(z+1/2) e^-t A(z), t = z + g + 1/2
_LANCZOS_G = 7.0
_LANCZOS = (
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
)

#: The highest order of PolyGamma (its derivative raises it by one).
MAX_POLYGAMMA_ORDER = 20
# Bernoulli numbers B2, B4, ..., B24 (as fractions), for the asymptotic series below.
_BERNOULLI = tuple(
    p / q
    for p, q in (
        (1, 6), (-1, 30), (1, 42), (-1, 30), (5, 66), (-691, 2730), (7, 6), (-3617, 510), (43867, 798),
        (-174611, 330), (854513, 138), (-236364091, 2730),
    )
)  # fmt: skip
# ψ(w) ~ log w - 1/2w - Σ B_2k / (2k w^2k), for w >= 10 (7 terms: the first one left out is < 1e-16)
_DIGAMMA_SERIES = tuple(b / (2 * k) for k, b in enumerate(_BERNOULLI[:7], 1))
# ζ(s, w) ~ w^(1-s)/(s-1) + w^-s/2 + Σ B_2j/(2j)! s(s+1)...(s+2j-2) w^(-s-2j+1) (Euler-Maclaurin)
_ZETA_SERIES = tuple(b / math.factorial(2 * j) for j, b in enumerate(_BERNOULLI, 1))
_DIGAMMA_SHIFT = 10  # ψ(x) = ψ(x + 10) - Σ 1/(x + k): the series then starts at w >= 10


def _float64(xp, x):
    return xp.asarray(x, dtype=np.float64)


def _pole(xp, x):
    """Where x is 0, a negative integer or -Infinity (the poles of Γ and its derivatives)."""
    return (x <= 0) & (x == xp.floor(x))


def _sin_pi(xp, x):
    """sin(πx), with x first reduced to [-1, 1] so that large x keep their precision."""
    return xp.sin(math.pi * (x - 2.0 * xp.rint(0.5 * x)))


def _lanczos(xp, y):
    """(A, t) of Lanczos' approximation at y >= 1/2: Γ(y) = √(2π) A t^(y-1/2) e^-t."""
    z = y - 1.0
    total = _LANCZOS[0] + sum(c / (z + k) for k, c in enumerate(_LANCZOS[1:], 1))
    return total, z + _LANCZOS_G + 0.5


def _gamma(xp, x):
    # NOTE: C's tgamma at the poles: ±Infinity at ±0, Indeterminate (NaN) at the negative integers.
    x = _float64(xp, x)
    reflect = x < 0.5
    y = xp.where(reflect, 1.0 - x, x)  # Γ(x) = π / (sin(πx) Γ(1 - x)) below 1/2
    total, t = _lanczos(xp, y)
    half = xp.power(t, 0.5 * (y - 0.5))  # t^(y-1/2) as two halves around e^-t: no early overflow
    value = math.sqrt(2.0 * math.pi) * total * (half * xp.exp(-t)) * half
    value = xp.where(reflect, math.pi / (_sin_pi(xp, x) * value), value)
    value = xp.where(_pole(xp, x), xp.where(x == 0, xp.copysign(np.inf, x), np.nan), value)
    # NOTE: Γ overflows float64 from 171.62 on; far above, t^(y/2) e^-t t^(y/2) would be inf·0 = NaN.
    return xp.where(x > 171.7, np.inf, value)


def _log_gamma(xp, x):
    # NOTE: log|Γ(x)|, as C's lgamma: the real part of Wolfram's LogGamma, which is complex where Γ < 0.
    x = _float64(xp, x)
    reflect = x < 0.5
    y = xp.where(reflect, 1.0 - x, x)
    total, t = _lanczos(xp, y)
    value = 0.5 * math.log(2.0 * math.pi) + (y - 0.5) * xp.log(t) - t + xp.log(total)
    # NOTE: below 1e-8, sin(πx) = πx to double precision, and π·x itself would lose digits on subnormal x.
    log_sin = xp.where(xp.abs(x) < 1e-8, math.log(math.pi) + xp.log(xp.abs(x)), xp.log(xp.abs(_sin_pi(xp, x))))
    value = xp.where(reflect, math.log(math.pi) - log_sin - value, value)
    return xp.where(_pole(xp, x) | xp.isinf(x), np.inf, value)


@functools.cache
def _cot_derivative(n: int) -> tuple[float, ...]:
    """Coefficients (of c^0, c^1, ...) of the polynomial P_n with d^n/dy^n cot y = P_n(cot y)."""
    p = [0.0, 1.0]
    for _ in range(n):  # P' = P'(c) dc/dy, dc/dy = -(1 + c^2)
        q = [0.0] * (len(p) + 1)
        for k in range(1, len(p)):
            q[k - 1] -= k * p[k]
            q[k + 1] -= k * p[k]
        p = q
    return tuple(p)


def _polygamma(xp, n, x):
    """PolyGamma[n, x], the n-th derivative of the digamma function ψ = Γ'/Γ, for an integer n >= 0.

    For x > 0: ψ(x) from the recurrence up to x + 10 and the asymptotic series there; for n >= 1,
    ψ^(n)(x) = (-1)^(n+1) n! ζ(n + 1, x) with Hurwitz's ζ by Euler-Maclaurin summation. For x < 0,
    the reflection formula ψ^(n)(x) = (-1)^n ψ^(n)(1 - x) - π^(n+1) P_n(cot πx). NaN at the poles.
    """
    order = int(n)
    x = _float64(xp, x)
    reflect = x < 0
    v = xp.where(reflect, 1.0 - x, x)
    total = xp.zeros_like(v)
    if order == 0:
        for _ in range(_DIGAMMA_SHIFT):
            total = total - 1.0 / v
            v = v + 1.0
        w2 = 1.0 / (v * v)
        series = xp.zeros_like(v)
        for c in reversed(_DIGAMMA_SERIES):
            series = series * w2 + c
        total = total + xp.log(v) - 0.5 / v - series * w2
    else:
        s = order + 1.0
        for _ in range(_DIGAMMA_SHIFT + order):
            total = total + xp.power(v, -s)
            v = v + 1.0
        total = total + xp.power(v, 1.0 - s) / (s - 1.0) + 0.5 * xp.power(v, -s)
        rising, term = s, xp.power(v, -s - 1.0)
        for j, c in enumerate(_ZETA_SERIES):
            total = total + c * rising * term
            rising *= (s + 2 * j + 1) * (s + 2 * j + 2)
            term = term / (v * v)
        total = total * ((-1.0) ** (order + 1) * math.factorial(order))
    cot = 1.0 / xp.tan(math.pi * (x - xp.rint(x)))
    poly = xp.zeros_like(x)
    for c in reversed(_cot_derivative(order)):
        poly = poly * cot + c
    reflected = (-1.0) ** order * total - math.pi ** (order + 1) * poly
    return xp.where(_pole(xp, x), np.nan, xp.where(reflect, reflected, total))


def _c_array(values: Sequence[float]) -> str:
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


# The same algorithm as _polygamma, for one element in a fused kernel (in double precision).
_POLYGAMMA_BODY = f"""
    const int order = (int)n;
    const double pi = {math.pi!r};
    const double digamma_series[{len(_DIGAMMA_SERIES)}] = {_c_array(_DIGAMMA_SERIES)};
    const double zeta_series[{len(_ZETA_SERIES)}] = {_c_array(_ZETA_SERIES)};
    double v = (double)x, total = 0.0, reflected = 0.0, sign = 1.0;
    if (v <= 0.0 && v == floor(v)) return T(nan(""));
    if (v < 0.0) {{
        double cot = 1.0 / tan(pi * (v - rint(v))), poly = 0.0;
        double coef[{MAX_POLYGAMMA_ORDER + 3}], next[{MAX_POLYGAMMA_ORDER + 3}];
        for (int k = 0; k < {MAX_POLYGAMMA_ORDER + 3}; k++) {{ coef[k] = k == 1 ? 1.0 : 0.0; }}
        for (int step = 0; step < order; step++) {{
            for (int k = 0; k < {MAX_POLYGAMMA_ORDER + 3}; k++) {{ next[k] = 0.0; }}
            for (int k = 1; k <= step + 1; k++) {{ next[k - 1] -= k * coef[k]; next[k + 1] -= k * coef[k]; }}
            for (int k = 0; k < {MAX_POLYGAMMA_ORDER + 3}; k++) {{ coef[k] = next[k]; }}
        }}
        for (int k = order + 1; k >= 0; k--) {{ poly = poly * cot + coef[k]; }}
        reflected = -pow(pi, order + 1.0) * poly;
        sign = order % 2 == 1 ? -1.0 : 1.0;
        v = 1.0 - v;
    }}
    if (order == 0) {{
        for (int k = 0; k < {_DIGAMMA_SHIFT}; k++) {{ total -= 1.0 / v; v += 1.0; }}
        double w2 = 1.0 / (v * v), series = 0.0;
        for (int k = {len(_DIGAMMA_SERIES) - 1}; k >= 0; k--) {{ series = series * w2 + digamma_series[k]; }}
        total += log(v) - 0.5 / v - series * w2;
    }} else {{
        const double order1 = order + 1.0;
        for (int k = 0; k < {_DIGAMMA_SHIFT} + order; k++) {{ total += pow(v, -order1); v += 1.0; }}
        total += pow(v, 1.0 - order1) / (order1 - 1.0) + 0.5 * pow(v, -order1);
        double rising = order1, term = pow(v, -order1 - 1.0), factorial = 1.0;
        for (int k = 0; k < {len(_ZETA_SERIES)}; k++) {{
            total += zeta_series[k] * rising * term;
            rising *= (order1 + 2 * k + 1) * (order1 + 2 * k + 2);
            term /= v * v;
        }}
        for (int k = 2; k <= order; k++) {{ factorial *= k; }}
        total *= order % 2 == 1 ? factorial : -factorial;
    }}
    return T(reflected + sign * total);
"""


def _erf_parts(xp, x):
    """For float64 ``x``: erf(min(|x|, 2)) by its Maclaurin series, erfc(max(|x|, 2)) by a continued fraction."""
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
    return small, xp.exp(-big_x * big_x) / (math.sqrt(math.pi) * frac)


def _erf(xp, x):
    # NOTE: NumPy has no erf. In float32 the complementary-error-function fit of
    # Numerical Recipes is enough (fractional error < 1.2e-7); in float64 a
    # Maclaurin series (|x| < 2) and a continued fraction for erfc (|x| >= 2)
    # give ~1e-15, so float64 gradient checks see the true function.
    if getattr(x, "dtype", np.float64) == np.float32:
        erfc = _erfc_fit(xp, xp.abs(x))
        return xp.where(x >= 0, 1.0 - erfc, erfc - 1.0)
    x = _float64(xp, x)
    small, tail = _erf_parts(xp, x)
    return xp.sign(x) * xp.where(xp.abs(x) < 2.0, small, 1.0 - tail)


def _erfc(xp, x):
    # NOTE: 1 - Erf[x] would lose the tail (erfc(5) = 1.5e-12): the fit and the continued
    # fraction give erfc itself, and erfc(-x) = 2 - erfc(x).
    if getattr(x, "dtype", np.float64) == np.float32:
        positive = _erfc_fit(xp, xp.abs(x))
    else:
        x = _float64(xp, x)
        small, tail = _erf_parts(xp, x)
        positive = xp.where(xp.abs(x) < 2.0, 1.0 - small, tail)
    return xp.where(x >= 0, positive, 2.0 - positive)


def _erfc_fit(xp, z):
    """erfc(z) for z >= 0, fractional error < 1.2e-7 (Numerical Recipes' Chebyshev fit)."""
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
    return t * xp.exp(poly)


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


_eq = _compare(lambda a, b: a == b)
_ne = _compare(lambda a, b: a != b)


def _xp2(name: str) -> Callable:
    """The NumPy form of a two-argument function that NumPy and CuPy both have: ``xp.<name>(a, b)``."""

    def evaluate(xp, a, b):
        return getattr(xp, name)(a, b)

    evaluate.__name__ = name
    return evaluate


def _surd(xp, a, k):
    # Surd[a, k]: the real k-th root; for odd k, of a negative a too
    odd = xp.abs(xp.fmod(k, 2.0)) == 1.0
    return xp.where(odd, xp.copysign(xp.power(xp.abs(a), 1.0 / k), a), xp.power(a, 1.0 / k))


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
# precedence=, ufuncs=, helper=, scalar=); see Op. CUDA helpers' names end in "_", so none shadows a
# CUDA function.
# fmt: off
OPS: dict[str, Op] = _table(
    Op("add", lambda xp, a, b: a + b, lambda n, a, b: (1.0, 1.0), "{0} + {1}", "({0} + {1})", 10, ("add",),
       scalar="({0} + {1})"),
    Op("sub", lambda xp, a, b: a - b, lambda n, a, b: (1.0, -1.0), "{0} - {1}", "({0} - {1})", 10, ("subtract",),
       scalar="({0} - {1})"),
    Op("mul", lambda xp, a, b: a * b, lambda n, a, b: (b, a), "{0}*{1}", "({0} * {1})", 20, ("multiply",),
       scalar="({0} * {1})"),
    Op("div", lambda xp, a, b: a / b, lambda n, a, b: (1.0 / b, -n / b), "{0}/{1}", "({0} / {1})", 20,
       ("divide", "true_divide"), scalar="({0} / {1})"),
    Op("neg", lambda xp, a: -a, lambda n, a: (-1.0,), "-{0}", "(-{0})", 15, ("negative",), scalar="(-{0})"),
    Op("pow", lambda xp, a, b: xp.power(a, b), _pow_partials, "{0}^{1}", "pow", 30, ("power",), scalar="({0} ** {1})"),
    Op("exp", _xp("exp"), lambda n, a: (n,), "Exp", "exp", ufuncs=("exp",), scalar="math.exp"),
    Op("log", _xp("log"), lambda n, a: (1.0 / a,), "Log", "log", ufuncs=("log",), scalar="math.log"),
    Op("sqrt", _xp("sqrt"), lambda n, a: (0.5 / n,), "Sqrt", "sqrt", ufuncs=("sqrt",), scalar="math.sqrt"),
    Op("log1p", _xp("log1p"), lambda n, a: (1.0 / (1.0 + a),), "Log1p", "log1p", ufuncs=("log1p",),
       scalar="math.log1p"),
    Op("expm1", _xp("expm1"), lambda n, a: (n + 1.0,), "Expm1", "expm1", ufuncs=("expm1",), scalar="math.expm1"),
    Op("tanh", _xp("tanh"), lambda n, a: (1.0 - n * n,), "Tanh", "tanh", ufuncs=("tanh",), scalar="math.tanh"),
    Op("sin", _xp("sin"), lambda n, a: (_make("cos", a),), "Sin", "sin", ufuncs=("sin",), scalar="math.sin"),
    Op("cos", _xp("cos"), lambda n, a: (-_make("sin", a),), "Cos", "cos", ufuncs=("cos",), scalar="math.cos"),
    Op("tan", _xp("tan"), lambda n, a: (1.0 + n * n,), "Tan", "tan", ufuncs=("tan",), scalar="math.tan"),
    Op("arctan", _xp("arctan"), lambda n, a: (1.0 / (1.0 + a * a),), "ArcTan", "atan", ufuncs=("arctan",),
       scalar="math.atan"),
    Op("erf", _erf, lambda n, a: ((2.0 / math.sqrt(math.pi)) * _make("exp", -(a * a)),), "Erf", "erf",
       scalar="math.erf"),
    Op("erfc", _erfc, lambda n, a: ((-2.0 / math.sqrt(math.pi)) * _make("exp", -(a * a)),), "Erfc", "erfc",
       scalar="math.erfc"),
    Op("sinh", _xp("sinh"), lambda n, a: (_make("cosh", a),), "Sinh", "sinh", ufuncs=("sinh",), scalar="math.sinh"),
    Op("cosh", _xp("cosh"), lambda n, a: (_make("sinh", a),), "Cosh", "cosh", ufuncs=("cosh",), scalar="math.cosh"),
    Op("arcsin", _xp("arcsin"), lambda n, a: (1.0 / _make("sqrt", 1.0 - a * a),), "ArcSin", "asin",
       ufuncs=("arcsin",), scalar="math.asin"),
    Op("arccos", _xp("arccos"), lambda n, a: (-1.0 / _make("sqrt", 1.0 - a * a),), "ArcCos", "acos",
       ufuncs=("arccos",), scalar="math.acos"),
    Op("arcsinh", _xp("arcsinh"), lambda n, a: (1.0 / _make("sqrt", a * a + 1.0),), "ArcSinh", "asinh",
       ufuncs=("arcsinh",), scalar="math.asinh"),
    Op("arccosh", _xp("arccosh"), lambda n, a: (1.0 / (_make("sqrt", a - 1.0) * _make("sqrt", a + 1.0)),),
       "ArcCosh", "acosh", ufuncs=("arccosh",), scalar="math.acosh"),
    Op("arctanh", _xp("arctanh"), lambda n, a: (1.0 / (1.0 - a * a),), "ArcTanh", "atanh", ufuncs=("arctanh",),
       scalar="math.atanh"),
    # Wolfram's ArcTan[x, y] is the angle of the point {x, y}: NumPy's arctan2(y, x)
    Op("arctan2", lambda xp, x, y: xp.arctan2(y, x), lambda n, x, y: (-y / (x * x + y * y), x / (x * x + y * y)),
       "ArcTan", "arctan2_", helper="atan2(y, x)", scalar="math.atan2({1}, {0})"),
    Op("cube_root", _xp("cbrt"), lambda n, a: (1.0 / (3.0 * n**2),), "CubeRoot", "cbrt", ufuncs=("cbrt",),
       scalar="np.cbrt"),
    Op("surd", _surd, lambda n, a, k: (n ** (1.0 - k) / k, -n * _make("log", abs(a)) / (k * k)), "Surd", "surd_",
       helper="fabs(fmod(k, T(2))) == T(1) ? copysign(pow(fabs(a), T(1) / k), a) : pow(a, T(1) / k)",
       scalar="(math.copysign(abs({0}) ** (T(1) / {1}), {0}) if abs(np.fmod({1}, T(2))) == T(1) "
              "else {0} ** (T(1) / {1}))"),
    Op("gamma", _gamma, lambda n, a: (n * _make("polygamma", 0.0, a),), "Gamma", "tgamma", scalar="math.gamma"),
    Op("log_gamma", _log_gamma, lambda n, a: (_make("polygamma", 0.0, a),), "LogGamma", "lgamma", scalar="math.lgamma"),
    Op("polygamma", _polygamma, lambda n, k, x: (0.0, _make("polygamma", k + 1.0, x)), "PolyGamma", "polygamma_",
       helper=_POLYGAMMA_BODY, orders=(0,)),
    Op("log2", _xp("log2"), lambda n, a: (1.0 / (math.log(2.0) * a),), "Log2", "log2", ufuncs=("log2",),
       scalar="math.log2"),
    Op("log10", _xp("log10"), lambda n, a: (1.0 / (math.log(10.0) * a),), "Log10", "log10", ufuncs=("log10",),
       scalar="math.log10"),
    Op("abs", _xp("abs"), lambda n, a: (_make("sign", a),), "Abs", "fabs", ufuncs=("absolute",), scalar="abs"),
    Op("sign", _xp("sign"), _ZERO, "Sign", "sign_", ufuncs=("sign",),
       helper="a > T(0) ? T(1) : (a < T(0) ? T(-1) : T(0))",
       scalar="(T(1) if {0} > T(0) else (T(-1) if {0} < T(0) else {0}))"),
    Op("floor", _xp("floor"), _ZERO, "Floor", "floor", ufuncs=("floor",), scalar="np.floor"),
    Op("ceiling", _xp("ceil"), _ZERO, "Ceiling", "ceil", ufuncs=("ceil",), scalar="np.ceil"),
    Op("round", _xp("rint"), _ZERO, "Round", "rint", ufuncs=("rint",),  # halves to even, as Wolfram's Round
       scalar="np.rint"),
    Op("integer_part", _xp("trunc"), _ZERO, "IntegerPart", "trunc", ufuncs=("trunc",), scalar="np.trunc"),
    Op("fractional_part", lambda xp, a: a - xp.trunc(a), lambda n, a: (1.0,), "FractionalPart", "fractional_part_",
       helper="a - trunc(a)", scalar="({0} - np.trunc({0}))"),
    # Wolfram's Mod[m, n] = m - n Floor[m/n] (the sign of n), as NumPy's remainder computes it
    Op("mod", _xp2("remainder"), lambda n, a, b: (1.0, -_make("floor", a / b)), "Mod", "mod_", ufuncs=("remainder",),
       helper="b == T(0) ? fmod(a, b) : (fmod(a, b) == T(0) ? copysign(T(0), b) "
              ": ((fmod(a, b) < T(0)) != (b < T(0)) ? fmod(a, b) + b : fmod(a, b)))", scalar="np.remainder"),
    Op("unitize", lambda xp, a: _ne(xp, a, 0.0), _ZERO, "Unitize", "unitize_", helper="a != T(0) ? T(1) : T(0)",
       scalar="(T(1) if {0} != T(0) else T(0))"),
    Op("kronecker_delta", lambda xp, a: _eq(xp, a, 0.0), _ZERO, "KroneckerDelta", "kronecker_delta_",
       helper="a == T(0) ? T(1) : T(0)", scalar="(T(1) if {0} == T(0) else T(0))"),
    Op("ramp", lambda xp, a: _maximum(xp, a, 0.0), lambda n, a: (_step(a),), "Ramp", "ramp_",
       helper="a > T(0) ? a : T(0)", scalar="({0} if not {0} <= T(0) else T(0))"),
    Op("logistic_sigmoid", _sigmoid, lambda n, a: (n * (1.0 - n),), "LogisticSigmoid", "sigmoid_",
       helper="T(0.5) * (T(1) + tanh(T(0.5) * a))", scalar="(T(0.5) * (T(1) + math.tanh(T(0.5) * {0})))"),
    Op("softplus", _softplus, lambda n, a: (_make("logistic_sigmoid", a),), "SoftPlus", "softplus_",
       helper="(a > T(0) ? a : T(0)) + log1p(exp(-fabs(a)))",
       scalar="(({0} if not {0} <= T(0) else T(0)) + math.log1p(math.exp(-abs({0}))))"),
    Op("maximum", _maximum, Select(lambda a, b: _make("ge", a, b)), "Max", "max_", ufuncs=("maximum",),
       helper="(a != a || b != b) ? a + b : (a >= b ? a : b)",
       scalar="(({0} + {1}) if {0} != {0} or {1} != {1} else ({0} if {0} >= {1} else {1}))"),
    Op("minimum", _minimum, Select(lambda a, b: _make("ge", b, a)), "Min", "min_", ufuncs=("minimum",),
       helper="(a != a || b != b) ? a + b : (a <= b ? a : b)",
       scalar="(({0} + {1}) if {0} != {0} or {1} != {1} else ({0} if {0} <= {1} else {1}))"),
    Op("gt", _compare(lambda a, b: a > b), _ZERO, "{0} > {1}", "gt_", 5, helper="a > b ? T(1) : T(0)",
       scalar="(T(1) if {0} > {1} else T(0))"),
    Op("ge", _compare(lambda a, b: a >= b), _ZERO, "{0} >= {1}", "ge_", 5, helper="a >= b ? T(1) : T(0)",
       scalar="(T(1) if {0} >= {1} else T(0))"),
    Op("eq", _eq, _ZERO, "{0} == {1}", "eq_", 5, ("equal",), helper="a == b ? T(1) : T(0)",
       scalar="(T(1) if {0} == {1} else T(0))"),
    Op("ne", _ne, _ZERO, "{0} != {1}", "ne_", 5, ("not_equal",), helper="a != b ? T(1) : T(0)",
       scalar="(T(1) if {0} != {1} else T(0))"),
    Op("where", _where, Select(lambda c, a, b: c, (1, 2)), "If", "where_", helper="c != T(0) ? a : b",
       scalar="({1} if {0} != T(0) else {2})"),
)
# fmt: on

# NumPy ufunc name -> operation, for tracing ``numpy.exp(x)`` and friends on expressions
_NUMPY_UFUNCS: dict[str, str] = {ufunc: op.name for op in OPS.values() for ufunc in op.ufuncs}

# NumPy ufuncs that are an operation with its arguments swapped, or a short expression of them
_UFUNC_FORMS: dict[str, Callable] = {
    "arctan2": lambda y, x: _make("arctan2", x, y),
    "less": lambda a, b: _make("gt", b, a),
    "less_equal": lambda a, b: _make("ge", b, a),
    "fabs": lambda a: _make("abs", a),
    "positive": lambda a: _as_expr(a),
    "square": lambda a: _make("pow", a, 2.0),
    "reciprocal": lambda a: _make("div", 1.0, a),
    "exp2": lambda a: _make("pow", 2.0, a),
    "float_power": lambda a, b: _make("pow", a, b),
    "floor_divide": lambda a, b: _make("floor", _make("div", a, b)),
    "hypot": lambda a, b: _make("sqrt", _make("add", _make("mul", a, a), _make("mul", b, b))),
}
assert not set(_UFUNC_FORMS) & set(_NUMPY_UFUNCS), "a ufunc traced twice"


# --- public math functions: symbolic on expressions, numeric on numbers and arrays ------


def _apply(op: str, *args: Any) -> Any:
    if any(isinstance(a, Expr) for a in args):
        return _make(op, *args)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):  # inf and NaN, as traced
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
sinh = _function("sinh", "Hyperbolic sine.")
cosh = _function("cosh", "Hyperbolic cosine.")
arcsin = _function("arcsin", "Inverse sine (Wolfram's ArcSin).")
arccos = _function("arccos", "Inverse cosine (Wolfram's ArcCos).")
arcsinh = _function("arcsinh", "Inverse hyperbolic sine (Wolfram's ArcSinh).")
arccosh = _function("arccosh", "Inverse hyperbolic cosine (Wolfram's ArcCosh).")
arctanh = _function("arctanh", "Inverse hyperbolic tangent (Wolfram's ArcTanh).")
cube_root = _function("cube_root", "The real cube root, negative for negative x (Wolfram's CubeRoot).")
gamma = _function("gamma", "Euler's gamma function (Wolfram's Gamma).")
log_gamma = _function(
    "log_gamma", "log|Γ(x)| (Wolfram's LogGamma; for x < 0, where Γ(x) < 0, the real part of Wolfram's complex value)."
)
erf = _function("erf", "Error function (Wolfram's Erf).")
erfc = _function("erfc", "Complementary error function 1 - erf(x), accurate in the tail (Wolfram's Erfc).")
log2 = _function("log2", "Base-2 logarithm (Wolfram's Log2).")
log10 = _function("log10", "Base-10 logarithm (Wolfram's Log10).")
integer_part = _function("integer_part", "x with its fractional part dropped, towards 0 (Wolfram's IntegerPart).")
fractional_part = _function("fractional_part", "x - integer_part(x), of x's sign (Wolfram's FractionalPart).")
unitize = _function("unitize", "0 where x is 0, 1 elsewhere (Wolfram's Unitize).")
kronecker_delta = _function("kronecker_delta", "1 where x is 0, 0 elsewhere (Wolfram's KroneckerDelta[x]).")
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


def clip(x: Any, low: float = -1.0, high: float = 1.0) -> Any:
    """Wolfram's Clip[x, {low, high}] (Clip[x] is Clip[x, {-1, 1}]).

    Example:
        >>> from netgraph.symbolic import clip, trace
        >>> print(trace(lambda x: clip(2 * x, 0, 6)))
        Clip[2*#, {0, 6}]&
    """
    return minimum(maximum(x, low), high)


def arctan(x: Any, y: Any = None) -> Any:
    """Wolfram's ArcTan[x] or, with two arguments, ArcTan[x, y]: the angle of the point (x, y).

    NOTE: Wolfram's order, which is the reverse of NumPy's: ``arctan(x, y)`` is ``numpy.arctan2(y, x)``.

    Example:
        >>> from netgraph.symbolic import arctan, trace
        >>> print(trace(lambda x, y: arctan(x, y)))
        ArcTan[#1, #2]&
        >>> round(float(arctan(-1.0, 0.0)), 6)
        3.141593
    """
    return _apply("arctan", x) if y is None else _apply("arctan2", x, y)


def surd(x: Any, n: Any) -> Any:
    """Wolfram's Surd[x, n]: the real n-th root of x, negative for negative x when n is odd.

    ``n`` is a non-zero integer (or, in a ThreadingLayer function, an input); for even ``n``
    a negative x has no real root and gives NaN.

    Example:
        >>> from netgraph.symbolic import surd, trace
        >>> print(trace(lambda x: surd(x, 3)))
        Surd[#, 3]&
        >>> float(surd(-8.0, 3))
        -2.0
    """
    if isinstance(n, numbers.Real) and (not float(n).is_integer() or n == 0):
        raise (TracingError if isinstance(x, Expr) else ValueError)(f"Surd[x, n] needs a non-zero integer n, not {n!r}")
    return _apply("surd", x, n)


def polygamma(n: int, x: Any) -> Any:
    """Wolfram's PolyGamma[n, x]: the n-th derivative of the digamma function Γ'(x)/Γ(x).

    ``n`` is an integer from 0 to :data:`MAX_POLYGAMMA_ORDER`; NaN at the poles 0, -1, -2, ...

    Example:
        >>> from netgraph.symbolic import gamma, polygamma, trace
        >>> print(trace(lambda x: gamma(x)).derivative(0))
        Gamma[#]*PolyGamma[0, #]&
        >>> round(float(polygamma(1, 1.0)), 12) == round(math.pi**2 / 6, 12)
        True
    """
    integral = isinstance(n, numbers.Real) and not isinstance(n, bool) and float(n).is_integer()
    if not integral or not 0 <= n <= MAX_POLYGAMMA_ORDER:
        given = "an input of the function" if isinstance(n, Expr) else repr(n)
        raise (TracingError if isinstance(x, Expr) or isinstance(n, Expr) else ValueError)(
            f"PolyGamma[n, x] needs an integer order n from 0 to {MAX_POLYGAMMA_ORDER} given as a number, not {given}"
        )
    return _apply("polygamma", float(n), x)


def mod(m: Any, n: Any, d: Any = 0.0) -> Any:
    """Wolfram's Mod[m, n] (Python's ``m % n``: the sign of ``n``), or Mod[m, n, d] = m - n Floor[(m - d)/n].

    Example:
        >>> from netgraph.symbolic import mod, trace
        >>> print(trace(lambda x: x % 3))
        Mod[#, 3]&
        >>> float(mod(-7.0, 3.0)), float(mod(7.0, 3.0, 1.0))
        (2.0, 1.0)
    """
    if isinstance(d, numbers.Real) and d == 0:
        return _apply("mod", m, n)
    return _apply("mod", m - d, n) + d


def _round(x: Any, digits: int = 0) -> Any:
    """Wolfram's Round: halves go to the even neighbour (Python's ``round``, NumPy's ``rint``)."""
    if digits == 0:
        return _apply("round", x)
    scale = 10.0**digits
    return _apply("round", x * scale) / scale


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


def _clip_bounds(node: Expr) -> str | None:
    """ "low, high" when ``node`` is Min[Max[x, low], high] with constants low <= high (what clip() builds)."""
    if node.op != "minimum" or node.args[0].op != "maximum" or not _is_const(node.args[1]):
        return None
    low, high = node.args[0].args[1], node.args[1]
    if not _is_const(low) or not _value(low) <= _value(high):
        return None
    return f"{_format_number(_value(low))}, {_format_number(_value(high))}"


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
        clipped = _clip_bounds(node)
        if clipped is not None:  # Min[Max[x, low], high] is Clip[x, {low, high}]
            text[id(node)] = (f"Clip[{text[id(node.args[0].args[0])][0]}, {{{clipped}}}]", 100)
            continue
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


def _call(op: Op, args: Sequence[str], form: str) -> str:
    """``op`` applied to ``args`` (variables or literals) in kernel code, from its ``form`` ("cuda" or "scalar")."""
    text = getattr(op, form)
    if not text:
        raise ValueError(f"the operation {op.name} has no {form} form")
    return text.format(*args) if "{" in text else f"{text}({', '.join(args)})"


def _number(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"a kernel cannot hold the constant {value}")
    return f"T({int(value)})" if value == int(value) and abs(value) < 1e15 else f"T({value!r})"


def backward_roots(function: Function, needs: Sequence[bool]) -> list[Expr]:
    """``g * ∂f/∂x_i`` for each needed input, ``g`` being variable number ``function.arity``: what a
    fused backward kernel computes (CuPy's or the compiled CPU one).

    NOTE: built without simplification, as the shared path computes it (``g * partial``): a
    derivative 0 still gives NaN where g is infinite, as it does there.

    Example:
        >>> (root,) = backward_roots(trace(lambda x: 3 * x), [True])
        >>> root.op, root.args[0].args  # g, variable 1, times the derivative
        ('mul', (1,))
    """
    g = var(function.arity)
    return [Expr("mul", (g, differentiate(function.expr, i))) for i, need in enumerate(needs) if need]


def kernel_code(roots: Sequence[Expr], arity: int, form: str = "cuda") -> tuple[list[tuple[str, str]], list[str]]:
    """Assignments ``(name, expression)`` computing every root, equal subexpressions once.

    Inputs are ``x0 … x{arity-1}``; each operation is written in its ``form``: "cuda" for the
    fused CuPy kernels (in the subset of C++ and Python both read), "scalar" for the compiled
    CPU kernels. Constants are cast to the element type, ``T(2)``. Returns the lines and, per
    root, the name (or literal) holding its value. Raises ValueError for an operation without
    that form, or a constant that is not finite.

    Example:
        >>> f = trace(lambda x: 0.5 * x * (1 + tanh(x)))
        >>> kernel_code([f.expr], 1, "scalar")
        ([('v1', '(T(0.5) * x0)'), ('v2', 'math.tanh(x0)'), ('v3', '(T(1) + v2)'), ('v4', '(v1 * v3)')], ['v4'])
    """
    lines: list[tuple[str, str]] = []
    names: dict[int, str] = {}
    seen: dict[str, str] = {}  # expression text -> the variable that holds it
    for root in roots:
        for node in postorder(root):
            if id(node) in names:
                continue
            if node.op == "var":
                names[id(node)] = f"x{node.args[0]}"
            elif node.op == "const":
                names[id(node)] = _number(float(node.args[0]))
            else:
                text = _call(OPS[node.op], [names[id(a)] for a in node.args], form)
                if text not in seen:
                    seen[text] = f"v{len(lines) + 1}"
                    lines.append((seen[text], text))
                names[id(node)] = seen[text]
    return lines, [names[id(root)] for root in roots]


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
            try:
                _check_orders(op, built.args)
            except TracingError as err:
                raise bad(str(err)) from None
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
        #: compiled kernels for this function, by key (kept by netgraph.compiled.elementwise)
        self.kernels: dict[tuple, Any] = {}

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


def operation_function(name: str) -> Function:
    """The operation ``name`` of :data:`OPS` alone, as a function of its arguments (an order, 1).

    Example:
        >>> print(operation_function("polygamma"), operation_function("mod"))
        PolyGamma[1, #]& Mod[#1, #2]&
    """
    op, args, arity = OPS[name], [], 0
    for i in range(op.n_args):
        args.append(const(1.0) if i in op.orders else var(arity))
        arity += i not in op.orders
    return Function(Expr(name, tuple(args)), arity)


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
