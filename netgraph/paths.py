"""Addressing layers and arrays inside nested nets by path.

A path is a tuple of vertex keys (numbers from 1 or names) followed, for an
array, by the array's name: ``("enc", 2, "Weights")``. Walking every layer or
array of a net (:func:`iter_layers`, :func:`iter_arrays`) is part of the layer
protocol (:mod:`netgraph.layer`); they are re-exported here beside the lookups.
"""

from __future__ import annotations

from typing import Any

from .layer import Layer, NetError, iter_arrays, iter_layers

__all__ = ["find_layer", "iter_arrays", "iter_layers", "split_array_path"]


def find_layer(net: Layer, path: tuple) -> Layer:
    """The layer at ``path`` (an empty path is ``net`` itself)."""
    layer = net
    for i, key in enumerate(path):
        children = dict(layer.children())
        if not children:
            raise NetError(f"{'/'.join(map(str, path[:i])) or 'the net'} has no sub-layers; cannot look up {key!r}")
        if isinstance(key, int) and key not in children and key < 0 and -len(children) <= key:
            key = list(children)[key]
        if key not in children:
            where = "/".join(map(str, path[:i])) or "the net"
            raise NetError(f"{where} has no layer {key!r}; its layers are {list(children)}")
        layer = children[key]
    return layer


def split_array_path(net: Layer, target: Any) -> tuple[Layer, str, tuple]:
    """Resolve ``"Weights"`` or ``("enc", "Weights")`` to (layer, array name, full path)."""
    path = target if isinstance(target, tuple) else (target,)
    layer = find_layer(net, path[:-1])
    name = path[-1]
    if name not in layer.arrays:
        raise NetError(f"{layer.describe()} has no array {name!r}; its arrays are {list(layer.arrays)}")
    return layer, name, path
