"""examples/augment_vae.py: the project's 64×64×3 VAE (its parameter counts, without training), one training
step at full size on a dozen synthetic pictures, generation from the saved net, and the command line."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layers import BatchNormalizationLayer, ConvolutionLayer, DeconvolutionLayer, ElementwiseLayer
from netgraph import BackendError, NetExtract, NetGraph, NetSummary, cli, gpu_available, load
from netgraph.datasets import DatasetError, to_float
from scripts import EXAMPLES, load_example

OUTPUTS = ("samples.png", "reconstructions.png", "loss.png", "vae.png", "vae.npz")


@pytest.fixture(scope="module")
def augment_vae():
    return load_example("augment_vae")


def parameter_counts(net) -> tuple[int, int, int]:
    """(total, trainable, non-trainable) as Keras counts them: the batch norms' moving statistics are not trained."""
    summary = NetSummary(net)
    total, frozen = summary.total_parameters, summary.non_trainable_parameters
    return total, total - frozen, frozen


@pytest.fixture
def picture_folder(tmp_path: Path) -> Path:
    """12 small colour pictures (a coloured square on black, 48×40) and one file that is not a picture."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        picture = np.zeros((40, 48, 3), dtype=np.uint8)
        top, left = rng.integers(2, 20, size=2)
        picture[top : top + 15, left : left + 15] = rng.integers(80, 256, size=3)
        Image.fromarray(picture).save(folder / f"{i:02d}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_full_size_parameter_counts_match_the_seed(augment_vae):
    encoder, decoder = augment_vae.build_encoder(), augment_vae.build_decoder()
    assert parameter_counts(encoder) == (13_802_688, 13_798_656, 4_032)
    assert parameter_counts(decoder) == (13_283_023, 13_280_009, 3_014)
    # the Keras code's order (sigmoid, then batch norm) has the same arrays
    keras_order = augment_vae.build_decoder(sigmoid_last=False)
    assert parameter_counts(keras_order) == (13_283_023, 13_280_009, 3_014)
    vae = augment_vae.build_vae()
    assert parameter_counts(NetExtract(vae, "enc")) == parameter_counts(encoder)
    assert parameter_counts(vae)[0] == 13_802_688 + 13_283_023


def test_layers_follow_the_seeds_table(augment_vae):
    encoder, decoder = augment_vae.build_encoder(), augment_vae.build_decoder()
    assert encoder.port_shapes["Mu"] == encoder.port_shapes["LogVar"] == (512,)
    convs = [v for v in encoder.vertices["features"].vertices.values() if isinstance(v, ConvolutionLayer)]
    assert [c.port_shapes["Output"] for c in convs] == [
        (32, 64, 64),
        (64, 32, 32),
        (128, 16, 16),
        (256, 8, 8),
        (512, 4, 4),
    ]
    assert [c.array_shapes()["Weights"][2:] for c in convs] == [(5, 5)] * 5
    deconvs = [v for v in decoder.vertices.values() if isinstance(v, DeconvolutionLayer)]
    assert [d.port_shapes["Output"] for d in deconvs] == [
        (256, 8, 8),
        (128, 16, 16),
        (64, 32, 32),
        (32, 64, 64),
        (3, 64, 64),
    ]
    chain = list(decoder.vertices.values())
    assert isinstance(chain[-2], BatchNormalizationLayer) and str(chain[-1]) == "LogisticSigmoid"
    leaky = [v for v in chain if isinstance(v, ElementwiseLayer) and "0.02" in str(v)]
    signs = np.where(np.arange(256 * 8 * 8).reshape(256, 8, 8) % 2 == 0, -1.0, 2.0)
    assert len(leaky) == 4 and np.allclose(leaky[0](signs), np.where(signs < 0, -0.02, 2.0))
    out = decoder(np.random.default_rng(0).standard_normal((2, 512)))
    assert out.shape == (2, 3, 64, 64) and out.min() >= 0 and out.max() <= 1


def test_kl_graph_is_the_closed_form(augment_vae):
    rng = np.random.default_rng(1)
    mu, log_var = rng.normal(size=(3, 5)), 0.5 * rng.normal(size=(3, 5))
    closed = 0.5 * (mu**2 + np.exp(log_var) - 1 - log_var).sum(axis=1)
    assert np.allclose(augment_vae.build_kl()({"Mu": mu, "LogVar": log_var}, batch=True), closed, rtol=1e-5)


def test_train_one_step_at_full_size_then_generate(augment_vae, picture_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "train",
        "--data",
        str(picture_folder),
        "--iterations",
        "1",
        "--batch-size",
        "2",
        "--test-images",
        "2",
        "--out",
        str(out),
        "--seed",
        "0",
    ]
    numbers = augment_vae.main(argv)
    printed = capsys.readouterr().out
    assert "broken.png" in printed and "skipped" in printed
    assert "11 training pictures, 1 held out" in printed
    assert "1 batches of 2 (--iterations)" in printed
    assert re.search(r"encoder: 13,802,688 parameters .*: the same", printed)
    assert re.search(r"decoder: 13,283,023 parameters .*: the same", printed)
    assert numbers["encoder_non_trainable"] == 4_032 and numbers["decoder_non_trainable"] == 3_014
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert f"{out / name}:" in printed
    assert math.isfinite(numbers["test_squared_error"]) and numbers["test_squared_error"] > 0
    assert math.isfinite(numbers["test_kl"]) and numbers["test_kl"] >= 0
    assert f"squared error {numbers['test_squared_error']:.1f} per picture" in printed
    assert "time taken:" in printed
    assert Image.open(out / "samples.png").size == (8 * 64 + 9 * 2, 8 * 64 + 9 * 2)
    net = load(out / "vae.npz")
    assert isinstance(net, NetGraph) and list(net.output_ports) == ["Loss", "KL"]

    made = tmp_path / "made"
    result = augment_vae.main(
        ["generate", "--net", str(out / "vae.npz"), "--count", "3", "--out", str(made), "--temperature", "0.5"]
    )
    printed = capsys.readouterr().out
    names = sorted(p.name for p in made.iterdir())
    assert names == ["synthetic_0001.png", "synthetic_0002.png", "synthetic_0003.png"] and result["count"] == 3
    assert "wrote 3 pictures of 64×64" in printed
    pictures = [np.asarray(Image.open(made / name)) for name in names]
    assert all(p.shape == (64, 64, 3) for p in pictures)
    # the same seed and temperature give the same pictures; the decoder is deterministic in evaluation mode
    again = augment_vae.main(
        [
            "generate",
            "--net",
            str(out / "vae.npz"),
            "--count",
            "1",
            "--out",
            str(tmp_path / "b"),
            "--temperature",
            "0.5",
            "--prefix",
            "x",
        ]
    )
    capsys.readouterr()
    assert again["files"][0].name == "x0001.png"
    assert np.array_equal(np.asarray(Image.open(again["files"][0])), pictures[0])


def test_fashion_mnist_stands_in_without_data(augment_vae, capsys):
    try:  # the call of augment_vae.train without --data
        sets = cli.picture_sets(None, augment_vae.SIZE, color_space="RGB", stands_in_for="x", train=3, test=2)
    except DatasetError as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")
    train, test = to_float(sets.train), to_float(sets.test)
    assert train.shape == (3, 3, 64, 64) and test.shape == (2, 3, 64, 64)
    assert np.array_equal(train[:, 0], train[:, 1]) and np.array_equal(train[:, 0], train[:, 2])  # grey copied to RGB
    assert "Fashion-MNIST stands in" in capsys.readouterr().out


def test_bad_arguments_exit_with_a_usage_message(augment_vae, tmp_path, capsys):
    for bad in (
        [],
        ["train", "--epochs", "0"],
        ["train", "--epochs", "1", "--iterations", "5"],
        ["train", "--device", "TPU"],
        ["train", "--train-images", "some"],
        ["generate", "--out", str(tmp_path)],
        ["generate", "--count", "2", "--out", str(tmp_path), "--net", str(tmp_path / "missing.npz")],
    ):
        with pytest.raises(SystemExit) as exit_:
            augment_vae.main(bad)
        assert exit_.value.code == 2, bad
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(gpu_available(), reason="checks the message given without a GPU")
def test_without_a_gpu_says_what_to_install(augment_vae, picture_folder, tmp_path):
    with pytest.raises(BackendError, match="CuPy"):
        augment_vae.main(["train", "--data", str(picture_folder), "--device", "GPU", "--out", str(tmp_path / "o")])


def test_help_of_the_script_and_its_subcommands():
    script = str(EXAMPLES / "augment_vae.py")
    texts = {}
    for extra in ([], ["train"], ["generate"]):
        done = subprocess.run([sys.executable, script, *extra, "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        texts[" ".join(extra)] = done.stdout
    assert "usage: augment_vae.py" in texts[""] and "13,802,688" in texts[""] and "Fashion-MNIST" in texts[""]
    for flag in ("--data", "--epochs", "--iterations", "--train-images", "--batch-size", "--out", "--device", "--seed"):
        assert flag in texts["train"], flag
    for flag in ("--count", "--out", "--net", "--temperature"):
        assert flag in texts["generate"], flag
