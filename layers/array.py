"""Layers that combine, reduce and rearrange arrays.

TotalLayer, SummationLayer, AggregationLayer, CatenateLayer, FlattenLayer,
ReshapeLayer, PartLayer, TransposeLayer, ReplicateLayer. Levels are counted
as in the Wolfram Language: level 1 is the first axis of an example (the
channel axis of an image), negative levels count from the end.

The layers with several inputs (TotalLayer, CatenateLayer, and ThreadingLayer in
:mod:`layers.elementwise`) take as many inputs as they are wired to ("Input1",
"Input2", ...), unless Wolfram's ``InputPorts`` option fixes them: ``input_ports=3``
(a count), ``input_ports=["a", "b"]`` (names), ``input_ports=[(2, 3), 3]`` (shapes)
or ``input_ports={"a": (2, 3), "b": 3}`` (names and shapes).

Example:
    >>> import numpy as np
    >>> from layers import TotalLayer, PartLayer, TransposeLayer
    >>> TotalLayer()([np.array([1.0, 2, 3]), np.array([4.0, 5, 6])]).tolist()
    [5.0, 7.0, 9.0]
    >>> float(PartLayer(-2)(np.array([1.0, 2, 3, 4, 5, 6])))
    5.0
    >>> TransposeLayer([(1, 3), (2, 4)], input=(3, 4, 5, 6)).port_shapes["Output"]
    (5, 6, 3, 4)
    >>> CatenateLayer(input_ports=[(2, 2), 3])([np.array([[1.0, 2], [3, 4]]), np.array([5.0, 6, 7])]).tolist()
    [[1.0, 2.0, 5.0, 6.0, 7.0], [3.0, 4.0, 5.0, 6.0, 7.0]]
    >>> ReshapeLayer((Inherited, Automatic), input=(2, 3, 4)).port_shapes["Output"]
    (2, 12)
    >>> FlattenLayer([[2, 3]], input=(2, 3, 4)).port_shapes["Output"]
    (12, 2)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netgraph import ops
from netgraph.autograd import primitive
from netgraph.backend import array_module
from netgraph.layer import Layer, NetError, Shape, ShapeError, UnaryLayer, as_shape, check_limit, format_shape, is_whole
from netgraph.ports import All, Automatic, Inherited


def parse_input_ports(spec: Any, where: str) -> tuple[tuple[str, ...], dict[str, Shape | None]]:
    """Wolfram's ``InputPorts`` option: the port names and the shapes it fixes.

    ``spec`` is a count (ports "Input1", "Input2", ...), a list of names, a list of
    shapes (an int, a tuple of ints or "Real" each), or a dict from names to shapes.
    """
    if is_whole(spec):
        if spec < 1:
            raise NetError(f"{where}: input_ports={spec!r}; give a count of at least 1, a list of names or of shapes")
        check_limit("Inputs", int(spec), f"{where} inputs")
        return tuple(f"Input{i + 1}" for i in range(int(spec))), {}
    if isinstance(spec, dict):
        names, shapes = tuple(spec), dict(spec)
    elif isinstance(spec, (list, tuple)) and spec and all(isinstance(p, str) for p in spec):
        names, shapes = tuple(spec), {}
    elif isinstance(spec, (list, tuple)) and spec:
        names = tuple(f"Input{i + 1}" for i in range(len(spec)))
        shapes = dict(zip(names, spec))
    else:
        raise NetError(
            f"{where}: input_ports={spec!r:.60}; give a count (3), a list of names (['a', 'b']), a list of "
            "shapes ([(2, 3), 3]) or a dict of names to shapes ({'a': (2, 3), 'b': 3})"
        )
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise NetError(f"{where}: input_ports names must be distinct non-empty strings, got {list(names)!r:.80}")
    if "Output" in names:
        raise NetError(f"{where}: an input port cannot be named 'Output', the name of the output port")
    check_limit("Inputs", len(names), f"{where} inputs")
    return names, {n: as_shape(s, f"{where} input port {n!r}") for n, s in shapes.items() if s is not None}


def input_ports_config(layer: Layer) -> dict[str, Any]:
    """The configuration that rebuilds ``layer``'s input ports: a count while the wiring decides
    (``inputs``), else what ``input_ports`` fixed (a count, or the names when they are not the default)."""
    ports = layer.input_ports
    if getattr(layer, "variadic", False):
        return {"inputs": len(ports)}
    default = tuple(f"Input{i + 1}" for i in range(len(ports)))
    return {"input_ports": len(ports) if ports == default else list(ports)}


class _Variadic(Layer):
    """A layer whose number of inputs ("Input1", "Input2", ...) comes from the wiring,
    unless ``input_ports`` fixes the inputs (their count, names or shapes)."""

    variadic = True

    def __init__(self, inputs: int | None, input_ports: Any, output: Any) -> None:
        super().__init__(output=output)
        if input_ports is None:
            self.set_input_count(inputs or 2)
            return
        if inputs is not None:
            raise NetError(f"{self.describe()}: give inputs= or input_ports=, not both")
        names, shapes = parse_input_ports(input_ports, self.describe())
        self.variadic = False
        self.input_ports = names
        self._finish_init()
        self.refine(shapes)

    def set_input_count(self, n: int) -> None:
        if not self.variadic:
            if n != len(self.input_ports):
                raise NetError(
                    f"{self.describe()} has the input ports {list(self.input_ports)} (input_ports), wired to {n} inputs"
                )
            return
        check_limit("Inputs", n, f"{self.describe()} inputs")
        self.input_ports = tuple(f"Input{i + 1}" for i in range(n))
        self._finish_init()


class TotalLayer(_Variadic):
    """Elementwise sum of its inputs, which all have one shape."""

    def __init__(self, *, inputs: int | None = None, input_ports: Any = None, output: Any = None) -> None:
        super().__init__(inputs, input_ports, output)

    def shape_rule(self, shapes):
        known = next((s for s in shapes.values() if s is not None), None)
        return {p: known for p in shapes} if known is not None else {}

    def config(self):
        return input_ports_config(self)

    def forward(self, inputs, ctx):
        values = [inputs[p] for p in self.input_ports]
        total = values[0]
        for v in values[1:]:
            total = total + v
        return {"Output": total}


class CatenateLayer(_Variadic):
    """Joins its inputs along ``level`` (1 = first axis of an example).

    As in the Wolfram Language, inputs of lower rank are replicated up to the rank of the
    highest: ``level`` counts from the first dimension of the input of lowest rank, the
    dimensions of a lower-rank input (but the catenated one) must be the last dimensions of
    the others, and it is repeated along the leading ones it lacks. A 2×2 matrix and a vector
    of 3 catenate to a 2×5 matrix, each row ending with the vector.
    """

    def __init__(
        self, level: int = 1, *, inputs: int | None = None, input_ports: Any = None, output: Any = None
    ) -> None:
        if not is_whole(level) or level == 0:
            raise NetError(f"CatenateLayer: the level must be a nonzero integer (1 = first level), got {level!r}")
        self.level = int(level)
        super().__init__(inputs, input_ports, output)

    def _layout(self, ins: list[Shape]) -> tuple[int, Shape]:
        """The catenation axis of the output and the output shape, for the input shapes ``ins``."""
        low, high = min(len(s) for s in ins), max(len(s) for s in ins)
        if not (1 <= self.level <= low or -low <= self.level <= -1):
            raise ShapeError(
                f"{self.describe()}: level {self.level} does not exist for inputs {[format_shape(s) for s in ins]} "
                f"(the level counts in the input of lowest rank, {low})"
            )
        axis = high - low + self.level - 1 if self.level > 0 else high + self.level
        out = list(next(s for s in ins if len(s) == high))
        for s in ins:
            lead = high - len(s)
            if any(s[j - lead] != out[j] for j in range(lead, high) if j != axis):
                raise ShapeError(
                    f"{self.describe()}: inputs {[format_shape(s) for s in ins]} differ outside level {self.level}"
                    + (
                        "; the dimensions of an input of lower rank, but the catenated one, must be the last "
                        "dimensions of the others"
                        if low < high
                        else ""
                    )
                )
        out[axis] = sum(s[axis - high + len(s)] for s in ins)
        return axis, tuple(out)

    def shape_rule(self, shapes):
        ins = [shapes[p] for p in self.input_ports]
        if any(s is None for s in ins):
            return {}
        if any(len(s) == 0 for s in ins):
            raise ShapeError(f"{self.describe()}: scalar inputs cannot be catenated; give vectors of length 1")
        return {"Output": self._layout(ins)[1]}

    def forward(self, inputs, ctx):
        values = [inputs[p] for p in self.input_ports]
        axis, out = self._layout([tuple(v.shape[1:]) for v in values])
        high = len(out)
        lifted = []
        for v in values:
            batch, shape = v.shape[0], tuple(v.shape[1:])
            lead = high - len(shape)
            if lead:  # a lower-rank input, repeated along the leading dimensions it lacks
                v = ops.broadcast_to(ops.reshape(v, (batch,) + (1,) * lead + shape), (batch,) + out[:lead] + shape)
            lifted.append(v)
        return {"Output": ops.concatenate(*lifted, axis=1 + axis)}

    def config(self):
        return {"level": self.level, **input_ports_config(self)}


def _levels(spec: Any, rank: int, default_from: int = 2) -> tuple[int, ...]:
    """1-based levels -> 0-based example axes. None means default_from;;All."""
    if spec is None:
        return tuple(range(default_from - 1, rank))
    if spec is All:
        return tuple(range(rank))
    if isinstance(spec, slice):  # Wolfram span i;;j (1-based, inclusive)
        start = (spec.start or 1) - 1
        stop = rank if spec.stop is None or spec.stop is All else spec.stop
        return tuple(range(start, stop))
    items = [spec] if isinstance(spec, int) else list(spec)
    axes = tuple(sorted((i - 1) if i > 0 else rank + i for i in items))
    if any(not 0 <= a < rank for a in axes):
        raise ShapeError(f"levels {spec!r} do not exist for rank-{rank} inputs")
    return axes


class SummationLayer(UnaryLayer):
    """Sum of all elements of each example: a scalar."""

    def output_shape(self, input_shape):
        return ()

    def __init__(self, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self._finish_init()

    def apply(self, x, ctx):
        return ops.sum(x, axis=tuple(range(1, x.ndim)))


@primitive
def _product(x, axis: tuple[int, ...]):
    """The product over ``axis``; its gradient (the product of the other factors) holds at zeros too."""
    xp = array_module(x)
    kept = [a for a in range(x.ndim) if a not in axis]
    moved = x.transpose(kept + list(axis))
    flat = moved.reshape(moved.shape[: len(kept)] + (-1,))
    out = flat.prod(axis=-1)

    def vjp(g, needs):
        ones = xp.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
        before = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
        after = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(flat, axis=-1)[..., :-1]], axis=-1), axis=-1), -1)
        grad = (before * after * g[..., None]).reshape(moved.shape)
        return (grad.transpose(tuple(int(i) for i in np.argsort(kept + list(axis)))),)

    return out, vjp


class AggregationLayer(UnaryLayer):
    """Reduces ``levels`` of each example with ``f`` ("Mean", "Max", "Min", "Total", "Times").

    ``levels`` is None (2;;All, i.e. every level but the first), ``All``, a
    level, a list of levels, or ``slice(i, j)`` for the span i;;j. "Times" is the
    product of the elements, with a gradient that holds where some of them are 0.
    """

    FUNCTIONS = {
        "Mean": ops.mean,
        "Max": ops.max,
        "Min": ops.min,
        "Total": ops.sum,
        "Sum": ops.sum,
        "Times": lambda x, axis: _product(x, axis=axis),
    }

    def __init__(self, f: str = "Mean", levels: Any = None, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        if f not in self.FUNCTIONS:
            raise NetError(f"AggregationLayer: function must be one of {sorted(self.FUNCTIONS)}, got {f!r}")
        self.function = f
        self.levels = levels
        self._finish_init()

    def output_shape(self, input_shape):
        axes = _levels(self.levels, len(input_shape))
        return tuple(n for i, n in enumerate(input_shape) if i not in axes)

    def apply(self, x, ctx):
        axes = tuple(a + 1 for a in _levels(self.levels, x.ndim - 1))
        return self.FUNCTIONS[self.function](x, axis=axes)

    def config(self):
        return {"f": self.function, "levels": self.levels}


def _flatten_spec(n: Any) -> int | tuple[tuple[int, ...], ...] | None:
    """FlattenLayer's argument: None for Infinity, an int, or level groups (tuples of 1-based levels)."""
    if n is None or (isinstance(n, (float, np.floating)) and n == math.inf):
        return None
    if is_whole(n):
        return int(n)
    if isinstance(n, (list, tuple)) and n:
        groups = [g if isinstance(g, (list, tuple)) else [g] for g in n]
        levels = [k for g in groups for k in g]
        if all(g for g in groups) and all(is_whole(k) and k >= 1 for k in levels):
            if len(set(levels)) != len(levels):
                raise NetError(f"FlattenLayer: a level appears twice in {n!r}")
            return tuple(tuple(int(k) for k in g) for g in groups)
    raise NetError(
        f"FlattenLayer: expected Infinity (math.inf or nothing), an integer n, or groups of levels such as "
        f"[[2, 3], [1]], got {n!r:.60}"
    )


