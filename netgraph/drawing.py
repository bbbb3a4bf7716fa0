"""Net drawings: Graphviz's ``dot`` lays them out when it is installed, else a plain Pillow drawing.

A net is drawn as its vertices (layer type, defining option), its graph ports (input ports blue, output
ports green, each with its shape) and the wires between them, labelled with the shapes they carry. Nested
nets are one box each ("NetChain · 19 layers"), or, with ``expand=True`` (or a depth), clusters holding
their own vertices. :func:`dot_source` writes that picture as DOT text; ``dot`` (the program, run as a
subprocess: no Python binding is needed) turns it into SVG or PNG with a layout in which labels neither
overlap nor get clipped, as Keras's ``plot_model`` and torchviz do. Without ``dot`` the same picture is drawn
by :func:`pillow_png`, in columns, shapes inside the boxes, with a one-line :data:`DOT_HINT` on how to get
``dot``.

Every text that comes from the user (vertex and port names, layer options) is escaped for DOT's HTML-like
labels, so a name such as ``<b>"x"&`` is drawn as written.

Example:
    >>> from netgraph import NetChain
    >>> from layers import LinearLayer
    >>> text = dot_source(NetChain([LinearLayer(3), "Ramp"], input=2))
    >>> text.startswith("digraph net {") and "LinearLayer" in text and "3" in text
    True
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from PIL import Image, ImageDraw, ImageFont

from .files import atomic_file
from .layer import Layer, NetError, format_shape

#: The note shown with a Pillow drawing: where Graphviz's ``dot`` comes from.
DOT_HINT = (
    "drawn without Graphviz; for a clearer layout install its dot program "
    "(apt-get install graphviz, brew install graphviz or conda install graphviz)"
)
#: Boxes beyond which a net is not drawn (a drawing that large is unreadable, and slow to lay out):
#: draw a part of it instead (``net["enc"]``, :func:`netgraph.NetTake`) or leave nested nets collapsed.
MAX_NODES = 600
#: Seconds ``dot`` may take before the Pillow drawing is used instead.
DOT_TIMEOUT = 60
#: Characters of a layer's option shown in its box before it is cut with "…".
DETAIL_CHARS = 48
FORMATS = ("svg", "png")

_FILL = {"input": "#dbe9ff", "output": "#dcf5e0", "layer": "#fbf5e4", "net": "#efe8fa", "port": "#ffffff"}
_FONT = "Helvetica"


@dataclass(frozen=True)
class Drawing:
    """A drawn net: SVG text or PNG bytes. Jupyter shows it inline (``_repr_svg_``/``_repr_png_``).

    Attributes:
        data: the SVG document (str) or the PNG file (bytes).
        format: "svg" or "png".
        note: empty when ``dot`` drew it; else why the Pillow drawing was used and how to get ``dot``.
    """

    data: str | bytes
    format: str
    note: str = ""

    def _repr_svg_(self) -> str | None:
        return self.data if self.format == "svg" else None  # type: ignore[return-value]

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" else None  # type: ignore[return-value]

    def save(self, path: str | Path) -> Path:
        """Write the drawing to ``path`` (missing folders are created); returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as stream:
            stream.write(self.data.encode("utf-8") if isinstance(self.data, str) else self.data)
        return out

    def __repr__(self) -> str:
        return f"Drawing({self.format}, {len(self.data):,} {'characters' if self.format == 'svg' else 'bytes'})"


# --- the picture, independent of who draws it --------------------------------------------------------


@dataclass
class Box:
    """One box of the picture: a graph port, a layer, a collapsed net, or a port of an expanded net."""

    id: str
    kind: str  # "input", "output", "layer", "net" or "port"
    title: str
    lines: list[str] = field(default_factory=list)
    shapes: str = ""  # what the box puts out, for drawings without edge labels
    cluster: tuple = ()


@dataclass
class Wire:
    source: str
    target: str
    label: str = ""  # the shape carried
    note: str = ""  # which ports, where a layer has several


