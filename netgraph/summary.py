"""Looking at nets: ``repr``/``print``, a Keras-like summary table, and a drawing.

In a terminal a net prints as text. In Jupyter it shows as its drawing (Graphviz's ``dot`` when it is
installed, else a Pillow drawing with a note on how to get ``dot``; see :mod:`netgraph.drawing`) above a
one-line summary that unfolds into the :class:`NetSummary` table: the ``_repr_*_`` hooks of
:class:`~netgraph.layer.Layer` call :func:`display`. ``NetSummary`` itself shows as an HTML table, and
:func:`draw` writes a drawing to an .svg or .png file or returns it (Jupyter shows it inline).

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

import base64
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from .drawing import FORMATS, Drawing, dot_program, render
from .evaluate import read_inputs
from .layer import Layer, NetError, describe_ports, format_shape, iter_layers, warn_user

#: rows of NetSummary's HTML table, beyond which it says how many more there are
HTML_ROWS = 500

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

    def _repr_html_(self) -> str:
        """The table as HTML (Jupyter shows it so), every cell escaped; at most :data:`HTML_ROWS` rows."""
        header = ("layer", "type", "input", "output", "arrays", "parameters")
        cells = "".join(f"<th style='text-align:left;padding:0 0.6em 0 0'>{h}</th>" for h in header)
        rows = [f"<tr>{cells}</tr>"]
        for r in self.rows[:HTML_ROWS]:
            texts = (r.path, r.kind, r.inputs, r.outputs, r.arrays)
            row = "".join(f"<td style='text-align:left;padding:0 0.6em 0 0'>{escape(t)}</td>" for t in texts)
            rows.append(f"<tr>{row}<td style='text-align:right'>{r.parameters:,}</td></tr>")
        foot = [f"total parameters: {self.total_parameters:,}"]
        if len(self.rows) > HTML_ROWS:
            foot.insert(0, f"… {len(self.rows) - HTML_ROWS:,} more layers (print(summary) shows them all)")
        if self.non_trainable_parameters:
            foot.append(f"non-trainable (moving statistics): {self.non_trainable_parameters:,}")
        foot += [f"input {port!r}: {note}" for port, note in self.inputs.items()]
        lines = "".join(f"<div>{escape(line)}</div>" for line in foot)
        return f"<div class='netgraph-summary'><table>{''.join(rows)}</table>{lines}</div>"

    def headline(self, net: Layer) -> str:
        """One line: the net's kind, layers, parameters and port shapes."""
        leaves, top = len(self.rows), len(getattr(net, "vertices", ())) or 1
        count = f"{top} layer{'s' * (top != 1)}" + (f" ({leaves} in all)" if leaves != top else "")
        return (
            f"{type(net).__name__}: {count}, {self.total_parameters:,} parameters; "
            f"inputs {describe_ports(net, net.input_ports) or '–'}; outputs {describe_ports(net, net.output_ports)}"
        )


def draw(
    net: Layer,
    path: str | Path | None = None,
    *,
    format: str | None = None,  # noqa: A002 - the name matplotlib and Graphviz give it
    scale: int = 1,
    expand: bool | int = False,
    direction: str | None = None,
) -> Path | Drawing:
    """Draw ``net``: its graph ports with their shapes, its vertices, and wires labelled with the shapes they
    carry (see :mod:`netgraph.drawing`). Graphviz's ``dot`` lays it out when it is installed; without it, a
    Pillow drawing (PNG only) is made, with a warning that says how to get ``dot``.

    Args:
        net: a layer or a net.
        path: a file to write (".svg" or ".png"); None returns the :class:`~netgraph.drawing.Drawing`, which
            Jupyter shows inline.
        format: "svg" or "png"; by default the path's suffix, else SVG when ``dot`` is installed, else PNG.
        scale: PNG resolution multiplier (1 to 8).
        expand: draw nested nets as clusters of their own layers, to this depth (True: all); by default
            each nested net is one box.
        direction: "LR" (left to right) or "TB" (top to bottom); by default left to right unless the net
            is more than 10 boxes long.

    Returns:
        The path written, or the drawing.

    Example:
        >>> from netgraph import NetChain
        >>> from layers import LinearLayer
        >>> draw(NetChain([LinearLayer(3), "Ramp"], input=2), format="png").format
        'png'
    """
    fmt = format
    if path is not None:
        fmt = Path(path).suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise NetError(f"draw: the file must end in .svg or .png, got {str(path)!r}")
        if format is not None and format != fmt:
            raise NetError(f"draw: format={format!r} but the file {str(path)!r} is a .{fmt}")
    drawing = render(net, fmt, scale=scale, expand=expand, direction=direction)
    if drawing.note:
        warn_user(f"draw: {drawing.note}")
    return drawing if path is None else drawing.save(path)


def _inline(drawing: Drawing) -> str:
    """The drawing as HTML: the SVG element itself, or the PNG as a data URL."""
    if drawing.format == "svg":  # dot sizes it in points: a point a pixel keeps it within a notebook's width
        svg = str(drawing.data)
        return re.sub(r'(<svg width="[\d.]+)pt" height="([\d.]+)pt"', r'\1px" height="\2px"', svg[svg.find("<svg") :])
    return f"<img src='data:image/png;base64,{base64.b64encode(bytes(drawing.data)).decode()}'/>"


#: What :func:`display` can give: the MIME types of Jupyter's rich display.
MIME_TYPES = ("text/plain", "text/html", "image/svg+xml", "image/png")


def display(net: Layer, formats: Any = MIME_TYPES) -> dict[str, Any]:
    """What Jupyter shows of ``net`` (``Layer._repr_mimebundle_`` and the ``_repr_*_`` hooks), for the MIME
    types ``formats``: "text/html" is the drawing (SVG with ``dot``, else PNG) above a one-line summary that
    unfolds into the :class:`NetSummary` table; "image/svg+xml" is the drawing where ``dot`` is installed,
    "image/png" the Pillow drawing where it is not (a fallback: nothing where the SVG exists);
    "text/plain" is ``repr(net)``, as in a terminal. Nothing is drawn unless a wanted type needs it."""
    wanted = set(formats)
    bundle: dict[str, Any] = {"text/plain": repr(net)} if "text/plain" in wanted else {}
    dot = dot_program() is not None
    if not ("text/html" in wanted or ("image/svg+xml" in wanted and dot) or ("image/png" in wanted and not dot)):
        return bundle
    try:
        drawing: Drawing | None = render(net)
        note = drawing.note
    except NetError as err:  # too big to draw: the summary alone says what it is
        drawing, note = None, str(err)
    if drawing is not None:
        bundle["image/svg+xml" if drawing.format == "svg" else "image/png"] = drawing.data
    if "text/html" in wanted:
        summary = NetSummary(net)
        parts = ["<div class='netgraph-net'>"]
        if drawing is not None:
            parts.append(f"<div style='overflow-x:auto'>{_inline(drawing)}</div>")
        if note:
            parts.append(f"<div style='font-size:smaller;color:#666'>{escape(note)}</div>")
        parts.append(f"<details><summary>{escape(summary.headline(net))}</summary>{summary._repr_html_()}</details>")
        bundle["text/html"] = "".join(parts) + "</div>"
    return {kind: value for kind, value in bundle.items() if kind in wanted}
