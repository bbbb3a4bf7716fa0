"""Nets, summaries and pictures in Jupyter: the ``_repr_*_`` hooks, the Graphviz drawing and its Pillow fallback."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

import netgraph.drawing as drawing
from layers import ElementwiseLayer, LinearLayer, ThreadingLayer
from netgraph import NetChain, NetError, NetGraph, NetPort, NetSummary, draw, image_grid
from netgraph.images import NetDecoder
from netgraph.summary import display
from scripts import load_example

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed (apt-get install graphviz)")
SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = '<b>"x"&\'</b>\\l'  # HTML, quotes, an ampersand and a DOT escape sequence


@pytest.fixture
def no_dot(monkeypatch):
    """A machine without Graphviz."""
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real(name, *a, **k))


def small_graph(name: str = "scale", port: str = "b") -> NetGraph:
    return NetGraph(
        {name: ElementwiseLayer(lambda x: 2 * x), "add": ThreadingLayer(lambda a, b: a + b)},
        [(NetPort("a"), name, "add"), (NetPort(port), NetPort("add", "Input2"))],
        ports={"a": 3, port: 3},
    )


def svg_texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]


def polygon_box(element: ET.Element) -> tuple[float, float, float, float] | None:
    shape = element.find(f"{SVG}polygon") if element.find(f"{SVG}path") is None else element.find(f"{SVG}path")
    if shape is None:
        return None
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", shape.get("points") or shape.get("d") or "")]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


# --- the hooks ---------------------------------------------------------------------------------------


@needs_dot
def test_a_net_shows_as_its_drawing_with_shapes_and_a_summary():
    net = small_graph()
    bundle = net._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"}  # no PNG where the SVG exists
    assert bundle["text/plain"] == repr(net) == "NetGraph(2 layers, inputs a: 3, b: 3; outputs 3)"
    texts = svg_texts(bundle["image/svg+xml"])
    assert {"a", "b", "scale", "add", "ThreadingLayer", "Output"} <= set(texts) and "3" in texts
    html = ET.fromstring(bundle["text/html"])  # well-formed: the inline SVG, then the summary
    assert html.find(f".//{SVG}svg") is not None
    assert "NetGraph: 2 layers, 0 parameters" in "".join(html.find(".//summary").itertext())
    assert len(html.findall(".//table/tr")) == 3
    assert net._repr_svg_() == bundle["image/svg+xml"] and net._repr_png_() is None
    assert net._repr_html_() == bundle["text/html"]


def test_a_plain_layer_shows_too_and_its_repr_is_unchanged():
    layer = LinearLayer(3, input=2)
    assert repr(layer) == "LinearLayer(2 → 3)"
    html = ET.fromstring(layer._repr_html_())
    assert "LinearLayer: 1 layer, 9 parameters; inputs 2; outputs 3" in "".join(html.itertext())
    assert layer._repr_mimebundle_(include={"text/plain"}) == {"text/plain": repr(layer)}
    assert "text/html" not in layer._repr_mimebundle_(exclude={"text/html"})


def test_ipython_displays_a_net_with_one_run_of_dot(monkeypatch):
    formatters = pytest.importorskip("IPython.core.formatters")
    runs = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: runs.append(a[0]) or real(*a, **k))
    data, _ = formatters.DisplayFormatter().format(small_graph())
    assert "text/html" in data and data["text/plain"].startswith("NetGraph(")
    assert ("image/svg+xml" in data) == HAVE_DOT and ("image/png" in data) == (not HAVE_DOT)
    assert len(runs) == (1 if HAVE_DOT else 0)


# --- escaping -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_dot", [pytest.param(True, marks=needs_dot), False])
def test_hostile_names_are_drawn_as_written_and_escaped_in_html(with_dot, monkeypatch):
    if not with_dot:
        monkeypatch.setattr(drawing, "dot_program", lambda: None)
    net = small_graph(HOSTILE, HOSTILE + "2")
    bundle = display(net)
    html = bundle["text/html"]
    assert '<b>"x"' not in html and "&lt;b&gt;&quot;x&quot;&amp;" in html
    root = ET.fromstring(html)
    cells = ["".join(td.itertext()) for td in root.iter("td")]
    assert HOSTILE in cells
    summary_line = "".join(root.find(".//summary").itertext())
    assert f"{HOSTILE}2: 3" in summary_line
    if with_dot:
        texts = svg_texts(bundle["image/svg+xml"])
        assert HOSTILE in texts and HOSTILE + "2" in texts
    else:
        assert bundle["image/png"].startswith(PNG_SIGNATURE)


def test_summary_renders_as_an_escaped_html_table():
    chain = NetChain({"lin<1>": LinearLayer(3), "act": "Ramp", "out": LinearLayer(1)}, input=2)
    summary = NetSummary(chain)
    root = ET.fromstring(summary._repr_html_())
    rows = root.findall("./table/tr")
    assert [th.text for th in rows[0]] == ["layer", "type", "input", "output", "arrays", "parameters"]
    assert ["".join(td.itertext()) for td in rows[1]] == [
        "lin<1>",
        "LinearLayer",
        "2",
        "3",
        "Weights 3×2, Biases 3",
        "9",
    ]
    assert len(rows) == 1 + len(summary.rows) == 4
    assert "total parameters: 13" in "".join(root.itertext())
    assert "lin&lt;1&gt;" in summary._repr_html_()


def test_labels_lose_control_characters_and_are_cut():
    assert drawing.clean("a\nb\x00c") == "a b c"
    assert drawing.clean("x" * 100, 10) == "x" * 9 + "…"
    assert drawing.escape('<&">') == "&lt;&amp;&quot;&gt;"


# --- without dot, and when dot fails -------------------------------------------------------------------


def test_without_dot_the_pillow_drawing_comes_with_a_note(no_dot, tmp_path):
    net = small_graph()
    bundle = net._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and bundle["image/png"].startswith(PNG_SIGNATURE)
    assert "data:image/png;base64," in bundle["text/html"] and "apt-get install graphviz" in bundle["text/html"]
    assert net._repr_svg_() is None and net._repr_png_() == bundle["image/png"]
    with pytest.warns(UserWarning, match="apt-get install graphviz"):
        path = draw(net, tmp_path / "net.png")
    with Image.open(path) as image:
        assert image.width > 300 and image.getextrema() != ((255, 255), (255, 255), (255, 255))
    with pytest.raises(NetError, match="SVG drawing needs Graphviz's dot"):
        draw(net, tmp_path / "net.svg")


def test_when_dot_fails_the_pillow_drawing_says_why(monkeypatch):
    monkeypatch.setattr(drawing, "dot_program", lambda: shutil.which("false") or "/bin/false")
    with pytest.warns(UserWarning, match=r"dot failed \(exit 1\)"):
        picture = draw(small_graph())
    assert picture.format == "png" and picture._repr_png_().startswith(PNG_SIGNATURE)


def test_the_pillow_drawing_without_a_truetype_font_writes_ascii(no_dot, monkeypatch):
    real = drawing.ImageFont.truetype

    def missing(font, *args, **kwargs):  # no font file on the system; Pillow's own (in memory) stays
        if isinstance(font, str):
            raise OSError("cannot open resource")
        return real(font, *args, **kwargs)

    monkeypatch.setattr(drawing.ImageFont, "truetype", missing)
    assert drawing._font(12)[1] is False
    with pytest.warns(UserWarning, match="graphviz"):
        assert draw(small_graph(), format="png").data.startswith(PNG_SIGNATURE)


# --- options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"path": "net.pdf"}, "must end in .svg or .png, got '"),
        ({"path": "net.png", "format": "svg"}, "format='svg' but the file '"),
        ({"format": "jpg"}, "format must be 'svg' or 'png', got 'jpg'"),
        ({"scale": 0}, "scale must be an integer from 1 to 8, got 0"),
        ({"expand": -1}, "expand must be True, False or a nesting depth"),
        ({"direction": "up"}, "direction must be 'LR'"),
    ],
)
def test_draw_options_are_checked(kwargs, message, tmp_path):
    path = kwargs.pop("path", None)
    with pytest.raises(NetError, match=re.escape(message)):
        draw(small_graph(), None if path is None else tmp_path / path, **kwargs)
    assert not list(tmp_path.iterdir())


def test_draw_refuses_what_is_not_a_net():
    with pytest.raises(NetError, match="draw: expected a layer or a net, got str"):
        draw("LinearLayer")


def test_a_net_too_big_to_draw_shows_its_summary(monkeypatch):
    monkeypatch.setattr(drawing, "MAX_NODES", 4)
    net = small_graph()
    with pytest.raises(NetError, match="makes 5 boxes, more than 4"):
        draw(net)
    bundle = display(net)
    assert "image/svg+xml" not in bundle and "image/png" not in bundle
    assert "more than 4" in bundle["text/html"] and "<table>" in bundle["text/html"]


# --- the big example nets -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["pegasus_vae", "augment_vae"])
def example_vae(request):
    return load_example(request.param).build_vae()


@needs_dot
@pytest.mark.parametrize("expand", [False, True])
def test_big_example_nets_draw_quickly_without_overlaps(example_vae, expand):
    start = time.perf_counter()
    svg = draw(example_vae, format="svg", expand=expand).data
    assert time.perf_counter() - start < 10
    root = ET.fromstring(svg)
    nodes = [polygon_box(g) for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert len(nodes) >= (40 if expand else 10)
    for a, b in combinations(nodes, 2):  # boxes apart
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    labels = [
        (float(t.get("x")), float(t.get("y")))
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "edge"
        for t in g.iter(f"{SVG}text")
    ]
    assert labels
    for x, y in labels:  # no edge label inside a box
        assert not any(b[0] < x < b[2] and b[1] < y < b[3] for b in nodes), (x, y)
    assert not any(t.endswith("□") or "(unknown)" in t for t in svg_texts(svg))


def test_big_example_nets_draw_with_pillow_too(example_vae, no_dot):
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="graphviz"):
        png = draw(example_vae, format="png", expand=True).data
    assert time.perf_counter() - start < 10
    with Image.open(__import__("io").BytesIO(png)) as image:
        assert 200 < image.width < 2000 and image.height < 20000


# --- pictures -----------------------------------------------------------------------------------------


def test_codec_and_grid_pictures_display_inline():
    grid = image_grid(np.random.default_rng(0).random((4, 1, 8, 8)), columns=2)
    decoded = NetDecoder("Image")(np.zeros((3, 4, 4)))
    for picture in (grid, decoded):
        assert picture._repr_png_().startswith(PNG_SIGNATURE)
    drawn = drawing.Drawing(base64.b64decode(base64.b64encode(PNG_SIGNATURE)), "png")
    assert drawn._repr_svg_() is None and drawn._repr_png_() == PNG_SIGNATURE
