"""The package: import structure, memory behaviour, surgery and inspection."""

from __future__ import annotations

import ast
import gc
import subprocess
import sys
import tracemalloc
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import layers as L
from gradcheck import check_function
from netgraph import (
    NetChain,
    NetDrop,
    NetError,
    NetExtract,
    NetGraph,
    NetInitialize,
    NetPort,
    NetReplacePart,
    NetSummary,
    NetTake,
    ShapeError,
    draw,
)
from netgraph.autograd import primitive

ROOT = Path(__file__).resolve().parents[1]


PACKAGES = ("netgraph", "layers")
#: The three imports that run up from the layer protocol on purpose, each inside one method:
#: ``net(data)`` evaluates, ``net.save(path)`` writes a file, Jupyter's display draws the net.
#: No other import may sit in a function.
DELIBERATE = {
    ("netgraph.layer", "netgraph.evaluate"),
    ("netgraph.layer", "netgraph.io"),
    ("netgraph.layer", "netgraph.summary"),
}
#: The engine core that the layer library builds on.
CORE = {
    "netgraph.backend",
    "netgraph.autograd",
    "netgraph.ops",
    "netgraph.symbolic",
    "netgraph.fused",
    "netgraph.epilogue",
    "netgraph.compiled",
    "netgraph.compiled.epilogue",
    "netgraph.compiled.elementwise",
    "netgraph.compiled.layout",
    "netgraph.compiled.optimizer",
    "netgraph.compiled.windows",
    "netgraph.tuning",
    "netgraph.layer",
    "netgraph.distributions",
    "netgraph.ports",
    "netgraph.files",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    where = ROOT / name.replace(".", "/")
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import statement in ``source``, at any depth."""
    package = module if is_package else module.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.append((target if _is_module(target) else base, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source), False)
    return found


def module_imports() -> nx.DiGraph:
    """Every import between the modules of netgraph/ and layers/, module-level or inside a function."""
    graph = nx.DiGraph()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = module_name(path)
            graph.add_node(name)
            for target, in_function in imports_of(path.read_text(), name, path.stem == "__init__"):
                if target.split(".")[0] in PACKAGES and target != name:
                    graph.add_edge(
                        name,
                        target,
                        in_function=in_function or graph.edges.get((name, target), {}).get("in_function", False),
                    )
    return graph


def test_the_import_scanner_sees_imports_inside_functions():
    source = "import os\nfrom . import ops\ndef f():\n    from .evaluate import evaluate\n    return evaluate\n"
    assert imports_of(source, "netgraph.layer") == [("os", False), ("netgraph.ops", False), ("netgraph.evaluate", True)]
    assert imports_of("from .data import x", "netgraph.train", is_package=True) == [("netgraph.train.data", False)]


def test_no_import_cycles_and_layers_builds_on_the_core():
    graph = module_imports()
    assert DELIBERATE <= set(graph.edges), "the documented imports moved: update DELIBERATE and layer.py's docstring"
    acyclic = graph.copy()
    acyclic.remove_edges_from(DELIBERATE)
    cycles = list(nx.simple_cycles(acyclic))
    assert not cycles, cycles
    assert list(nx.simple_cycles(graph)), "the deliberate imports no longer run upward: drop them from DELIBERATE"
    for node in CORE:
        assert not any(t.startswith("layers") for t in nx.descendants(acyclic, node)), node
    for node in (n for n in acyclic if n.startswith("layers")):
        reached = {t for t in nx.descendants(acyclic, node) if t.startswith("netgraph")}
        assert reached <= CORE, f"{node} reaches {sorted(reached - CORE)} above the engine core"


def test_no_import_inside_a_function_except_the_deliberate_ones():
    graph = module_imports()
    inside = {edge for edge, data in graph.edges.items() if data["in_function"]}
    assert inside == DELIBERATE, sorted(inside - DELIBERATE)


@pytest.mark.parametrize("statement", ["import netgraph", "import layers", "import layers.linear"])
def test_importing_the_package_loads_nothing_heavy(statement):
    heavy = (
        "PIL",
        "networkx",
        "tqdm",
        "IPython",
        "ipywidgets",
        "netgraph.datasets",
        "netgraph.train",
        "netgraph.generate",
        "netgraph.images",
        "netgraph.summary",
        "netgraph.drawing",
        "netgraph.explore",
    )
    code = f"import sys; {statement}; print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]", loaded.stdout
    used = subprocess.run(
        [sys.executable, "-c", code.replace(statement, "from netgraph import NetTrain")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "netgraph.train" in used.stdout  # the check sees a module once it is used


def test_the_lazy_package_gives_every_public_name():
    import netgraph

    for name in netgraph.__all__:
        assert getattr(netgraph, name) is not None, name
    assert netgraph.LinearLayer is L.LinearLayer and netgraph.profile.timings
    with pytest.raises(AttributeError, match="no attribute 'Bogus'"):
        netgraph.Bogus  # noqa: B018


def test_the_checker_catches_a_wrong_derivative():
    @primitive
    def bad_square(x):
        return x * x, lambda g, needs: (g * x,)  # should be 2*x*g

    with pytest.raises(AssertionError, match="central differences"):
        check_function(bad_square, [np.array([1.0, 2.0])])


def test_evaluation_memory_stays_flat():
    net = NetInitialize(
        NetGraph(
            {
                "a": L.LinearLayer(64, input=32),
                "b": L.ElementwiseLayer("Tanh"),
                "c": L.ElementwiseLayer(lambda x: x * x),
                "sum": L.TotalLayer(),
            },
            [(NetPort("Input"), "a"), ("a", "b"), ("a", "c"), (["b", "c"], "sum")],
        )
    )
    x = np.random.default_rng(0).normal(size=(64, 32))
    from netgraph import NetPortGradient

    def run():
        net(x)
        net(x, NetPortGradient("Input"))

    for _ in range(20):
        run()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(300):
        run()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 200_000, f"memory grew by {grown} bytes over 300 evaluations"


def test_extract_take_drop_replace():
    chain = NetInitialize(
        NetChain({"lin": L.LinearLayer(3), "act": L.ElementwiseLayer("Tanh"), "out": L.LinearLayer(1)}, input=2)
    )
    x = np.array([0.5, -0.5])
    w = NetExtract(chain, ("lin", "Weights"))
    assert w.shape == (3, 2)
    w[:] = 0  # a copy: the net is unchanged
    assert np.any(chain["lin"].arrays["Weights"] != 0)
    head = NetTake(chain, "act")
    np.testing.assert_allclose(head(x), chain(x, NetPort("act", "Output")), rtol=1e-6)
    tail = NetDrop(chain, 2)
    np.testing.assert_allclose(tail(head(x)), chain(x), rtol=1e-6)
    zeroed = NetReplacePart(chain, {("out", "Biases"): [5.0]})
    assert float(zeroed(x)[0]) == pytest.approx(float(chain(x)[0]) - float(chain["out"].arrays["Biases"][0]) + 5)
    with pytest.raises(ShapeError, match="Weights"):
        NetReplacePart(chain, {("lin", "Weights"): np.ones((2, 2))})
    swapped = NetReplacePart(chain, {"act": L.ElementwiseLayer("Ramp")})
    assert str(swapped["act"]) == "Ramp"


def test_take_decoder_from_graph():
    vae_like = NetInitialize(
        NetGraph(
            {
                "enc": L.LinearLayer(2, input=4),
                "sample": L.ElementwiseLayer(lambda x: x),
                "dec": NetChain([L.LinearLayer(4)]),
            },
            [(NetPort("Input"), "enc", "sample", "dec")],
        )
    )
    dec = NetTake(vae_like, (NetPort("sample", "Output"), "dec"))
    z = np.array([0.3, -0.1])
    np.testing.assert_allclose(dec(z), vae_like["dec"](z), rtol=1e-6)
    assert NetExtract(vae_like, "dec").port_shapes["Input"] == (2,)


def test_initialize_methods_and_seeding():
    net = NetChain([L.LinearLayer(200, input=100)])
    a, b = NetInitialize(net), NetInitialize(net)
    np.testing.assert_array_equal(a[1].arrays["Weights"], b[1].arrays["Weights"])
    assert abs(a[1].arrays["Weights"].std() - np.sqrt(2 / 100)) < 0.01  # Kaiming
    x = NetInitialize(net, method="Xavier")[1].arrays["Weights"]
    assert abs(x.std() - np.sqrt(2 / 300)) < 0.01
    o = NetInitialize(NetChain([L.LinearLayer(50, input=100)]), method="Orthogonal")[1].arrays["Weights"]
    np.testing.assert_allclose(o @ o.T, np.eye(50), atol=1e-5)
    from netgraph import All

    again = NetInitialize(a, All, random_seeding=5)
    assert not np.array_equal(again[1].arrays["Weights"], a[1].arrays["Weights"])
    kept = NetInitialize(a, random_seeding=5)
    np.testing.assert_array_equal(kept[1].arrays["Weights"], a[1].arrays["Weights"])
    with pytest.raises(NetError, match="unknown port shapes"):
        NetInitialize(NetChain([L.LinearLayer(3)]))


def test_summary_and_drawing(tmp_path):
    net = NetChain([L.LinearLayer(3), "Ramp", L.LinearLayer(1)], input=2)
    summary = NetSummary(net)
    assert summary.total_parameters == 13
    assert "LinearLayer" in str(summary) and "total parameters: 13" in str(summary)
    assert "1: LinearLayer" in str(net)
    png = draw(net, tmp_path / "net.png")
    from PIL import Image

    with Image.open(png) as image:
        assert image.size[0] > 400 and image.getextrema() != ((255, 255), (255, 255), (255, 255))


def test_take_from_a_vertex_names_the_cut_input_after_the_port_it_feeds():
    net = NetInitialize(
        NetGraph(
            {"enc": L.LinearLayer(2, input=4), "dec": NetChain([L.LinearLayer(4)])}, [(NetPort("Input"), "enc", "dec")]
        )
    )
    dec = NetTake(net, ("dec", "dec"))
    assert dec.input_ports == ("Input",) and dec.port_shapes["Input"] == (2,)
    np.testing.assert_allclose(dec(np.array([0.1, 0.2])), net["dec"](np.array([0.1, 0.2])), rtol=1e-6)
