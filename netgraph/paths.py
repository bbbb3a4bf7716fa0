"""Addressing layers and arrays inside nested nets by path.

A path is a tuple of vertex keys (numbers from 1 or names) followed, for an
array, by the array's name: ``("enc", 2, "Weights")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .layer import Layer, NetError


def iter_layers(net: Layer, prefix: tuple = ()) -> Iterator[tuple[tuple, Layer]]:
    """Every layer under ``net`` (nets included), with its path, parents first."""
    stack = [(prefix, net)]
    while stack:
        path, layer = stack.pop()
        yield path, layer
        stack.extend(reversed([(path + (k,), child) for k, child in layer.children()]))


def iter_arrays(net: Layer) -> Iterator[tuple[tuple, Layer, str]]:
    """(path + (name,), owning layer, name) for every array of every layer."""
    for path, layer in iter_layers(net):
        for name in layer.arrays:
            yield path + (name,), layer, name


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
