"""Data set loaders: IDX files, MNIST-format folders, Fashion-MNIST, MNIST with download (from a local
HTTP server), CIFAR-10 in its binary and python formats, folders of images, splits and augmentation.

Every test works on small files it writes into a temporary folder; the only network is a local
http.server on 127.0.0.1."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import tarfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import netgraph.datasets as ds
from netgraph.datasets import (
    CIFAR10_CLASSES,
    DatasetError,
    DatasetNotFoundError,
    cifar10,
    fashion_mnist,
    image_folder,
    load_mnist_format,
    mnist,
    random_horizontal_flip,
    read_idx,
    split,
    to_float,
    write_idx,
)

# --- IDX ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_every_type(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / f"x-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # writable
    if not suffix:
        assert path.stat().st_size == 4 + 3 * 4 + array.nbytes


def test_idx_header_is_big_endian_and_matches_the_mnist_layout(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([7, 2], np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 2])
    path = tmp_path / "x-idx1-int"
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + struct.pack(">ii", -1, 258))
    assert read_idx(path).tolist() == [-1, 258]


def test_idx_gzip_is_recognised_by_content_not_name(tmp_path):
    write_idx(tmp_path / "a.gz", np.arange(6, dtype=np.uint8).reshape(2, 3))
    os.replace(tmp_path / "a.gz", tmp_path / "a-idx2-ubyte")
    assert read_idx(tmp_path / "a-idx2-ubyte").tolist() == [[0, 1, 2], [3, 4, 5]]


def test_idx_gzip_output_is_reproducible(tmp_path):
    write_idx(tmp_path / "a.gz", np.arange(100, dtype=np.uint8))
    time.sleep(0.01)
    write_idx(tmp_path / "b.gz", np.arange(100, dtype=np.uint8))
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_idx_truncated_file_names_file_and_byte_counts(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, np.zeros((3, 4, 4), np.uint8))  # 4 + 12 + 48 = 64 bytes
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DatasetError, match=r"images-idx3-ubyte: truncated or damaged.*needs 64 bytes, the file has 50"):
        read_idx(path)


def test_idx_extra_bytes_are_reported(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, np.zeros((3, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes() + b"xyz")
    with pytest.raises(DatasetError, match=r"needs 64 bytes, the file has 67 \(extra data"):
        read_idx(path)


def test_idx_truncated_inside_a_valid_gzip_stream(tmp_path):
    path = tmp_path / "images-idx3-ubyte.gz"
    body = bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4]) + bytes(40)
    path.write_bytes(gzip.compress(body))
    with pytest.raises(DatasetError, match=r"images-idx3-ubyte.gz: .*needs 64 uncompressed bytes, the file has 56"):
        read_idx(path)


def test_idx_damaged_gzip_stream(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    write_idx(path, np.arange(200, dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte.gz: damaged gzip data"):
        read_idx(path)
    path.write_bytes(data[:12] + bytes(b ^ 0xFF for b in data[12:-8]) + data[-8:])
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte.gz: damaged gzip data"):
        read_idx(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"expected at least 4 bytes of header, got 0"),
        (b"\x00\x00", r"expected at least 4 bytes of header, got 2"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", r"not an IDX file: its magic number 01000801"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x05", r"unknown IDX type code 0x0A"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00\x00\x01", r"3-dimensional array needs 16 bytes, the file has 12"),
    ],
)
def test_idx_damaged_headers(tmp_path, content, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as info:
        read_idx(path)
    assert "bad-idx" in str(info.value)


def test_idx_missing_file_and_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nope-idx1-ubyte: no such IDX file") as info:
        read_idx(tmp_path / "nope-idx1-ubyte")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetError, match="is a folder"):
        read_idx(tmp_path)


def test_write_idx_refuses_types_idx_cannot_hold(tmp_path):
    with pytest.raises(DatasetError, match=r"x-idx: IDX files hold .* not int64"):
        write_idx(tmp_path / "x-idx", np.arange(3, dtype=np.int64))


# --- MNIST-format folders ------------------------------------------------------------------------------


def make_mnist(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True, dotted: bool = False, seed: int = 0):
    """Writes the four MNIST-format files; returns {kind: (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for stem, array in zip(ds.MNIST_FILES[kind], (images, labels)):
            name = stem.replace("-idx", ".idx") if dotted else stem
            write_idx(folder / (name + (".gz" if gz else "")), array)
        out[kind] = (images, labels)
    return out


@pytest.mark.parametrize("gz, dotted", [(True, False), (False, False), (False, True), (True, True)])
def test_load_mnist_format_train_and_test(tmp_path, gz, dotted):
    written = make_mnist(tmp_path, gz=gz, dotted=dotted)
    for kind in ("train", "test"):
        images, labels = load_mnist_format(tmp_path, kind)
        assert images.shape == (len(written[kind][0]), 28, 28) and images.dtype == np.uint8
        np.testing.assert_array_equal(images, written[kind][0])
        np.testing.assert_array_equal(labels, written[kind][1])


def test_load_mnist_format_counts_must_agree(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz holds 6 images but train-labels-idx1-ubyte.gz"):
        load_mnist_format(tmp_path)


def test_load_mnist_format_missing_and_wrong_files(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"no t10k-labels-idx1-ubyte\[.gz\]"):
        load_mnist_format(tmp_path, "test")
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        load_mnist_format(tmp_path / "missing")
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((6, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.gz: expected labels as unsigned bytes \(N,\)"):
        load_mnist_format(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((6, 28, 28), np.float32))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: expected images as unsigned bytes"):
        load_mnist_format(tmp_path)
    with pytest.raises(ValueError, match="kind must be"):
        load_mnist_format(tmp_path, "validation")


# --- Fashion-MNIST ----------------------------------------------------------------------------------------


def test_fashion_mnist_from_a_folder_and_from_the_debian_location(tmp_path, monkeypatch):
    monkeypatch.setenv("NETGRAPH_DATA", str(tmp_path / "data"))
    written = make_mnist(tmp_path / "given", seed=1)
    np.testing.assert_array_equal(fashion_mnist(tmp_path / "given")[0], written["train"][0])

    debian = make_mnist(tmp_path / "debian", seed=2)
    monkeypatch.setattr(ds, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    images, labels = fashion_mnist(kind="test")
    np.testing.assert_array_equal(images, debian["test"][0])
    np.testing.assert_array_equal(labels, debian["test"][1])

    cached = make_mnist(tmp_path / "data" / "fashion-mnist", seed=3)  # the data folder comes first
    np.testing.assert_array_equal(fashion_mnist()[0], cached["train"][0])


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NETGRAPH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(ds, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "fashion_mnist(directory=" in message and "not-installed" in message
    assert isinstance(info.value, FileNotFoundError)


# --- MNIST download, from a local HTTP server ------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror_root(tmp_path, monkeypatch):
    """A local HTTP server over tmp_path/www; yields (www folder, base URL). Proxies are bypassed."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    www = tmp_path / "www"
    www.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_mnist(mirror_root, monkeypatch):
    """Small MNIST files on the local mirror: good/ (the checksum table is theirs), bad/ (one byte flipped),
    short/ (truncated), long/ (extra bytes); yields (written arrays, base URL)."""
    www, base = mirror_root
    written = make_mnist(www / "good", n_train=5, n_test=3)
    table = {}
    for name in ds.MNIST_CHECKSUMS:
        data = (www / "good" / name).read_bytes()
        table[name] = (len(data), hashlib.sha256(data).hexdigest())
        for folder, damaged in (
            ("bad", data[:20] + bytes([data[20] ^ 1]) + data[21:]),
            ("short", data[:-5]),
            ("long", data + b"tail"),
        ):
            (www / folder).mkdir(exist_ok=True)
            (www / folder / name).write_bytes(damaged)
    monkeypatch.setattr(ds, "MNIST_CHECKSUMS", table)
    return written, base


def cache_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_mnist_download_skips_a_corrupted_mirror_and_caches_atomically(tmp_path, fake_mnist, monkeypatch):
    written, base = fake_mnist
    monkeypatch.setattr(ds, "MNIST_MIRRORS", [base + "bad/", base + "missing/", base + "good/"])
    cache = tmp_path / "cache"
    images, labels = mnist(download=True, cache_dir=cache)
    np.testing.assert_array_equal(images, written["train"][0])
    np.testing.assert_array_equal(labels, written["train"][1])
    assert cache_files(cache) == sorted(ds.MNIST_CHECKSUMS)  # all four, nothing partial
    for name, (_, sha) in ds.MNIST_CHECKSUMS.items():
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == sha

    # from now on the cache is enough: no network needed
    monkeypatch.setattr(ds, "MNIST_MIRRORS", ["http://127.0.0.1:9/"])
    np.testing.assert_array_equal(mnist(cache_dir=cache, kind="test")[1], written["test"][1])
    np.testing.assert_array_equal(mnist(download=True, cache_dir=cache, kind="test")[0], written["test"][0])


def test_mnist_download_rejects_corrupted_files_and_leaves_nothing(tmp_path, fake_mnist, monkeypatch):
    _, base = fake_mnist
    monkeypatch.setattr(ds, "MNIST_MIRRORS", [base + "bad/", base + "short/", base + "long/"])
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as info:
        mnist(download=True, cache_dir=cache)
    message = str(info.value)
    assert "could not download the MNIST file train-images-idx3-ubyte.gz" in message
    assert "bad/train-images-idx3-ubyte.gz: rejected, SHA-256" in message and "does not match" in message
    assert "short/train-images-idx3-ubyte.gz: rejected, got" in message
    assert "long/train-images-idx3-ubyte.gz: rejected, more than the expected" in message
    assert "Nothing partial was kept" in message and "mnist(directory=" in message
    assert cache_files(cache) == []


def test_mnist_without_network_or_files_says_how_to_get_them(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(ds, "MNIST_MIRRORS", [f"http://127.0.0.1:{port}/mnist/"])
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as info:
        mnist(cache_dir=cache)
    message = str(info.value)
    assert str(cache) in message and "mnist(download=True)" in message and "mnist(directory=" in message
    assert f"127.0.0.1:{port}/mnist/" in message and "train-labels-idx1-ubyte.gz" in message

    with pytest.raises(DatasetError) as info:
        mnist(download=True, cache_dir=cache)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/mnist/train-images-idx3-ubyte.gz: URLError" in message
    assert "without network access" in message and "mnist(directory=" in message
    assert cache_files(cache) == []


def test_mnist_default_cache_follows_netgraph_data(tmp_path, fake_mnist, monkeypatch):
    written, base = fake_mnist
    monkeypatch.setattr(ds, "MNIST_MIRRORS", [base + "good/"])
    monkeypatch.setenv("NETGRAPH_DATA", str(tmp_path / "data"))
    np.testing.assert_array_equal(mnist(download=True, kind="test")[0], written["test"][0])
    assert cache_files(tmp_path / "data" / "mnist") == sorted(ds.MNIST_CHECKSUMS)


def test_mnist_from_a_directory(tmp_path):
    written = make_mnist(tmp_path / "mine", gz=False)
    np.testing.assert_array_equal(mnist(tmp_path / "mine")[0], written["train"][0])
    with pytest.raises(ValueError, match="directory= reads IDX files"):
        mnist(tmp_path / "mine", download=True)


def test_mnist_checksum_table_is_complete():
    assert set(ds.MNIST_CHECKSUMS) == {stem + ".gz" for kind in ("train", "test") for stem in ds.MNIST_FILES[kind]}
    for size, sha in ds.MNIST_CHECKSUMS.values():
        assert isinstance(size, int) and size > 0
        assert len(sha) == 64 and int(sha, 16) >= 0
    assert all(m.startswith("https://") and m.endswith("/") for m in ds.MNIST_MIRRORS)


# --- CIFAR-10 ----------------------------------------------------------------------------------------------


def make_cifar(n_per_batch: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {
        name: (rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8), rng.integers(0, 10, n_per_batch).tolist())
        for name in names
    }


def write_cifar_binary(folder: Path, batches) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())


def write_cifar_python(folder: Path, batches, writer=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        batch = {
            b"batch_label": f"{name} of 5".encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
        }
        (folder / name).write_bytes(writer(batch) if writer else pickle.dumps(batch, protocol=2))


class Python2StylePickler(pickle._Pickler):
    """Writes str and bytes as Python 2's BINSTRING, as the original CIFAR-10 python batches are."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_binstring(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_binstring
    dispatch[str] = save_binstring


def python2_style_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Python2StylePickler(buffer, protocol=2).dump(obj)
    data = buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data and b"_codecs" not in data
    return data


def expected_cifar(batches, kind):
    names = [f"data_batch_{i}" for i in range(1, 6)] if kind == "train" else ["test_batch"]
    images = np.concatenate([batches[n][0] for n in names]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([batches[n][1] for n in names]).astype(np.uint8)
    return images, labels


def check_cifar(folder, batches):
    for kind in ("train", "test"):
        images, labels = cifar10(folder, kind)
        want_images, want_labels = expected_cifar(batches, kind)
        assert images.shape == (15 if kind == "train" else 3, 3, 32, 32) and images.dtype == np.uint8
        assert labels.dtype == np.uint8
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)


def test_cifar10_binary_in_the_folder_and_in_its_archive_folder(tmp_path):
    batches = make_cifar()
    write_cifar_binary(tmp_path / "flat", batches)
    check_cifar(tmp_path / "flat", batches)
    write_cifar_binary(tmp_path / "unpacked" / "cifar-10-batches-bin", batches)
    check_cifar(tmp_path / "unpacked", batches)


def test_cifar10_pixel_layout_is_rgb_planes(tmp_path):
    record = bytes([CIFAR10_CLASSES.index("ship")]) + bytes([10] * 1024 + [20] * 1024 + [30] * 1024)
    (tmp_path / "test_batch.bin").write_bytes(record)
    images, labels = cifar10(tmp_path, "test")
    assert images[0, :, 5, 7].tolist() == [10, 20, 30] and CIFAR10_CLASSES[labels[0]] == "ship"


def test_cifar10_python_batches(tmp_path):
    batches = make_cifar(seed=1)
    write_cifar_python(tmp_path / "py3" / "cifar-10-batches-py", batches)
    check_cifar(tmp_path / "py3", batches)
    write_cifar_python(tmp_path / "py2", batches, writer=python2_style_pickle)
    check_cifar(tmp_path / "py2", batches)


def test_cifar10_archives_are_read_without_unpacking(tmp_path):
    batches = make_cifar(seed=2)
    for archive, folder, writer in (
        ("cifar-10-binary.tar.gz", "cifar-10-batches-bin", write_cifar_binary),
        ("cifar-10-python.tar.gz", "cifar-10-batches-py", write_cifar_python),
    ):
        source = tmp_path / "src" / folder
        writer(source, batches)
        place = tmp_path / archive.split(".")[0]
        place.mkdir()
        with tarfile.open(place / archive, "w:gz") as tar:
            tar.add(source, arcname=folder)
        check_cifar(place, batches)
        check_cifar(place / archive, batches)


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_cifar10_pickle_refuses_anything_but_arrays(tmp_path):
    marker = tmp_path / "pwned"
    batches = make_cifar()
    write_cifar_python(tmp_path, batches)
    batch = {b"labels": [1], b"data": np.zeros((1, 3072), np.uint8), b"x": Evil(marker)}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError, match=r"test_batch: refusing to unpickle it: it asks for (posix|os|nt)\.mkdir"):
        cifar10(tmp_path, "test")
    assert not marker.exists()

    (tmp_path / "test_batch").write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(DatasetError, match=r"asks for builtins.eval"):
        cifar10(tmp_path, "test")

    for data, message in (
        (np.zeros((1, 3072), object), r"expected 'data' to be a uint8 array"),
        (np.zeros((1, 3072), np.float32), r"expected 'data' to be a uint8 array"),
        (np.zeros((1, 100), np.uint8), r"expected 'data' of shape \(N, 3072\)"),
    ):
        (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [0]}, protocol=2))
        with pytest.raises(DatasetError, match=message):
            cifar10(tmp_path, "test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=2))
    with pytest.raises(DatasetError, match=r"test_batch: the batch has no 'labels' entry"):
        cifar10(tmp_path, "test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}))
    with pytest.raises(DatasetError, match=r"labels must lie in 0..9"):
        cifar10(tmp_path, "test")
    (tmp_path / "test_batch").write_bytes(b"\x80\x02}q\x00")
    with pytest.raises(DatasetError, match=r"test_batch: not a readable CIFAR-10 python batch"):
        cifar10(tmp_path, "test")


def test_cifar10_damaged_and_missing_files(tmp_path):
    batches = make_cifar()
    write_cifar_binary(tmp_path, batches)
    (tmp_path / "test_batch.bin").write_bytes((tmp_path / "test_batch.bin").read_bytes()[:-10])
    with pytest.raises(DatasetError, match=r"test_batch.bin: expected CIFAR-10 binary records of 3073 bytes.*9209"):
        cifar10(tmp_path, "test")
    (tmp_path / "test_batch.bin").write_bytes(bytes([10]) + bytes(3072))
    with pytest.raises(DatasetError, match=r"test_batch.bin: label 10 out of range"):
        cifar10(tmp_path, "test")
    (tmp_path / "data_batch_5.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"has data_batch_1.bin.*but not data_batch_5.bin"):
        cifar10(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"empty: no CIFAR-10 train batches.*cs.toronto.edu"):
        cifar10(tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        cifar10(tmp_path / "nowhere")


# --- folders of images ---------------------------------------------------------------------------------------


def save_bytes(path: Path, image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **options)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def three_bands(width: int = 30, height: int = 10) -> Image.Image:
    """Red, green and blue thirds, left to right: the centre crop of the wide image is all green."""
    a = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    a[:, :third, 0] = 255
    a[:, third : 2 * third, 1] = 255
    a[:, 2 * third :, 2] = 255
    return Image.fromarray(a)


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    """A 3200 × 2400 smooth photo-like JPEG (made once: encoding takes a moment)."""
    x = np.linspace(0, 255, 3200, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, 2400, dtype=np.float32)[:, None]
    a = np.stack(np.broadcast_arrays(x + 0 * y, y + 0 * x, (x + y) / 2), axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(a).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def image_dir(tmp_path, big_jpeg) -> Path:
    folder = tmp_path / "images"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / ".hidden_dir").mkdir()
    # good files
    three_bands().save(folder / "a_wide.png")
    three_bands(27, 9).transpose(Image.Transpose.ROTATE_90).save(folder / "b_tall.bmp")
    Image.new("RGBA", (12, 20), (0, 0, 255, 0)).save(folder / "c_tall_alpha.png")
    Image.new("L", (1, 1), 77).save(folder / "d_tiny.gif")
    Image.new("RGB", (16, 16), (10, 200, 30)).save(folder / "e.webp", lossless=True)
    Image.new("RGB", (16, 16), (10, 200, 30)).save(folder / "f.tif")
    Image.new("RGB", (16, 16), (10, 200, 30)).save(folder / "G.JPEG", quality=100)
    (folder / "h_huge.jpg").write_bytes(big_jpeg)
    Image.fromarray(np.full((8, 8), 0x8000, np.uint16)).save(folder / "i_16bit.png")
    palette = Image.new("P", (6, 6), 1)
    palette.putpalette([0, 0, 0, 250, 100, 50] + [0] * 762)
    palette.save(folder / "j_palette_transparent.gif", transparency=0)
    Image.new("RGB", (5, 5), (255, 255, 255)).save(folder / "sub" / "k_nested.png")
    Image.new("RGB", (5, 5), (0, 0, 0)).save(folder / "sub" / "deeper" / "l_deeper.png")
    Image.new("RGB", (5, 5)).save(folder / ".hidden.png")
    Image.new("RGB", (5, 5)).save(folder / ".hidden_dir" / "m.png")
    # bad files
    (folder / "bad_empty.png").write_bytes(b"")
    (folder / "bad_random.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes())
    (folder / "bad_text.png").write_text("this is not a PNG")
    (folder / "notes.txt").write_text("a text file")
    jpeg = save_bytes(folder / "bad_truncated.jpg", three_bands(64, 64), format="JPEG")
    (folder / "bad_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    png = save_bytes(folder / "bad_truncated.png", three_bands(64, 64), format="PNG", compress_level=0)
    (folder / "bad_truncated.png").write_bytes(png[: len(png) * 2 // 3])
    gif = bytearray(save_bytes(folder / "bad_zero_size.gif", Image.new("P", (4, 4)), format="GIF"))
    descriptor = gif.index(0x2C, 13)
    gif[6:10] = gif[descriptor + 5 : descriptor + 9] = bytes(4)  # width = height = 0
    (folder / "bad_zero_size.gif").write_bytes(bytes(gif))
    os.symlink(folder / "does-not-exist.png", folder / "bad_link.png")
    return folder


GOOD = [
    "G.JPEG",
    "a_wide.png",
    "b_tall.bmp",
    "c_tall_alpha.png",
    "d_tiny.gif",
    "e.webp",
    "f.tif",
    "h_huge.jpg",
    "i_16bit.png",
    "j_palette_transparent.gif",
    "k_nested.png",
    "l_deeper.png",
]


@pytest.mark.parametrize("resampling", ["Bilinear", "OpenCV"])
def test_image_folder_reads_the_good_and_reports_the_bad(image_dir, resampling):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from any of these files
        images, paths, skipped = image_folder(image_dir, 8, "RGB", resampling=resampling)
    assert [p.name for p in paths] == GOOD
    assert paths[-2] == image_dir / "sub" / "k_nested.png"
    assert images.shape == (len(GOOD), 3, 8, 8) and images.dtype == np.uint8 and images.flags.c_contiguous
    pixel = {p.name: images[i, :, :, :].reshape(3, -1) for i, p in enumerate(paths)}

    def constant(name, rgb, tolerance=0):
        assert np.abs(pixel[name].astype(int) - np.array(rgb)[:, None]).max() <= tolerance, name

    constant("a_wide.png", (0, 255, 0))  # the centre third of a wide image
    constant("b_tall.bmp", (0, 255, 0))  # the centre third of a tall image
    constant("c_tall_alpha.png", (0, 0, 255))  # transparency dropped
    constant("d_tiny.gif", (77, 77, 77))  # 1 × 1, upscaled
    constant("e.webp", (10, 200, 30))
    constant("f.tif", (10, 200, 30))
    constant("G.JPEG", (10, 200, 30), tolerance=3)
    constant("i_16bit.png", (128, 128, 128))  # 16 bits scaled to 8
    constant("j_palette_transparent.gif", (250, 100, 50))
    constant("k_nested.png", (255, 255, 255))
    constant("l_deeper.png", (0, 0, 0))

    reasons = {s.path.name: s.reason for s in skipped}
    assert set(reasons) == {
        "bad_empty.png",
        "bad_link.png",
        "bad_random.jpg",
        "bad_text.png",
        "bad_truncated.jpg",
        "bad_truncated.png",
        "bad_zero_size.gif",
        "notes.txt",
    }
    assert reasons["bad_empty.png"] == "empty file (0 bytes)"
    assert reasons["bad_link.png"].startswith("unreadable: No such file")
    assert reasons["bad_random.jpg"].startswith("not an image Pillow can read")
    assert reasons["bad_text.png"].startswith("not an image Pillow can read")
    assert reasons["bad_truncated.jpg"].startswith("truncated image")
    assert "truncated" in reasons["bad_truncated.png"]
    assert reasons["bad_zero_size.gif"]
    assert reasons["notes.txt"] == "not an image file (extension .txt)"


def test_image_folder_grayscale_and_not_recursive(image_dir):
    images, paths, skipped = image_folder(image_dir, 5, recursive=False)
    assert [p.name for p in paths] == GOOD[:-2]
    assert images.shape == (len(GOOD) - 2, 1, 5, 5)
    green = images[[p.name for p in paths].index("a_wide.png")]
    assert np.all(green == 150)  # Pillow's luma: 255 * 587 / 1000, rounded
    assert not any("k_nested" in str(s.path) for s in skipped)


def test_image_folder_bilinear_matches_pillow_crop_and_resize(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "noise.png")
    images, _, _ = image_folder(tmp_path, 16, "RGB")
    want = Image.fromarray(a[:, 15:55]).resize((16, 16), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(images[0].transpose(1, 2, 0), np.asarray(want))


def test_image_folder_opencv_resampling_is_two_tap_half_pixel_linear(tmp_path):
    Image.fromarray(np.array([[0, 40], [80, 120]], np.uint8)).save(tmp_path / "two.png")
    images, _, _ = image_folder(tmp_path, 4, resampling="OpenCV")
    assert images[0, 0].tolist() == [[0, 10, 30, 40], [20, 30, 50, 60], [60, 70, 90, 100], [80, 90, 110, 120]]

    # the same sampling as netgraph's ResizeLayer ("Linear", half-pixel centres), up to rounding
    from layers import ResizeLayer

    rng = np.random.default_rng(4)
    for side, size in ((37, 16), (9, 20), (64, 28), (5, 5)):
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        got = ds._resize_linear(a, size).transpose(2, 0, 1).astype(int)
        want = ResizeLayer([size, size], input=(3, side, side))(a.transpose(2, 0, 1).astype(np.float32))
        assert np.abs(got - np.asarray(want)).max() <= 1, (side, size)


def test_image_folder_huge_jpeg_is_decoded_reduced_and_close_to_a_full_decode(tmp_path, big_jpeg):
    (tmp_path / "big.jpg").write_bytes(big_jpeg)
    start = time.perf_counter()
    images, _, _ = image_folder(tmp_path, 64, "RGB")
    elapsed = time.perf_counter() - start
    with Image.open(tmp_path / "big.jpg") as im:
        full = im.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR, box=(400, 0, 2800, 2400))
    difference = np.abs(images[0].transpose(1, 2, 0).astype(int) - np.asarray(full))
    assert difference.mean() < 1.5 and difference.max() <= 8
    assert elapsed < 5.0  # a few milliseconds when decoded at 1/8 scale


def test_image_folder_exif_orientation_is_applied(tmp_path):
    a = np.zeros((10, 10, 3), np.uint8)
    a[5:] = 255  # stored: top black, bottom white
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: the bottom goes to the left
    Image.fromarray(a).save(tmp_path / "rotated.jpg", quality=100, exif=exif)
    images, _, _ = image_folder(tmp_path, 10)
    assert images[0, 0, :, 0].min() > 200 and images[0, 0, :, -1].max() < 50


def test_image_folder_decompression_bomb_is_skipped(tmp_path, monkeypatch):
    Image.new("L", (64, 64)).save(tmp_path / "a_large.png")
    Image.new("L", (10, 10)).save(tmp_path / "b_small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    images, paths, skipped = image_folder(tmp_path, 4)
    assert [p.name for p in paths] == ["b_small.png"]
    assert skipped[0].path.name == "a_large.png" and skipped[0].reason.startswith("too large")


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no usable images \(looked for .bmp"):
        image_folder(tmp_path / "empty", 8)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"")
    (tmp_path / "bad" / "y.txt").write_text("")
    with pytest.raises(DatasetError, match=r"bad: no usable images .*all 2 files were skipped"):
        image_folder(tmp_path / "bad", 8)
    with pytest.raises(DatasetNotFoundError, match=r"nowhere: no such folder"):
        image_folder(tmp_path / "nowhere", 8)
    for kwargs, message in (
        ({"size": 0}, "size must be a positive int"),
        ({"size": 8, "color_space": "CMYK"}, "color_space must be"),
        ({"size": 8, "resampling": "Nearest"}, "resampling must be"),
    ):
        with pytest.raises(ValueError, match=message):
            image_folder(tmp_path / "bad", **kwargs)


# --- splits and augmentation ------------------------------------------------------------------------------------


def test_split_fractions_alignment_and_seed():
    x = np.arange(200).reshape(100, 2)
    y = np.arange(100)
    train, valid, test = split((x, y))
    assert [len(part[0]) for part in (train, valid, test)] == [80, 10, 10]
    for xs, ys in (train, valid, test):
        np.testing.assert_array_equal(xs[:, 0], 2 * ys)
    assert sorted(np.concatenate([train[1], valid[1], test[1]]).tolist()) == list(range(100))
    again = split((x, y))
    np.testing.assert_array_equal(again[0][1], train[1])
    assert not np.array_equal(split((x, y), seed=1)[0][1], train[1])
    assert not np.array_equal(train[1], np.sort(train[1]))  # shuffled

    one, rest = split(y, fractions=(0.33, 0.67))
    assert isinstance(one, np.ndarray) and len(one) == 33 and len(rest) == 67
    (part,) = split([x, y], fractions=(0.25,))  # a list works as a tuple; the rest is left out
    assert len(part) == 2 and len(part[0]) == 25


def test_split_errors():
    with pytest.raises(ValueError, match="different numbers of examples"):
        split((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="add up to at most 1"):
        split(np.zeros(10), fractions=(0.8, 0.3))
    with pytest.raises(ValueError, match="add up to at most 1"):
        split(np.zeros(10), fractions=(-0.1, 0.5))
    with pytest.raises(ValueError, match="first \\(example\\) dimension"):
        split(np.float32(3))


def test_random_horizontal_flip():
    images = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5).repeat(50, axis=0)
    original = images.copy()
    out = random_horizontal_flip(images, np.random.default_rng(0))
    np.testing.assert_array_equal(images, original)  # the input is untouched
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, images)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert np.all(flipped | kept) and 20 < flipped.sum() < 80
    np.testing.assert_array_equal(random_horizontal_flip(images, 7), random_horizontal_flip(images, 7))
    np.testing.assert_array_equal(random_horizontal_flip(images, 0, p=1.0), images[..., ::-1])
    np.testing.assert_array_equal(random_horizontal_flip(images, 0, p=0.0), images)
    with pytest.raises(ValueError, match="expected images"):
        random_horizontal_flip(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="p must be"):
        random_horizontal_flip(images, 0, p=1.5)


def test_to_float():
    pixels = np.array([[0, 1, 128, 255]], np.uint8)
    unit = to_float(pixels)
    assert unit.dtype == np.float32 and unit.shape == (1, 4)
    np.testing.assert_allclose(unit, pixels / 255, rtol=1e-6)
    symmetric = to_float(pixels, range=(-1, 1))
    assert symmetric[0, 0] == -1 and symmetric[0, -1] == 1
    np.testing.assert_allclose(symmetric, pixels / 127.5 - 1, rtol=1e-6, atol=1e-7)
    assert to_float(np.array([0, 255], np.int64)).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="look converted already"):
        to_float(unit)
    with pytest.raises(ValueError, match="must lie in 0..255"):
        to_float(np.array([300]))
    with pytest.raises(ValueError, match="low < high"):
        to_float(pixels, range=(1, 0))
    with pytest.raises(ValueError, match="two numbers"):
        to_float(pixels, range=(1,))


# --- pictures of another aspect ratio: size=(width, height) -----------------------------------------------


def test_crop_box_is_the_largest_centred_box_of_the_aspect_ratio():
    assert ds._crop_box(70, 40, 16, 16) == (15, 0, 55, 40)  # a square: the longer side cut to the shorter
    assert ds._crop_box(40, 70, 16, 16) == (0, 15, 40, 55)
    assert ds._crop_box(178, 218, 48, 64) == (7, 0, 171, 218)  # portrait 3:4 from a CelebA-sized picture
    assert ds._crop_box(28, 28, 48, 64) == (3, 0, 24, 28)  # a square loses its sides
    assert ds._crop_box(28, 28, 64, 48) == (0, 3, 28, 24)  # ... or its top and bottom
    assert ds._crop_box(30, 40, 3, 4) == (0, 0, 30, 40)  # already the right shape
    assert ds._crop_box(1, 1, 5, 1) == (0, 0, 1, 1)  # never empty


@pytest.mark.parametrize("resampling", ["Bilinear", "OpenCV"])
def test_image_folder_keeps_the_aspect_ratio_of_a_width_height_size(tmp_path, resampling):
    rng = np.random.default_rng(5)
    wide = rng.integers(0, 256, (40, 90, 3), dtype=np.uint8)
    tall = rng.integers(0, 256, (90, 40, 3), dtype=np.uint8)
    Image.fromarray(wide).save(tmp_path / "a_wide.png")
    Image.fromarray(tall).save(tmp_path / "b_tall.png")
    images, _, _ = image_folder(tmp_path, (12, 16), "RGB", resampling=resampling)  # 12 wide, 16 high
    assert images.shape == (2, 3, 16, 12) and images.flags.c_contiguous
    crops = (wide[:, 30:60], tall[18:71])  # the centred 3:4 boxes: 30 wide × 40 high, 40 wide × 53 high
    for got, crop in zip(images, crops):
        if resampling == "Bilinear":
            want = np.asarray(Image.fromarray(crop).resize((12, 16), Image.Resampling.BILINEAR))
        else:
            want = ds._resize_linear(crop, (12, 16))
        np.testing.assert_array_equal(got.transpose(1, 2, 0), want)
    square, _, _ = image_folder(tmp_path, 16, "RGB", resampling=resampling)
    same, _, _ = image_folder(tmp_path, (16, 16), "RGB", resampling=resampling)
    np.testing.assert_array_equal(square, same)  # an int is the square (size, size)


def test_resize_linear_to_a_rectangle_matches_the_resize_layer():
    from layers import ResizeLayer

    rng = np.random.default_rng(6)
    for (h, w), (width, height) in (((37, 23), (12, 20)), ((9, 30), (40, 5)), ((16, 12), (48, 64))):
        a = rng.integers(0, 256, (h, w, 1), dtype=np.uint8)
        got = ds._resize_linear(a, (width, height)).transpose(2, 0, 1).astype(int)
        assert got.shape == (1, height, width)
        want = ResizeLayer([height, width], input=(1, h, w))(a.transpose(2, 0, 1).astype(np.float32))
        assert np.abs(got - np.asarray(want)).max() <= 1, (h, w, width, height)


def test_load_images_crops_square_data_sets_to_the_asked_aspect_ratio(tmp_path):
    images = np.zeros((2, 28, 28), np.uint8)
    images[:, :, :3] = 255  # a white band down the left side, which a 3:4 portrait crop (columns 3..23) removes
    images[:, :, 3:24] = 100
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    found = ds.load_images(tmp_path, (21, 28), color_space="RGB")  # the crop's own size: no resampling
    assert found.images.shape == (2, 3, 28, 21) and np.all(found.images == 100)
    portrait = ds.load_images(tmp_path, (48, 64))
    assert portrait.images.shape == (2, 1, 64, 48) and np.all(portrait.images == 100)
    square = ds.load_images(tmp_path, 28)
    np.testing.assert_array_equal(square.images[:, 0], images)  # a square size keeps the whole picture
    landscape = ds.load_images(tmp_path, (64, 48))  # cut at the top and bottom: the band stays
    assert landscape.images.shape == (2, 1, 48, 64) and landscape.images[0, 0, 10, 0] == 255


def test_load_images_crops_cifar10_to_the_asked_aspect_ratio(tmp_path):
    planes = np.zeros((3, 32, 32), np.uint8)
    planes[0, :4] = 255  # a red band along the top, which a 2:1 landscape crop removes
    (tmp_path / "test_batch.bin").write_bytes(bytes([1]) + planes.tobytes())
    found = ds.load_images(tmp_path, (16, 8), color_space="RGB", kind="test")
    assert found.images.shape == (1, 3, 8, 16) and not found.images.any()
    assert ds.load_images(tmp_path, 32, color_space="RGB", kind="test").images[0, 0, 0, 0] == 255


@pytest.mark.parametrize("size", [(0, 5), (5,), (5, 5, 5), "8", True, (8, 2.5), (True, 4), -1])
def test_image_sizes_are_a_positive_int_or_a_width_height_pair(tmp_path, size):
    Image.new("L", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"size must be a positive int or a pair \(width, height\)"):
        image_folder(tmp_path, size)
    with pytest.raises(ValueError, match=r"size must be a positive int or a pair \(width, height\)"):
        ds.load_images(tmp_path, size)
