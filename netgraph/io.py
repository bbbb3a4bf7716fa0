"""Saving and loading nets: one file, architecture as JSON, arrays as NumPy, no pickle.

The file is a NumPy ``.npz`` archive: ``net.json`` (the architecture: layer
types by class name, their constructor arguments, port shapes, array
names) stored as bytes, and one float array per learnable array. Loading never
unpickles, builds only layer classes entered in the register of
:mod:`netgraph.layer` (every public subclass of ``Layer`` enters it when it is
defined; ``netgraph.load`` first imports the built-in ones), checks every
value, and rebuilds the net through its constructors, so shapes are inferred
and checked again. Writes are atomic: a temporary file, then a rename.

Reading a file costs at most a small multiple of the file's own size, whatever it
declares. As safetensors does, :func:`load` reads what the file declares before it
reads or allocates anything: the zip directory (members stored uncompressed, as
:func:`save` writes them, each lying within the file), then the ``.npy`` header of
each array (numbers only, never Python objects, and exactly as many bytes as the
member holds), and it builds the net from those shapes. A net beyond the documented
:data:`netgraph.LIMITS` is refused before any array is read, with a
:class:`NetFileError` naming the file and the limit:

* "Inputs" (4096): inputs of one layer (TotalLayer, CatenateLayer, ThreadingLayer);
* "Elements" (2**31): elements of one port (per example) or of one array;
* "Parameters" (2·10**9): elements of all the learnable arrays of the net;
* "Layers" (10,000): layers and nets described in the file, nested ones included;
* "HeaderBytes" (4 MiB): the JSON architecture;
* "HeaderValues" (600,000): the JSON values in it (counted before it is parsed, as Python holds
  each value in about 60 to 200 bytes: a header of tiny values would otherwise cost 25 times its size);
* "FileArrays" (100,000): members of the archive (arrays and header).

For a file you trust, raise a limit for one load with
``load(path, limits={"Parameters": 10**10})``, or for the process with
``netgraph.LIMITS["Parameters"] = 10**10`` (the first three also bound nets built in
Python, and NetInitialize). Only regular files are read: a FIFO, a device or a folder
is refused at once.

Example:
    >>> import tempfile, os, numpy as np
    >>> from netgraph import NetChain, NetInitialize, load
    >>> from layers import LinearLayer
    >>> net = NetInitialize(NetChain([LinearLayer(3), "Tanh", LinearLayer(1)], input=2))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> net.save(path)
    >>> bool(np.array_equal(load(path)(np.ones(2)), net(np.ones(2))))
    True
    >>> load(path, limits={"Parameters": 10})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    netgraph.io.NetFileError: ...: NetChain: the elements of its 4 learnable arrays: 13 is beyond the limit Param...
    >>> load(path, limits={"Parameters": 20})(np.ones(2)).shape
    (1,)
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .distributions import Distribution
from .files import NotARegularFileError, atomic_file, open_regular
from .layer import (
    LAYER_CLASSES,
    Layer,
    LimitError,
    NetError,
    Shape,
    check_array_sizes,
    check_limit,
    format_shape,
    iter_arrays,
    limits_in_force,
)
from .ports import All, Automatic, Inherited, NetPort, Scaled
from .symbolic import Function, TracingError

FORMAT = "netgraph-net"
VERSION = 1


class NetFileError(NetError):
    """A net file is missing, damaged, or not a netgraph net; the message names the file."""


# --- values <-> JSON ------------------------------------------------------------------------


def encode(value: Any, arrays: list[np.ndarray]) -> Any:
    """Constructor arguments to JSON; layers nest, arrays go to ``arrays``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value.item() if hasattr(value, "item") else value
    if value is All or value is Automatic or value is Inherited:
        return {"$": repr(value)}
    if isinstance(value, tuple):
        return {"$": "tuple", "items": [encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"$": "dict", "items": [[encode(k, arrays), encode(v, arrays)] for k, v in value.items()]}
    if isinstance(value, slice):
        return {"$": "slice", "items": [encode(v, arrays) for v in (value.start, value.stop, value.step)]}
    if isinstance(value, NetPort):
        return {"$": "NetPort", "items": [encode(v, arrays) for v in value.parts]}
    if isinstance(value, Scaled):
        return {"$": "Scaled", "ratio": value.ratio}
    if isinstance(value, Function):
        return {"$": "function", **value.to_json()}
    if isinstance(value, Distribution):
        return {"$": "distribution", **value.to_json()}
    if isinstance(value, Layer):
        return encode_layer(value, arrays)
    raise NetError(f"cannot save a value of type {type(value).__name__}: {value!r:.60}")


def encode_layer(layer: Layer, arrays: list[np.ndarray]) -> dict:
    stored = {}
    if not hasattr(layer, "vertices"):
        for name, value in layer.arrays.items():
            if value is None:
                stored[name] = None
            else:
                stored[name] = len(arrays)
                arrays.append(np.asarray(value))
    return {
        "$": "layer",
        "type": type(layer).__name__,
        "config": {k: encode(v, arrays) for k, v in layer.config().items()},
        "ports": {p: None if s is None else list(s) for p, s in layer.port_shapes.items()},
        "arrays": stored,
    }


class _Decoder:
    def __init__(self, archive: _Archive, registry: dict[str, type], where: str):
        self.archive, self.registry, self.where = archive, registry, where
        self.used: set[str] = set()

    def fail(self, why: str) -> NetFileError:
        return NetFileError(f"{self.where}: not a valid netgraph net file ({why})")

    def value(self, data: Any) -> Any:
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.value(v) for v in data]
        if not isinstance(data, dict) or not isinstance(data.get("$"), str):
            raise self.fail(f"unexpected value {data!r:.60}")
        tag = data["$"]
        if tag == "All":
            return All
        if tag == "Automatic":
            return Automatic
        if tag == "Inherited":
            return Inherited
        if tag in ("tuple", "slice", "NetPort", "dict"):
            items = data.get("items")
            if not isinstance(items, list):
                raise self.fail(f"{tag} without items")
            if tag == "dict":
                if not all(isinstance(p, list) and len(p) == 2 for p in items):
                    raise self.fail("malformed dict")
                return {self.hashable(self.value(k)): self.value(v) for k, v in items}
            values = [self.value(v) for v in items]
            if tag == "tuple":
                return tuple(values)
            if tag == "slice":
                if len(values) != 3:
                    raise self.fail("malformed slice")
                return slice(*values)
            try:
                return NetPort(*values)
            except ValueError as err:
                raise self.fail(str(err)) from None
        if tag == "Scaled":
            return Scaled(float(data.get("ratio", "nan")))
        if tag == "function":
            try:
                return Function.from_json({"arity": data.get("arity"), "expr": data.get("expr")})
            except TracingError as err:
                raise self.fail(str(err)) from None
        if tag == "distribution":
            try:
                return Distribution.from_json({"kind": data.get("kind"), "params": data.get("params")})
            except ValueError as err:
                raise self.fail(str(err)) from None
        if tag == "layer":
            return self.layer(data)
        raise self.fail(f"unknown tag {tag!r:.40}")

    @staticmethod
    def hashable(key: Any) -> Any:
        return tuple(key) if isinstance(key, list) else key

    def layer(self, data: Any) -> Layer:
        if not isinstance(data, dict):
            raise self.fail("a layer entry is not an object")
        kind = data.get("type")
        cls = self.registry.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise self.fail(
                f"unknown layer type {kind!r:.40}: no layer class of that name has been defined in this process "
                "(netgraph.load brings the built-in ones; for your own, import the module that defines them first)"
            )
        config = data.get("config")
        if not isinstance(config, dict):
            raise self.fail(f"{kind} has no configuration")
        kwargs = {str(k): self.value(v) for k, v in config.items()}
        try:
            layer = cls(**kwargs)
        except LimitError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as err:
            raise self.fail(f"cannot rebuild {kind}: {err}") from None
        self.restore(layer, data)
        return layer

    def restore(self, layer: Layer, data: dict) -> None:
        """The stored port shapes, and the stored arrays as :class:`_Declared` stand-ins (read at the end)."""
        kind = type(layer).__name__
        ports, stored = data.get("ports"), data.get("arrays")
        if not isinstance(ports, dict) or not isinstance(stored, dict):
            raise self.fail(f"{kind} lacks ports or arrays")
        shapes = {}
        for port, shape in ports.items():
            if shape is None or port not in layer.port_shapes:
                continue
            if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
                raise self.fail(f"port {port!r} of {kind} has shape {shape!r:.60}")
            shapes[port] = tuple(shape)
        try:
            layer.refine(shapes)
        except LimitError:
            raise
        except NetError as err:
            raise self.fail(str(err)) from None
        for name in list(layer.arrays):
            if name not in stored:
                layer.arrays.pop(name)
        for name, index in stored.items():
            if index is None:
                layer.arrays[name] = None
                continue
            member = f"array{index}"
            if type(index) is not int or member not in self.archive.members:
                raise self.fail(f"array {name!r} of {kind} is missing")
            if member in self.used:
                raise self.fail(f"array {name!r} of {kind} names {member}, which another array names too")
            self.used.add(member)
            layer.arrays[name] = self.archive.declared(member, "f")
        try:
            layer.check_arrays()
        except NetError as err:
            raise self.fail(str(err)) from None