@dataclass
class Picture:
    boxes: list[Box] = field(default_factory=list)
    wires: list[Wire] = field(default_factory=list)
    clusters: dict[tuple, str] = field(default_factory=dict)  # path of an expanded net -> its title

    def add(self, kind: str, title: str, lines: list[str] | None = None, shapes: str = "", cluster: tuple = ()) -> str:
        box = Box(f"n{len(self.boxes)}", kind, title, lines or [], shapes, cluster)
        self.boxes.append(box)
        return box.id

    def depth(self) -> int:
        """The number of boxes on the longest path: how long the drawing is along its direction."""
        graph = nx.DiGraph()
        graph.add_nodes_from(b.id for b in self.boxes)
        graph.add_edges_from((w.source, w.target) for w in self.wires)
        return nx.dag_longest_path_length(graph) + 1 if self.boxes else 0


def clean(text: Any, limit: int = DETAIL_CHARS) -> str:
    """``text`` on one line, without control characters, cut to ``limit`` characters with "…"."""
    flat = "".join(c if c.isprintable() else " " for c in str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _is_net(layer: Layer) -> bool:
    return hasattr(layer, "vertices") and hasattr(layer, "edges")


def _detail(layer: Layer) -> str:
    """A layer's defining option, as its ``__str__`` gives it ("Ramp", "#1 + #2&"); nothing for a net."""
    if _is_net(layer) or type(layer).__str__ in (object.__str__, Layer.__str__):
        return ""
    return clean(layer)


def _kind(layer: Layer) -> str:
    text = type(layer).__name__
    if _is_net(layer):
        count = len(layer.vertices)  # type: ignore[attr-defined]
        text += f" · {count} layer{'s' * (count != 1)}"
    return text


def _ports_shapes(layer: Layer, ports: tuple[str, ...]) -> str:
    shapes = [format_shape(layer.port_shapes.get(p)) for p in ports]
    if len(ports) == 1:
        return shapes[0]
    return ", ".join(f"{clean(p, 24)}: {s}" for p, s in zip(ports, shapes))


def build_picture(net: Layer, expand: bool | int = False) -> Picture:
    """The boxes and wires of ``net``: its graph ports, its vertices and their wiring; nested nets expanded
    into clusters down to depth ``expand`` (True: all the way)."""
    depth = 10**6 if expand is True else int(expand)
    picture = Picture()
    ins = {p: picture.add("input", clean(p), [format_shape(net.port_shapes.get(p))]) for p in net.input_ports}
    outs = {p: picture.add("output", clean(p), [format_shape(net.port_shapes.get(p))]) for p in net.output_ports}
    if not _is_net(net):
        node = picture.add("layer", type(net).__name__, [d] if (d := _detail(net)) else [], "")
        picture.wires += [Wire(ins[p], node) for p in net.input_ports]
        picture.wires += [Wire(node, outs[p]) for p in net.output_ports]
        return picture
    _add_net(picture, net, (), depth, ins, outs)
    return picture


def _add_net(picture: Picture, net: Any, path: tuple, depth: int, ins: dict[str, str], outs: dict[str, str]) -> None:
    """Add ``net``'s vertices and wires; ``ins``/``outs`` are the boxes of its own ports."""
    top = not path
    feeds: dict[Any, dict[str, str]] = {}  # vertex -> its input port -> the box a wire into it ends at
    gives: dict[Any, dict[str, str]] = {}  # vertex -> its output port -> the box a wire from it starts at
    for key, layer in net.vertices.items():
        title = clean(key, 32)
        if _is_net(layer) and len(path) < depth:
            inner = path + (key,)
            picture.clusters[inner] = f"{title}: {_kind(layer)}"
            feeds[key] = {p: picture.add("port", clean(p), cluster=inner) for p in layer.input_ports}
            gives[key] = {p: picture.add("port", clean(p), cluster=inner) for p in layer.output_ports}
            _add_net(picture, layer, inner, depth, feeds[key], gives[key])
            continue
        lines = [_kind(layer)] + ([d] if (d := _detail(layer)) else [])
        shapes = "→ " + _ports_shapes(layer, layer.output_ports)
        node = picture.add("net" if _is_net(layer) else "layer", title, lines, shapes, path)
        feeds[key] = dict.fromkeys(layer.input_ports, node)
        gives[key] = dict.fromkeys(layer.output_ports, node)

    def collapsed(layer: Layer) -> bool:
        return not _is_net(layer) or len(path) >= depth

    def start(end: tuple) -> tuple[str, str, str]:
        """The box a wire from ``end`` starts at, the shape it carries, and the port's name where one box
        stands for a layer with several outputs."""
        if end[0] is None:
            return ins[end[1]], ("" if top else format_shape(net.port_shapes.get(end[1]))), ""
        layer = net.vertices[end[0]]
        note = clean(end[1], 24) if collapsed(layer) and len(layer.output_ports) > 1 else ""
        return gives[end[0]][end[1]], format_shape(layer.port_shapes.get(end[1])), note

    for src, dst in net.edges:
        box, shape, note = start(src)
        layer = net.vertices[dst[0]]
        if collapsed(layer) and len(layer.input_ports) > 1:
            note = f"{note} → {clean(dst[1], 24)}".strip()
        picture.wires.append(Wire(box, feeds[dst[0]][dst[1]], "" if src[0] is None and top else shape, note))
    for name, src in net.outputs.items():
        box, shape, note = start(src)
        picture.wires.append(Wire(box, outs[name], "" if top else shape, note))


# --- DOT -----------------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """``text`` for a DOT HTML-like label: ``&``, ``<``, ``>`` and ``"`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _label(box: Box) -> str:
    head = f"<B>{escape(box.title)}</B>"
    rest = [escape(line) for line in box.lines]
    if box.kind == "layer" and len(rest) > 1:  # the option, smaller and grey under the type
        rest[1] = f'<FONT POINT-SIZE="9" COLOR="#555555">{rest[1]}</FONT>'
    return "<" + "<BR/>".join([head, *rest]) + ">"


def dot_source(net: Layer, *, expand: bool | int = False, direction: str | None = None) -> str:
    """``net`` as a DOT graph (see the module's docstring); ``direction`` "LR" or "TB", by default
    left to right unless the net is more than 10 boxes long."""
    return _dot(build_picture(net, expand), direction)


def _dot(picture: Picture, direction: str | None) -> str:
    rankdir = direction or ("LR" if picture.depth() <= 10 else "TB")
    lines = [
        "digraph net {",
        f'  graph [rankdir={rankdir}, bgcolor="white", fontname="{_FONT}", fontsize=11, nodesep=0.3, ranksep=0.4, '
        "pad=0.15, labeljust=l];",
        f'  node [shape=box, style="rounded,filled", fontname="{_FONT}", fontsize=11, color="#555555", '
        'margin="0.12,0.05", height=0.3];',
        f'  edge [fontname="{_FONT}", fontsize=9, color="#666666", fontcolor="#8b1a1a", arrowsize=0.7];',
    ]
    by_cluster: dict[tuple, list[Box]] = {}
    for box in picture.boxes:
        by_cluster.setdefault(box.cluster, []).append(box)

    def node(box: Box, indent: str) -> str:
        style = {"layer": "filled", "port": "rounded,dashed,filled"}.get(box.kind, "rounded,filled")
        extra = ", peripheries=2" if box.kind == "net" else ""
        extra += ", fontsize=9, height=0.2" if box.kind == "port" else ""
        return f'{indent}{box.id} [label={_label(box)}, style="{style}", fillcolor="{_FILL[box.kind]}"{extra}];'

    def cluster(path: tuple, indent: str) -> None:
        for box in by_cluster.get(path, []):
            lines.append(node(box, indent))
        for inner in (p for p in picture.clusters if len(p) == len(path) + 1 and p[:-1] == path):
            lines.append(f"{indent}subgraph cluster_{list(picture.clusters).index(inner)} {{")
            lines.append(
                f'{indent}  label=<<B>{escape(picture.clusters[inner])}</B>>; style="rounded,dashed"; '
                f'color="#8c7ab8"; fontsize=10;'
            )
            cluster(inner, indent + "  ")
            lines.append(f"{indent}}}")

    cluster((), "  ")
    inputs = [b.id for b in picture.boxes if b.kind == "input"]
    outputs = [b.id for b in picture.boxes if b.kind == "output"]
    if inputs:
        lines.append(f"  {{rank=source; {'; '.join(inputs)}}}")
    if outputs:
        lines.append(f"  {{rank=sink; {'; '.join(outputs)}}}")
    for wire in picture.wires:
        parts = [escape(wire.label)] if wire.label else []
        if wire.note:
            parts.append(f'<FONT COLOR="#555555">{escape(wire.note)}</FONT>')
        label = f" [label=<{'<BR/>'.join(parts)}>]" if parts else ""
        lines.append(f"  {wire.source} -> {wire.target}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class DotError(Exception):
    """``dot`` ran but gave no picture (an internal signal: the Pillow drawing is used instead)."""


def run_dot(program: str, source: str, fmt: str, scale: int = 1) -> bytes:
    """``dot -T<fmt>`` on ``source``: the SVG or PNG it writes; DotError if it fails or takes too long."""
    command = [program, f"-T{fmt}"] + ([f"-Gdpi={96 * scale}"] if fmt == "png" else [])
    try:
        done = subprocess.run(command, input=source.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DotError(f"dot took more than {DOT_TIMEOUT} s") from None
    except OSError as err:
        raise DotError(f"dot could not run: {err}") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DotError(f"dot failed (exit {done.returncode}): {message[-1] if message else 'no output'}")
    return done.stdout


# --- Pillow ----------------------------------------------------------------------------------------------

#: The characters of netgraph's own labels that Pillow's built-in font lacks, and what it writes instead.
_ASCII = {"×": "x", "→": "->", "·": "-", "…": "..."}


def _font(size: int) -> tuple[Any, bool]:
    """A TrueType font with "×" and "→" (DejaVu Sans, Liberation Sans), True; else Pillow's own, False."""
    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf"):
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size), False
    except TypeError:  # Pillow before 10.1: the fixed bitmap font
        return ImageFont.load_default(), False


def _generations(graph: nx.DiGraph, picture: Picture) -> list[list[str]]:
    """The boxes in columns: each after the boxes that feed it, the graph's outputs last; within a column,
    in the order of the boxes that feed them (two barycentre sweeps), to cross fewer wires."""
    order = {b.id: i for i, b in enumerate(picture.boxes)}
    outputs = [b.id for b in picture.boxes if b.kind == "output"]
    generations = [[k for k in g if k not in outputs] for g in nx.topological_generations(graph)]
    generations = [g for g in generations if g] + ([outputs] if outputs else [])
    generations = [sorted(g, key=order.__getitem__) for g in generations]
    for _ in range(2):
        rank = {k: i for g in generations for i, k in enumerate(g)}
        for g in generations[1:]:
            mean = {k: sum(rank[p] for p in graph.predecessors(k)) / max(1, graph.in_degree(k)) for k in g}
            g.sort(key=lambda k: (mean[k], order[k]))
            rank.update({k: i for i, k in enumerate(g)})
    return generations


def pillow_png(picture: Picture, scale: int = 1) -> bytes:
    """The picture drawn with Pillow: boxes in columns (rows for a long net), wires as straight arrows, each
    box saying what it puts out (no edge labels to overlap); the text is measured, so no label is clipped."""
    font, full = _font(12 * scale)

    def text(s: str) -> str:
        if full:
            return s
        s = "".join(_ASCII.get(c, c) for c in s)
        return "".join(c if " " <= c <= "~" else "?" for c in s)

    graph = nx.DiGraph()
    graph.add_nodes_from(b.id for b in picture.boxes)
    graph.add_edges_from((w.source, w.target) for w in picture.wires)
    boxes = {b.id: b for b in picture.boxes}
    contents = {}
    for b in picture.boxes:
        title = f"{'/'.join(map(str, b.cluster))}/{b.title}" if b.cluster else b.title
        rows = [title, *b.lines] + ([b.shapes] if b.shapes else [])
        contents[b.id] = "\n".join(text(r) for r in rows)
    pen = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad, spacing = 8 * scale, 4 * scale
    sizes = {}
    for key, content in contents.items():
        left, top, right, bottom = pen.multiline_textbbox((0, 0), content, font=font, spacing=spacing)
        sizes[key] = (right - min(left, 0) + 2 * pad, bottom - min(top, 0) + 2 * pad)
    generations = _generations(graph, picture)
    across = len(generations) > 8  # a long net goes down the page, its generations as rows
    gap_main, gap_side = 60 * scale, 18 * scale
    where: dict[str, tuple[int, int]] = {}
    offset = gap_side
    for generation in generations:
        extent = max((sizes[k][1] if across else sizes[k][0]) for k in generation)
        side = gap_side
        for key in generation:
            w, h = sizes[key]
            where[key] = (side, offset) if across else (offset, side)
            side += (w if across else h) + gap_side
        offset += extent + gap_main
    width = max(x + sizes[k][0] for k, (x, y) in where.items()) + gap_side
    height = max(y + sizes[k][1] for k, (x, y) in where.items()) + gap_side
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    grey = (110, 110, 110)
    for wire in picture.wires:
        (ax, ay), (aw, ah) = where[wire.source], sizes[wire.source]
        (bx, by), (bw, bh) = where[wire.target], sizes[wire.target]
        if across:
            start, end = (ax + aw // 2, ay + ah), (bx + bw // 2, by)
            head = [end, (end[0] - 4 * scale, end[1] - 7 * scale), (end[0] + 4 * scale, end[1] - 7 * scale)]
        else:
            start, end = (ax + aw, ay + ah // 2), (bx, by + bh // 2)
            head = [end, (end[0] - 7 * scale, end[1] - 4 * scale), (end[0] - 7 * scale, end[1] + 4 * scale)]
        pen.line([start, end], fill=grey, width=scale)
        pen.polygon(head, fill=grey)
    for key, (x, y) in where.items():
        w, h = sizes[key]
        kind = boxes[key].kind
        fill = tuple(int(_FILL[kind][i : i + 2], 16) for i in (1, 3, 5))
        radius = 3 * scale if kind in ("layer", "net") else 10 * scale
        pen.rounded_rectangle([x, y, x + w, y + h], radius=radius, outline=(70, 70, 70), fill=fill, width=scale)
        pen.multiline_text((x + pad, y + pad), contents[key], fill="black", font=font, spacing=spacing)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- drawing -------------------------------------------------------------------------------------------------


def dot_program() -> str | None:
    """Where Graphviz's ``dot`` is, or None."""
    return shutil.which("dot")


def render(net: Layer, fmt: str | None = None, *, scale: int = 1, expand: bool | int = False,
           direction: str | None = None) -> Drawing:  # fmt: skip
    """``net`` drawn as SVG or PNG (``fmt`` None: SVG when ``dot`` is installed, else PNG), checked options."""
    if fmt is not None and fmt not in FORMATS:
        raise NetError(f"draw: format must be 'svg' or 'png', got {fmt!r}")
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= 8:
        raise NetError(f"draw: scale must be an integer from 1 to 8, got {scale!r}")
    if not isinstance(expand, (bool, int)) or expand < 0:
        raise NetError(f"draw: expand must be True, False or a nesting depth (an integer >= 0), got {expand!r}")
    if direction not in (None, "LR", "TB"):
        raise NetError(f"draw: direction must be 'LR' (left to right), 'TB' (top to bottom) or None, got {direction!r}")
    if not isinstance(net, Layer):
        raise NetError(f"draw: expected a layer or a net, got {type(net).__name__} {net!r:.60}")
    picture = build_picture(net, expand)
    if len(picture.boxes) > MAX_NODES:
        raise NetError(
            f"draw: {net.describe()} makes {len(picture.boxes):,} boxes, more than {MAX_NODES} (drawing.MAX_NODES) "
            f"can show readably; draw a part of it (net[key], NetTake) or leave nested nets collapsed (expand=False)"
        )
    program = dot_program()
    note = DOT_HINT
    if program is not None:
        try:
            data = run_dot(program, _dot(picture, direction), fmt or "svg", scale)
            return Drawing(data.decode("utf-8") if (fmt or "svg") == "svg" else data, fmt or "svg")
        except DotError as err:
            note = f"{err}; drawn with Pillow instead"
    if fmt == "svg":
        raise NetError(f"draw: an SVG drawing needs Graphviz's dot ({note}); draw to PNG instead (format='png')")
    return Drawing(pillow_png(picture, scale), "png", note)
