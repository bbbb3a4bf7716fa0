"""The example scripts run end to end: examples/mnist_vae.py on tiny synthetic data, in a few seconds."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netgraph import BackendError, NetGraph, gpu_available, load
from netgraph.datasets import write_idx
from netgraph.images import _log_ticks, loss_plot
from scripts import EXAMPLES, load_example

OUTPUTS = ("samples.png", "reconstructions.png", "interpolation.png", "loss.png", "vae.png", "vae.npz")


@pytest.fixture(scope="module")
def mnist_vae():
    return load_example("mnist_vae")


def pictures(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 28, 28): a bright rectangle on black, at random places."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for image in images:
        top, left = rng.integers(2, 14, size=2)
        image[top : top + rng.integers(6, 12), left : left + rng.integers(6, 12)] = rng.integers(128, 256)
    return images


@pytest.fixture
def idx_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "idx"
    folder.mkdir()
    for kind, n in (("train", 48), ("t10k", 12)):
        write_idx(folder / f"{kind}-images-idx3-ubyte.gz", pictures(n, seed=n))
        write_idx(folder / f"{kind}-labels-idx1-ubyte.gz", np.zeros(n, dtype=np.uint8))
    return folder


def elbo_printed(text: str) -> float:
    found = re.search(r"test ELBO, Bernoulli likelihood: (-?\d+\.\d+) nats per image", text)
    assert found, text
    return float(found.group(1))


def test_mnist_vae_trains_generates_and_writes_its_files(mnist_vae, idx_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(idx_folder), "--iterations", "3", "--batch-size", "8", "--out", str(out), "--seed", "0"]
    numbers = mnist_vae.main(argv)
    printed = capsys.readouterr().out
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert f"{out / name}:" in printed
    assert "43 training, 5 validation, 12 test images" in printed
    assert "3 batches of 8 (--iterations)" in printed
    assert "kept the net after batch 3" in printed
    assert 'NetTake(trained, (NetPort("z", "Output"), "dec")) gives the same pictures: True' in printed
    assert math.isfinite(elbo_printed(printed)) and elbo_printed(printed) < 0
    assert elbo_printed(printed) == pytest.approx(numbers["elbo_bernoulli"], abs=0.01)
    assert all(math.isfinite(v) for v in numbers.values())
    assert "time taken:" in printed
    samples = Image.open(out / "samples.png")
    assert samples.size == (8 * 56 + 9 * 2, 8 * 56 + 9 * 2)  # 8×8 cells of 28 px at scale 2, 2 px borders
    net = load(out / "vae.npz")
    assert isinstance(net, NetGraph) and list(net.output_ports) == ["Loss", "KL"]
    assert net.vertices["dec"].port_shapes["Output"] == (1, 28, 28)


def test_mnist_vae_reads_a_folder_of_pictures(mnist_vae, tmp_path, capsys):
    folder = tmp_path / "paintings"
    folder.mkdir()
    for i, picture in enumerate(pictures(20, seed=3)):
        Image.fromarray(np.stack([picture] * 3, axis=-1)).resize((40, 30)).save(folder / f"{i:02d}.png")
    (folder / "notes.txt").write_text("not a picture")
    out = tmp_path / "out"
    mnist_vae.main(["--data", str(folder), "--epochs", "1", "--batch-size", "6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "20 pictures from" in printed and "skipped" in printed and "notes.txt" in printed
    assert "16 training, 2 validation, 2 test images" in printed
    assert "1 rounds of 3 batches of 6" in printed
    assert "validation losses" in printed
    assert all((out / name).is_file() for name in OUTPUTS)


def test_mnist_vae_net_follows_the_post(mnist_vae):
    vae = mnist_vae.build_vae()
    assert list(vae.vertices) == [
        "enc",
        "mn",
        "sd",
        "expSd",
        "eps",
        "times",
        "z",
        "dec",
        "loss",
        "scale",
        "latentLoss",
    ]
    assert vae.input_ports == ("Input",) and vae.port_shapes["Input"] == (1, 28, 28)
    assert vae.vertices["enc"].port_shapes["Output"] == (5184,)
    kl = mnist_vae.build_latent_loss(8)
    rng = np.random.default_rng(0)
    mn, sd = rng.normal(size=(4, 8)), 0.3 * rng.normal(size=(4, 8))
    closed = 0.5 * (mn**2 + np.exp(2 * sd) - 1 - 2 * sd).sum(axis=1)
    assert np.allclose(kl({"mn": mn, "sd": sd}), closed, rtol=1e-5)


def test_loss_plot_draws_with_and_without_rounds(mnist_vae):
    batches = list(30 + 100 * np.exp(-np.arange(40) / 8))
    full = loss_plot([60.0, 35.0], [50.0, 33.0], batches, 20, title="t")
    partial = loss_plot([], [], batches[:3], 20)
    empty = loss_plot([], [], [], 20)
    assert full.size == partial.size == empty.size == (720, 440)
    colors = np.unique(np.asarray(full).reshape(-1, 3), axis=0).tolist()
    assert [31, 119, 180] in colors and [255, 127, 14] in colors  # the round and validation curves
    assert _log_ticks(0.5, 3000) == [1.0, 10.0, 100.0, 1000.0]
    assert _log_ticks(100, 165) == [100.0, 120.0, 140.0, 160.0]


def test_mnist_vae_help_and_bad_arguments(mnist_vae, capsys):
    with pytest.raises(SystemExit) as exit_:
        mnist_vae.main(["--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    for flag in (
        "--data",
        "--epochs",
        "--iterations",
        "--batch-size",
        "--out",
        "--device",
        "--seed",
        "--learning-rate",
    ):
        assert flag in usage
    for bad in (["--epochs", "0"], ["--epochs", "1", "--iterations", "5"], ["--device", "TPU"]):
        with pytest.raises(SystemExit) as exit_:
            mnist_vae.main(bad)
        assert exit_.value.code == 2
    capsys.readouterr()


@pytest.mark.skipif(gpu_available(), reason="checks the message given without a GPU")
def test_mnist_vae_without_a_gpu_says_what_to_install(mnist_vae, idx_folder, tmp_path):
    with pytest.raises(BackendError, match="CuPy"):
        mnist_vae.main(["--data", str(idx_folder), "--device", "GPU", "--out", str(tmp_path / "out")])


def test_mnist_vae_runs_as_a_script():
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist_vae.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage: mnist_vae.py" in done.stdout and "Fashion-MNIST" in done.stdout