class FlattenLayer(UnaryLayer):
    """``FlattenLayer()`` (or ``FlattenLayer(math.inf)``) makes each example a vector;
    ``FlattenLayer(n)`` merges the first n+1 levels, ``FlattenLayer(-n)`` the last n+1.

    ``FlattenLayer([[s11, s12, ...], [s21, ...], ...])`` merges levels s11, s12, ... into
    level 1 of the result, s21, ... into level 2, and so on, as Wolfram's
    ``Flatten[list, {{s11, s12, ...}, ...}]``; the levels left out follow in their order
    (``[[2, 3]]`` turns a 2×3×4 input into 12×2). A bare level stands for a group of one.
    """

    def __init__(self, n: Any = None, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.n = _flatten_spec(n)
        self._finish_init()

    def _groups(self, rank: int) -> list[tuple[int, ...]]:
        """The 0-based input levels merged into each level of the output."""
        if self.n is None:
            return [tuple(range(rank))]
        if isinstance(self.n, int):
            k = abs(self.n) + 1
            if rank < k:
                raise ShapeError(
                    f"{self.describe()}: FlattenLayer({self.n}) needs rank > {abs(self.n)}, got rank {rank}"
                )
            if self.n >= 0:
                return [tuple(range(k))] + [(i,) for i in range(k, rank)]
            return [(i,) for i in range(rank - k)] + [tuple(range(rank - k, rank))]
        named = [k for g in self.n for k in g]
        if max(named) > rank:
            raise ShapeError(f"{self.describe()}: level {max(named)} of {list(map(list, self.n))} exceeds rank {rank}")
        return [tuple(k - 1 for k in g) for g in self.n] + [(i,) for i in range(rank) if i + 1 not in named]

    def output_shape(self, s):
        return tuple(math.prod(s[i] for i in g) for g in self._groups(len(s)))

    def apply(self, x, ctx):
        order = [i for g in self._groups(x.ndim - 1) for i in g]
        if order != sorted(order):
            x = ops.transpose(x, (0,) + tuple(i + 1 for i in order))
        return ops.reshape(x, (x.shape[0], *self.port_shapes["Output"]))

    def config(self):
        return {"n": self.n if not isinstance(self.n, tuple) else [list(g) for g in self.n]}


class ReshapeLayer(UnaryLayer):
    """Reorders the elements of each example into ``dims`` (row-major).

    Each entry of ``dims`` is a size, ``Automatic`` (or -1: inferred from the others),
    ``Inherited`` (the input's size at that position; after an ``All``, counted from the
    end) or ``All`` (the input's remaining dimensions, as many as the sizes around it leave).
    At most one entry is ``Automatic`` or ``All``. ``ReshapeLayer((Inherited, Automatic))``
    keeps the first level and flattens the rest; ``ReshapeLayer((2, 3, All))`` splits a
    first level of 6 and keeps the others.
    """

    def __init__(self, dims: Any, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        entries = list(dims) if isinstance(dims, (list, tuple, np.ndarray)) else [dims]
        for d in entries:
            if d in (Automatic, Inherited, All):
                continue
            if not is_whole(d) or not (d >= 1 or d == -1):
                raise NetError(
                    f"ReshapeLayer: each dimension is a positive integer, Automatic (or -1), Inherited or All; "
                    f"got {d!r} in {dims!r:.60}"
                )
        self.dims = tuple(-1 if d is Automatic else d if d in (Inherited, All) else int(d) for d in entries)
        if sum(d == -1 or d is All for d in self.dims) > 1:
            raise NetError(f"ReshapeLayer: at most one dimension may be Automatic or All, got {dims!r:.60}")
        self._finish_init()

    def output_shape(self, s):
        size, dims = math.prod(s), self.dims

        def inherit(position: int) -> int:  # the input's size at ``position`` (negative: from the end)
            if not -len(s) <= position < len(s):
                raise ShapeError(f"{self.describe()}: {self._spec()} inherits a level that {format_shape(s)} lacks")
            return s[position]

        if All not in dims:
            fixed = [inherit(k) if d is Inherited else d for k, d in enumerate(dims)]
            known = math.prod(d for d in fixed if d != -1)
            out = tuple(size // known if d == -1 else d for d in fixed)
            if math.prod(out) != size:
                raise ShapeError(
                    f"{self.describe()}: cannot reshape {format_shape(s)} ({size} elements) into {self._spec()}"
                )
            return out
        at = dims.index(All)
        before = tuple(inherit(k) if d is Inherited else d for k, d in enumerate(dims[:at]))
        after = tuple(inherit(k - len(dims)) if d is Inherited else d for k, d in enumerate(dims) if k > at)
        head = next((i for i in range(len(s) + 1) if math.prod(s[:i]) == math.prod(before)), None)
        tail = next((j for j in range(len(s) + 1) if math.prod(s[len(s) - j :]) == math.prod(after)), None)
        if head is None or tail is None or head > len(s) - tail:
            raise ShapeError(
                f"{self.describe()}: cannot reshape {format_shape(s)} into {self._spec()}: the sizes before and "
                "after All must take whole leading and trailing dimensions of the input"
            )
        return before + s[head : len(s) - tail] + after

    def _spec(self) -> str:
        return "{" + ", ".join("Automatic" if d == -1 else str(d) for d in self.dims) + "}"

    def apply(self, x, ctx):
        return ops.reshape(x, (x.shape[0], *self.port_shapes["Output"]))

    def config(self):
        return {"dims": self.dims}


class PartLayer(UnaryLayer):
    """Takes part of each example (1-based): ``PartLayer(i)`` drops the first level,
    ``PartLayer(slice(i, j))`` keeps the span i;;j, ``PartLayer([i, k])`` picks
    several parts, and a tuple of such specs indexes several levels."""

    def __init__(self, spec: Any, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.spec = spec
        self._finish_init()

    def _index(self, shape: Shape) -> tuple:
        specs = self.spec if isinstance(self.spec, tuple) else (self.spec,)
        if len(specs) > len(shape):
            raise ShapeError(f"{self.describe()}: {len(specs)} levels indexed in a {format_shape(shape)} input")
        index: list[Any] = []
        for spec, n in zip(specs, shape):
            if spec is All:
                index.append(slice(None))
            elif isinstance(spec, int):
                if not (1 <= spec <= n or -n <= spec <= -1):
                    raise ShapeError(f"{self.describe()}: part {spec} does not exist in a level of length {n}")
                index.append(spec - 1 if spec > 0 else n + spec)
            elif isinstance(spec, slice):
                start = spec.start or 1
                stop = n if spec.stop is None or spec.stop is All else spec.stop
                start, stop = (start - 1 if start > 0 else n + start), (stop if stop > 0 else n + stop + 1)
                if not 0 <= start < stop <= n:
                    raise ShapeError(f"{self.describe()}: span {spec} is outside a level of length {n}")
                index.append(slice(start, stop, spec.step or 1))
            elif isinstance(spec, list):
                picks = [i - 1 if i > 0 else n + i for i in spec]
                if any(not 0 <= p < n for p in picks):
                    raise ShapeError(f"{self.describe()}: parts {spec} are outside a level of length {n}")
                index.append(np.array(picks))
            else:
                raise NetError(f"{self.describe()}: unsupported part spec {spec!r}")
        if sum(isinstance(i, np.ndarray) for i in index) > 1:
            raise NetError(f"{self.describe()}: lists of parts are allowed at one level only")
        return tuple(index)

    def output_shape(self, s):
        return np.empty(s, dtype=bool)[self._index(s)].shape

    def apply(self, x, ctx):
        return ops.getitem(x, (slice(None),) + self._index(x.shape[1:]))

    def config(self):
        return {"spec": self.spec}


class TransposeLayer(UnaryLayer):
    """Swaps levels: ``TransposeLayer()`` swaps 1 and 2, ``(m, n)`` swaps m and n,
    a list of pairs swaps in turn, and a list of ints is a permutation sending
    level k to level p[k]."""

    def __init__(self, spec: Any = (1, 2), *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.spec = spec
        self._finish_init()

    def _perm(self, rank: int) -> tuple[int, ...]:
        spec = self.spec
        order = list(range(rank))  # order[i] = input axis placed at output axis i
        if isinstance(spec, list) and spec and all(isinstance(k, int) for k in spec):
            if sorted(spec) != list(range(1, len(spec) + 1)) or len(spec) > rank:
                raise ShapeError(f"{self.describe()}: {spec} is not a permutation of levels 1..{len(spec)}")
            for k, target in enumerate(spec):
                order[target - 1] = k
            return tuple(order)
        for a, b in [spec] if isinstance(spec, tuple) else spec:
            a, b = (a - 1 if a > 0 else rank + a), (b - 1 if b > 0 else rank + b)
            if not (0 <= a < rank and 0 <= b < rank):
                raise ShapeError(f"{self.describe()}: cannot swap levels {spec} of a rank-{rank} input")
            order[a], order[b] = order[b], order[a]
        return tuple(order)

    def output_shape(self, s):
        return tuple(s[i] for i in self._perm(len(s)))

    def apply(self, x, ctx):
        return ops.transpose(x, (0,) + tuple(i + 1 for i in self._perm(x.ndim - 1)))

    def config(self):
        return {"spec": self.spec}


class ReplicateLayer(UnaryLayer):
    """Repeats each example: ``ReplicateLayer(n)`` gives n copies as a new first
    level; a tuple of dims inserts several levels; ``level`` says where."""

    def __init__(self, n: Any, level: int = 1, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.dims = as_shape(n, "ReplicateLayer size")
        self.level = level
        self._finish_init()

    def _at(self, rank: int) -> int:
        return self.level - 1 if self.level > 0 else rank + self.level + 1

    def output_shape(self, s):
        at = self._at(len(s))
        return s[:at] + self.dims + s[at:]

    def input_shape(self, out):
        at = self._at(len(out) - len(self.dims))
        return out[:at] + out[at + len(self.dims) :]

    def apply(self, x, ctx):
        at = 1 + self._at(x.ndim - 1)
        shape = x.shape[:at] + (1,) * len(self.dims) + x.shape[at:]
        return ops.broadcast_to(ops.reshape(x, shape), x.shape[:at] + self.dims + x.shape[at:])

    def config(self):
        return {"n": self.dims, "level": self.level}
