"""examples/faces_vae.py (seed 003): the report's encoder and decoder tables, its loss, the flipping
batch generator, and a run end to end on a dozen tiny synthetic pictures (one of them damaged)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netgraph import NetChain, NetGraph, NetPort, NetSummary, load
from scripts import EXAMPLES, load_example

OUTPUTS = (
    "samples.png",
    "samples_closer.png",
    "reconstructions.png",
    "interpolation.png",
    "loss.png",
    "vae.png",
    "vae.npz",
)


@pytest.fixture(scope="module")
def faces():
    return load_example("faces_vae")


def conv_parameters(n_in: int, n_out: int, k: int) -> int:
    return n_in * n_out * k * k + n_out


# --- the net ---------------------------------------------------------------------------------------------


def test_encoder_is_table_1(faces):
    enc = faces.build_encoder()
    assert isinstance(enc, NetChain) and enc.port_shapes["Input"] == (3, 64, 48)
    assert enc.port_shapes["Output"] == (3072,)  # 256 × 64/16 × 48/16
    rows = NetSummary(enc).rows
    convs = [r for r in rows if r.kind == "ConvolutionLayer"]
    norms = [r for r in rows if r.kind == "NormalizationLayer"]
    assert len(convs) == 8 and len(norms) == 8 and all(r.parameters == 0 for r in norms)  # affine=False
    assert [r.outputs for r in convs] == [
        "32×32×24", "32×32×24", "64×16×12", "64×16×12", "128×8×6", "128×8×6", "256×4×3", "256×4×3",
    ]  # fmt: skip
    channels = (3, 32, 32, 64, 64, 128, 128, 256, 256)
    kernels = (4, 3) * 4
    want = sum(conv_parameters(a, b, k) for a, b, k in zip(channels, channels[1:], kernels))
    assert NetSummary(enc).total_parameters == want == 1_473_984


@pytest.mark.parametrize("decoder, grid, linear", [("table", (7, 5), 8960), ("mirror", (4, 3), 3072)])
def test_decoder_is_table_2_and_ends_at_64_by_48(faces, decoder, grid, linear):
    assert faces.decoder_grid(decoder=decoder) == grid
    dec = faces.build_decoder(64, decoder=decoder)
    assert dec.port_shapes["Input"] == (64,) and dec.port_shapes["Output"] == (3, 64, 48)
    rows = NetSummary(dec).rows
    deconvs = [r for r in rows if r.kind == "DeconvolutionLayer"]
    assert len(deconvs) == 8
    assert rows[1].outputs == "256×{}×{}".format(*grid)
    assert [r.outputs.split("×")[0] for r in deconvs] == ["256", "128", "128", "64", "64", "32", "32", "3"]
    assert sum(r.kind == "NormalizationLayer" for r in rows) == 7  # none after the last one, which has tanh
    assert rows[-1].kind == "ElementwiseLayer" and dec(np.zeros(64)).shape == (3, 64, 48)
    channels = (256, 256, 128, 128, 64, 64, 32, 32, 3)
    kernels = (3, 4) * 4
    want = 64 * linear + linear + sum(conv_parameters(a, b, k) for a, b, k in zip(channels, channels[1:], kernels))
    assert NetSummary(dec).total_parameters == want
    out = dec(np.random.default_rng(0).normal(size=(2, 64)) * 50)
    assert np.abs(out).max() <= 1  # tanh


def test_vae_ports_are_the_mse_and_the_kl_divergence(faces):
    vae = faces.build_vae(latent=8)
    assert isinstance(vae, NetGraph) and set(vae.output_ports) == {"Loss", "KL"}
    assert NetSummary(vae).total_parameters == 1_473_984 + 2 * (3072 * 8 + 8) + (8 * 8960 + 8960) + 1_473_731
    assert NetSummary(faces.build_vae()).total_parameters == 3_923_459  # the default: latent 64, the table
    x = np.random.default_rng(1).uniform(-1, 1, (3, 3, 64, 48)).astype(np.float32)
    out = vae(x, [NetPort("mn", "Output"), NetPort("logvar", "Output"), NetPort("KL")])
    m, v = (np.asarray(out[NetPort(name, "Output")], np.float64) for name in ("mn", "logvar"))
    want = 0.5 * (m**2 + np.exp(v) - 1 - v).sum(axis=1)
    np.testing.assert_allclose(out[NetPort("KL")], want, rtol=1e-4, atol=1e-5)
    assert np.all(np.asarray(vae(x, NetPort("Loss"))) > 0)
    with pytest.raises(ValueError, match="multiple of 16"):
        faces.build_vae(width=40)


# --- the batches -----------------------------------------------------------------------------------------


def test_batches_visit_each_picture_once_per_round_flipped_at_random(faces):
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, (50, 3, 4, 6), dtype=np.uint8)
    original = train.copy()
    generate = faces.batches(train, 16, seed=3)
    info = {"BatchSize": 16, "Round": 1, "BatchesPerRound": 4}
    got = [generate({**info, "Batch": b, "AbsoluteBatch": b}) for b in range(1, 5)]
    assert [len(g["Input"]) for g in got] == [16, 16, 16, 2]
    images = np.concatenate([g["Input"] for g in got])
    assert images.dtype == np.float32 and images.min() >= -1 and images.max() <= 1
    as_float = (train.astype(np.float32) / 127.5 - 1).reshape(50, -1)
    flipped = (train[..., ::-1].astype(np.float32) / 127.5 - 1).reshape(50, -1)
    matches = []
    for image in images.reshape(50, -1):
        same = np.flatnonzero(np.abs(as_float - image).max(axis=1) < 1e-6)
        mirror = np.flatnonzero(np.abs(flipped - image).max(axis=1) < 1e-6)
        assert len(same) + len(mirror) == 1  # each batch picture is one training picture, maybe mirrored
        matches.append((int(same[0]), False) if len(same) else (int(mirror[0]), True))
    assert sorted(i for i, _ in matches) == list(range(50))  # every picture once in the round
    assert 10 < sum(f for _, f in matches) < 40  # about half of them flipped
    np.testing.assert_array_equal(train, original)  # the training pictures themselves stay as they were
    again = generate({**info, "Batch": 2, "AbsoluteBatch": 2})
    np.testing.assert_array_equal(again["Input"], got[1]["Input"])  # a function of info alone
    other = generate({**info, "Round": 2, "Batch": 2, "AbsoluteBatch": 6})
    assert not np.array_equal(other["Input"], got[1]["Input"])  # a new order in the next round


# --- the whole run ---------------------------------------------------------------------------------------


def face_pictures(folder: Path, n: int) -> None:
    """n small portrait 'faces' (a light ellipse with two dark eyes on a coloured background) and a damaged file."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:40, :30]
    for i in range(n):
        a = np.empty((40, 30, 3), np.uint8)
        a[:] = rng.integers(0, 256, 3)
        cx, cy = 15 + rng.integers(-3, 4), 20 + rng.integers(-3, 4)
        a[((xx - cx) / 9) ** 2 + ((yy - cy) / 13) ** 2 < 1] = rng.integers(150, 256, 3)
        a[cy - 4 : cy - 2, cx - 5 : cx - 2] = 20
        a[cy - 4 : cy - 2, cx + 2 : cx + 5] = 20
        Image.fromarray(a).save(folder / f"face{i:02d}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")


