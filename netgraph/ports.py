"""Wolfram symbols netgraph needs: NetPort, NetPortGradient, All, Automatic, Inherited, Scaled.

Example:
    >>> from netgraph.ports import NetPort
    >>> NetPort("mn"), NetPort(3, "Input"), NetPort(("enc", "Output"))
    (NetPort('mn'), NetPort(3, 'Input'), NetPort('enc', 'Output'))
"""

from __future__ import annotations

from typing import Any

from .layer import NetError


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
    """

    __slots__ = ("parts",)

    def __init__(self, *parts: Any):
        if len(parts) == 1 and isinstance(parts[0], (tuple, list)):
            parts = tuple(parts[0])
        if not parts or not isinstance(parts[-1], str) or not parts[-1]:
            raise NetError(f"NetPort needs a port name (a non-empty string) as its last part, got {parts!r}")
        self.parts = tuple(parts)

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
