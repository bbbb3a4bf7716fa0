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
from .layer import Layer, NetError, ShapeError, as_shape, format_shape, is_whole
from .paths import find_layer, iter_layers
from .ports import All, NetPort


def NetExtract(net: Layer, spec: Any) -> Any:  # noqa: N802 - the Wolfram name
    """An array (``"Weights"`` or ``("enc", "Weights")``, as a NumPy copy), a
    sub-layer (``"enc"``, ``3`` or a path tuple, as a copy with its arrays), or
    with ``All`` a nested dict of every array (``(path..., All)``: of one layer).

    Layers are numbers from 1 or names; a number also addresses a named layer
    by its position. As in the Wolfram Language, a list whose elements are all
    lists or tuples is several specifications and gives a list of results
    (``NetExtract(net, [[1], ["enc", "Weights"]])``); a list of plain keys is
    one path, like a tuple.
    """
    if isinstance(spec, list):
        if spec and all(isinstance(s, (list, tuple)) for s in spec):
            return [NetExtract(net, tuple(s)) for s in spec]
        if any(isinstance(s, (list, tuple)) for s in spec):
            raise NetError(
                f"NetExtract: {spec!r} mixes paths and plain keys; give several specifications as a list of "
                f"lists or tuples ([[1], [2, 'Weights']]), or one path as a tuple ((2, 'Weights'))"
            )
        try:
            return NetExtract(net, tuple(spec))
        except NetError as err:
            raise NetError(
                f"{err} (NetExtract reads the list {spec!r} as one path, as the Wolfram Language does; "
                f"several specifications are each a list or tuple: {[[s] for s in spec]!r})"
            ) from None
    if spec is All:
        return _all_arrays(net)
    path = spec if isinstance(spec, tuple) else (spec,)
    if not path:
        raise NetError("NetExtract: the empty path () names nothing; give a layer, an array or a path to one")
    if path[-1] is All:
        return _all_arrays(find_layer(net, path[:-1]))
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
    ``NetTake(chain, (start, end))`` the range (numbers from 1 or names, or a
    NetPort of a layer). For a graph, start and end may each be:

    - a vertex (number or name), or ``NetPort(v)``;
    - ``NetPort(v, port)`` (a name, or a number from 1): an output port of v,
      or an input port of v where the graph is cut;
    - ``NetPort("port")``: an input port of the graph (as start) or an output
      port (as end), which keeps its name;
    - ``All``: every input (as start) or every output (as end);
    - a list of these: their union.

    Every vertex on a path from start to end is kept. A port cut open becomes
    an input of the new graph: ``"Input"`` where the start is one output port,
    else named like the port it feeds (an input of ``net`` keeps its name).
    The new graph's outputs are the end's; other outputs of kept vertices are
    muted.
    """
    start, end = _range(spec, "NetTake") if isinstance(spec, tuple) else (None, spec)
    if isinstance(net, NetChain):
        keys = list(net.vertices)
        i = 0 if start is None else _chain_index(net, start, "start")
        j = _chain_index(net, end, "end")
        if j < i:
            raise NetError(f"NetTake: the range {start!r}..{end!r} is empty")
        return _chain_of(net, keys[i : j + 1])
    return _take_graph(net, start, end)


def NetDrop(net: NetGraph, spec: Any) -> NetGraph:  # noqa: N802
    """``NetDrop(chain, n)`` drops the first n layers, ``-n`` the last n, and
    ``(start, end)`` an interior range.

    For a graph, ``NetDrop(graph, spec)`` keeps the part after ``spec`` (a
    vertex, ``NetPort(v, port)``, or a list of these) and the outputs it
    reaches: what a vertex gives, or what arrives at an input port, becomes
    an input of what remains, as for the start of :func:`NetTake` (a dropped
    vertex's one output is ``"Input"``).
    """
    if not isinstance(net, NetChain):
        if not isinstance(net, NetGraph):
            raise NetError(f"NetDrop works on a NetChain or a NetGraph; got {net.describe()}")
        starts = []
        for item in spec if isinstance(spec, list) else [spec]:
            if isinstance(item, NetPort) and (len(item.parts) > 1 or not isinstance(item.port, str)):
                key, port = _graph_port(net, item, "NetDrop", "input")
                if port is None:  # a vertex alone: what it gives
                    starts += [NetPort(key, p) for p in net.vertices[key].output_ports]
                else:
                    starts.append(NetPort(key, port))
            elif isinstance(item, NetPort) or item is All:
                raise NetError(
                    f"NetDrop: {item!r} is a port of the graph itself; give a vertex or NetPort(vertex, port) "
                    f"up to which to drop"
                )
            else:
                key = net._vertex(item)
                starts += [NetPort(key, p) for p in net.vertices[key].output_ports]
        return _take_graph(net, starts if len(starts) != 1 else starts[0], None)
    keys = list(net.vertices)
    if isinstance(spec, tuple):
        start, end = _range(spec, "NetDrop")
        i, j = _chain_index(net, start, "start"), _chain_index(net, end, "end")
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


def _graph_port(net: NetGraph, spec: NetPort, what: str, side: str) -> tuple[Any, str | None]:
    """``NetPort(v)``, ``NetPort(v, port)`` or ``NetPort(v, k)`` of a vertex of ``net`` as (vertex key,
    port name or None for the vertex alone). A named port may be an output or an input port; a number
    k counts the ports on ``side`` ("input" for a start, "output" for an end)."""
    *path, last = spec.parts
    if not path:
        return net._vertex(last), None
    if len(path) != 1:
        raise NetError(f"{what}: {spec} is not NetPort(vertex, port) of a vertex of this graph")
    key = net._vertex(path[0])
    layer = net.vertices[key]
    if isinstance(last, int):
        ports = layer.input_ports if side == "input" else layer.output_ports
        if last > len(ports):
            raise NetError(
                f"{what}: {spec}: {layer.describe()} has {len(ports)} {side} port{'s' * (len(ports) != 1)} "
                f"{list(ports)}; port number {last} does not exist (ports are numbered from 1)"
            )
        return key, ports[last - 1]
    if last not in layer.output_ports and last not in layer.input_ports:
        raise NetError(
            f"{what}: {spec}: {layer.describe()} has no port {last!r}; its outputs are {list(layer.output_ports)} "
            f"and its inputs {list(layer.input_ports)}"
        )
    return key, last


def _chain_index(chain: NetChain, key: Any, side: str) -> int:
    """The position (from 0) of layer ``key`` in ``chain`` as a ``side`` ("start" or "end") of a range;
    a NetPort cuts at that port: before the layer at an input port, after it at an output port."""
    keys = list(chain.vertices)
    if isinstance(key, NetPort):
        *path, last = key.parts
        if not path and isinstance(last, str):
            if last in chain.input_ports and side == "start":
                return 0
            if last in chain.output_ports and side == "end":
                return len(keys) - 1
            raise NetError(
                f"NetTake: {key} is not an {'input' if side == 'start' else 'output'} port of the chain; "
                f"its ports are {list(chain.input_ports if side == 'start' else chain.output_ports)}"
            )
        found, port = _graph_port(chain, key, "NetTake", "input" if side == "start" else "output")
        i = keys.index(found)
        if port is None:
            return i
        if port in chain.vertices[found].output_ports:  # cut after the layer: as a start, the next one
            return i + 1 if side == "start" else i
        return i if side == "start" else i - 1  # cut before the layer: as an end, the one before
    if is_whole(key):  # a position from 1, also when named
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


def _take_ends(net: NetGraph, end: Any) -> list[tuple[tuple, str]]:
    """The end of a NetTake as (source end in ``net``, name of the new graph's output) pairs."""
    if end is All:
        return [(src, name) for name, src in net.outputs.items()]
    if isinstance(end, list):
        pairs = [pair for item in end for pair in _take_ends(net, item)]
        names = [name for _, name in pairs]
        return [
            (src, f"{name}{names[:i].count(name) + 1}" if names.count(name) > 1 else name)
            for i, (src, name) in enumerate(pairs)
        ]
    if isinstance(end, NetPort) and len(end.parts) == 1 and isinstance(end.port, str):
        if end.port not in net.outputs:
            raise NetError(f"NetTake: {end} is not an output port of the graph; its outputs are {list(net.outputs)}")
        return [(net.outputs[end.port], end.port)]
    key, port = _graph_port(net, end, "NetTake", "output") if isinstance(end, NetPort) else (net._vertex(end), None)
    layer = net.vertices[key]
    if port is None:
        outs = layer.output_ports
        return [((key, p), "Output" if len(outs) == 1 else p) for p in outs]
    if port in layer.output_ports:
        return [((key, port), "Output")]
    src = next(s for s, d in net.edges if d == (key, port))  # an input port: the value arriving there
    if src[0] is None:
        raise NetError(f"NetTake: {end} is fed straight by the graph's input {src[1]!r}; nothing lies before it")
    return [(src, "Output")]


def _take_starts(net: NetGraph, start: Any, graph: nx.DiGraph) -> tuple[set | None, dict, dict]:
    """The start of a NetTake: the vertices it reaches (None: no limit), the sources renamed as new
    inputs ({source end: name}), and the edges cut open ({vertex input end: name})."""
    if start is None or start is All:
        return None, {}, {}
    items = start if isinstance(start, list) else [start]
    reach: set = set()
    renamed: dict = {}
    cut: dict = {}
    resolved = []
    for item in items:
        if item is All:
            return None, {}, {}
        if isinstance(item, NetPort) and len(item.parts) == 1 and isinstance(item.port, str):
            if item.port not in net.input_ports:
                raise NetError(
                    f"NetTake: {item} is not an input port of the graph; its inputs are {list(net.input_ports)}"
                )
            resolved.append((None, item.port))
        elif isinstance(item, NetPort):
            resolved.append(_graph_port(net, item, "NetTake", "input"))
        else:
            resolved.append((net._vertex(item), None))
    outputs = [(k, p) for k, p in resolved if k is not None and p in net.vertices[k].output_ports]
    for key, port in resolved:
        if key is None:  # an input of the graph: the vertices it feeds
            firsts = {d[0] for s, d in net.edges if s == (None, port)}
        elif port is None:
            firsts = {key}
        elif (key, port) in outputs:  # the value there becomes the new "Input" (several: named like the ports)
            renamed[(key, port)] = "Input" if len(outputs) == 1 else port
            firsts = {d[0] for s, d in net.edges if s == (key, port)}
        else:  # an input port: cut the graph there
            cut[(key, port)] = port
            firsts = {key}
        for first in firsts:
            reach |= nx.descendants(graph, first) | {first}
    return reach, renamed, cut


def _take_graph(net: NetGraph, start: Any, end: Any) -> NetGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(net.vertices)
    graph.add_edges_from((s[0], d[0]) for s, d in net.edges if s[0] is not None)
    reach, renamed, cut = _take_starts(net, start, graph)
    if end is None:  # NetDrop: every output the start reaches
        ends = [(src, name) for name, src in net.outputs.items() if reach is None or src[0] in reach]
        end = "the outputs"
    else:
        ends = _take_ends(net, end)
    kept = set().union(*[nx.ancestors(graph, src[0]) | {src[0]} for src, _ in ends])
    if reach is not None:
        kept &= reach
    if not kept or any(src[0] not in kept for src, _ in ends):
        raise NetError(f"NetTake: nothing lies between {start!r} and {end!r}")
    order = [k for k in net.vertices if k in kept]
    names: dict = {}  # each source cut away, and the name of the new input that stands for it

    def input_for(src: tuple, fed: tuple) -> NetPort:
        if src not in names:
            if fed in cut:
                wanted = cut[fed]
            elif src in renamed:
                wanted = renamed[src]
            else:  # an input of the graph keeps its name; a vertex's output is named like the port it feeds
                wanted = src[1] if src[0] is None else fed[1]
            name, n = wanted, 1
            while name in names.values():  # two different values never share one input
                n += 1
                name = f"{wanted}{n}"
            names[src] = name
        return NetPort(names[src])

    wires = []
    consumed = set()
    for s, d in net.edges:
        if d[0] not in kept:
            continue
        if s[0] in kept and d not in cut:
            wires.append((NetPort(*s), NetPort(*d)))
            consumed.add(s)
        else:
            wires.append((input_for(("cut", d) if d in cut else s, d), NetPort(*d)))
    for src, name in ends:
        wires.append((NetPort(*src), NetPort(name)))
        consumed.add(src)
    for key in order:  # outputs the taken part does not ask for are muted, not made outputs
        for port in net.vertices[key].output_ports:
            if (key, port) not in consumed:
                wires.append((NetPort(key, port), None))
    if net.numbered:
        renumber = {k: i + 1 for i, k in enumerate(order)}
        wires = [tuple(e if e is None else _renumber(e, renumber) for e in w) for w in wires]
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
