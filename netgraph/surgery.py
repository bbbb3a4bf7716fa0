"""Net surgery: NetExtract, NetTake, NetDrop, NetReplacePart. Each returns new
values and leaves its argument unchanged.

Example:
    >>> from netgraph import NetChain, NetTake, NetDrop, NetExtract
    >>> from layers import LinearLayer, ElementwiseLayer
    >>> chain = NetChain({"lin": LinearLayer(3), "act": ElementwiseLayer("Tanh"), "out": LinearLayer(1)}, input=2)
    >>> list(NetTake(chain, 2).vertices), list(NetDrop(chain, 1).vertices)
    (['lin', 'act'], ['act', 'out'])
    >>> NetExtract(chain, ("lin",)).port_shapes["Output"]
    (3,)
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from .graph import NetChain, NetGraph
from .layer import Layer, NetError, ShapeError, as_shape, format_shape
from .paths import find_layer, iter_layers
from .ports import All, NetPort


def NetExtract(net: Layer, spec: Any) -> Any:  # noqa: N802 - the Wolfram name
    """An array (``"Weights"`` or ``("enc", "Weights")``, as a NumPy copy), a
    sub-layer (``"enc"``, ``3`` or a path tuple, as a copy with its arrays), or
    with ``All`` a nested dict of every array."""
    if spec is All:
        return _all_arrays(net)
    path = spec if isinstance(spec, tuple) else (spec,)
    if not path:
        raise NetError("NetExtract: the empty path () names nothing; give a layer, an array or a path to one")
    if isinstance(path[-1], str) and path[-1] in find_layer(net, path[:-1]).arrays:
        value = find_layer(net, path[:-1]).arrays[path[-1]]
        return None if value is None else value.copy()
    return find_layer(net, path).copy()


def _all_arrays(net: Layer) -> dict:
    out: dict = {name: (None if v is None else v.copy()) for name, v in net.arrays.items()}
    for key, child in net.children():
        out[key] = _all_arrays(child)
    return out


def NetTake(net: NetGraph, spec: Any) -> NetGraph:  # noqa: N802
    """The part of ``net`` from a start to an end (inclusive), with its arrays.

    For a chain, ``NetTake(chain, end)`` keeps layers 1..end and
    ``NetTake(chain, (start, end))`` the range (numbers from 1 or names). For a
    graph, start and end are vertices or ``NetPort(vertex, "Output")``; every
    vertex on a path from start to end is kept, and ports cut open become the
    new graph's inputs.
    """
    start, end = _range(spec, "NetTake") if isinstance(spec, tuple) else (None, spec)
    if isinstance(net, NetChain):
        keys = list(net.vertices)
        i = 0 if start is None else _chain_index(net, start)
        j = _chain_index(net, end)
        if j < i:
            raise NetError(f"NetTake: the range {start!r}..{end!r} is empty")
        return _chain_of(net, keys[i : j + 1])
    return _take_graph(net, start, end)


def NetDrop(net: NetChain, spec: Any) -> NetChain:  # noqa: N802
    """``NetDrop(chain, n)`` drops the first n layers, ``-n`` the last n, and
    ``(start, end)`` an interior range."""
    if not isinstance(net, NetChain):
        raise NetError("NetDrop works on a NetChain")
    keys = list(net.vertices)
    if isinstance(spec, tuple):
        start, end = _range(spec, "NetDrop")
        i, j = _chain_index(net, start), _chain_index(net, end)
        if j < i:
            raise NetError(f"NetDrop: the range {start!r}..{end!r} is empty")
        kept = keys[:i] + keys[j + 1 :]
    elif isinstance(spec, bool) or not isinstance(spec, (int, np.integer)):
        raise NetError(
            f"NetDrop takes a number of layers n (the first n; -n the last n) or a range (start, end); got {spec!r}"
        )
    elif spec >= 0:
        kept = keys[spec:]
    else:
        kept = keys[:spec]
    if not kept:
        raise NetError(f"NetDrop: dropping {spec!r} leaves no layers")
    return _chain_of(net, kept)


def _range(spec: tuple, what: str) -> tuple[Any, Any]:
    if len(spec) != 2:
        raise NetError(f"{what}: a range is (start, end), two elements; got {spec!r}")
    return spec[0], spec[1]


def _graph_end(net: NetGraph, spec: Any) -> tuple[Any, str | None]:
    """A vertex, or ``NetPort(vertex, output)``, of ``net`` as (vertex key, output port or None)."""
    if not isinstance(spec, NetPort):
        return net._vertex(spec), None
    if len(spec.parts) != 2:
        raise NetError(f"NetTake: {spec} is not NetPort(vertex, output port) of a vertex of this graph")
    key = net._vertex(spec.parts[0])
    if spec.port not in net.vertices[key].output_ports:
        raise NetError(
            f"NetTake: {spec}: {net.vertices[key].describe()} has no output port {spec.port!r}; "
            f"its outputs are {list(net.vertices[key].output_ports)}"
        )
    return key, spec.port


def _chain_index(chain: NetChain, key: Any) -> int:
    keys = list(chain.vertices)
    if isinstance(key, int) and not isinstance(key, bool):  # a position from 1, also in a named chain
        if key == 0 or abs(key) > len(keys):
            raise NetError(f"layer {key} does not exist: the chain has layers 1..{len(keys)}")
        return key - 1 if key > 0 else len(keys) + key
    if key not in keys:
        raise NetError(f"the chain has no layer {key!r}; its layers are {keys}")
    return keys.index(key)


def _chain_of(chain: NetChain, keys: list) -> NetChain:
    layers = [chain.vertices[k] for k in keys]
    if chain.numbered:
        return NetChain(layers)
    return NetChain({k: chain.vertices[k] for k in keys})


def _take_graph(net: NetGraph, start: Any, end: Any) -> NetGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(net.vertices)
    graph.add_edges_from((s[0], d[0]) for s, d in net.edges if s[0] is not None)
    end_key, _ = _graph_end(net, end)
    kept = nx.ancestors(graph, end_key) | {end_key}
    start_source = None  # the output port a NetPort start names: what it fed becomes the new "Input"
    if start is not None:
        k, start_port = _graph_end(net, start)
        if start_port is not None:
            start_source = (k, start_port)
            first = {d[0] for s, d in net.edges if s == start_source}
            reach = set().union(*[nx.descendants(graph, k) | {k} for k in first]) if first else set()
        else:
            reach = nx.descendants(graph, k) | {k}
        kept &= reach
    if not kept:
        raise NetError(f"NetTake: nothing lies between {start!r} and {end!r}")
    order = [k for k in net.vertices if k in kept]
    wires = []
    for s, d in net.edges:
        if d[0] not in kept:
            continue
        if s[0] in kept:
            wires.append((NetPort(s[0], s[1]), NetPort(d[0], d[1])))
        elif start_source is not None and s == start_source:
            wires.append((NetPort("Input"), NetPort(d[0], d[1])))
        else:  # a port cut open becomes a graph input named like the port it feeds
            wires.append((NetPort(d[1]), NetPort(d[0], d[1])))
    out_port = end.port if isinstance(end, NetPort) else None
    for port in net.vertices[end_key].output_ports:
        if out_port in (None, port):
            wires.append(
                (
                    NetPort(end_key, port),
                    NetPort("Output" if out_port or len(net.vertices[end_key].output_ports) == 1 else port),
                )
            )
    if net.numbered:
        renumber = {k: i + 1 for i, k in enumerate(order)}
        wires = [tuple(_renumber(e, renumber) for e in w) for w in wires]
        return NetGraph([net.vertices[k] for k in order], wires)
    return NetGraph({k: net.vertices[k] for k in order}, wires)


def _renumber(end: NetPort, mapping: dict) -> NetPort:
    if len(end.parts) == 1:
        return end
    return NetPort(mapping[end.parts[0]], end.port)


def NetReplacePart(net: Layer, rules: Any) -> Layer:  # noqa: N802
    """Replace arrays, layers or port shapes; ``rules`` is a dict or a list of pairs.

    ``{"Weights": w}`` or ``{("enc", "Biases"): b}`` set arrays (same shape
    required); ``{"dec": new_layer}`` swaps a vertex (the graph is rebuilt and
    checked); ``{"Input": (1, 28, 28)}`` fixes a port shape.
    """
    if isinstance(rules, dict):
        pairs = list(rules.items())
    elif isinstance(rules, (list, tuple)) and all(isinstance(r, tuple) and len(r) == 2 for r in rules):
        pairs = list(rules)
    else:
        raise NetError(f"NetReplacePart takes a dict or a list of (spec, value) pairs; got {rules!r:.80}")
    net = net.copy()
    for spec, value in pairs:
        path = spec if isinstance(spec, tuple) else (spec,)
        owner = find_layer(net, path[:-1])
        name = path[-1]
        if isinstance(name, str) and name in owner.arrays:
            _replace_array(owner, name, value)
        elif isinstance(name, str) and name in owner.port_shapes and not isinstance(value, Layer):
            owner.refine({name: as_shape(value, f"port {name!r}")})
        else:
            net = _replace_layer(net, path, value)
    if isinstance(net, NetGraph):
        net._infer({})
    return net


def _replace_array(layer: Layer, name: str, value: Any) -> None:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise NetError(
            f"NetReplacePart: {layer.describe()} array {name!r} takes real numbers; got {value!r:.60} ({err})"
        ) from None
    expected = layer.array_shapes().get(name)
    if expected is not None and array.shape != tuple(expected):
        raise ShapeError(
            f"NetReplacePart: {layer.describe()} array {name!r} has shape {format_shape(tuple(expected))}, "
            f"got {format_shape(array.shape)}"
        )
    layer.arrays[name] = array.copy()


def _replace_layer(net: Layer, path: tuple, layer: Any) -> Layer:
    if not path:
        return layer
    parent = find_layer(net, path[:-1])
    if not isinstance(parent, NetGraph):
        raise NetError(f"NetReplacePart: {parent.describe()} has no layer {path[-1]!r}")
    key = parent._vertex(path[-1])
    vertices = dict(parent.vertices)
    vertices[key] = layer
    if isinstance(parent, NetChain):
        rebuilt: NetGraph = NetChain(list(vertices.values()) if parent.numbered else vertices)
    else:
        rebuilt = NetGraph(list(vertices.values()) if parent.numbered else vertices, parent.connections())
    if not path[:-1]:
        return rebuilt
    return _replace_layer(net, path[:-1], rebuilt)


__all__ = ["NetDrop", "NetExtract", "NetReplacePart", "NetTake", "iter_layers"]
