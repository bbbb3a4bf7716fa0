"""Addressing layers, arrays and ports inside nested nets by path.

A path is a tuple of vertex keys followed, for an array, by the array's name:
``("enc", 2, "Weights")``. A key is a vertex's number (from 1; negative
numbers count from the end) or its name; as in the Wolfram Language, a
number also addresses a named vertex by its position, so in
``NetChain({"lin": ..., "act": ...})`` the keys ``1`` and ``"lin"`` name the
same layer. Walking every layer or array of a net (:func:`iter_layers`,
:func:`iter_arrays`) is part of the layer protocol (:mod:`netgraph.layer`);
they are re-exported here beside the lookups.

Example:
    >>> from netgraph import NetChain, NetPort
    >>> from layers import LinearLayer
    >>> chain = NetChain({"lin": LinearLayer(3), "act": "Ramp"}, input=2)
    >>> find_path(chain, (1,)), find_path(chain, (-1,))
    (('lin',), ('act',))
    >>> inner_port(chain, NetPort(1, "Output")), inner_port(chain, NetPort(2)), inner_port(chain, NetPort("Output"))
    (('lin', 'Output'), ('act', 'Output'), None)
"""

from __future__ import annotations

from typing import Any

from .layer import Layer, NetError, is_whole, iter_arrays, iter_layers
from .ports import NetPort

__all__ = ["find_layer", "find_path", "inner_port", "iter_arrays", "iter_layers", "split_array_path"]


def find_path(net: Layer, path: tuple) -> tuple:
    """``path`` with each key as the vertex's own key (a position from 1 becomes the name it points at)."""
    layer, keys = net, []
    for i, key in enumerate(path):
        children = dict(layer.children())
        where = "/".join(map(str, path[:i])) or "the net"
        if not children:
            raise NetError(f"{where} has no sub-layers; cannot look up {key!r}")
        try:
            present = key in children
        except TypeError:  # unhashable: a dict or list where a key belongs
            present = False
        if not present and is_whole(key):
            if key == 0:
                raise NetError(f"{where}: layer number 0 does not exist; layers are numbered from 1")
            if -len(children) <= key <= len(children):
                key = list(children)[key - 1 if key > 0 else key]
                present = True
        if not present:
            named = any(isinstance(k, str) for k in children)
            also = f" (or by position, 1..{len(children)})" if named else ""
            raise NetError(f"{where} has no layer {key!r}; its layers are {list(children)}{also}")
        keys.append(key)
        layer = children[key]
    return tuple(keys)


def find_layer(net: Layer, path: tuple) -> Layer:
    """The layer at ``path`` (an empty path is ``net`` itself)."""
    layer = net
    for key in find_path(net, path):
        layer = dict(layer.children())[key]
    return layer


def inner_port(net: Layer, port: NetPort, side: str = "output") -> tuple | None:
    """Where ``port`` points inside ``net``: the vertex path (own keys) and the port's name, as one
    tuple; None for a port of ``net`` itself.

    ``side`` is "output" (a value read, or where a connection starts) or
    "input" (where a connection ends); it decides which ports a port number
    counts. A vertex alone (``NetPort(2)``, or ``NetPort("name")`` naming no
    port of ``net``) is that vertex's one output.
    """
    *path, last = port.parts
    if not path and isinstance(last, str) and (last in net.port_shapes or last not in dict(net.children())):
        return None  # a port of the net itself
    if isinstance(last, str) and path:
        try:
            owner = find_layer(net, tuple(path))
        except NetError as err:
            raise NetError(f"{port}: {err}") from None
        ports = owner.output_ports if side == "output" else owner.input_ports
        if last not in ports and last in dict(owner.children()):
            path, last = [*path, last], None  # a vertex of a nested net, given alone
    elif not path:
        path, last = [last], None  # NetPort(2): a vertex alone
    try:
        keys = find_path(net, tuple(path))
    except NetError as err:
        raise NetError(f"{port}: {err}") from None
    layer = find_layer(net, keys)
    ports = layer.output_ports if side == "output" else layer.input_ports
    if last is None:
        if not ports:
            raise NetError(f"{port}: {layer.describe()} has no {side} port")
        if len(ports) != 1:
            example = f"NetPort({keys[-1]!r}, {ports[0]!r})"
            raise NetError(f"{port}: {layer.describe()} has {side} ports {list(ports)}; say which, e.g. {example}")
        return (*keys, ports[0])
    if isinstance(last, int):
        if last > len(ports):
            raise NetError(
                f"{port}: {layer.describe()} has {len(ports)} {side} port{'s' * (len(ports) != 1)} {list(ports)}; "
                f"port number {last} does not exist (ports are numbered from 1)"
            )
        return (*keys, ports[last - 1])
    if last not in ports:
        extra = " (inner values are read at output ports only)" if side == "output" else ""
        raise NetError(f"{port}: {layer.describe()} has no {side} port {last!r}; its {side}s are {list(ports)}{extra}")
    return (*keys, last)


def split_array_path(net: Layer, target: Any) -> tuple[Layer, str, tuple]:
    """Resolve ``"Weights"`` or ``("enc", "Weights")`` to (layer, array name, full path)."""
    path = target if isinstance(target, tuple) else (target,)
    layer = find_layer(net, path[:-1])
    name = path[-1]
    if name not in layer.arrays:
        raise NetError(f"{layer.describe()} has no array {name!r}; its arrays are {list(layer.arrays)}")
    return layer, name, path