# --- files -----------------------------------------------------------------------------------


def save(
    net: Layer,
    path: str | Path,
    *,
    extra: dict[str, Any] | None = None,
    extra_arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``net`` to ``path`` atomically (a crash leaves any previous file intact).

    ``extra`` (JSON-ready) and ``extra_arrays`` ride along, e.g. a training checkpoint's
    optimiser state; :func:`load` ignores them, so a checkpoint is also a plain net file.
    """
    arrays: list[np.ndarray] = []
    header = {"format": FORMAT, "version": VERSION, "net": encode_layer(net, arrays), "extra": extra}
    payload = {f"array{i}": a for i, a in enumerate(arrays)}
    payload.update({f"extra/{k}": np.asarray(v) for k, v in (extra_arrays or {}).items()})
    payload["net.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as stream:
        np.savez(stream, **payload)
    return path


def load(path: str | Path, *, limits: dict[str, int] | None = None) -> Layer:
    """Read a net written by :func:`save`; never executes code from the file.

    ``limits`` raises (or lowers) some of :data:`netgraph.LIMITS` for this file, e.g.
    ``{"Parameters": 10**10, "Inputs": 10000}``; a net beyond them is refused before any array is read.
    """
    return load_with_extra(path, limits=limits)[0]


def load_with_extra(
    path: str | Path, *, limits: dict[str, int] | None = None
) -> tuple[Layer, Any, dict[str, np.ndarray]]:
    """The net, the ``extra`` header and the ``extra_arrays`` stored by :func:`save`."""
    where = str(path)
    with limits_in_force(limits):
        try:
            archive = _Archive(open_regular(path), where)
        except FileNotFoundError:
            raise NetFileError(f"{where}: no such file") from None
        except IsADirectoryError:
            raise NetFileError(f"{where}: a folder, not a net file") from None
        except NotARegularFileError as err:
            raise NetFileError(f"{where}: {err.strerror}; a net file is a .npz file written by netgraph.save") from None
        except LimitError as err:
            raise _beyond(where, err) from None
        except OSError as err:
            raise NetFileError(f"{where}: cannot read the file: {err.strerror or err}") from None
        with archive:
            try:
                return _read(archive, where)
            except NetFileError:
                raise
            except LimitError as err:
                raise _beyond(where, err) from None
            except RecursionError:
                raise NetFileError(f"{where}: not a valid netgraph net file (nested too deeply)") from None
            except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, struct.error) as err:
                raise NetFileError(f"{where}: not a valid netgraph net file (damaged data: {err})") from None


def _beyond(where: str, err: LimitError) -> NetFileError:
    return NetFileError(
        f"{where}: {err}; if you trust the file, raise the limit: load(path, limits={{{err.limit!r}: ...}})"
    )


def _read(archive: _Archive, where: str) -> tuple[Layer, Any, dict[str, np.ndarray]]:
    """Header, net (built on the declared shapes), the check of its size, then the arrays."""
    if "net.json" not in archive.members:
        raise archive.fail("no net.json")
    text = archive.declared("net.json", "u")
    if text.dtype != np.uint8 or text.ndim != 1:
        raise archive.fail(f"net.json is a {format_shape(text.shape)} array of {text.dtype}, not bytes")
    check_limit("HeaderBytes", text.shape[0], "the JSON header (net.json, bytes)")
    raw = archive.read(text).tobytes()
    values = sum(raw.count(mark) for mark in b"[{,:")  # each value but the first of a list or dict follows one
    check_limit("HeaderValues", values + 1, "the JSON values in the header (net.json)")
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise archive.fail(f"damaged header: {err}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise archive.fail("wrong format marker")
    if header.get("version") != VERSION:
        raise NetFileError(f"{where}: written by format version {header.get('version')!r}, this reads {VERSION}")
    check_limit("Layers", _count_layers(header.get("net")), "the layers and nets described in the file")
    net = _Decoder(archive, LAYER_CLASSES, where).layer(header.get("net"))
    check_array_sizes(net)
    for _, layer, name in iter_arrays(net):
        value = layer.arrays[name]
        if isinstance(value, _Declared):
            layer.arrays[name] = archive.read(value)
    extra_arrays = {
        key[6:]: archive.read(archive.declared(key, "biufc")) for key in archive.members if key.startswith("extra/")
    }
    return net, header.get("extra"), extra_arrays


def _count_layers(data: Any) -> int:
    """How many layers (nets included) the JSON ``data`` describes, counted before any is built."""
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += item.get("$") == "layer"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


# --- reading the archive --------------------------------------------------------------------------

_CHUNK = 1 << 22  # 4 MiB
_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_KINDS = {"f": "floating-point numbers", "u": "bytes", "biufc": "numbers"}


class _Declared:
    """An array of the file while the net is rebuilt: what its header declares, no data yet.

    Layers only look at the shape of a given array while shapes are inferred, and nets copy their
    layers as they are built: the stand-in copies as itself, and the data is read once, at the end.
    """

    __slots__ = ("member", "shape", "dtype", "fortran", "offset")

    def __init__(self, member: str, shape: Shape, dtype: np.dtype, fortran: bool, offset: int) -> None:
        self.member, self.shape, self.dtype, self.fortran, self.offset = member, shape, dtype, fortran, offset

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def copy(self) -> _Declared:
        return self


class _Archive:
    """A net file opened for reading: the zip directory is checked when it opens, each member's
    ``.npy`` header when it is declared, and data is read only into arrays of the declared size."""

    def __init__(self, stream: BinaryIO, where: str) -> None:
        self.stream, self.where = stream, where
        try:
            self.size = os.fstat(stream.fileno()).st_size
            self._check_ends()
            self.zip = zipfile.ZipFile(stream)
            self.members = self._members()
        except BaseException as err:
            stream.close()
            if isinstance(err, NetError) or not isinstance(
                err, (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error)
            ):
                raise
            raise self.fail(f"damaged zip directory: {err}") from None

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.zip.close()
        self.stream.close()

    def fail(self, why: str) -> NetFileError:
        return NetFileError(f"{self.where}: not a valid netgraph net file ({why})")

    def _check_ends(self) -> None:
        """A zip archive from its first bytes, with no more members than the limit "FileArrays"."""
        if self.size == 0:
            raise self.fail("the file is empty")
        first = self.stream.read(4)
        if first != b"PK\x03\x04":
            raise NetFileError(
                f"{self.where}: not a netgraph net file: expected a .npz archive as netgraph.save writes, "
                f"but the file starts with the bytes {first.hex(' ')}"
            )
        tail = min(self.size, _END.size + 0xFFFF)
        self.stream.seek(self.size - tail)
        data = self.stream.read(tail)
        at = data.rfind(b"PK\x05\x06")
        if at < 0 or at + _END.size > len(data):
            raise self.fail("truncated or damaged: the zip directory at its end is missing")
        _, _, _, _, entries, directory, offset, _ = _END.unpack_from(data, at)
        if entries == 0xFFFF or 0xFFFFFFFF in (directory, offset):  # ZIP64: the counts are further up
            if at < _END64_LOCATOR.size:
                raise self.fail("truncated or damaged: the ZIP64 directory locator is missing")
            mark, _, where, _ = _END64_LOCATOR.unpack_from(data, at - _END64_LOCATOR.size)
            self.stream.seek(where)
            record = self.stream.read(_END64.size)
            if mark != b"PK\x06\x07" or len(record) < _END64.size or record[:4] != b"PK\x06\x06":
                raise self.fail("truncated or damaged: the ZIP64 directory record is missing")
            entries = _END64.unpack(record)[7]
        check_limit("FileArrays", entries, "the members of the file (arrays and header)")
        self.stream.seek(0)

    def _members(self) -> dict[str, zipfile.ZipInfo]:
        """Members by NumPy's name (without ``.npy``): stored uncompressed, unencrypted, within the file."""
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in self.zip.infolist():
            name = info.filename
            key = name[:-4] if name.endswith(".npy") else name
            if key in members:
                raise self.fail(f"two members named {name!r}")
            if info.flag_bits & 0x1:
                raise self.fail(f"member {name!r} is encrypted")
            if info.compress_type != zipfile.ZIP_STORED:
                raise self.fail(
                    f"member {name!r} is compressed (zip method {info.compress_type}); netgraph.save stores "
                    "arrays uncompressed, so that their sizes can be checked before anything is unpacked"
                )
            total += info.compress_size
            if info.file_size != info.compress_size or info.header_offset + info.compress_size > self.size:
                raise self.fail(
                    f"member {name!r} states {info.file_size:,} bytes, and the file has {self.size:,} bytes in all"
                )
            if total > self.size:
                raise self.fail(f"its members state {total:,} bytes, more than the file's {self.size:,} bytes")
            members[key] = info
        return members

    def declared(self, key: str, kinds: str) -> _Declared:
        """The array ``key`` as its ``.npy`` header declares it: dtype of one of ``kinds``, and
        exactly as many bytes as the member holds (nothing is allocated)."""
        info = self.members[key]
        name = info.filename
        with self.zip.open(info) as stream:
            try:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise ValueError(f"NumPy file format version {version}, expected 1.0 or 2.0")
            except ValueError as err:
                raise self.fail(f"member {name!r} is not a NumPy array: {err}") from None
            offset = stream.tell()
        if dtype.hasobject:
            raise self.fail(
                f"member {name!r} holds Python objects (dtype {dtype}), which only pickle could read; "
                "a net file holds numbers, and netgraph never unpickles"
            )
        if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
            raise self.fail(f"member {name!r} has dtype {dtype}, expected {_KINDS[kinds]}")
        if any(d < 0 for d in shape):
            raise self.fail(f"member {name!r} declares the shape {shape}")
        check_limit("Elements", math.prod(shape), f"array {key!r} ({format_shape(shape)})")
        array = _Declared(key, tuple(shape), dtype, fortran, offset)
        held = info.file_size - offset
        if array.nbytes != held:
            size = f"a {dtype} array of shape {format_shape(array.shape)} ({array.nbytes:,} bytes)"
            raise self.fail(
                f"member {name!r} declares {size}, more than the {held:,} bytes the file holds for it"
                if array.nbytes > held
                else f"member {name!r} declares {size}, but holds {held:,} bytes"
            )
        return array

    def read(self, array: _Declared) -> np.ndarray:
        """The data of a declared array, read into an array of that size and no more."""
        data = np.empty(math.prod(array.shape), array.dtype)
        view = memoryview(data).cast("B")
        done = 0
        with self.zip.open(self.members[array.member]) as stream:
            stream.read(array.offset)
            while done < len(view):
                count = stream.readinto(view[done : done + _CHUNK])
                if not count:
                    raise self.fail(f"member {array.member!r} is truncated: {done:,} of {len(view):,} bytes")
                done += count
        if array.fortran:
            return data.reshape(array.shape[::-1]).transpose()
        return data.reshape(array.shape)


Export = save
Import = load
