"""Hostile files cost little: crafted net files, FIFOs and devices end in a clear error, quickly, in bounded memory.

Each crafted file is built here, then loaded in a forked child of one subprocess that measures the time and
the growth of its peak resident memory (``ru_maxrss``) from the moment it starts.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layers as L
from netgraph import LIMITS, NetChain, NetError, NetFileError, NetInitialize, image_folder, load
from netgraph.layer import LimitError

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


def write_zip(path: Path, members: list[tuple], size_lie: int | None = None) -> Path:
    """A zip archive written byte by byte: each member is ``(name, data)`` (stored) or
    ``(name, raw deflate stream, uncompressed size)``; ``size_lie`` replaces every stated size."""
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
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
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
    nested = npy(np.frombuffer(b"[" * MB + b"]" * MB, dtype=np.uint8))
    files["nested_header"] = write_zip(folder / "nested_header.npz", list({**base, "net.json.npy": nested}.items()))

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
