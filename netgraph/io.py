"""Saving and loading nets: one file, architecture as JSON, arrays as NumPy, no pickle.

The file is a NumPy ``.npz`` archive: ``net.json`` (the architecture: layer
types by class name, their constructor arguments, port shapes, array
names) stored as bytes, and one float array per learnable array. Loading uses
``allow_pickle=False``, builds only layer classes entered in the register of
:mod:`netgraph.layer` (every public subclass of ``Layer`` enters it when it is
defined; ``netgraph.load`` first imports the built-in ones), checks every
value, and rebuilds the net through its constructors, so shapes are inferred
and checked again. Writes are atomic: a temporary file, then a rename.

Example:
    >>> import tempfile, os, numpy as np
    >>> from netgraph import NetChain, NetInitialize, load
    >>> from layers import LinearLayer
    >>> net = NetInitialize(NetChain([LinearLayer(3), "Tanh", LinearLayer(1)], input=2))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> net.save(path)
    >>> bool(np.array_equal(load(path)(np.ones(2)), net(np.ones(2))))
    True
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .distributions import Distribution
from .files import atomic_file
from .layer import LAYER_CLASSES, Layer, NetError
from .ports import All, Automatic, NetPort, Scaled
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
    if value is All or value is Automatic:
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
    def __init__(self, archive: Any, registry: dict[str, type], where: str):
        self.archive, self.registry, self.where = archive, registry, where

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
        except (TypeError, ValueError) as err:
            raise self.fail(f"cannot rebuild {kind}: {err}") from None
        self.restore(layer, data)
        return layer

    def restore(self, layer: Layer, data: dict) -> None:
        ports, stored = data.get("ports"), data.get("arrays")
        if not isinstance(ports, dict) or not isinstance(stored, dict):
            raise self.fail(f"{type(layer).__name__} lacks ports or arrays")
        try:
            layer.refine({p: tuple(s) for p, s in ports.items() if s is not None and p in layer.port_shapes})
        except NetError as err:
            raise self.fail(str(err)) from None
        for name in list(layer.arrays):
            if name not in stored:
                layer.arrays.pop(name)
        for name, index in stored.items():
            if index is None:
                layer.arrays[name] = None
                continue
            if not isinstance(index, int) or isinstance(index, bool) or f"array{index}" not in self.archive.files:
                raise self.fail(f"array {name!r} of {type(layer).__name__} is missing")
            value = self.archive[f"array{index}"]
            if value.dtype.kind != "f":
                raise self.fail(f"array {name!r} has dtype {value.dtype}")
            layer.arrays[name] = value
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


def load(path: str | Path) -> Layer:
    """Read a net written by :func:`save`; never executes code from the file."""
    return load_with_extra(path)[0]


def load_with_extra(path: str | Path) -> tuple[Layer, Any, dict[str, np.ndarray]]:
    """The net, the ``extra`` header and the ``extra_arrays`` stored by :func:`save`."""
    where = str(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise NetFileError(f"{where}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise NetFileError(f"{where}: not a valid netgraph net file ({err})") from None
    with archive:
        if not isinstance(archive, np.lib.npyio.NpzFile) or "net.json" not in archive.files:
            raise NetFileError(f"{where}: not a valid netgraph net file (no net.json)")
        try:
            header = json.loads(archive["net.json"].tobytes().decode())
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, RecursionError) as err:
            raise NetFileError(f"{where}: not a valid netgraph net file (damaged header: {err})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise NetFileError(f"{where}: not a valid netgraph net file (wrong format marker)")
        if header.get("version") != VERSION:
            raise NetFileError(f"{where}: written by format version {header.get('version')!r}, this reads {VERSION}")
        decoder = _Decoder(archive, LAYER_CLASSES, where)
        try:
            net = decoder.layer(header.get("net"))
            extra_arrays = {name[6:]: archive[name] for name in archive.files if name.startswith("extra/")}
            return net, header.get("extra"), extra_arrays
        except NetFileError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as err:
            raise NetFileError(f"{where}: not a valid netgraph net file (damaged data: {err})") from None
        except RecursionError:
            raise NetFileError(f"{where}: not a valid netgraph net file (nested too deeply)") from None


Export = save
Import = load
