"""The tutorial notebook examples/mnist_vae.ipynb: committed without outputs, and executed headlessly from top to
bottom with a few batches on tiny MNIST-format files (a kernel of this interpreter, made in a temporary folder); no
cell may fail, and the cells that draw nets, check latentLoss and generate pictures show what they should."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts import idx_folder, load_example

nbformat = pytest.importorskip("nbformat", reason="the notebook extra (nbformat) is not installed")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "mnist_vae.ipynb"
KERNEL = "netgraph-tests"


def read_notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_the_notebook_is_committed_without_outputs():
    notebook = read_notebook()
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 10
    with_outputs = [n for n, cell in enumerate(notebook.cells) if cell.get("outputs") or cell.get("execution_count")]
    assert with_outputs == [], f"cells {with_outputs} have outputs: clear them before committing"
    assert "widgets" not in notebook.metadata, "saved widget state: clear it before committing"


def test_the_notebook_shows_the_posts_nets():
    """The post's nets are written out in the notebook, its latentLoss graph in the post's own wiring."""
    source = "\n".join(cell.source for cell in read_notebook().cells if cell.cell_type == "code")
    assert '(NetPort("mn"), 3), (NetPort("sd"), 4), (NetPort("sd"), 5), ([3, 4, 5], 2, 6, 1)' in source
    assert "ConvolutionLayer(64, 3, stride=2)" in source and "DeconvolutionLayer(32, 3, stride=2)" in source
    assert 'NetExtract(trained, "dec")' in source and "explore(trained, images=test)" in source
    tags = {tag for cell in read_notebook().cells for tag in cell.metadata.get("tags", [])}
    assert {"parameters", "explore"} <= tags


def kernel_of_this_python(folder: Path) -> Path:
    """A kernelspec in ``folder`` that starts this interpreter's ipykernel (for JUPYTER_PATH)."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "netgraph tests", "language": "python"})
    )
    return folder


def outputs_of(cell) -> str:
    """The text and the kinds of data a cell showed, one string."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.extend(output.get("data", {}))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_the_notebook_runs_from_top_to_bottom(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra (nbclient) is not installed")
    pytest.importorskip("ipykernel", reason="the notebook extra (ipykernel) is not installed")
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_of_this_python(tmp_path / "jupyter")))
    monkeypatch.setenv("NETGRAPH_TUTORIAL_ITERATIONS", "3")
    monkeypatch.setenv("NETGRAPH_TUTORIAL_DATA", str(idx_folder(tmp_path / "idx")))
    monkeypatch.setenv("NETGRAPH_TUTORIAL_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("NETGRAPH_NUM_THREADS", "1")
    notebook = read_notebook()
    if importlib.util.find_spec("netgraph.explore") is None:  # the explorer's cell needs netgraph.explore
        notebook.cells = [cell for cell in notebook.cells if "explore" not in cell.metadata.get("tags", [])]
    client = nbclient.NotebookClient(
        notebook, kernel_name=KERNEL, timeout=120, startup_timeout=60, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # a failing cell raises CellExecutionError, with the cell and its traceback

    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [outputs_of(cell) for cell in cells if any(o.output_type == "error" for o in cell.outputs)]
    assert errors == []
    shown = {cell.source.strip().splitlines()[-1]: outputs_of(cell) for cell in cells}
    for net in ("encoder", "decoder", "reparametrize", "latent_loss", "vae", "dec"):
        assert "text/plain" in shown[net], f"the cell ending in {net!r} shows nothing"
    assert "NetGraph(6 layers" in shown["reparametrize"] and "NetGraph(11 layers" in shown["vae"]
    checked = next(outputs_of(cell) for cell in cells if "closed form" in cell.source)
    assert "the same: True" in checked
    pictures = [cell.source.strip().splitlines()[-1] for cell in cells if "image/png" in outputs_of(cell)]
    assert len(pictures) >= 5, pictures  # the data, the loss plot, samples, reconstructions, interpolations
    assert "3 batches of 32" in next(outputs_of(cell) for cell in cells if "NetTrain(" in cell.source)
    assert (tmp_path / "out" / "vae.npz").is_file()


# --- the README's pictures (examples/make_pictures.py) ----------------------------------------------------------


def test_the_committed_pictures_are_small():
    pictures = sorted((ROOT / "docs" / "pictures").glob("*.png"))
    assert pictures, "docs/pictures/ has no pictures: make pictures"
    assert [(p.name, p.stat().st_size) for p in pictures if p.stat().st_size > 200_000] == []
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in pictures if f"docs/pictures/{p.name}" not in readme] == []


def test_a_big_picture_is_written_under_200_kb(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, size=(500, 700, 3), dtype=np.uint8)
    path = load_example("make_pictures").small_png(Image.fromarray(noise), tmp_path / "noise.png")
    assert 0 < path.stat().st_size <= 200_000
    assert Image.open(path).width >= 200


def test_make_pictures_draws_the_net_samples_and_the_panel(tmp_path, capsys):
    """From a (tiny) trained seed-001 net where a quick run leaves it: no training in make_pictures itself."""
    work = tmp_path / "work"
    argv = ["--data", str(idx_folder(tmp_path / "idx")), "--iterations", "3", "--batch-size", "8"]
    load_example("mnist_vae").main([*argv, "--out", str(work / "mnist_vae")])
    pictures = load_example("make_pictures")
    folders = ["--out", str(tmp_path / "pictures"), "--trained", str(tmp_path / "none"), "--work", str(work)]
    written = pictures.main(["--only", "net", "samples", "panel", "--examples", "mnist_vae", *folders])
    assert sorted(p.name for p in written) == ["net.png", "panel.png", "samples_mnist_vae.png"]
    assert f"the quick run's net {work / 'mnist_vae' / 'vae.npz'}" in capsys.readouterr().out
    for path in written:
        assert 0 < path.stat().st_size <= 200_000 and Image.open(path).width > 100
    assert Image.open(tmp_path / "pictures" / "samples_mnist_vae.png").size == (8 * 58 + 2, 4 * 58 + 2)
