"""examples/cake_vae.py runs end to end on a dozen tiny synthetic pictures (one of them damaged), in seconds."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netgraph import BackendError, NetGraph, NetSummary, gpu_available, load
from netgraph.datasets import FASHION_MNIST_CLASSES, DatasetError, fashion_mnist, to_float
from scripts import EXAMPLES, load_example

OUTPUTS = (
    "samples.png",
    "reconstructions.png",
    "nearest.png",
    "progress.png",
    "loss.png",
    "vae.png",
    "cake_vae.npz",
)


@pytest.fixture(scope="module")
def cake_vae():
    return load_example("cake_vae")


@pytest.fixture
def cake_folder(tmp_path: Path) -> Path:
    """12 colour pictures of a bright disc (30×40, not square) and one damaged JPEG."""
    folder = tmp_path / "cakes"
    folder.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.ogrid[:30, :40]
    for i in range(12):
        picture = np.zeros((30, 40, 3), dtype=np.uint8)
        r, cy, cx = rng.integers(5, 11), rng.integers(10, 20), rng.integers(12, 28)
        picture[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.integers(120, 256, size=3)
        Image.fromarray(picture).save(folder / f"cake{i:02d}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    return folder


def test_cake_vae_trains_writes_pictures_every_round_and_stops_early(cake_vae, cake_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(cake_folder), "--size", "12", "--epochs", "12", "--batch-size", "4"]
    numbers = cake_vae.main([*argv, "--patience", "0", "--learning-rate", "0.003", "--out", str(out), "--seed", "0"])
    printed = capsys.readouterr().out
    assert "skipped" in printed and "broken.jpg" in printed
    assert "12 pictures from" in printed and "10 training, 2 validation pictures" in printed
    assert "at most 12 rounds of 3 batches of 4" in printed
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert f"{out / name}:" in printed
    # patience 0: training stops at the first round whose validation loss is not the lowest so far
    rounds = numbers["rounds"]
    validation = [float(v) for v in re.search(r"validation losses ([\d., ]+)", printed).group(1).split(", ")]
    assert len(validation) == rounds
    assert all(b < a for a, b in zip(validation[:-2], validation[1:-1]))
    if rounds < 12:
        assert "stopped by TrainingStoppingCriterion" in printed and validation[-1] >= validation[-2]
    else:
        assert "stopped by MaxTrainingRounds" in printed and validation[-1] < validation[-2]
    assert numbers["best_round"] == 1 + int(np.argmin(validation))
    generated = sorted(p.name for p in (out / "rounds").glob("generated_*.png"))
    assert generated == [f"generated_{r:04d}.png" for r in range(1, rounds + 1)]
    remade = sorted(p.name for p in (out / "rounds").glob("reconstruction_*.png"))
    assert remade == [f"reconstruction_{r:04d}.png" for r in range(10, rounds + 1, 10)]
    assert Image.open(out / "rounds" / "generated_0001.png").size == (12, 12)
    assert Image.open(out / "samples.png").size == (8 * 72 + 9 * 2, 8 * 72 + 9 * 2)  # 12 px enlarged 6 times
    for key in ("sample_nearest_rms", "validation_nearest_rms", "validation_cross_entropy", "round_loss"):
        assert math.isfinite(numbers[key]) and numbers[key] > 0, key
    assert f"{numbers['sample_nearest_rms']:.3f}" in printed
    assert "time taken:" in printed
    net = load(out / "cake_vae.npz")
    assert isinstance(net, NetGraph) and list(net.output_ports) == ["Loss", "KL"]
    assert net.vertices["dec"].port_shapes["Output"] == (1, 12, 12)


def test_cake_vae_overfit_trains_every_round_without_validation(cake_vae, cake_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(cake_folder), "--size", "8", "--epochs", "10", "--batch-size", "6", "--overfit"]
    numbers = cake_vae.main([*argv, "--kl-weight", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "12 training, 0 validation pictures (--overfit)" in printed
    assert "no early stopping" in printed and "cross-entropy + 1.0 × KL" in printed
    assert numbers["rounds"] == 10 and "stopped by MaxTrainingRounds" in printed
    assert "validation losses" not in printed and "validation_nearest_rms" not in numbers
    assert len(list((out / "rounds").glob("generated_*.png"))) == 10
    assert (out / "rounds" / "reconstruction_0010.png").is_file()
    assert all((out / name).is_file() for name in OUTPUTS)


def test_cake_vae_net_follows_the_keras_example(cake_vae):
    vae = cake_vae.build_vae()
    assert vae.port_shapes["Input"] == (1, 100, 100)
    assert vae.vertices["enc"].port_shapes["Output"] == (128,)
    assert vae.vertices["mn"].port_shapes["Output"] == (150,)
    assert vae.vertices["dec"].port_shapes["Input"] == (150,)
    assert vae.vertices["dec"].port_shapes["Output"] == (1, 100, 100)
    # 64·(1·2·2) + 64 + 2·(64·64·9 + 64) + (160000·128 + 128) in the encoder, 2·(128·150 + 150) for mn and sd,
    # (150·128 + 128) + (128·160000 + 160000) + 3·(64·64·9 + 64) + (64·4 + 1) in the decoder, and 1·1·4 + 1
    assert NetSummary(vae).total_parameters == 41_363_378
    small = cake_vae.build_vae(size=10)
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 10, 10))
    loss = small(x)["Loss"]
    assert loss.shape == (3,) and np.all(loss > 0)
    with pytest.raises(ValueError, match="even"):
        cake_vae.build_vae(size=11)


def test_cake_vae_fashion_mnist_stands_in_without_data(cake_vae, capsys):
    try:
        images, labels = fashion_mnist()
    except DatasetError as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")
    pictures, name, described = cake_vae.load_data(None, 28, 5, "Bag")
    assert "Fashion-MNIST stands in" in capsys.readouterr().out and name == "Fashion-MNIST"
    bags = images[labels == FASHION_MNIST_CLASSES.index("Bag")][:5]
    assert pictures.shape == (5, 1, 28, 28) and np.array_equal(pictures, to_float(bags)[:, None])
    assert cake_vae.load_data(None, 100, 3, "all")[0].shape == (3, 1, 100, 100)


def test_cake_vae_help_and_bad_arguments(cake_vae, capsys):
    with pytest.raises(SystemExit) as exit_:
        cake_vae.main(["--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    for flag in ("--data", "--epochs", "--overfit", "--kl-weight", "--train-images", "--out", "--device", "--seed"):
        assert flag in usage
    for bad in (["--epochs", "0"], ["--size", "15"], ["--kl-weight", "-1"], ["--device", "TPU"]):
        with pytest.raises(SystemExit) as exit_:
            cake_vae.main(bad)
        assert exit_.value.code == 2
    capsys.readouterr()


@pytest.mark.skipif(gpu_available(), reason="checks the message given without a GPU")
def test_cake_vae_without_a_gpu_says_what_to_install(cake_vae, cake_folder, tmp_path):
    with pytest.raises(BackendError, match="CuPy"):
        cake_vae.main(["--data", str(cake_folder), "--device", "GPU", "--out", str(tmp_path / "out")])


def test_cake_vae_runs_as_a_script(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "cake_vae.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage: cake_vae.py" in done.stdout and "Fashion-MNIST" in done.stdout
    missing = subprocess.run(
        [sys.executable, str(EXAMPLES / "cake_vae.py"), "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert missing.returncode == 1 and "cake_vae.py:" in missing.stderr and "no such folder" in missing.stderr