def test_main_trains_on_a_folder_of_pictures_and_writes_its_files(faces, tmp_path, capsys):
    data, out = tmp_path / "faces", tmp_path / "out"
    data.mkdir()
    face_pictures(data, 12)
    argv = ["--data", str(data), "--iterations", "2", "--batch-size", "4", "--latent", "8", "--out", str(out)]
    numbers = faces.main([*argv, "--seed", "0", "--kl-weight", "1e-4", "--temperature", "0.3"])
    printed = capsys.readouterr().out
    assert re.search(r"skipped .*broken\.jpg: truncated image", printed)
    assert "1 files skipped, 12 pictures read" in printed
    assert "8 training, 2 validation, 2 test pictures, 3x64x48" in printed
    assert "2 batches of 4 (--iterations)" in printed
    assert "mean squared error per pixel + 0.0001 * KL; latent size 8" in printed
    assert "kept the net after batch 2" in printed
    assert "from z ~ N(0, 0.3^2 I), closer to the centre" in printed
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert f"{out / name}:" in printed
    assert all(math.isfinite(v) for v in numbers.values())
    assert numbers["test_loss"] == pytest.approx(numbers["test_mse"] + 1e-4 * numbers["test_kl"])
    assert f"test loss {numbers['test_loss']:.4f}" in printed
    assert 0 < numbers["test_mse"] <= 4  # pixels and outputs both lie in [-1, 1]
    assert "time taken:" in printed
    grid = Image.open(out / "samples.png")
    assert grid.size == (8 * 96 + 9 * 2, 8 * 128 + 9 * 2)  # 8×8 cells of 48×64 at scale 2, 2 px borders
    assert np.asarray(grid.convert("L")).std() > 0  # not a blank picture
    trained = load(out / "vae.npz")
    assert trained.port_shapes["Input"] == (3, 64, 48)


def test_main_errors(faces, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    with pytest.raises(faces.DatasetError, match="no usable images"):
        faces.main(["--data", str(empty), "--iterations", "1", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        faces.main(["--latent", "0"])
    with pytest.raises(SystemExit):
        faces.main(["--epochs", "2", "--iterations", "3"])


def test_help_is_the_module_doc():
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "faces_vae.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for text in ("--kl-weight", "--latent", "--temperature", "--decoder", "CelebA", "Fashion-MNIST", "1e-05"):
        assert text in done.stdout, text
