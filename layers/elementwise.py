"""ElementwiseLayer, ThreadingLayer and SoftmaxLayer.

ElementwiseLayer and ThreadingLayer keep a traced symbolic function
(:mod:`netgraph.symbolic`), evaluated as one fused primitive.

Example:
    >>> import numpy as np
    >>> from netgraph import exp
    >>> from layers import ElementwiseLayer, ThreadingLayer
    >>> layer = ElementwiseLayer(lambda x: -exp(2 * x))
    >>> layer
    ElementwiseLayer(-Exp[2*#]&)
    >>> ElementwiseLayer("Ramp")(np.array([-1.0, 0, 2])).tolist()
    [0.0, 0.0, 2.0]
    >>> ThreadingLayer(lambda a, b: a * b)([np.array([1.0, 2]), np.array([3.0, 4])]).tolist()
    [3.0, 8.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from netgraph import ops
from netgraph import symbolic as sym
from netgraph.epilogue import Activation, activation_of
from netgraph.fused import apply_function
from netgraph.layer import Context, Layer, NetError, ShapeError, UnaryLayer, check_limit, format_shape
from netgraph.ports import Automatic

from .array import input_ports_config, parse_input_ports


def _selu(x):
    return 1.0507009873554805 * sym.where(x >= 0, x, 1.6732632423543772 * sym.expm1(sym.minimum(x, 0.0)))


def _elu(x):
    return sym.where(x >= 0, x, sym.expm1(sym.minimum(x, 0.0)))


def _gelu(x):
    return 0.5 * x * (1.0 + sym.erf(x / math.sqrt(2.0)))


# The names of ElementwiseLayer's reference page (the long ones and their short forms), then the
# Wolfram functions it lists, by their Wolfram names.
ACTIVATIONS: dict[str, Callable] = {
    "Ramp": sym.ramp,
    "ReLU": sym.ramp,
    "RectifiedLinearUnit": sym.ramp,
    "LogisticSigmoid": sym.logistic_sigmoid,
    "Sigmoid": sym.logistic_sigmoid,
    "Tanh": sym.tanh,
    "SELU": _selu,
    "ScaledExponentialLinearUnit": _selu,
    "ELU": _elu,
    "ExponentialLinearUnit": _elu,
    "GELU": _gelu,
    "GaussianErrorLinearUnit": _gelu,
    "HardSwish": lambda x: x * sym.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "Softplus": sym.softplus,
    "SoftPlus": sym.softplus,
    "Swish": lambda x: x * sym.logistic_sigmoid(x),
    "Mish": lambda x: x * sym.tanh(sym.softplus(x)),
    "SoftSign": lambda x: x / (1.0 + abs(x)),
    "HardTanh": lambda x: sym.clip(x, -1.0, 1.0),
    "HardSigmoid": lambda x: sym.clip((x + 1.0) / 2.0, 0.0, 1.0),
    "LeakyRamp": lambda x: sym.leaky_ramp(x, 0.01),
    "Exp": sym.exp,
    "Log": sym.log,
    "Sqrt": sym.sqrt,
    "Abs": abs,
    "Sin": sym.sin,
    "Cos": sym.cos,
    "Tan": sym.tan,
    "ArcTan": sym.arctan,
    "Erf": sym.erf,
    "Sinh": sym.sinh,
    "Cosh": sym.cosh,
    "ArcSin": sym.arcsin,
    "ArcCos": sym.arccos,
    "ArcSinh": sym.arcsinh,
    "ArcCosh": sym.arccosh,
    "ArcTanh": sym.arctanh,
    "CubeRoot": sym.cube_root,
    "Gamma": sym.gamma,
    "LogGamma": sym.log_gamma,
    "Erfc": sym.erfc,
    "Round": round,
    "Floor": sym.floor,
    "Ceiling": sym.ceiling,
    "Sign": sym.sign,
    "IntegerPart": sym.integer_part,
    "FractionalPart": sym.fractional_part,
    "Unitize": sym.unitize,
    "KroneckerDelta": sym.kronecker_delta,
}

# Wolfram's operators for ThreadingLayer, as functions of any number of arguments
THREADING: dict[str, Callable] = {
    "Plus": lambda *a: _fold(lambda x, y: x + y, a),
    "Times": lambda *a: _fold(lambda x, y: x * y, a),
    "Max": lambda *a: _fold(sym.maximum, a),
    "Min": lambda *a: _fold(sym.minimum, a),
    "Subtract": lambda a, b: a - b,
    "Divide": lambda a, b: a / b,
    "Power": lambda a, b: a**b,
}


def _fold(fn: Callable, args: tuple) -> Any:
    result = args[0]
    for a in args[1:]:
        result = fn(result, a)
    return result


def _trace_unary(f: Any) -> tuple[sym.Function, str | None]:
    if isinstance(f, str):
        if f.startswith("LeakyRamp[") or f not in ACTIVATIONS:
            raise NetError(f"ElementwiseLayer: unknown activation {f!r}; known names are {sorted(ACTIVATIONS)}")
        return sym.trace(ACTIVATIONS[f], 1), f
    if isinstance(f, tuple) and len(f) == 2 and f[0] == "LeakyRamp":
        slope = float(f[1])
        return sym.trace(lambda x: sym.leaky_ramp(x, slope), 1), None
    function = f if isinstance(f, sym.Function) else sym.trace(f)
    if function.arity != 1:
        raise NetError(f"ElementwiseLayer needs a function of one argument; {function} takes {function.arity}")
    return function, None


class ElementwiseLayer(UnaryLayer):
    """Applies a function to every element.

    ``f`` is a Python function of one argument built from arithmetic and
    netgraph's math functions (``lambda x: -0.5 * x``), a named activation
    ("Ramp" or "RectifiedLinearUnit", "LogisticSigmoid", "Tanh", "SELU" or
    "ScaledExponentialLinearUnit", "ELU" or "ExponentialLinearUnit", "GELU" or
    "GaussianErrorLinearUnit", "HardSwish", "Softplus", "LeakyRamp", ...), a Wolfram
    function by name ("Exp", "Sinh", "ArcCos", "Gamma", "Round", ...: see
    :data:`ACTIVATIONS`), or ``("LeakyRamp", slope)``.

    Round, Floor, Ceiling, Sign, IntegerPart, Unitize and KroneckerDelta are piecewise
    constant: their derivative is 0 (also at their jumps), as in Wolfram's nets, so
    no gradient flows back through them.
    """

    def __init__(self, f: Any, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.function, self.label = _trace_unary(f)
        self._finish_init()

    def input_shape(self, output_shape):
        return output_shape

    def apply(self, x, ctx: Context):
        return apply_function(x, function=self.function)

    def epilogue(self) -> Activation | None:
        """What a convolution, deconvolution or linear layer before this one may apply in its own output
        pass (a fused step of a graph's plan): Ramp, LeakyRamp or a bias-only function; else None."""
        return activation_of(self.function)

    def config(self) -> dict[str, Any]:
        return {"f": self.label or self.function}

    def __str__(self) -> str:
        return self.label or str(self.function)


class ThreadingLayer(Layer):
    """Applies a function of several arguments elementwise, broadcasting its inputs.

    ``f`` is a Python function (``lambda a, b: a * b``) or one of "Plus",
    "Times", "Max", "Min" (any number of inputs, taken from the wiring),
    "Subtract", "Divide", "Power". Inputs are "Input1", "Input2", ..., unless
    ``input_ports`` (Wolfram's ``InputPorts``) gives their count, names or shapes.

    ``broadcasting`` is Wolfram's second argument:

    * ``Automatic`` (the default): inputs of one rank; an axis of size 1 stretches;
    * ``None``: the inputs have one shape;
    * ``n`` or ``-n``: an input of lower rank gets the levels it lacks inserted at its
      level n (``-1``: after its last level, as Wolfram's ``Plus`` threads a vector over
      the rows of a matrix; ``1``: in front, as NumPy does), each of the size the inputs
      of highest rank give; an axis of size 1 still stretches;
    * a list of these, one for each input.
    """

    def __init__(
        self,
        f: Any,
        broadcasting: Any = Automatic,
        *,
        inputs: int | None = None,
        input_ports: Any = None,
        output: Any = None,
    ) -> None:
        super().__init__(output=output)
        self.spec = f
        self.broadcasting = self._check_broadcasting(broadcasting)
        names: tuple[str, ...] | None = None
        shapes: dict = {}
        if input_ports is not None:
            if inputs is not None:
                raise NetError("ThreadingLayer: give inputs= or input_ports=, not both")
            names, shapes = parse_input_ports(input_ports, "ThreadingLayer")
            inputs = len(names)
        if isinstance(f, str):
            if f not in THREADING:
                raise NetError(f"ThreadingLayer: unknown operator {f!r}; known are {sorted(THREADING)}")
            self.variadic = f in ("Plus", "Times", "Max", "Min") and names is None
            listed = len(self.broadcasting) if isinstance(self.broadcasting, list) else 2
            arity = inputs or (listed if f in ("Plus", "Times", "Max", "Min") else sym._arity(THREADING[f]))
            check_limit("Inputs", arity, f"ThreadingLayer[{f}] inputs")
            self.function = sym.trace(THREADING[f], arity)
        else:
            self.variadic = False
            self.function = f if isinstance(f, sym.Function) else sym.trace(f)
        if names is not None and len(names) != self.function.arity:
            raise NetError(
                f"ThreadingLayer: input_ports gives {len(names)} inputs {list(names)}; "
                f"{self} takes {self.function.arity}"
            )
        self.input_ports = names or tuple(f"Input{i + 1}" for i in range(self.function.arity))
        self._finish_init()
        self.refine(shapes)

    @staticmethod
    def _check_broadcasting(spec: Any) -> Any:
        def valid(s: Any) -> bool:
            return s is None or s is Automatic or (isinstance(s, int) and not isinstance(s, bool) and s != 0)

        if valid(spec):
            return spec
        if isinstance(spec, (list, tuple)) and spec and all(valid(s) for s in spec):
            return list(spec)
        raise NetError(
            f"ThreadingLayer: broadcasting must be Automatic, None, a nonzero level n (levels inserted at n) "
            f"or a list of these, one for each input; got {spec!r:.60}"
        )

    def _specs(self) -> list[Any]:
        """The broadcasting setting of each input."""
        if not isinstance(self.broadcasting, list):
            return [self.broadcasting] * len(self.input_ports)
        if len(self.broadcasting) != len(self.input_ports):
            raise NetError(
                f"{self.describe()}: broadcasting gives {len(self.broadcasting)} settings for "
                f"{len(self.input_ports)} inputs {list(self.input_ports)}"
            )
        return self.broadcasting

    def set_input_count(self, n: int) -> None:
        if not self.variadic:
            if n != self.function.arity:
                raise NetError(f"{self.describe()} takes {self.function.arity} inputs, wired to {n}")
            return
        check_limit("Inputs", n, f"{self.describe()} inputs")
        self.function = sym.trace(THREADING[self.spec], n)
        self.input_ports = tuple(f"Input{i + 1}" for i in range(n))
        self._finish_init()

    def _layout(self, ins: list[tuple[int, ...]]) -> tuple[list[tuple[int, ...]], tuple[int, ...]]:
        """Each input's shape with the levels it lacks inserted as 1s, and the output shape."""
        specs, high = self._specs(), max(len(s) for s in ins)
        shown = [format_shape(s) for s in ins]
        lifted: list[list[int | None]] = []
        for s, spec in zip(ins, specs):
            missing = high - len(s)
            if missing and not isinstance(spec, int):
                raise ShapeError(
                    f"{self.describe()}: inputs of different ranks {shown} cannot be threaded with broadcasting "
                    f"{spec!r}; ThreadingLayer(f, n) inserts the levels a lower-rank input lacks at its level n "
                    "(-1: after its last level, as Wolfram's Plus; 1: in front, as NumPy)"
                )
            at = 0 if not missing else spec - 1 if spec > 0 else len(s) + spec + 1
            if not 0 <= at <= len(s):
                raise ShapeError(
                    f"{self.describe()}: level {spec} does not exist in an input of shape {format_shape(s)}"
                )
            lifted.append([*s[:at], *[None] * missing, *s[at:]])
        out = []
        for j in range(high):
            sizes = {e[j] for e, spec in zip(lifted, specs) if e[j] is not None and (spec is None or e[j] != 1)}
            if len(sizes) > 1:
                raise ShapeError(
                    f"{self.describe()}: input shapes {shown} do not broadcast: level {j + 1} has sizes "
                    f"{sorted(sizes)}" + (" (broadcasting None: the shapes must be equal)" if None in specs else "")
                )
            out.append(sizes.pop() if sizes else 1)
        for e, spec in zip(lifted, specs):
            if spec is None and any(d is not None and d != n for d, n in zip(e, out)):
                raise ShapeError(f"{self.describe()}: input shapes {shown} differ (broadcasting None: no replication)")
        return [tuple(1 if d is None else d for d in e) for e in lifted], tuple(out)

    def shape_rule(self, shapes):
        ins = [shapes[p] for p in self.input_ports]
        if all(spec is None for spec in self._specs()):
            known = next((s for s in ins + [shapes["Output"]] if s is not None), None)
            return {p: known for p in shapes} if known is not None else {}
        if any(s is None for s in ins):
            return {}
        return {"Output": self._layout(ins)[1]}

    def forward(self, inputs, ctx):
        values = [inputs[p] for p in self.input_ports]
        lifted, _ = self._layout([tuple(v.shape[1:]) for v in values])
        values = [v if v.ndim - 1 == len(s) else ops.reshape(v, (v.shape[0], *s)) for v, s in zip(values, lifted)]
        return {"Output": apply_function(*values, function=self.function)}

    def config(self) -> dict[str, Any]:
        f = self.spec if isinstance(self.spec, str) else self.function
        return {"f": f, "broadcasting": self.broadcasting, **input_ports_config(self)}

    def __str__(self) -> str:
        f = self.spec if isinstance(self.spec, str) else str(self.function)
        if self.broadcasting is Automatic:
            return f
        specs = self.broadcasting if isinstance(self.broadcasting, list) else [self.broadcasting]
        shown = ", ".join(repr(s) for s in specs)
        return f"{f}, {{{shown}}}" if isinstance(self.broadcasting, list) else f"{f}, {shown}"


def broadcast_shapes(shapes: list, where: str) -> tuple[int, ...]:
    """Wolfram-style broadcasting: equal ranks, an axis of size 1 stretches."""
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ShapeError(f"{where}: inputs of different ranks {[format_shape(s) for s in shapes]} cannot be threaded")
    out = []
    for dims in zip(*shapes):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ShapeError(f"{where}: input shapes {[format_shape(s) for s in shapes]} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class SoftmaxLayer(UnaryLayer):
    """Normalised exponential over the last level (or ``level``, 1-based or negative)."""

    def __init__(self, level: int = -1, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.level = level
        self._finish_init()

    def input_shape(self, output_shape):
        return output_shape

    def apply(self, x, ctx: Context):
        return ops.softmax(x, axis=self.level)  # level k of an example is axis k of the batch

    def config(self) -> dict[str, Any]:
        return {"level": self.level}


__all__ = ["ACTIVATIONS", "ElementwiseLayer", "SoftmaxLayer", "ThreadingLayer", "broadcast_shapes"]
