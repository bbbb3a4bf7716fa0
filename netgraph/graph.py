"""NetGraph and NetChain: declarative nets, shape inference, and the compiled plan.

Building a graph does, in order:

1. copy each layer (nets are values: the graph owns its copies) and name it;
2. parse the connections into edges between ``(vertex, port)`` ends;
3. turn unconnected ports into graph ports (Wolfram's rules);
   nothing is dropped or overwritten silently: a port fed twice (a vertex
   input or a graph output), a named output that an automatic name
   ("Output1"...) would take over, a graph port that is both an input and
   an output, and an output both muted and exposed are errors naming the
   port and both sources;
4. refuse cycles (networkx), then infer every port shape from the known ones,
   passing shapes along edges in both directions until nothing changes;
5. compile the plan: the vertices in topological order, each with where its
   inputs come from, and which values can be dropped after it; and which
   pairs of vertices run fused (below).

Fusion. A ConvolutionLayer, DeconvolutionLayer or LinearLayer whose output feeds
exactly one port, the input of a Ramp, LeakyRamp or bias-only ElementwiseLayer
(``x + c``, ``x - c``), and is not an output of the graph, runs with that layer as one
step of the plan: the producer computes without its biases, and
:func:`netgraph.epilogue.bias_activation` adds them and applies the activation in
one pass over the producer's fresh output (and one backward). The values and
gradients are the unfused layers' (the biases' gradient to rounding). When an
evaluation asks for the producer's own output (``NetPort(["conv", "Output"])``)
the two run unfused. :func:`set_fusion` (or ``NETGRAPH_FUSION=0``) turns fusion off.

The graph uses its layers only through the :class:`~netgraph.layer.Layer`
protocol, and is itself a layer, so graphs nest.

Example:
    >>> import numpy as np
    >>> from netgraph import NetGraph, NetPort
    >>> from layers import ElementwiseLayer, ThreadingLayer
    >>> net = NetGraph({"double": ElementwiseLayer(lambda x: 2 * x), "add": ThreadingLayer(lambda a, b: a + b)},
    ...                [(NetPort("a"), "double", "add"), (NetPort("b"), "add")])
    >>> net({"a": np.array([1.0, 2, 3]), "b": np.array([10.0, 20, 30])}).tolist()
    [12.0, 24.0, 36.0]
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import networkx as nx

from layers import coerce

from . import profile
from .layer import Context, Layer, NetError, Shape, ShapeError, as_shape, format_shape, is_whole, tree, unify
from .ports import NetPort

End = tuple[Any, str]  # (vertex key, port); vertex None means a port of the graph itself

_fusion = os.environ.get("NETGRAPH_FUSION", "1").lower() not in ("0", "false", "no", "off", "")


def set_fusion(enabled: bool) -> bool:
    """Turn the fusion of a producer with the activation after it on or off (on by default; see
    the module's notes); returns the previous setting. Plans keep their fused pairs and consult
    the setting on every run.

    Example:
        >>> previous = set_fusion(False)
        >>> fusion_enabled()
        False
        >>> _ = set_fusion(previous)
    """
    global _fusion
    previous, _fusion = _fusion, bool(enabled)
    return previous


def fusion_enabled() -> bool:
    """Whether graphs run their fused steps (:func:`set_fusion`)."""
    return _fusion


def _offers(layer: Layer, method: str) -> bool:
    """Whether ``layer`` has ``method`` from the class that also says how it computes (its ``apply`` and
    ``forward``), so that a subclass computing otherwise is never fused by what it inherits."""
    owner = next((c for c in type(layer).__mro__ if method in vars(c)), None)
    if owner is None or owner is Layer:
        return False
    return all(getattr(type(layer), name, None) is getattr(owner, name, None) for name in ("apply", "forward"))


class FusedStep:
    """A producer layer and the activation layer after it, run as one step of a graph's plan.

    :mod:`netgraph.profile` times it under the producer's path, as ``t.layers[path]``;
    ``parts`` holds the two layers.
    """

    output_ports = ("Output",)

    def __init__(self, producer: Layer, activation: Layer) -> None:
        self.parts = (producer, activation)
        self.activation = activation.epilogue()

    def forward(self, inputs: dict, ctx: Context) -> dict:
        return {"Output": self.parts[0].apply_with_epilogue(inputs["Input"], ctx, self.activation)}

    def describe(self) -> str:
        return " + ".join(part.describe() for part in self.parts)

    def __repr__(self) -> str:
        return f"FusedStep({self.describe()})"


def as_layer(spec: Any, key: Any = None) -> Layer:
    """Wolfram's automatic conversions: a list becomes a NetChain, a number a
    LinearLayer, a name or function an ElementwiseLayer. ``key`` names the
    vertex in the error for anything else."""
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, list):
        return NetChain(spec)
    if callable(spec):
        return coerce(spec)  # the layer library owns the shorthand forms
    try:
        return coerce(spec)
    except TypeError as err:  # not a shorthand form at all
        where = "" if key is None else f"vertex {key!r}: "
        raise NetError(f"{where}{err}") from None


class NetGraph(Layer):
    """A directed acyclic graph of layers wired port to port.

    Args:
        layers: a list (vertices numbered from 1, as in the Wolfram Language)
            or a dict of named vertices; entries are layers, nets, or
            shorthand (``8`` is ``LinearLayer(8)``, ``"Ramp"`` an
            ElementwiseLayer, a list a NetChain).
        connections: tuples ``(a, b, c)`` meaning a → b → c; a list fans in
            (``([3, 4, 5], 2)``); ``NetPort("x")`` is a graph port,
            ``NetPort(v, "port")`` a vertex's port and ``NetPort(v, k)`` its
            k-th port (an input where the connection ends, an output where it
            starts); ``None`` as the last element mutes an output. Vertices
            are numbers from 1 (negative from the end) or names; a number also
            addresses a named vertex by its position.
        input, output: shapes for the graph's "Input"/"Output" ports.
        ports: shapes for other graph ports, e.g. ``{"mn": 8}``.
    """

    def __init__(
        self,
        layers: list | dict,
        connections: list | tuple = (),
        *,
        input: Any = None,  # noqa: A002
        output: Any = None,
        ports: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(layers, (list, tuple, dict)):
            raise NetError(
                f"NetGraph layers must be a list (vertices numbered from 1) or a dict of named vertices; "
                f"got {type(layers).__name__} {layers!r:.80}"
            )
        if not layers:
            raise NetError("a NetGraph needs at least one layer")
        self.numbered = not isinstance(layers, dict)
        items = layers.items() if isinstance(layers, dict) else enumerate(layers, start=1)
        self.vertices: dict[Any, Layer] = {}
        for key, spec in items:
            if not self.numbered and not isinstance(key, str):
                raise NetError(f"vertex names must be strings, got {key!r}")
            layer = as_layer(spec, key).copy()
            layer.name = str(key)
            self.vertices[key] = layer
        self._wire(self._parse(connections))
        if ports is not None and not isinstance(ports, dict):
            raise NetError(f"NetGraph ports must be a dict of port name to shape, e.g. {{'x': 8}}; got {ports!r:.80}")
        fixed = {"Input": input, "Output": output}
        for port, spec in (ports or {}).items():
            if fixed.get(port) is not None and spec is not None and as_shape(spec) != as_shape(fixed[port]):
                keyword = port.lower()
                raise NetError(
                    f"the shape of port {port!r} is given twice, differently: {keyword}={fixed[port]!r} and "
                    f"ports={{{port!r}: {spec!r}}}; give it once"
                )
            fixed[port] = spec if spec is not None else fixed.get(port)
        known = {}
        for port, spec in fixed.items():
            if spec is None:
                continue
            if port not in self.port_shapes:
                raise NetError(f"NetGraph has no port {port!r}; its ports are {list(self.port_shapes)}")
            known[port] = as_shape(spec, f"port {port!r}")
        self._infer(known)
        self.plan = self._compile()
        self.fused = self._fusions()

    # -- 1. parsing connections ------------------------------------------------------
    def _vertex(self, spec: Any) -> Any:
        """The key of vertex ``spec``: a number from 1 (negative from the end), or a name; a number
        also addresses a named vertex by its position, as in the Wolfram Language."""
        number = is_whole(spec)
        if self.numbered and not number:
            raise NetError(f"vertices of this graph are numbered 1..{len(self.vertices)}; got {spec!r}")
        if number:
            if spec == 0:
                raise NetError(
                    f"layer number 0 does not exist: layers are numbered from 1 (as in the Wolfram "
                    f"Language), here 1..{len(self.vertices)}"
                )
            if -len(self.vertices) <= spec <= len(self.vertices):
                return list(self.vertices)[spec - 1 if spec > 0 else spec]
        try:
            present = spec in self.vertices
        except TypeError:  # unhashable: a dict or set where a vertex belongs
            present = False
        if not present:
            known = f"1..{len(self.vertices)}"
            if not self.numbered:
                known = f"{sorted(self.vertices)} (or by position, {known})"
            raise NetError(f"unknown layer {spec!r}; the layers of this graph are {known}")
        return spec

    def _end(self, spec: NetPort, side: str) -> tuple[Any, str | None]:
        """A NetPort in a connection as (vertex key, port name); vertex None is a port of the graph.

        ``NetPort(v, k)`` with a number k is v's k-th port on ``side`` ("input" where the connection
        ends, "output" where it starts); ``NetPort(v)`` is v itself (port None: its one output, or its
        next free input).
        """
        *path, last = spec.parts
        if not path and isinstance(last, str):
            return (None, last)
        if not path:
            return (self._vertex(last), None)
        if len(path) != 1:
            raise NetError(f"{spec}: a connection names a port of a vertex of this graph only")
        key = self._vertex(path[0])
        layer = self.vertices[key]
        ports = layer.output_ports if side == "output" else layer.input_ports
        if isinstance(last, str):
            if last not in ports and not (side == "input" and getattr(layer, "variadic", False)):
                raise NetError(f"{spec}: {layer.describe()} has no {side} port {last!r}; its {side}s are {list(ports)}")
            return (key, last)
        if last <= len(ports):
            return (key, ports[last - 1])
        if side == "input" and getattr(layer, "variadic", False):
            return (key, f"Input{last}")  # a variadic layer's inputs are counted from the wiring, then checked
        raise NetError(
            f"{spec}: {layer.describe()} has {len(ports)} {side} port{'s' * (len(ports) != 1)} {list(ports)}; "
            f"port number {last} does not exist (ports are numbered from 1)"
        )

    def _source(self, spec: Any) -> End:
        key, port = self._end(spec, "output") if isinstance(spec, NetPort) else (self._vertex(spec), None)
        if port is not None:
            return (key, port)
        outs = self.vertices[key].output_ports
        if len(outs) != 1:
            raise NetError(
                f"{self.vertices[key].describe()} has outputs {list(outs)}; say which with NetPort({key!r}, port)"
            )
        return (key, outs[0])

    def _dest(self, spec: Any) -> tuple[Any, str | None] | None:
        if spec is None:
            return None  # muted
        if isinstance(spec, NetPort):
            return self._end(spec, "input")
        return (self._vertex(spec), None)

    def _parse(self, connections: Any) -> list[tuple[End, Any]]:
        if not isinstance(connections, (list, tuple)):
            hint = "; write a dict {a: b} as [(a, b)]" if isinstance(connections, dict) else ""
            raise NetError(
                f"NetGraph connections must be a list of tuples (a, b, ...) meaning a -> b -> ...; "
                f"got {type(connections).__name__} {connections!r:.80}{hint}"
            )
        if isinstance(connections, tuple) and connections and not isinstance(connections[0], tuple):
            connections = [connections]
        pairs = []
        for chain in connections:
            if not isinstance(chain, tuple) or len(chain) < 2:
                raise NetError(f"a connection is a tuple (a, b, ...) meaning a -> b -> ...; got {chain!r}")
            for left, right in zip(chain, chain[1:]):
                if isinstance(right, list):
                    raise NetError(f"in {chain!r}: a list may only fan in, as in ([a, b], c)")
                dest = self._dest(right)
                for src in left if isinstance(left, list) else [left]:
                    pairs.append((self._source(src), dest))
        return pairs

    # -- 2./3. edges and graph ports ------------------------------------------------------
    def _wire(self, pairs: list[tuple[End, Any]]) -> None:
        # variadic layers (TotalLayer, CatenateLayer, ThreadingLayer...) take as many inputs as wired
        fan_in = Counter(d[0] for _, d in pairs if d is not None)
        for key, layer in self.vertices.items():
            if getattr(layer, "variadic", False) and fan_in[key]:
                layer.set_input_count(fan_in[key])
        for _, dest in pairs:  # a variadic layer's named ports exist only now that its inputs are counted
            if dest is not None and dest[0] is not None and dest[1] is not None:
                layer = self.vertices[dest[0]]
                if dest[1] not in layer.input_ports:
                    raise NetError(
                        f"{NetPort(*dest)}: {layer.describe()} has no input port {dest[1]!r}; "
                        f"wired as it is, its inputs are {list(layer.input_ports)}"
                    )
        edges: list[tuple[End, End]] = []
        fed: dict[End, End] = {}  # vertex input -> the source feeding it
        exposed: dict[str, End] = {}  # graph output named in a connection -> its source
        muted: set[End] = set()
        for src, dest in pairs:
            if dest is None:
                if src[0] is None:
                    raise NetError(
                        f"({self._end_name(src)}, None): None mutes an output of a vertex; "
                        f"{self._end_name(src)} is an input of the graph"
                    )
                muted.add(src)
                continue
            key, port = dest
            if key is None:
                if port in exposed:
                    self._two_sources(f"graph output port NetPort({port!r})", exposed[port], src)
                exposed[port] = src
                continue
            layer = self.vertices[key]
            if port is None:
                free = [p for p in layer.input_ports if (key, p) not in fed]
                if not free:
                    feeders = ", ".join(f"{p!r} by {self._end_name(fed[(key, p)])}" for p in layer.input_ports)
                    raise NetError(
                        f"{layer.describe()} has no free input port left for a connection from "
                        f"{self._end_name(src)}; its inputs are {list(layer.input_ports)}"
                        + (f", already fed: {feeders}" if feeders else "")
                    )
                port = free[0]
            if (key, port) in fed:
                self._two_sources(self._end_name((key, port)), fed[(key, port)], src)
            fed[(key, port)] = src
            edges.append((src, (key, port)))
        for src in muted & set(exposed.values()):
            names = [name for name, s in exposed.items() if s == src]
            raise NetError(
                f"{self._end_name(src)} is both muted (connected to None) and exposed as graph output "
                f"NetPort({names[0]!r}); keep one of the two connections"
            )

        inputs: list[str] = []
        for src, _ in edges:
            if src[0] is None and src[1] not in inputs:
                inputs.append(src[1])
        for src in exposed.values():  # a graph input passed straight through to an output
            if src[0] is None and src[1] not in inputs:
                inputs.append(src[1])
        for key, layer in self.vertices.items():  # unconnected inputs become graph inputs
            for port in layer.input_ports:
                if (key, port) not in fed:
                    edges.append(((None, port), (key, port)))
                    if port not in inputs:
                        inputs.append(port)
        consumed = {src for src, _ in edges} | set(exposed.values()) | muted
        loose = [
            (port, (key, port))
            for key, layer in self.vertices.items()
            for port in layer.output_ports
            if (key, port) not in consumed
        ]
        outputs: dict[str, End] = dict(exposed)
        for name, src in loose:  # unconnected outputs become graph outputs: "Output", or "Output1", "Output2"...
            same = [s for n, s in loose if n == name]
            auto = f"{name}{same.index(src) + 1}" if len(same) > 1 or name in outputs else name
            if auto in outputs:
                raise NetError(
                    f"graph output port NetPort({auto!r}) is fed by {self._end_name(outputs[auto])} and would also "
                    f"take {self._end_name(src)}, an unconnected output numbered {auto!r} automatically; "
                    f"name the port otherwise, or connect {self._end_name(src)} to a port or to None"
                )
            outputs[auto] = src
        for name in outputs:
            if name in inputs:
                feeding = [self._end_name(d) for s, d in edges if s == (None, name)]
                raise NetError(
                    f"NetPort({name!r}) is both an input of the graph"
                    + (f" (feeding {', '.join(feeding)})" if feeding else "")
                    + f" and an output (fed by {self._end_name(outputs[name])}); a graph port has one role: "
                    f"give the output another name"
                )
        self.muted = sorted(muted, key=str)
        self.edges = edges
        self.input_ports = tuple(inputs)
        self.output_ports = tuple(outputs)
        self.outputs = outputs
        self.port_shapes = {p: None for p in (*inputs, *outputs)}

        graph = nx.DiGraph()
        graph.add_nodes_from(self.vertices)
        graph.add_edges_from((s[0], d[0]) for s, d in self.edges if s[0] is not None)
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = " -> ".join(str(a) for a, _ in cycle) + f" -> {cycle[0][0]}"
            raise NetError(f"the connections form a cycle: {path}; a NetGraph must be acyclic")
        position = {key: i for i, key in enumerate(self.vertices)}
        self.order = list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))

    def _two_sources(self, port: str, first: End, second: End) -> None:
        if first == second:
            raise NetError(f"{port} is fed twice by {self._end_name(first)}; give the connection once")
        raise NetError(
            f"{port} is fed by both {self._end_name(first)} and {self._end_name(second)}; a port takes one "
            f"value: feed it once, or combine the two with a layer such as TotalLayer or CatenateLayer"
        )

    def _end_name(self, end: End) -> str:
        key, port = end
        if key is None:
            return f"NetPort({port!r})"
        return f"NetPort({key!r}, {port!r}) of {type(self.vertices[key]).__name__}"

    # -- 4. shape inference ------------------------------------------------------------------
    def _infer(self, known: dict[str, Shape | None]) -> bool:
        changed_any = False
        for port, shape in known.items():
            new = unify(self.port_shapes[port], shape, f"NetGraph port {port!r}")
            changed_any |= new != self.port_shapes[port]
            self.port_shapes[port] = new
        ends = [(s, d) for s, d in self.edges] + [((k, p), (None, name)) for name, (k, p) in self.outputs.items()]
        for _ in range(4 * len(self.vertices) + 4):
            changed = False
            for src, dst in ends:
                a, b = self._shape(src), self._shape(dst)
                try:
                    both = unify(a, b, "")
                except ShapeError:
                    raise ShapeError(
                        f"{self._end_name(src)} gives {format_shape(a)} but {self._end_name(dst)} "
                        f"expects {format_shape(b)}"
                    ) from None
                for end, old in ((src, a), (dst, b)):
                    if both != old:
                        changed = True
                        self._set_shape(end, both)
            for key in self.order:
                layer = self.vertices[key]
                try:
                    changed |= layer.refine({})
                except ShapeError as err:
                    raise ShapeError(f"in layer {key!r}: {err}") from None
            changed_any |= changed
            if not changed:
                break
        else:
            raise ShapeError("shape inference did not settle; a layer's shape rule keeps changing its ports")
        for layer in self.vertices.values():
            if all(s is not None for s in layer.port_shapes.values()):
                layer.check_arrays()
        return changed_any

    def _shape(self, end: End) -> Shape | None:
        key, port = end
        return self.port_shapes[port] if key is None else self.vertices[key].port_shapes[port]

    def _set_shape(self, end: End, shape: Shape | None) -> None:
        key, port = end
        if key is None:
            self.port_shapes[port] = shape
        else:
            self.vertices[key].refine({port: shape})

    def refine(self, known: dict[str, Shape | None]) -> bool:
        for port in known:
            if port not in self.port_shapes:
                raise NetError(f"{self.describe()} has no port {port!r}; its ports are {list(self.port_shapes)}")
        return self._infer(known)

    # -- 5. the plan and running it -------------------------------------------------------------
    def _compile(self) -> list[tuple[Any, dict[str, End], list[End]]]:
        """Steps in order: (vertex, {input port: source end}, ends to release after it)."""
        sources: dict[Any, dict[str, End]] = {key: {} for key in self.vertices}
        for src, (key, port) in self.edges:
            sources[key][port] = src
        last_use: dict[End, int] = {}
        for i, key in enumerate(self.order):
            for src in sources[key].values():
                last_use[src] = i
        keep = set(self.outputs.values())
        release: list[list[End]] = [[] for _ in self.order]
        for end, i in last_use.items():
            if end not in keep and end[0] is not None:
                release[i].append(end)
        return [(key, sources[key], release[i]) for i, key in enumerate(self.order)]

    def _fusions(self) -> dict[Any, Any]:
        """Producer vertex -> the activation vertex that runs fused with it (see the module's notes)."""
        readers = Counter(src for src, _ in self.edges)
        exposed = {*self.outputs.values(), *self.muted}
        fused = {}
        for src, (key, _) in self.edges:
            producer = self.vertices.get(src[0])
            activation = self.vertices[key]
            if (
                producer is not None
                and readers[src] == 1
                and src not in exposed
                and producer.output_ports == ("Output",)
                and activation.input_ports == ("Input",)
                and activation.output_ports == ("Output",)
                and _offers(producer, "apply_with_epilogue")
                and _offers(activation, "epilogue")
                and activation.epilogue() is not None
            ):
                fused[src[0]] = key
        return fused

    def forward(self, inputs: dict, ctx: Context) -> dict:
        timer = profile.active()  # None unless netgraph.profile.timings() is on
        if timer is not None:
            return timer.graph_forward(lambda: self._run_plan(inputs, ctx, timer))
        return self._run_plan(inputs, ctx, None)

    def _run_plan(self, inputs: dict, ctx: Context, timer: profile.Timings | None) -> dict:
        values = {(None, port): inputs[port] for port in self.input_ports}
        base = ctx.path
        fused = self.fused if _fusion else {}
        done: set = set()  # activation vertices already run, fused with their producer
        for key, sources, release in self.plan:
            if key in done:
                continue  # its one input, the producer's output, was never stored
            ctx.path = base + (key,)
            layer: Any = self.vertices[key]
            partner = fused.get(key)
            if partner is not None and ctx.path + ("Output",) not in ctx.wanted:
                layer, key = FusedStep(layer, self.vertices[partner]), partner
                done.add(partner)
            args = {port: values[src] for port, src in sources.items()}
            if timer is None or isinstance(layer, NetGraph):  # a sub-net times its own layers
                outs = layer.forward(args, ctx)
            else:
                outs = timer.run_layer(layer, args, ctx)
            for port in layer.output_ports:
                values[(key, port)] = outs[port]
                if base + (key, port) in ctx.wanted:
                    ctx.captured[base + (key, port)] = outs[port]
            for end in release:
                del values[end]  # free what no later step reads
        ctx.path = base
        return {name: values[src] for name, src in self.outputs.items()}

    # -- bookkeeping --------------------------------------------------------------------------------
    def connections(self) -> list[tuple]:
        """The wiring in the public form, every end explicit (rebuilds an equal graph)."""

        def end(e: End) -> NetPort:
            return NetPort(e[1]) if e[0] is None else NetPort(e[0], e[1])

        wires = [(end(s), end(d)) for s, d in self.edges]
        wires += [(end(src), NetPort(name)) for name, src in self.outputs.items()]
        wires += [(end(src), None) for src in self.muted]
        return wires

    def children(self) -> Iterator[tuple[Any, Layer]]:
        return iter(self.vertices.items())

    def copy(self) -> NetGraph:
        clone = super().copy()
        clone.vertices = {k: v.copy() for k, v in self.vertices.items()}
        clone.outputs = dict(self.outputs)
        return clone

    def config(self) -> dict[str, Any]:
        layers = list(self.vertices.values()) if self.numbered else dict(self.vertices)
        return {"layers": layers, "connections": self.connections()}

    def __str__(self) -> str:
        return tree(self)

    def __getitem__(self, key: Any) -> Layer:
        """``net[k]``: the vertex ``k`` (a number from 1, or a name)."""
        return self.vertices[self._vertex(key)]

    def __len__(self) -> int:
        return len(self.vertices)


class NetChain(NetGraph):
    """Layers applied one after another: "Input" → layer 1 → … → "Output".

    Every layer has one input and one output, except that the first layer may
    have several inputs and the last several outputs: the chain then has those
    same ports, with their names (a loss layer first gives a chain with
    "Input" and "Target").

    Example:
        >>> import numpy as np
        >>> from netgraph import NetChain, NetInitialize
        >>> from layers import LinearLayer
        >>> chain = NetInitialize(NetChain([LinearLayer(3), "Ramp", LinearLayer(1)], input=2))
        >>> chain(np.zeros(2)).shape
        (1,)
    """

    def __init__(self, layers: list | dict, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        if not isinstance(layers, (list, tuple, dict)):
            raise NetError(
                f"NetChain layers must be a list (layers numbered from 1) or a dict of named layers; "
                f"got {type(layers).__name__} {layers!r:.80}"
            )
        keys = list(layers) if isinstance(layers, dict) else list(range(1, len(layers) + 1))
        if not keys:
            raise NetError("a NetChain needs at least one layer")
        converted = {k: as_layer(layers[k] if isinstance(layers, dict) else layers[k - 1], k) for k in keys}
        for i, (k, built) in enumerate(converted.items()):
            ins, outs = len(built.input_ports), len(built.output_ports)
            first, last = i == 0, i == len(keys) - 1
            if (ins > 1 and not first) or (outs != 1 and not last) or outs == 0:
                raise NetError(
                    f"NetChain layer {k!r} ({type(built).__name__}) has inputs {list(built.input_ports)} and outputs "
                    f"{list(built.output_ports)}; only the first layer of a chain may have several inputs and only "
                    f"the last several outputs, every other layer needs one of each"
                )
        first, last = converted[keys[0]], converted[keys[-1]]
        # one input is the chain's "Input"; several are the chain's inputs, under their own names (likewise outputs)
        chain: tuple = tuple(keys) + ((NetPort("Output"),) if len(last.output_ports) == 1 else ())
        if len(first.input_ports) == 1:
            chain = (NetPort("Input"),) + chain
        if len(chain) == 1:  # one layer, several inputs and outputs: nothing to wire, every port is the chain's
            chain = ()
        vertices = converted if isinstance(layers, dict) else [converted[k] for k in keys]
        super().__init__(vertices, [chain] if chain else [], input=input, output=output)

    def config(self) -> dict[str, Any]:
        return {"layers": list(self.vertices.values()) if self.numbered else dict(self.vertices)}
