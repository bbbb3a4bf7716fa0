"""Layers that combine, reduce and rearrange arrays.

TotalLayer, SummationLayer, AggregationLayer, CatenateLayer, FlattenLayer,
ReshapeLayer, PartLayer, TransposeLayer, ReplicateLayer. Levels are counted
as in the Wolfram Language: level 1 is the first axis of an example (the
channel axis of an image), negative levels count from the end.

Example:
    >>> import numpy as np
    >>> from layers import TotalLayer, PartLayer, TransposeLayer
    >>> TotalLayer()([np.array([1.0, 2, 3]), np.array([4.0, 5, 6])]).tolist()
    [5.0, 7.0, 9.0]
    >>> float(PartLayer(-2)(np.array([1.0, 2, 3, 4, 5, 6])))
    5.0
    >>> TransposeLayer([(1, 3), (2, 4)], input=(3, 4, 5, 6)).port_shapes["Output"]
    (5, 6, 3, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netgraph import ops
from netgraph.layer import Layer, NetError, Shape, ShapeError, UnaryLayer, as_shape, check_limit, format_shape
from netgraph.ports import All, Automatic


class _Variadic(Layer):
    """A layer whose number of inputs ("Input1", "Input2", ...) comes from the wiring."""

    variadic = True

    def __init__(self, inputs: int | None, output: Any) -> None:
        super().__init__(output=output)
        self.set_input_count(inputs or 2)

    def set_input_count(self, n: int) -> None:
        check_limit("Inputs", n, f"{self.describe()} inputs")
        self.input_ports = tuple(f"Input{i + 1}" for i in range(n))
        self._finish_init()


class TotalLayer(_Variadic):
    """Elementwise sum of its inputs, which all have one shape."""

    def __init__(self, *, inputs: int | None = None, output: Any = None) -> None:
        super().__init__(inputs, output)

    def shape_rule(self, shapes):
        known = next((s for s in shapes.values() if s is not None), None)
        return {p: known for p in shapes} if known is not None else {}

    def config(self):
        return {"inputs": len(self.input_ports)}

    def forward(self, inputs, ctx):
        values = [inputs[p] for p in self.input_ports]
        total = values[0]
        for v in values[1:]:
            total = total + v
        return {"Output": total}


class CatenateLayer(_Variadic):
    """Joins its inputs along ``level`` (1 = first axis of an example)."""

    def __init__(self, level: int = 1, *, inputs: int | None = None, output: Any = None) -> None:
        self.level = level
        super().__init__(inputs, output)

    def _axis(self, rank: int) -> int:
        axis = self.level - 1 if self.level > 0 else rank + self.level
        if not 0 <= axis < rank:
            raise ShapeError(f"{self.describe()}: level {self.level} does not exist for rank-{rank} inputs")
        return axis

    def shape_rule(self, shapes):
        ins = [shapes[p] for p in self.input_ports]
        if any(s is None for s in ins):
            return {}
        axis = self._axis(len(ins[0]))
        rest = {s[:axis] + s[axis + 1 :] for s in ins}
        if len(rest) > 1 or len({len(s) for s in ins}) > 1:
            raise ShapeError(
                f"{self.describe()}: inputs {[format_shape(s) for s in ins]} differ outside level {self.level}"
            )
        first = ins[0]
        return {"Output": first[:axis] + (sum(s[axis] for s in ins),) + first[axis + 1 :]}

    def forward(self, inputs, ctx):
        values = [inputs[p] for p in self.input_ports]
        return {"Output": ops.concatenate(*values, axis=1 + self._axis(values[0].ndim - 1))}

    def config(self):
        return {"level": self.level, "inputs": len(self.input_ports)}


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


class AggregationLayer(UnaryLayer):
    """Reduces ``levels`` of each example with ``f`` ("Mean", "Max", "Min", "Total").

    ``levels`` is None (2;;All, i.e. every level but the first), ``All``, a
    level, a list of levels, or ``slice(i, j)`` for the span i;;j.
    """

    FUNCTIONS = {"Mean": ops.mean, "Max": ops.max, "Min": ops.min, "Total": ops.sum, "Sum": ops.sum}

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


class FlattenLayer(UnaryLayer):
    """``FlattenLayer()`` makes each example a vector; ``FlattenLayer(n)`` merges the
    first n+1 levels, ``FlattenLayer(-n)`` the last n+1."""

    def __init__(self, n: int | None = None, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.n = n
        self._finish_init()

    def output_shape(self, s):
        if self.n is None:
            return (int(np.prod(s)),)
        k = abs(self.n) + 1
        if len(s) < k:
            raise ShapeError(
                f"{self.describe()}: FlattenLayer({self.n}) needs rank > {abs(self.n)}, got {format_shape(s)}"
            )
        if self.n >= 0:
            return (int(np.prod(s[:k])),) + s[k:]
        return s[: len(s) - k] + (int(np.prod(s[len(s) - k :])),)

    def apply(self, x, ctx):
        return ops.reshape(x, (x.shape[0], *self.port_shapes["Output"]))

    def config(self):
        return {"n": self.n}


class ReshapeLayer(UnaryLayer):
    """Reorders the elements of each example into ``dims`` (row-major);
    one entry may be ``Automatic`` (or -1) to be inferred."""

    def __init__(self, dims: Any, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.dims = tuple(
            -1 if d is Automatic else int(d) for d in (dims if isinstance(dims, (list, tuple)) else [dims])
        )
        if sum(d == -1 for d in self.dims) > 1:
            raise NetError("ReshapeLayer: at most one dimension may be Automatic")
        self._finish_init()

    def output_shape(self, s):
        size = int(np.prod(s))
        known = int(np.prod([d for d in self.dims if d != -1]))
        dims = tuple(size // known if d == -1 else d for d in self.dims)
        if int(np.prod(dims)) != size:
            raise ShapeError(f"{self.describe()}: cannot reshape {format_shape(s)} ({size} elements) into {self.dims}")
        return dims

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
