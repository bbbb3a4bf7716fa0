"""Hostile files cost little: crafted net files, FIFOs and devices end in a clear error, quickly, in bounded memory.

Each crafted file is built here, then loaded in a forked child of one subprocess that measures the time and
the growth of its peak resident memory (``ru_maxrss``) from the moment it starts.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from deadlines import deadline
from PIL import Image

import layers as L
from netgraph import (
    LIMITS,
    DatasetError,
    ImageError,
    LimitError,
    NetChain,
    NetEncoder,
    NetError,
    NetFileError,
    NetInitialize,
    image_folder,
    load,
    read_idx,
)
from netgraph.io import load_with_extra, save

MB = 1 << 20

# --- building crafted files --------------------------------------------------------------------------


def npy_header(shape: tuple, dtype: str = "<f4", fortran: bool = False) -> bytes:
    """The ``.npy`` header of an array of ``shape`` and ``dtype``, without its data."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": dtype, "fortran_order": fortran, "shape": shape})
    return stream.getvalue()


def npy(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array, allow_pickle=True)
    return stream.getvalue()


def write_zip(path: Path, members: list[tuple], size_lie: int | None = None, zip64: bool = False) -> Path:
    """A zip archive written byte by byte: each member is ``(name, data)`` (stored) or
    ``(name, raw deflate stream, uncompressed size)``; ``size_lie`` replaces every stated size;
    ``zip64`` puts the number of members in a ZIP64 end record (the classic one says 0xFFFF)."""
    local, central = bytearray(), bytearray()
    for member in members:
        name, data = member[0].encode(), member[1]
        method, size = (0, len(data)) if len(member) == 2 else (8, member[2])
        crc = zlib.crc32(data) if method == 0 else 0
        stated, packed = (size, len(data)) if size_lie is None else (size_lie, size_lie)
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, packed, stated, len(name), 0)
        local += name + data
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, packed, stated, len(name), 0, 0, 0, 0, 0, offset
        )
        central += name
    count = len(members)
    end = b""
    if zip64:
        at = len(local) + len(central)
        end += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central), len(local))
        end += struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
        count = 0xFFFF
    end += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def deflated(head: bytes, zeros: int) -> bytes:
    """A raw deflate stream of ``head`` then ``zeros`` zero bytes (a multiple of 16 MiB), from one compressed block."""
    chunk = 16 * MB
    assert zeros % chunk == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return start + block * (zeros // chunk) + compressor.flush()


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def header_of(members: dict[str, bytes]) -> dict:
    return json.loads(np.load(io.BytesIO(members["net.json.npy"])).tobytes())


def with_header(members: dict[str, bytes], header: dict) -> dict[str, bytes]:
    raw = json.dumps(header).encode()
    return {**members, "net.json.npy": npy(np.frombuffer(raw, dtype=np.uint8))}


def small_net_file(folder: Path) -> Path:
    path = folder / "small.npz"
    NetInitialize(L.LinearLayer(3, input=2)).save(path)
    return path


def crafted(folder: Path) -> dict[str, Path]:
    """The crafted files, by name."""
    folder.mkdir(exist_ok=True)
    base = members_of(small_net_file(folder))
    files = {}

    # a 17 MB file whose first array declares 10^9 float32 elements (4 GB)
    big = npy_header((10**9,)) + bytes(17 * MB)
    files["declared"] = write_zip(folder / "declared.npz", list({**base, "array0.npy": big}.items()))
    # an array of 4000 MiB of zeros, deflated to 4 MB (a zip bomb)
    head = npy_header((1000 * MB,))
    bomb = [(n, d) for n, d in base.items() if n != "array0.npy"]
    bomb.append(("array0.npy", deflated(head, 4000 * MB), len(head) + 4000 * MB))
    files["bomb"] = write_zip(folder / "bomb.npz", bomb)
    # a directory that states 4 GB for every member of a small file
    files["size_lie"] = write_zip(folder / "size_lie.npz", list(base.items()), size_lie=4000 * MB)

    # ThreadingLayer("Plus") with a million inputs, in 500 bytes
    plus = members_of(_save(L.ThreadingLayer("Plus", output=2), folder / "plus.npz"))
    header = header_of(plus)
    header["net"]["config"]["inputs"] = 10**6
    files["inputs"] = write_zip(folder / "inputs.npz", list(with_header(plus, header).items()))

    # LinearLayer(10^12): a 1 KB file whose first call would ask for 21.8 TiB
    linear = members_of(_save(L.LinearLayer(3, input=3), folder / "linear.npz"))
    header = header_of(linear)
    header["net"]["config"]["n"] = 10**12
    header["net"]["ports"]["Output"] = [10**12]
    files["units"] = write_zip(folder / "units.npz", list(with_header(linear, header).items()))

    # two layers of 40000 × 40000 weights (3.2·10^9 parameters, 12.8 GB), uninitialised, in 2 KB
    wide = NetChain([L.LinearLayer(40000), L.LinearLayer(40000)], input=40000)
    files["parameters"] = _save(wide, folder / "parameters.npz")

    # a 24 MB JSON header, and a deeply nested one
    header = header_of(base)
    header["padding"] = "x" * (24 * MB)
    files["huge_header"] = write_zip(folder / "huge_header.npz", list(with_header(base, header).items()))
    nested = npy(np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8))
    files["nested_header"] = write_zip(folder / "nested_header.npz", list({**base, "net.json.npy": nested}.items()))

    # headers just under HeaderBytes made of the smallest values: empty lists, one-entry dicts
    for name, value in (("many_lists", b"[],"), ("many_dicts", b'{"a":0},')):
        text = b"[" + value * ((4 * MB - 64) // len(value)) + b"0]"
        files[name] = write_zip(
            folder / f"{name}.npz", list({**base, "net.json.npy": npy(np.frombuffer(text, np.uint8))}.items())
        )

    # a pickled object array where an array should be
    objects = npy(np.array([{"a": 1}], dtype=object))
    files["object"] = write_zip(folder / "object.npz", list({**base, "array0.npy": objects}.items()))

    # truncated, random bytes, empty
    whole = _save(NetInitialize(L.LinearLayer(512, input=512)), folder / "whole.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    files["truncated"] = folder / "truncated.npz"
    (folder / "random.npz").write_bytes(np.random.default_rng(0).bytes(MB))
    files["random"] = folder / "random.npz"
    (folder / "empty.npz").write_bytes(b"")
    files["empty"] = folder / "empty.npz"
    return files


def _save(net, path: Path) -> Path:
    net.save(path)
    return path


# --- loading in a measured child ------------------------------------------------------------------------

HARNESS = r"""
import json, os, resource, signal, sys, time
import netgraph
netgraph.load(sys.argv[1])  # every module a load needs is imported before the children fork
for path in sys.argv[2:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        signal.alarm(60)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            netgraph.load(path)
            outcome = ["loaded", ""]
        except BaseException as err:
            outcome = [type(err).__name__, str(err)]
        seconds = time.perf_counter() - start
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        os.write(write, json.dumps([path, *outcome, seconds, grown * 1024]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        text = stream.read()
    os.waitpid(pid, 0)
    print(text or json.dumps([path, "killed", "", 0, 0]), flush=True)
"""


def measure(paths: list[Path], warm_up: Path) -> dict[str, tuple[str, str, float, int]]:
    """``{file name: (error class, message, seconds, peak memory growth in bytes)}``, each loaded in a fresh child."""
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, str(warm_up), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {Path(row[0]).stem: tuple(row[1:]) for row in rows}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The crafted files and what loading each cost."""
    folder = tmp_path_factory.mktemp("crafted")
    files = crafted(folder)
    return files, measure(list(files.values()), small_net_file(folder))


#: what the error says, for each crafted file
EXPECTED = {
    "declared": "member 'array0.npy' declares a float32 array of shape 1000000000 (4,000,000,000 bytes), more than the "
    "17,825,792 bytes the file holds for it",
    "bomb": "member 'array0.npy' is compressed (zip method 8); netgraph.save stores arrays uncompressed",
    "size_lie": "states 4,194,304,000 bytes, and the file has",
    "inputs": "ThreadingLayer[Plus] inputs: 1,000,000 is beyond the limit Inputs = 4,096 (netgraph.LIMITS); if you "
    "trust the file, raise the limit: load(path, limits={'Inputs': ...})",
    "units": "LinearLayer port 'Output' (1000000000000): 1,000,000,000,000 is beyond the limit Elements = 2,147,483,6",
    "parameters": "NetChain: the elements of its 4 learnable arrays: 3,200,080,000 is beyond the limit Parameters",
    "huge_header": "the JSON header (net.json, bytes): 25,166,066 is beyond the limit HeaderBytes = 4,194,304",
    "nested_header": "not a valid netgraph net file (damaged header: maximum recursion depth exceeded",
    "many_lists": "the JSON values in the header (net.json): 2,796,",
    "many_dicts": "the JSON values in the header (net.json): 1,572,",
    "object": "member 'array0.npy' holds Python objects (dtype object), which only pickle could read",
    "truncated": "truncated or damaged: the zip directory at its end is missing",
    "random": "not a netgraph net file: expected a .npz archive as netgraph.save writes, but the file starts with",
    "empty": "not a valid netgraph net file (the file is empty)",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_crafted_file_fails_at_once_in_bounded_memory(measured, name):
    files, results = measured
    error, message, seconds, grown = results[name]
    assert error == "NetFileError"
    assert message.startswith(f"{files[name]}: ")
    assert EXPECTED[name] in message
    assert "pickle.load" not in message and "allow_pickle" not in message
    assert seconds < 2.0
    assert grown <= 3 * files[name].stat().st_size + 64 * MB, f"{name}: {grown / MB:.1f} MB"


def test_the_declared_bomb_is_refused_before_anything_is_unpacked(measured):
    files, results = measured
    assert results["bomb"][3] < 16 * MB  # an unpacked array would be 4000 MiB
    assert results["declared"][3] < 32 * MB


def test_load_refuses_fifos_devices_and_folders(tmp_path):
    pipe = tmp_path / "net.npz"
    os.mkfifo(pipe)
    with (
        deadline(5),
        pytest.raises(NetFileError, match=r"net.npz: a FIFO \(named pipe\), not a regular file; a net file"),
    ):
        load(pipe)
    with deadline(5), pytest.raises(NetFileError, match="/dev/zero: a character device, not a regular file"):
        load("/dev/zero")
    with pytest.raises(NetFileError, match="a folder, not a net file"):
        load(tmp_path)
    with pytest.raises(NetFileError, match="no such file"):
        load(tmp_path / "missing.npz")


def test_image_readers_skip_fifos_and_devices(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "red.png")
    os.mkfifo(tmp_path / "pipe.png")
    os.symlink("/dev/zero", tmp_path / "zero.png")
    with deadline(10):
        images, paths, skipped = image_folder(tmp_path, 4, color_space="RGB")
    assert [p.name for p in paths] == ["red.png"]
    assert {(s.path.name, s.reason) for s in skipped} == {
        ("pipe.png", "a FIFO (named pipe), not a regular file"),
        ("zero.png", "a character device, not a regular file"),
    }
    with deadline(5), pytest.raises(ImageError, match=r"pipe.png': it is a FIFO \(named pipe\), not a regular file"):
        NetEncoder("Image", 4)(str(tmp_path / "pipe.png"))
    with (
        deadline(5),
        pytest.raises(DatasetError, match=r"pipe.png: a FIFO \(named pipe\), not a regular file; expec"),
    ):
        read_idx(tmp_path / "pipe.png")


def test_random_bytes_never_suggest_unpickling(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(20):
        path = tmp_path / f"random{i}.npz"
        path.write_bytes(rng.bytes(int(rng.integers(1, 5000))))
        with pytest.raises(NetFileError, match="not a netgraph net file") as caught:
            load(path)
        assert "pickle" not in str(caught.value)
    path.write_bytes(b"PK\x03\x04" + rng.bytes(3000))  # a zip's first bytes, then noise
    with pytest.raises(NetFileError, match="not a valid netgraph net file") as caught:
        load(path)
    assert "pickle" not in str(caught.value)


def test_limits_are_raised_for_one_trusted_file(tmp_path):
    path = tmp_path / "wide.npz"
    header = header_of(members_of(_save(L.ThreadingLayer("Plus", output=2), path)))
    header["net"]["config"]["inputs"] = 5000
    write_zip(path, list(with_header(members_of(path), header).items()))
    with pytest.raises(
        NetFileError, match=r"wide.npz: ThreadingLayer\[Plus\] inputs: 5,000 is beyond the limit Inputs"
    ):
        load(path)
    net = load(path, limits={"Inputs": 5000})
    assert len(net.input_ports) == 5000
    assert LIMITS["Inputs"] == 4096  # for that load only
    with pytest.raises(LimitError, match="TotalLayer inputs: 5,000 is beyond the limit Inputs = 4,096"):
        L.TotalLayer(inputs=5000)


def test_file_limits_layers_and_arrays(tmp_path):
    path = tmp_path / "chain.npz"
    NetInitialize(NetChain([L.LinearLayer(3), "Tanh", L.LinearLayer(2), "Tanh"], input=2)).save(path)
    assert load(path, limits={"Layers": 5}).port_shapes["Output"] == (2,)
    with pytest.raises(
        NetFileError, match="the layers and nets described in the file: 5 is beyond the limit Layers = 4"
    ):
        load(path, limits={"Layers": 4})
    with pytest.raises(NetFileError, match=r"the members of the file \(arrays and header\): 5 is beyond the limit Fil"):
        load(path, limits={"FileArrays": 4})
    with pytest.raises(NetFileError, match="the JSON header .*beyond the limit HeaderBytes = 100"):
        load(path, limits={"HeaderBytes": 100})


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"Bogus": 3}, "limits: unknown limit 'Bogus'; the limits are"),
        ({"Inputs": 0}, "limits: 'Inputs' must be a positive integer, got 0"),
        ({"Inputs": 2.5}, "limits: 'Inputs' must be a positive integer, got 2.5"),
        ("Inputs", "limits: expected a dict"),
    ],
)
def test_bad_limits_are_refused(tmp_path, limits, message):
    with pytest.raises(NetError, match=message):
        load(small_net_file(tmp_path), limits=limits)


def test_nets_beyond_the_limits_fail_early_in_python_too():
    with pytest.raises(LimitError, match=r"LinearLayer port 'Output' \(1000000000000\): .* limit Elements"):
        L.LinearLayer(10**12)
    wide = NetChain([L.LinearLayer(40000), L.LinearLayer(40000)], input=40000)  # no array yet
    with pytest.raises(LimitError, match="NetChain: the elements of its 4 learnable arrays: 3,200,080,000 is beyond"):
        NetInitialize(wide)
    with pytest.raises(LimitError, match=r"LinearLayer array 'Weights' \(50000×50000\): 2,500,000,000 is beyond"):
        NetInitialize(L.LinearLayer(50000, input=50000))
    with pytest.raises(LimitError, match="limit Elements"):
        L.LinearLayer(50000, input=50000)(np.ones(50000))  # the first call initializes


def test_an_array_named_twice_is_refused(tmp_path):
    path = tmp_path / "twice.npz"
    NetInitialize(NetChain([L.LinearLayer(2), L.LinearLayer(2)], input=2)).save(path)
    members = members_of(path)
    header = header_of(members)
    header["net"]["config"]["layers"][1]["arrays"] = header["net"]["config"]["layers"][0]["arrays"]
    write_zip(path, list(with_header(members, header).items()))
    with pytest.raises(NetFileError, match="array 'Weights' of LinearLayer names array0, which another array names"):
        load(path)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("extra bytes", "member 'array0.npy' declares a float32 array of shape 3×2 (24 bytes), but holds 28 bytes"),
        ("float64", "member 'array0.npy' declares a float64 array of shape 3×2 (48 bytes), more than the 24 bytes"),
        ("ints", "member 'array0.npy' has dtype int32, expected floating-point numbers"),
        ("structured", "member 'array0.npy' has dtype"),
        ("not npy", "member 'array0.npy' is not a NumPy array"),
        ("negative", "member 'array0.npy' declares the shape (-1, 2)"),
        ("crc", "damaged data: Bad CRC-32 for file 'array0.npy'"),
        ("duplicate", "two members named 'array0.npy'"),
    ],
)
def test_damaged_members_are_refused(tmp_path, damage, message):
    members = members_of(small_net_file(tmp_path))
    weights = members["array0.npy"]
    head = npy_header((3, 2))
    entries = {
        "extra bytes": [("array0.npy", weights + b"\0" * 4)],
        "float64": [("array0.npy", npy_header((3, 2), "<f8") + weights[len(head) :])],
        "ints": [("array0.npy", npy(np.zeros((3, 2), np.int32)))],
        "structured": [("array0.npy", npy(np.zeros((3, 2), [("a", "<f2"), ("b", "<f2")])))],
        "not npy": [("array0.npy", b"\x93NUMPX" + weights[6:])],
        "negative": [("array0.npy", npy_header((-1, 2)) + weights[len(head) :])],
        "duplicate": [("array0.npy", weights), ("array0.npy", weights)],
        "crc": [],
    }[damage]
    listed = [(n, d) for n, d in members.items() if n != "array0.npy" or damage == "crc"]
    path = write_zip(tmp_path / "damaged.npz", listed + entries)
    if damage == "crc":  # flip a byte of the stored data, after the directory was written
        data = bytearray(path.read_bytes())
        at = data.index(weights) + len(weights) - 1
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(NetFileError, match="damaged.npz: ") as caught:
        load(path)
    assert message in str(caught.value)


def test_fortran_order_big_endian_and_zip64_files_still_load(tmp_path):
    net = NetInitialize(L.LinearLayer(3, input=2))
    extra = {"f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "b": np.arange(4, dtype=">i4")}
    path = save(net, tmp_path / "net.npz", extra={"k": 1}, extra_arrays=extra)
    loaded, header, arrays = load_with_extra(path)
    assert header == {"k": 1}
    assert np.array_equal(arrays["f"], extra["f"]) and np.array_equal(arrays["b"], extra["b"])
    assert np.array_equal(loaded(np.ones(2)), net(np.ones(2)))
    zip64 = write_zip(tmp_path / "zip64.npz", list(members_of(path).items()), zip64=True)
    assert np.array_equal(load(zip64)(np.ones(2)), net(np.ones(2)))
    with pytest.raises(NetFileError, match="zip64.npz: .* beyond the limit FileArrays = 2"):
        load(zip64, limits={"FileArrays": 2})
