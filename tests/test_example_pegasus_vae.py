"""examples/pegasus_vae.py end to end on tiny data: CIFAR-10 binary batches, a folder of pictures in class
sub-folders, and the Fashion-MNIST stand-in; each run a couple of batches per phase."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netgraph import BackendError, NetGraph, NetPort, cli, gpu_available, load
from netgraph.datasets import CIFAR10_CLASSES, DatasetError, write_idx
from netgraph.generate import vae_parts
from scripts import EXAMPLES, load_example

OUTPUTS = (
    "pegasus.png",
    "pegasus_pairs.png",
    "samples.png",
    "samples_pretrained.png",
    "reconstructions.png",
    "loss_pretrain.png",
    "loss_finetune.png",
    "vae.png",
    "pretrained.npz",
    "pegasus_vae.npz",
)
GRID = 8 * 64 + 9 * 2  # 8 cells of 32 px at scale 2, with 2 px borders


@pytest.fixture(scope="module")
def pegasus():
    """examples/pegasus_vae.py as a module (examples/ is not a package)."""
    return load_example("pegasus_vae")


def colour_pictures(labels: np.ndarray, seed: int) -> np.ndarray:
    """uint8 (n, 3, 32, 32): a rectangle on a dark background, its colour set by the class."""
    rng = np.random.default_rng(seed)
    images = np.full((len(labels), 3, 32, 32), 20, dtype=np.uint8)
    for image, label in zip(images, labels):
        top, left = rng.integers(2, 16, size=2)
        colour = np.array([25 * label + 10, 255 - 20 * label, 120 + 10 * label], dtype=np.uint8)
        image[:, top : top + rng.integers(8, 14), left : left + rng.integers(8, 14)] = colour[:, None, None]
    return images


def write_cifar_binary(folder: Path, per_batch: int = 8) -> np.ndarray:
    """The CIFAR-10 binary version: data_batch_1.bin ... data_batch_5.bin and test_batch.bin, each record one
    label byte and 3072 pixel bytes (the red plane, the green, the blue). Returns the training labels."""
    folder.mkdir()
    everything = []
    for k, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        labels = (np.arange(per_batch) + k) % 10
        images = colour_pictures(labels, seed=k)
        records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(per_batch, -1)], axis=1)
        (folder / name).write_bytes(records.tobytes())
        if name != "test_batch.bin":
            everything.append(labels)
    return np.concatenate(everything)


@pytest.fixture
def cifar_folder(tmp_path: Path) -> Path:
    write_cifar_binary(tmp_path / "cifar-10-batches-bin")
    return tmp_path


@pytest.fixture
def picture_folder(tmp_path: Path) -> Path:
    """bird/, horse/ and cat/ sub-folders of PNGs, one of them damaged, and a text file."""
    folder = tmp_path / "photos"
    for label, name in ((2, "bird"), (7, "horse"), (3, "cat")):
        (folder / name).mkdir(parents=True)
        for i, image in enumerate(colour_pictures(np.full(7, label), seed=label)):
            Image.fromarray(image.transpose(1, 2, 0)).resize((40, 36)).save(folder / name / f"{i}.png")
    (folder / "horse" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not a picture")
    return folder


def run(pegasus, argv: list[str], capsys) -> tuple[dict, str]:
    numbers = pegasus.main(argv)
    return numbers, capsys.readouterr().out


def test_pegasus_vae_on_cifar10_binary_batches(pegasus, cifar_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(cifar_folder), "--iterations", "2", "--batch-size", "8", "--latent", "16", "--width", "4"]
    numbers, printed = run(pegasus, [*argv, "--out", str(out), "--seed", "3"], capsys)
    assert "data: CIFAR-10 (train) in" in printed
    assert "classes: bird and horse (the paper's)" in printed
    assert "pre-training: 36 training, 4 validation pictures; 2 batches of 8" in printed
    assert re.search(r"fine-tuning on bird and horse: \d+ training, \d+ validation pictures; 2 batches of \d", printed)
    assert "kept the net after batch 2" in printed
    assert "8 horse pictures, each paired with one of" in printed and "slerp at mu = 0.40, 0.44" in printed
    assert "0.66, 0.70" in printed and "time taken:" in printed
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert f"{out / name}:" in printed
    found = re.search(r"held-out bird and horse pictures: BCE (\d+\.\d) \+ KL (\d+\.\d) = (\d+\.\d) nats", printed)
    assert found and float(found.group(3)) == pytest.approx(numbers["finetune_loss"], abs=0.06)
    assert all(math.isfinite(v) for v in numbers.values() if isinstance(v, float))
    assert len(numbers["pair_angles"]) == 8 and all(0 <= a <= 180 for a in numbers["pair_angles"])

    grid = np.asarray(Image.open(out / "pegasus.png").convert("RGB"))
    assert grid.shape == (GRID, GRID, 3)
    cells = [grid[2 + 66 * r : 66 * r + 66, 2 + 66 * c : 66 * c + 66] for r in range(8) for c in range(8)]
    assert len({cell.tobytes() for cell in cells}) > 8  # decoded pictures, not one repeated
    pairs = Image.open(out / "pegasus_pairs.png")
    assert pairs.size[0] > 12 * 64  # 12 columns: the ends, their decodes and the 8 mixtures

    tuned, pretrained = load(out / "pegasus_vae.npz"), load(out / "pretrained.npz")
    assert isinstance(tuned, NetGraph) and list(tuned.output_ports) == ["Loss", "KL"]
    assert tuned.vertices["dec"].port_shapes["Output"] == (3, 32, 32)
    assert tuned.vertices["mn"].port_shapes["Output"] == (16,)
    weights = [net.vertices["dec"].vertices[1].arrays["Weights"] for net in (tuned, pretrained)]
    assert not np.array_equal(*weights)  # fine-tuning changed the pre-trained net


def test_pegasus_vae_on_a_folder_with_class_sub_folders(pegasus, picture_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(picture_folder), "--classes", "Horse", "bird", "--iterations", "1", "--batch-size", "6"]
    numbers, printed = run(pegasus, [*argv, "--latent", "8", "--width", "4", "--out", str(out)], capsys)
    assert "skipped" in printed and "broken.png" in printed and "notes.txt" in printed
    assert "21 pictures from" in printed and "by folder: bird 7, cat 7, horse 7" in printed
    assert "classes: horse and bird (--classes)" in printed
    assert "pre-training: 19 training, 2 validation pictures; 1 batches of 6" in printed
    assert "8 bird pictures, each paired with one of" in printed
    assert all((out / name).is_file() for name in OUTPUTS)
    assert numbers["finetune_seconds"] > 0


def test_pegasus_vae_stands_in_fashion_mnist_without_data(pegasus, tmp_path, monkeypatch, capsys):
    fashion = tmp_path / "data" / "fashion-mnist"
    fashion.mkdir(parents=True)
    labels = np.arange(40, dtype=np.uint8) % 10
    grey = colour_pictures(labels, seed=5)[:, 0, 2:30, 2:30]  # 28×28 grey
    write_idx(fashion / "train-images-idx3-ubyte.gz", grey)
    write_idx(fashion / "train-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("NETGRAPH_DATA", str(tmp_path / "data"))
    out = tmp_path / "out"
    argv = [
        "--pretrain-iterations",
        "1",
        "--finetune-epochs",
        "1",
        "--batch-size",
        "8",
        "--latent",
        "8",
        "--width",
        "4",
    ]
    _, printed = run(pegasus, [*argv, "--out", str(out)], capsys)
    assert "Fashion-MNIST stands in for the paper's CIFAR-10 and STL-10" in printed
    assert "grey channel is copied to red, green and blue" in printed
    assert "classes: Sneaker and Bag (Fashion-MNIST has no birds or horses" in printed
    assert "fine-tuning on Sneaker and Bag" in printed and "1 rounds of 1 batches of" in printed
    assert (out / "pegasus.png").is_file()


def test_pegasus_vae_net_follows_the_paper(pegasus):
    enc, dec = pegasus.build_encoder(), pegasus.build_decoder(16)
    kinds = [type(layer).__name__ for layer in enc.vertices.values()]
    assert kinds.count("ConvolutionLayer") == 4 and kinds.count("BatchNormalizationLayer") == 4
    assert kinds.count("LinearLayer") == 3  # the fourth dense layer is the heads mn and sd
    kinds = [type(layer).__name__ for layer in dec.vertices.values()]
    assert kinds.count("DeconvolutionLayer") == 4 and kinds.count("LinearLayer") == 4
    assert kinds.count("BatchNormalizationLayer") == 3
    assert enc.port_shapes["Output"] == (256,) and dec.port_shapes["Output"] == (3, 32, 32)
    vae = pegasus.build_vae(16)
    assert list(vae.output_ports) == ["Loss", "KL"] and vae.port_shapes["Input"] == (3, 32, 32)
    # encoder 4·4²·(3·32 + 32·64 + 64·128 + 128·256) + 1024·512 + 512·256 + 256·256 + biases + BN scale/shift
    convolutions = 16 * (3 * 32 + 32 * 64 + 64 * 128 + 128 * 256)
    dense = 1024 * 512 + 512 + 512 * 256 + 256 + 256 * 256 + 256
    assert cli.learnable_parameters(enc) == convolutions + dense + 2 * (32 + 64 + 128 + 256)
    assert cli.learnable_parameters(vae.vertices["mn"]) == 256 * 16 + 16

    # the KL port is the closed form of equation (2) for the net's own mn and sd
    x = np.random.default_rng(0).random((5, 3, 32, 32)).astype(np.float32)
    out = vae(x, ["KL", NetPort("mn", "Output"), NetPort("sd", "Output")])
    mn, sd = out[NetPort("mn", "Output")].astype(np.float64), out[NetPort("sd", "Output")].astype(np.float64)
    closed = 0.5 * np.sum(mn**2 + np.exp(2 * sd) - 1 - 2 * sd, axis=1)
    np.testing.assert_allclose(out["KL"], closed, rtol=1e-4)
    mean, log_var = vae_parts(vae)[0](x)
    np.testing.assert_allclose(log_var, 2 * sd, rtol=1e-5, atol=1e-6)


def test_pegasus_vae_classes_by_name_or_number(pegasus):
    labels = np.arange(10)
    cifar = cli.Pictures(np.zeros((10, 3, 32, 32), np.uint8), labels, CIFAR10_CLASSES, "CIFAR-10", "")
    assert pegasus.choose_classes(None, cifar)[:2] == (2, 7)
    assert pegasus.choose_classes(["AIRPLANE", "9"], cifar)[:2] == (0, 9)
    with pytest.raises(DatasetError, match="'unicorn' is not a class of CIFAR-10; its classes are 0 airplane"):
        pegasus.choose_classes(["unicorn", "horse"], cifar)
    with pytest.raises(DatasetError, match="two different classes"):
        pegasus.choose_classes(["horse", "7"], cifar)
    flat = cli.Pictures(np.zeros((3, 3, 32, 32), np.uint8), np.zeros(3, int), ("paintings",), "p", "")
    assert pegasus.choose_classes(None, flat)[:2] == (0, 0)


def test_pegasus_vae_help_and_bad_arguments(pegasus, capsys):
    for bad in (
        ["--iterations", "3", "--pretrain-epochs", "2"],
        ["--finetune-epochs", "1", "--finetune-iterations", "5"],
        ["--pretrain-epochs", "0"],
        ["--classes", "bird"],
        ["--device", "TPU"],
    ):
        with pytest.raises(SystemExit) as exit_:
            pegasus.main(bad)
        assert exit_.value.code == 2, bad
    capsys.readouterr()
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "pegasus_vae.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    usage = done.stdout
    assert "usage: pegasus_vae.py" in usage and "Fashion-MNIST" in usage and "[0.4, 0.7]" in usage
    for flag in ("--data", "--classes", "--pretrain-epochs", "--finetune-epochs", "--iterations", "--train-images"):
        assert flag in usage
    assert "--pretrain-epochs 100 --finetune-epochs 300" in usage


def test_pegasus_vae_unknown_class_exits_with_one_line(cifar_folder, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "pegasus_vae.py"),
            "--data",
            str(cifar_folder),
            "--classes",
            "bird",
            "pegasus",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("pegasus_vae.py: --classes: 'pegasus' is not a class of CIFAR-10")
    assert len(done.stderr.strip().splitlines()) == 1


def test_pegasus_grid_is_slerp_at_the_papers_mus(pegasus, tmp_path, capsys):
    """Codes at 0° (first class) and 90° (second) on the unit circle, and a decoder that paints the code's
    angle as a grey level: slerp at mu has the angle mu · 90°, so the grid's column c is grey 255 · mu_c
    (lerp would give the angle atan(mu / (1 - mu)) instead: 7 and 11 grey levels off at mu = 0.4 and 0.7)."""
    labels = np.repeat([0, 1], 15)
    images = np.broadcast_to(labels[:, None, None, None], (30, 3, 32, 32)).astype(np.float32)

    def encode(x):
        phi = x[:, 0, 0, 0] * np.pi / 2
        return np.stack([np.cos(phi), np.sin(phi)], axis=1), np.zeros((len(x), 2))

    def decode(z):
        fraction = np.arctan2(z[:, 1], z[:, 0]) / (np.pi / 2)
        return np.broadcast_to(fraction[:, None, None, None], (len(z), 3, 32, 32))

    rng = np.random.default_rng(0)
    angles, pool = cli.slerp_pictures(
        cli.Run(tmp_path), encode, decode, images, labels, (0, 1), ("bird", "horse"), mus=pegasus.MUS,
        rows=pegasus.ROWS, pool=pegasus.FIRST_POOL, seed=rng, scale=2, grid="pegasus.png", pairs="pegasus_pairs.png",
    )  # fmt: skip
    assert "8 horse pictures, each paired with one of 15 bird pictures" in capsys.readouterr().out
    assert pool == 15 and np.allclose(angles, 90)
    grid = np.asarray(Image.open(tmp_path / "pegasus.png").convert("L")).astype(float)
    greys = [grid[2 + 66 * r + 32, 2 + 66 * c + 32] for r in range(8) for c in range(8)]
    expected = np.tile(255 * np.linspace(0.4, 0.7, 8), 8)
    np.testing.assert_allclose(greys, expected, atol=1.01)
    lerp = 255 * np.arctan2(np.linspace(0.4, 0.7, 8), 1 - np.linspace(0.4, 0.7, 8)) / (np.pi / 2)
    assert np.max(np.abs(lerp - expected[:8])) > 10  # the test tells slerp from lerp
    assert Image.open(tmp_path / "pegasus_pairs.png").size[0] > 12 * 64


@pytest.mark.skipif(gpu_available(), reason="checks the message given without a GPU")
def test_pegasus_vae_without_a_gpu_says_what_to_install(pegasus, cifar_folder, tmp_path):
    with pytest.raises(BackendError, match="CuPy"):
        pegasus.main(["--data", str(cifar_folder), "--device", "GPU", "--out", str(tmp_path / "out")])


def test_pegasus_vae_on_idx_files_and_on_a_flat_folder(pegasus, tmp_path, capsys):
    idx = tmp_path / "digits"
    idx.mkdir()
    labels = np.arange(30, dtype=np.uint8) % 6
    write_idx(idx / "train-images-idx3-ubyte", colour_pictures(labels, seed=1)[:, 1, 2:30, 2:30])
    write_idx(idx / "train-labels-idx1-ubyte", labels)
    common = ["--iterations", "1", "--batch-size", "8", "--latent", "4", "--width", "2"]
    _, printed = run(
        pegasus, ["--data", str(idx), "--classes", "3", "5", *common, "--out", str(tmp_path / "a")], capsys
    )
    assert "data: MNIST-format files in" in printed and "classes: 3 and 5 (--classes)" in printed
    assert "8 5 pictures, each paired with one of" in printed

    flat = tmp_path / "paintings"
    flat.mkdir()
    for i, image in enumerate(colour_pictures(np.arange(9) % 4, seed=2)):
        Image.fromarray(image.transpose(1, 2, 0)).save(flat / f"{i}.png")
    _, printed = run(pegasus, ["--data", str(flat), *common, "--out", str(tmp_path / "b")], capsys)
    assert "classes: paintings (the only class, so both ends come from it" in printed
    assert "fine-tuning on paintings: 8 training, 1 validation pictures" in printed
    assert (tmp_path / "b" / "pegasus.png").is_file()
