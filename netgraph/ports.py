"""Wolfram symbols netgraph needs: NetPort, NetPortGradient, All, Automatic, Inherited, Scaled.

Example:
    >>> from netgraph.ports import NetPort
    >>> NetPort("mn"), NetPort(3, "Input"), NetPort(("enc", "Output")), NetPort(3, 1), NetPort(2)
    (NetPort('mn'), NetPort(3, 'Input'), NetPort('enc', 'Output'), NetPort(3, 1), NetPort(2))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layer import NetError, is_whole


class _Symbol:
    """A named constant that prints as its Wolfram name."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        return self.name


All = _Symbol("All")
Automatic = _Symbol("Automatic")
Inherited = _Symbol("Inherited")  # ReshapeLayer: a dimension copied from the input


class NetPort:
    """A port: ``NetPort("x")`` of the graph, ``NetPort(vertex, "port")`` of a vertex.

    A vertex inside a nested net is addressed by a path:
    ``NetPort("enc", 2, "Output")`` or ``NetPort(("enc", 2, "Output"))``.
    Vertices are numbers from 1 or names; a number also addresses a named
    vertex by its position. As in the Wolfram Language, the port may be
    given by its position, from 1: ``NetPort(3, 1)`` is the first input port
    of vertex 3 where a connection ends and its first output port where one
    starts (or where a value is read). A vertex alone, ``NetPort(2)`` (or,
    when evaluating, ``NetPort("name")`` of a vertex that is not a port of
    the net), is that vertex's output.
    """

    __slots__ = ("parts",)

    def __init__(self, *parts: Any):
        if len(parts) == 1 and isinstance(parts[0], (tuple, list)):
            parts = tuple(parts[0])
        last = parts[-1] if parts else None
        number = is_whole(last)
        if not parts or not (isinstance(last, str) and last or number) or (number and last == 0):
            raise NetError(
                f"NetPort needs a port name (a non-empty string) or a number from 1 as its last part, "
                f"or a layer alone (NetPort(2)); got {parts!r}"
            )
        if number and last < 0 and len(parts) > 1:
            raise NetError(f"NetPort: ports are numbered from 1; got port {last} in {parts!r}")
        self.parts = tuple(int(p) if isinstance(p, np.integer) else p for p in parts)

    @property
    def vertex_path(self) -> tuple:
        return self.parts[:-1]

    @property
    def port(self) -> str:
        return self.parts[-1]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetPort) and other.parts == self.parts

    def __hash__(self) -> int:
        return hash(("NetPort", self.parts))

    def __repr__(self) -> str:
        return f"NetPort({', '.join(map(repr, self.parts))})"


class NetPortGradient:
    """The gradient at a port or array: ``NetPortGradient("Input")``,
    ``NetPortGradient("Weights")``, ``NetPortGradient(("enc", "Weights"))``,
    ``NetPortGradient(All)``. As a key of the input data it forces the gradient
    flowing into an output port."""

    __slots__ = ("target",)

    def __init__(self, target: Any):
        path = tuple(target) if isinstance(target, (list, tuple)) else (target,)
        if target is not All and (not path or not isinstance(path[-1], str)):
            raise NetError(
                f"NetPortGradient needs a port or array name (a string), a path ending in one such as "
                f'("enc", "Weights"), or All; got {target!r}'
            )
        self.target = tuple(target) if isinstance(target, list) else target

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetPortGradient) and other.target == self.target

    def __hash__(self) -> int:
        return hash(("NetPortGradient", repr(self.target)))

    def __repr__(self) -> str:
        return f"NetPortGradient({self.target!r})"


class Scaled:
    """Wolfram's ``Scaled[r]``: a ratio (loss weights, held-out fractions, resize factors)."""

    __slots__ = ("ratio",)

    def __init__(self, ratio: float):
        self.ratio = float(ratio)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scaled) and other.ratio == self.ratio

    def __hash__(self) -> int:
        return hash(("Scaled", self.ratio))

    def __repr__(self) -> str:
        return f"Scaled({self.ratio!r})"
