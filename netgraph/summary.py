"""Looking at nets: ``repr``/``print``, a Keras-like summary table, and a drawing.

Example:
    >>> from netgraph import NetChain, NetSummary
    >>> from layers import LinearLayer
    >>> print(NetSummary(NetChain([LinearLayer(3), "Ramp", LinearLayer(1)], input=2)))  # doctest: +NORMALIZE_WHITESPACE
    layer  type              input  output  arrays                 parameters
    1      LinearLayer       2      3       Weights 3×2, Biases 3  9
    2      ElementwiseLayer  3      3                              0
    3      LinearLayer       3      1       Weights 1×3, Biases 1  4
    total parameters: 13

Where a net's input shapes are not fixed, ``NetSummary(net, data)`` shows the shapes that evaluating
``net(data)`` would take from the data, and says how each input was read (one example or a batch):

    >>> import numpy as np
    >>> from layers import ConvolutionLayer, FlattenLayer
    >>> chain = NetChain([ConvolutionLayer(4, 3), "Ramp", FlattenLayer()])
    >>> print(NetSummary(chain, np.ones((1, 8, 8))))  # doctest: +NORMALIZE_WHITESPACE
    layer  type              input  output  arrays                    parameters
    1      ConvolutionLayer  1×8×8  4×6×6   Weights 4×1×3×3, Biases 4  40
    2      ElementwiseLayer  4×6×6  4×6×6                              0
    3      FlattenLayer      4×6×6  144                                0
    total parameters: 40
    input 'Input': 1×8×8 array: one example (the port's shape is not fixed, so it takes the array's shape)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from .evaluate import read_inputs
from .layer import Layer, describe_ports, format_shape, iter_layers

#: what NetSummary says of an input port whose shape is not fixed, when it is given no data
OPEN_INPUT = (
    "shape not fixed: an array given here is read as one example and fixes it (batch=True: a batch); "
    "NetSummary(net, data) shows the shapes the data gives"
)


@dataclass
class SummaryRow:
    path: str
    kind: str
    inputs: str
    outputs: str
    arrays: str
    parameters: int


class NetSummary:
    """A table of the leaf layers of ``net``: ports, shapes, arrays and parameter counts.

    With ``data`` (and ``batch``, as for evaluation), the shapes are those that ``net(data, batch=batch)``
    takes from the data for the ports whose shapes are not fixed.

    Attributes:
        rows: one :class:`SummaryRow` per leaf layer.
        inputs: for each input port given data, how its array is read (one example or a batch); without
            data, for each input port whose shape is not fixed, that it is.
        total_parameters: the number of learnable elements (Wolfram's
            "ArraysTotalElementCount"); moving statistics are counted in
            ``non_trainable_parameters`` as well.
    """

    NON_TRAINABLE = ("MovingMean", "MovingVariance")

    def __init__(self, net: Layer, data: Any = None, *, batch: Any = None):
        self.inputs: dict[str, str] = {}
        if data is not None:
            reading = read_inputs(net, data, batch)
            net, self.inputs = reading.net, dict(reading.notes)
        else:
            self.inputs = {p: OPEN_INPUT for p in net.input_ports if net.port_shapes.get(p) is None}
        self.rows: list[SummaryRow] = []
        self.total_parameters = 0
        self.non_trainable_parameters = 0
        for path, layer in iter_layers(net):
            if any(True for _ in layer.children()):
                continue
            shapes = layer.array_shapes() if all(s is not None for s in layer.port_shapes.values()) else {}
            counts = {name: int(np.prod(shapes[name])) if name in shapes else 0 for name in layer.arrays}
            self.total_parameters += sum(counts.values())
            self.non_trainable_parameters += sum(c for n, c in counts.items() if n in self.NON_TRAINABLE)
            arrays = ", ".join(f"{n} {format_shape(shapes.get(n))}" for n in layer.arrays)
            self.rows.append(
                SummaryRow(
                    "/".join(map(str, path)) or "(net)",
                    type(layer).__name__ + (" interleaving=True" if getattr(layer, "interleaving", False) else ""),
                    describe_ports(layer, layer.input_ports),
                    describe_ports(layer, layer.output_ports),
                    arrays,
                    sum(counts.values()),
                )
            )

    def __str__(self) -> str:
        header = ("layer", "type", "input", "output", "arrays", "parameters")
        table = [header] + [(r.path, r.kind, r.inputs, r.outputs, r.arrays, str(r.parameters)) for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
        lines.append(f"total parameters: {self.total_parameters:,}")
        if self.non_trainable_parameters:
            lines.append(f"non-trainable (moving statistics): {self.non_trainable_parameters:,}")
        lines += [f"input {port!r}: {note}" for port, note in self.inputs.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def _plain(shape: Any) -> str:
    return format_shape(shape).replace("×", "x")  # the default bitmap font has no "×"


def draw(net: Layer, path: str | Path, *, scale: int = 1) -> Path:
    """Draw ``net`` (its top-level vertices) to a PNG: layers as boxes in
    topological layers, graph ports as rounded boxes, shapes on the edges."""
    from PIL import Image, ImageDraw, ImageFont

    vertices = dict(net.children()) or {"net": net}
    edges = getattr(net, "edges", [])
    outputs = getattr(net, "outputs", {})
    graph = nx.DiGraph()
    nodes: dict[Any, str] = {}
    for port in net.input_ports:
        nodes[("in", port)] = f"{port}\n{_plain(net.port_shapes.get(port))}"
    for key, layer in vertices.items():
        label = str(layer) if type(layer).__str__ is not object.__str__ else ""
        nodes[("v", key)] = f"{key}: {type(layer).__name__}" + (f"\n{label[:28]}" if label else "")
    for port in net.output_ports:
        nodes[("out", port)] = f"{port}\n{_plain(net.port_shapes.get(port))}"
    graph.add_nodes_from(nodes)
    labels: dict[tuple, str] = {}

    def node_of(end: tuple, side: str) -> Any:
        return (side, end[1]) if end[0] is None else ("v", end[0])

    for src, dst in edges:
        a, b = node_of(src, "in"), node_of(dst, "out")
        graph.add_edge(a, b)
        shape = vertices[dst[0]].port_shapes.get(dst[1]) if dst[0] is not None else None
        labels[(a, b)] = _plain(shape)
    for name, src in outputs.items():
        a = node_of(src, "in")
        graph.add_edge(a, ("out", name))
        labels[(a, ("out", name))] = _plain(net.port_shapes.get(name))
    if not edges and hasattr(net, "input_ports") and "net" in vertices:
        for port in net.input_ports:
            graph.add_edge(("in", port), ("v", "net"))
        for port in net.output_ports:
            graph.add_edge(("v", "net"), ("out", port))
    columns = list(nx.topological_generations(graph))
    font = ImageFont.load_default()
    box_w, box_h, gap_x, gap_y = 200 * scale, 44 * scale, 90 * scale, 26 * scale
    width = len(columns) * (box_w + gap_x) + gap_x
    height = max(len(c) for c in columns) * (box_h + gap_y) + gap_y
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    where: dict[Any, tuple[int, int]] = {}
    for ci, column in enumerate(columns):
        column = sorted(column, key=lambda n: list(nodes).index(n))
        for ri, node in enumerate(column):
            where[node] = (gap_x + ci * (box_w + gap_x), gap_y + ri * (box_h + gap_y))
    for a, b in graph.edges:
        (ax, ay), (bx, by) = where[a], where[b]
        start, end = (ax + box_w, ay + box_h // 2), (bx, by + box_h // 2)
        pen.line([start, end], fill=(90, 90, 90), width=scale)
        pen.polygon([end, (end[0] - 7, end[1] - 4), (end[0] - 7, end[1] + 4)], fill=(90, 90, 90))
        text = labels.get((a, b), "")
        if text:
            pen.text(
                ((start[0] + end[0]) // 2 - 20, (start[1] + end[1]) // 2 - 12), text, fill=(160, 40, 40), font=font
            )
    for node, (x, y) in where.items():
        kind = node[0]
        fill = {"in": (220, 235, 255), "out": (220, 255, 225), "v": (250, 245, 225)}[kind]
        pen.rounded_rectangle(
            [x, y, x + box_w, y + box_h], radius=12 if kind != "v" else 3, outline=(60, 60, 60), fill=fill, width=scale
        )
        pen.multiline_text((x + 8, y + 6), nodes[node], fill="black", font=font, spacing=4)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out
