"""Data sets for image nets: MNIST-format IDX files, MNIST, Fashion-MNIST, CIFAR-10 and folders of images.

Every loader returns plain NumPy ``uint8`` arrays, images channels first
(``(N, C, H, W)`` for colour, ``(N, H, W)`` for the IDX sets), labels as
``(N,)``; :func:`to_float`, :func:`split` and :func:`random_horizontal_flip`
turn them into training data. Nothing here unpickles untrusted data: IDX and
the CIFAR-10 binary batches are parsed byte by byte, and the CIFAR-10 python
batches go through an unpickler that refuses every global except the three
that a NumPy array needs.

A missing or damaged file raises :class:`DatasetError` (a ``ValueError``);
a missing file or folder raises its subclass :class:`DatasetNotFoundError`
(also a ``FileNotFoundError``). Each message names the file or folder, what
was expected there and, for a missing data set, how to get it.

Downloads (:func:`mnist` with ``download=True``) go to ``$NETGRAPH_DATA/mnist``,
or ``~/.cache/netgraph/mnist`` when ``NETGRAPH_DATA`` is not set; each file is
checked against its published size and SHA-256 sum before it is moved into
place, so a failed or corrupted download leaves nothing behind.

Example:
    >>> import os, tempfile, numpy as np
    >>> from netgraph.datasets import load_mnist_format, split, to_float, write_idx
    >>> folder = tempfile.mkdtemp()
    >>> write_idx(os.path.join(folder, "train-images-idx3-ubyte.gz"), np.zeros((10, 28, 28), np.uint8))
    >>> write_idx(os.path.join(folder, "train-labels-idx1-ubyte.gz"), np.arange(10, dtype=np.uint8))
    >>> images, labels = load_mnist_format(folder)
    >>> images.shape, labels.shape
    ((10, 28, 28), (10,))
    >>> (x_train, y_train), (x_test, y_test) = split((to_float(images), labels), fractions=(0.8, 0.2))
    >>> x_train.shape, x_train.dtype, y_test.shape
    ((8, 28, 28), dtype('float32'), (2,))
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import struct
import tarfile
import urllib.request
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import NotARegularFileError, atomic_file, open_regular
from .layer import NetError, is_whole

__all__ = [
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DatasetError",
    "DatasetNotFoundError",
    "ImageFolderData",
    "ImageSet",
    "SkippedFile",
    "cifar10",
    "fashion_mnist",
    "image_folder",
    "load_images",
    "load_mnist_format",
    "mnist",
    "random_horizontal_flip",
    "read_idx",
    "split",
    "to_float",
    "write_idx",
]

PathLike = str | os.PathLike


class DatasetError(NetError):
    """A data set file or folder is missing or damaged; the message names it and says what was expected."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data set file or folder does not exist; the message says how to get it."""


# --- writing files atomically ----------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, then renames it over ``path``."""
    with atomic_file(path) as out:
        out.write(data)


# --- IDX files ---------------------------------------------------------------------------------

# type code -> big-endian dtype, as in the IDX format description on the MNIST page
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
_CHUNK = 1 << 22  # 4 MiB


def _read_at_most(stream: BinaryIO, limit: int) -> bytearray:
    """Up to ``limit`` bytes, read in chunks (a damaged header can claim any size)."""
    data = bytearray()
    while len(data) < limit:
        chunk = stream.read(min(_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _count_rest(stream: BinaryIO) -> int:
    n = 0
    while chunk := stream.read(_CHUNK):
        n += len(chunk)
    return n


def read_idx(path: PathLike) -> np.ndarray:
    """Reads an IDX file (the MNIST format), raw or gzip-compressed, into a NumPy array.

    The header is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed
    byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
    dimensions, then each dimension as a big-endian 32-bit integer; the data
    follow, big-endian, row-major. Compression is recognised by the gzip magic
    number, not by the file name. The file must hold exactly the number of bytes
    its header announces: a truncated or padded file raises :class:`DatasetError`
    naming the file with the expected and actual byte counts (uncompressed, for
    a gzip file). The array comes back in native byte order and writable.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
        >>> write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
        >>> read_idx(path)
        array([5, 0, 4], dtype=uint8)
        >>> with open(path, "r+b") as f:
        ...     _ = f.truncate(10)  # keep only part of the gzip stream
        >>> read_idx(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        netgraph.datasets.DatasetError: .../labels-idx1-ubyte.gz: damaged gzip data ...
    """
    path = Path(path)
    try:
        with open_regular(path) as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    return _parse_idx(unzipped, path, compressed=True)
            return _parse_idx(raw, path, compressed=False)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such IDX file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a folder, expected an IDX file") from None
    except NotARegularFileError as e:
        raise DatasetError(f"{path}: {e.strerror}; expected an IDX file") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path}: damaged gzip data (truncated or corrupted download?): {e}") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the IDX file: {e}") from None


def _parse_idx(stream: BinaryIO, path: Path, compressed: bool) -> np.ndarray:
    what = "uncompressed bytes" if compressed else "bytes"
    magic = _read_at_most(stream, 4)
    if len(magic) < 4:
        raise DatasetError(
            f"{path}: truncated or damaged IDX file: expected at least 4 {what} of header, got {len(magic)}"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise DatasetError(
            f"{path}: not an IDX file: its magic number {bytes(magic).hex()} should start with 0000 "
            "(then a type code and the number of dimensions)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        codes = ", ".join(f"0x{c:02X} ({dt.name})" for c, dt in IDX_TYPES.items())
        raise DatasetError(f"{path}: unknown IDX type code 0x{code:02X}; expected one of {codes}")
    header_size = 4 + 4 * ndim
    dims_bytes = _read_at_most(stream, 4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise DatasetError(
            f"{path}: truncated or damaged IDX file: the header of a {ndim}-dimensional array needs "
            f"{header_size} {what}, the file has {4 + len(dims_bytes)}"
        )
    dims = struct.unpack(f">{ndim}I", bytes(dims_bytes))
    dtype = IDX_TYPES[code]
    payload = math.prod(dims) * dtype.itemsize
    expected = header_size + payload
    data = _read_at_most(stream, payload + 1)
    if len(data) != payload:
        shape = "×".join(map(str, dims)) or "scalar"
        if len(data) < payload:
            actual = f"the file has {header_size + len(data)}"
        else:
            actual = f"the file has {header_size + len(data) + _count_rest(stream)} (extra data at the end)"
        raise DatasetError(
            f"{path}: truncated or damaged IDX file: its header ({shape} of {dtype.name}) needs "
            f"{expected} {what}, {actual}"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def write_idx(path: PathLike, array: Any) -> None:
    """Writes an array as an IDX file, gzip-compressed when the name ends in ``.gz``.

    The dtype must be one IDX can hold (uint8, int8, int16, int32, float32,
    float64). The file is written atomically (a temporary file, then a rename),
    and compressed files are byte-for-byte reproducible (no time stamp).

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "x-idx2-short")
        >>> write_idx(path, np.array([[1, -2], [300, 4]], dtype=np.int16))
        >>> os.path.getsize(path)  # 4 + 2*4 header bytes, 4*2 data bytes
        20
        >>> read_idx(path).tolist()
        [[1, -2], [300, 4]]
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        names = ", ".join(dt.name for dt in IDX_TYPES.values())
        raise DatasetError(f"{path}: IDX files hold {names}, not {array.dtype}")
    if array.ndim > 255:
        raise DatasetError(f"{path}: IDX files hold at most 255 dimensions, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise DatasetError(f"{path}: IDX dimensions must be below 2^32, got {array.shape}")
    code = _IDX_CODES[native]
    body = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    body += np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if path.name.endswith(".gz"):
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", fileobj=buffer, mode="wb", mtime=0) as z:
            z.write(body)
        body = buffer.getvalue()
    _atomic_write(path, body)


# --- MNIST-format folders ------------------------------------------------------------------------

MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _check_kind(kind: str) -> str:
    if kind not in ("train", "test"):
        raise ValueError(f'kind must be "train" or "test", got {kind!r}')
    return kind


def _find_idx(directory: Path, stem: str) -> Path | None:
    """``stem``, ``stem.gz``, or the same with a dot before ``idx`` (as some copies name them)."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _has_mnist_files(directory: Path, kind: str) -> bool:
    return all(_find_idx(directory, stem) for stem in MNIST_FILES[kind])


def load_mnist_format(directory: PathLike, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (N, rows, cols)`` and labels ``uint8 (N,)`` from a folder of MNIST-format IDX files.

    ``kind="train"`` reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``,
    ``kind="test"`` reads ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``;
    each may be raw or gzip-compressed (``.gz``), and ``train-images.idx3-ubyte``
    (a dot before ``idx``) is accepted too. MNIST, Fashion-MNIST, KMNIST and
    EMNIST come in this format (28 × 28 images).

    Example:
        >>> import os, tempfile, numpy as np
        >>> folder = tempfile.mkdtemp()
        >>> write_idx(os.path.join(folder, "t10k-images-idx3-ubyte"), np.full((3, 28, 28), 7, np.uint8))
        >>> write_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"), np.array([1, 2, 3], np.uint8))
        >>> images, labels = load_mnist_format(folder, kind="test")
        >>> images.shape, images.dtype, labels.tolist()
        ((3, 28, 28), dtype('uint8'), [1, 2, 3])
    """
    _check_kind(kind)
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetNotFoundError(f"{directory}: no such folder (expected a folder of MNIST-format IDX files)")
    images_stem, labels_stem = MNIST_FILES[kind]
    found = {stem: _find_idx(directory, stem) for stem in MNIST_FILES[kind]}
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        raise DatasetNotFoundError(
            f"{directory}: no {' or '.join(s + '[.gz]' for s in missing)}; the {kind} set of an MNIST-format "
            f"folder is the IDX files {images_stem}[.gz] and {labels_stem}[.gz]"
        )
    images_path, labels_path = found[images_stem], found[labels_stem]
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{images_path}: expected images as unsigned bytes (N, rows, cols), got {images.dtype.name} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(
            f"{labels_path}: expected labels as unsigned bytes (N,), got {labels.dtype.name} {labels.shape}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{directory}: {images_path.name} holds {len(images)} images but {labels_path.name} holds "
            f"{len(labels)} labels; they must agree"
        )
    return images, labels


# --- where data sets live ------------------------------------------------------------------------

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _data_home() -> Path:
    """``$NETGRAPH_DATA`` when set, else ``$XDG_CACHE_HOME/netgraph`` (``~/.cache/netgraph``)."""
    if os.environ.get("NETGRAPH_DATA"):
        return Path(os.environ["NETGRAPH_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "netgraph"


def fashion_mnist(directory: PathLike | None = None, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando): images ``uint8 (N, 28, 28)`` and labels ``uint8 (N,)``, 60,000 train, 10,000 test.

    With no ``directory`` the files are looked for in ``$NETGRAPH_DATA/fashion-mnist``
    (``~/.cache/netgraph/fashion-mnist``) and then where Debian's package
    ``dataset-fashion-mnist`` installs them, ``/usr/share/datasets/fashion-mnist``.
    The class names are :data:`FASHION_MNIST_CLASSES`.

    Example:
        >>> import os, tempfile, numpy as np
        >>> folder = tempfile.mkdtemp()
        >>> write_idx(os.path.join(folder, "train-images-idx3-ubyte.gz"), np.zeros((2, 28, 28), np.uint8))
        >>> write_idx(os.path.join(folder, "train-labels-idx1-ubyte.gz"), np.array([9, 0], np.uint8))
        >>> images, labels = fashion_mnist(folder)
        >>> images.shape, [FASHION_MNIST_CLASSES[k] for k in labels]
        ((2, 28, 28), ['Ankle boot', 'T-shirt/top'])
    """
    _check_kind(kind)
    if directory is not None:
        return load_mnist_format(directory, kind)
    places = [_data_home() / "fashion-mnist", DEBIAN_FASHION_MNIST]
    for place in places:
        if _has_mnist_files(place, kind):
            return load_mnist_format(place, kind)
    images_stem, labels_stem = MNIST_FILES[kind]
    raise DatasetNotFoundError(
        f"Fashion-MNIST {kind} files ({images_stem}[.gz], {labels_stem}[.gz]) not found in "
        f"{' or '.join(str(p) for p in places)}. To get them: on Debian or Ubuntu, "
        "`apt-get install dataset-fashion-mnist` (installs them in /usr/share/datasets/fashion-mnist); "
        "or download the four .gz files of https://github.com/zalandoresearch/fashion-mnist into a folder "
        "and pass fashion_mnist(directory=that folder)."
    )


# --- MNIST, with download --------------------------------------------------------------------------

MNIST_MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

# file -> (size in bytes, SHA-256), as published with TensorFlow Datasets' url_checksums/mnist.txt
# for the cvdf-datasets mirror (the same files as on the original MNIST page).
MNIST_CHECKSUMS: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a mirror is given up


class _RejectedDownloadError(Exception):
    """A download that arrived but is not the expected file."""


def _fetch(url: str, dest: Path, size: int, sha256: str) -> None:
    """Downloads ``url`` to ``dest`` through a temporary file, keeping it only if size and SHA-256 match."""
    digest, n = hashlib.sha256(), 0
    with atomic_file(dest) as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        while chunk := response.read(1 << 20):
            n += len(chunk)
            if n > size:
                raise _RejectedDownloadError(f"more than the expected {size} bytes")
            digest.update(chunk)
            out.write(chunk)
        if n != size:
            raise _RejectedDownloadError(f"got {n} bytes, expected {size}")
        if digest.hexdigest() != sha256:
            raise _RejectedDownloadError(f"SHA-256 {digest.hexdigest()} does not match the published {sha256}")


def _download_mnist(root: Path) -> None:
    """Fetches each of the four MNIST files that ``root`` lacks, trying the mirrors in turn."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"{root}: cannot create the MNIST cache folder: {e}") from None
    for name, (size, sha256) in MNIST_CHECKSUMS.items():
        if _find_idx(root, name.removesuffix(".gz")):
            continue
        failures = []
        for mirror in MNIST_MIRRORS:
            url = mirror + name
            try:
                _fetch(url, root / name, size, sha256)
                break
            except _RejectedDownloadError as e:
                failures.append(f"{url}: rejected, {e}")
            except Exception as e:  # network errors of every kind: try the next mirror
                failures.append(f"{url}: {type(e).__name__}: {e}")
        else:
            raise DatasetError(
                f"could not download the MNIST file {name} into {root}:\n  "
                + "\n  ".join(failures)
                + f"\nNothing partial was kept. {_mnist_instructions(root)}"
            )


def _mnist_instructions(root: Path) -> str:
    names = ", ".join(MNIST_CHECKSUMS)
    return (
        f"To get MNIST: call mnist(download=True), which downloads about 11 MB into {root} "
        "(set NETGRAPH_DATA or pass cache_dir= to choose another folder); or, without network access here, "
        f"download the four files {names} from {' or '.join(MNIST_MIRRORS)} elsewhere, copy them into a "
        "folder and pass mnist(directory=that folder)."
    )


def mnist(
    directory: PathLike | None = None,
    download: bool = False,
    cache_dir: PathLike | None = None,
    kind: str = "train",
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST handwritten digits: images ``uint8 (N, 28, 28)`` and labels ``uint8 (N,)``, 60,000 train, 10,000 test.

    With ``directory``, the IDX files are read from that folder and nothing is
    downloaded. Otherwise they are read from the cache folder ``cache_dir``
    (default ``$NETGRAPH_DATA/mnist``, or ``~/.cache/netgraph/mnist``); with
    ``download=True`` the files the cache lacks are fetched from
    :data:`MNIST_MIRRORS` (tried in turn) and kept only when their size and
    SHA-256 sum match :data:`MNIST_CHECKSUMS`; each is written to a temporary
    file and renamed into place, so an interrupted or corrupted download leaves
    nothing behind. When the files are neither there nor downloadable the error
    says how to get them.

    Example:
        >>> import tempfile
        >>> mnist(cache_dir=tempfile.mkdtemp())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        netgraph.datasets.DatasetNotFoundError: MNIST train files ... To get MNIST: call mnist(download=True), ...
    """
    _check_kind(kind)
    if directory is not None:
        if download or cache_dir is not None:
            raise ValueError(
                "mnist: directory= reads IDX files already there; to download, leave directory unset "
                "(files go to cache_dir)"
            )
        return load_mnist_format(directory, kind)
    root = Path(cache_dir).expanduser() if cache_dir is not None else _data_home() / "mnist"
    if not _has_mnist_files(root, kind):
        if not download:
            images_stem, labels_stem = MNIST_FILES[kind]
            raise DatasetNotFoundError(
                f"MNIST {kind} files ({images_stem}[.gz], {labels_stem}[.gz]) not found in {root}. "
                + _mnist_instructions(root)
            )
        _download_mnist(root)
    return load_mnist_format(root, kind)


# --- CIFAR-10 ----------------------------------------------------------------------------------------

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _cifar_names(kind: str, binary: bool) -> list[str]:
    stems = [f"data_batch_{i}" for i in range(1, 6)] if kind == "train" else ["test_batch"]
    return [s + ".bin" for s in stems] if binary else stems


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """What ``_codecs.encode`` does in a pickle (Python 3 writes bytes that way at protocol 2), latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is allowed only on text with latin1, got {encoding!r}")
    return text.encode("latin-1")


# The globals a pickled dict of bytes, lists of ints and NumPy arrays needs, and nothing else:
# numpy.core.multiarray._reconstruct (numpy._core since NumPy 2), numpy.ndarray and numpy.dtype
# rebuild an array; _codecs.encode rebuilds bytes in pickles written by Python 3 at protocol 2.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_CIFAR_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch: refuses every global outside :data:`_CIFAR_PICKLE_GLOBALS`."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _CIFAR_PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self.path}: refusing to unpickle it: it asks for {module}.{name}, but a CIFAR-10 batch "
                "holds only a dict of bytes, lists and a NumPy uint8 array (allowed: "
                + ", ".join(f"{m}.{n}" for m, n in _CIFAR_PICKLE_GLOBALS)
                + ")"
            ) from None


def _parse_cifar_binary(data: bytes, where: PathLike) -> tuple[np.ndarray, np.ndarray]:
    if len(data) == 0 or len(data) % _CIFAR_RECORD:
        raise DatasetError(
            f"{where}: expected CIFAR-10 binary records of {_CIFAR_RECORD} bytes (1 label byte, 3072 pixel bytes), "
            f"but the file has {len(data)} bytes, not a positive multiple of {_CIFAR_RECORD} (truncated? "
            "CIFAR-100's records have 2 label bytes)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise DatasetError(
            f"{where}: label {int(labels.max())} out of range 0..9 (not a CIFAR-10 binary batch? "
            "CIFAR-100's records have 2 label bytes)"
        )
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _parse_cifar_pickle(data: bytes, where: PathLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _CifarUnpickler(io.BytesIO(data), where).load()
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f"{where}: not a readable CIFAR-10 python batch: {type(e).__name__}: {e}") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{where}: expected a pickled dict with b'data' and b'labels', got {type(batch).__name__}")

    def entry(key: str) -> Any:
        for k in (key.encode(), key):
            if k in batch:
                return batch[k]
        keys = ", ".join(repr(k) for k in batch)
        raise DatasetError(f"{where}: the batch has no {key!r} entry (it has {keys}); is it a CIFAR-10 batch?")

    images, labels = entry("data"), entry("labels")
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2):
        raise DatasetError(f"{where}: expected 'data' to be a uint8 array (N, 3072), got {_describe(images)}")
    if images.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{where}: expected 'data' of shape (N, 3072), got {images.shape}")
    if not (isinstance(labels, (list, np.ndarray)) and all(isinstance(v, (int, np.integer)) for v in labels)):
        raise DatasetError(f"{where}: expected 'labels' to be a list of ints, got {_describe(labels)}")
    if len(labels) != len(images):
        raise DatasetError(f"{where}: {len(images)} images but {len(labels)} labels")
    if any(not 0 <= int(v) <= 9 for v in labels):
        raise DatasetError(f"{where}: labels must lie in 0..9")
    return images.reshape(-1, 3, 32, 32).copy(), np.asarray(labels, dtype=np.uint8).reshape(-1)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name} array {value.shape}"
    return type(value).__name__


def cifar10(directory: PathLike, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10: images ``uint8 (N, 3, 32, 32)`` (RGB, channels first) and labels ``uint8 (N,)``.

    ``kind="train"`` reads the five training batches (50,000 images),
    ``kind="test"`` the test batch (10,000). ``directory`` may hold the binary
    version (``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin``;
    each record one label byte and 3072 pixel bytes, red plane, green, blue) or
    the python version (``data_batch_1`` ... ``test_batch``, pickled dicts), directly or in
    the ``cifar-10-batches-bin`` / ``cifar-10-batches-py`` folder their archives unpack
    to; or it may be one of the archives ``cifar-10-binary.tar.gz`` / ``cifar-10-python.tar.gz``
    (or a folder holding one), read without unpacking. The binary version is
    parsed byte by byte; the python version goes through an unpickler that
    allows only the globals that rebuild a NumPy array, so a crafted file cannot
    run code. Class names are :data:`CIFAR10_CLASSES`.

    Example:
        >>> import os, tempfile, numpy as np
        >>> folder = tempfile.mkdtemp()
        >>> record = bytes([3]) + bytes(range(256)) * 12  # label 3 ("cat"), then 3072 pixels
        >>> with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        ...     _ = f.write(record * 2)
        >>> images, labels = cifar10(folder, kind="test")
        >>> images.shape, images.dtype, [CIFAR10_CLASSES[k] for k in labels]
        ((2, 3, 32, 32), dtype('uint8'), ['cat', 'cat'])
    """
    _check_kind(kind)
    directory = Path(directory)
    archives = ("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz")
    if directory.is_file():
        return _cifar_from_archive(directory, kind)
    if not directory.is_dir():
        raise DatasetNotFoundError(f"{directory}: no such folder (expected the CIFAR-10 batches)")
    for binary, sub in ((True, "cifar-10-batches-bin"), (False, "cifar-10-batches-py")):
        names = _cifar_names(kind, binary)
        for folder in (directory, directory / sub):
            present = [n for n in names if (folder / n).is_file()]
            if not present:
                continue
            missing = [n for n in names if n not in present]
            if missing:
                raise DatasetNotFoundError(f"{folder}: has {', '.join(present)} but not {', '.join(missing)}")
            parse = _parse_cifar_binary if binary else _parse_cifar_pickle
            parts = [parse(_read_file(folder / n), folder / n) for n in names]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    for archive in archives:
        if (directory / archive).is_file():
            return _cifar_from_archive(directory / archive, kind)
    raise DatasetNotFoundError(
        f"{directory}: no CIFAR-10 {kind} batches (looked for {', '.join(_cifar_names(kind, True))}, "
        f"or {', '.join(_cifar_names(kind, False))}, here and in cifar-10-batches-bin/ and cifar-10-batches-py/, "
        f"and for {' or '.join(archives)}). Get cifar-10-binary.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html and put it (unpacked or not) in this folder."
    )


def _read_file(path: Path) -> bytes:
    try:
        with open_regular(path) as stream:
            return stream.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read: {e.strerror or e}") from None


def _cifar_from_archive(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open_regular(path) as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for binary in (True, False):
                names = _cifar_names(kind, binary)
                if all(n in members for n in names):
                    parts = []
                    for n in names:
                        stream = tar.extractfile(members[n])
                        assert stream is not None  # a regular file
                        where = path / members[n].name
                        data = stream.read()
                        parts.append(_parse_cifar_binary(data, where) if binary else _parse_cifar_pickle(data, where))
                    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: cannot read the archive: {e}") from None
    raise DatasetError(
        f"{path}: the archive has no CIFAR-10 {kind} batches (expected {', '.join(_cifar_names(kind, True))} "
        f"or {', '.join(_cifar_names(kind, False))})"
    )


# --- folders of images ----------------------------------------------------------------------------------

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_BILINEAR = getattr(Image, "Resampling", Image).BILINEAR


class SkippedFile(NamedTuple):
    """A file :func:`image_folder` left out, and why."""

    path: Path
    reason: str


class ImageFolderData(NamedTuple):
    """What :func:`image_folder` returns: ``images, paths, skipped = image_folder(...)``."""

    images: np.ndarray  # uint8 (N, C, height, width): (N, C, size, size) for a square size
    paths: list[Path]  # the file of each image, in order
    skipped: list[SkippedFile]  # files left out, with the reason


class _SkipFileError(Exception):
    pass


def _walk_files(directory: Path, recursive: bool) -> list[Path]:
    """Files in a fixed order: each folder's files by name, then its sub-folders by name; hidden ones left out."""
    files: list[Path] = []
    for here, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        files.extend(Path(here) / n for n in sorted(names) if not n.startswith("."))
    return files


def _size_pair(size: Any) -> tuple[int, int]:
    """``size`` as ``(width, height)``: an int is a square, a pair is (width, height); both positive."""
    if is_whole(size) and size >= 1:
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(is_whole(v) and v >= 1 for v in size):
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be a positive int or a pair (width, height) of positive ints, got {size!r}")


def _crop_box(width: int, height: int, out_width: int, out_height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the largest centred box of a width × height image with the
    aspect ratio out_width : out_height (the shorter side's square when the output is square)."""
    if width * out_height >= height * out_width:  # the image is wider than the output: cut the sides
        crop_height, crop_width = height, max(1, min(width, round(height * out_width / out_height)))
    else:  # taller: cut the top and the bottom
        crop_width, crop_height = width, max(1, min(height, round(width * out_height / out_width)))
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    return left, top, left + crop_width, top + crop_height


def _resize_linear(a: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """OpenCV's ``cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)`` of a uint8 (H, W, C) array;
    ``size`` is ``(width, height)``, or an int for a square.

    Two taps per axis at half-pixel centres, no antialiasing; weights and
    rounding in OpenCV's 11-bit fixed point, which matches OpenCV 4's output
    exactly on the images tried (up- and downscaling, 1 and 3 channels).
    """

    def taps(n_in: int, n_out: int, clamp_weight: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        scale = 1.0 / (n_out / n_in)
        f = ((np.arange(n_out) + 0.5) * scale - 0.5).astype(np.float32)
        i0 = np.floor(f).astype(np.int64)
        frac = f - i0.astype(np.float32)
        if clamp_weight:  # columns: OpenCV moves outside samples onto the border pixel, rows only clamp
            frac[(i0 < 0) | (i0 >= n_in - 1)] = 0
        i1 = np.clip(i0 + 1, 0, n_in - 1)
        i0 = np.clip(i0, 0, n_in - 1)
        w0 = np.rint((np.float32(1) - frac) * np.float32(2048)).astype(np.int64)
        w1 = np.rint(frac * np.float32(2048)).astype(np.int64)
        return i0, i1, w0, w1

    out_width, out_height = _size_pair(size)
    y0, y1, b0, b1 = taps(a.shape[0], out_height, False)
    x0, x1, c0, c1 = taps(a.shape[1], out_width, True)
    rows = np.unique(np.concatenate([y0, y1]))  # only the rows that are read
    src = a[rows].astype(np.int64)
    h = src[:, x0] * c0[:, None] + src[:, x1] * c1[:, None]  # horizontal pass, 11-bit weights
    where = np.searchsorted(rows, np.arange(a.shape[0]))
    s0, s1 = h[where[y0]], h[where[y1]]
    out = (((s0 >> 4) * b0[:, None, None]) >> 16) + (((s1 >> 4) * b1[:, None, None]) >> 16)
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)


def _load_image(path: Path, size: tuple[int, int], mode: str, resampling: str) -> np.ndarray:
    """One image, centre-cropped to the aspect ratio of ``size`` = (width, height) and resized to it,
    as uint8 (height, width, C)."""
    out_width, out_height = size
    try:
        file = open_regular(path)  # closed below, once Pillow is done with it; a FIFO or a device is refused
    except NotARegularFileError as e:
        raise _SkipFileError(str(e.strerror)) from None
    except OSError as e:
        raise _SkipFileError(f"unreadable: {e.strerror or e}") from None
    with file:
        if os.fstat(file.fileno()).st_size == 0:
            raise _SkipFileError("empty file (0 bytes)")
        try:
            im = Image.open(file)
        except UnidentifiedImageError:
            raise _SkipFileError("not an image Pillow can read (unknown or damaged format)") from None
        except Image.DecompressionBombError as e:
            raise _SkipFileError(f"too large: {e}") from None
        with im:
            width, height = im.size
            if width <= 0 or height <= 0:
                raise _SkipFileError(f"zero-size image ({width}×{height})")
            side, largest = min(width, height), max(out_width, out_height)
            if resampling == "Bilinear" and im.format == "JPEG" and side > 2 * largest:
                # decode at a reduced scale (1/2, 1/4, 1/8) while the crop stays >= 2 × the output (whichever
                # way the EXIF orientation turns the image, as the shorter side stays >= 2 × the longer output side)
                scale = 2 * largest / side
                im.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
            im.load()
            try:
                im = ImageOps.exif_transpose(im) or im
            except Exception:  # a damaged EXIF block: keep the pixels as stored
                pass
            if im.mode.startswith("I;16"):
                im = Image.fromarray((np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8), "L")
            if im.mode == "P":
                im = im.convert("RGBA")  # a palette's transparency converts cleanly only this way
            im = im.convert(mode)
            left, top, right, bottom = _crop_box(*im.size, out_width, out_height)
            if resampling == "Bilinear":
                gap = 3.0 if right - left >= 3 * out_width and bottom - top >= 3 * out_height else None
                crop = im.crop((left, top, right, bottom))  # a true crop: nothing outside leaks in
                im = crop.resize((out_width, out_height), _BILINEAR, reducing_gap=gap)
                out = np.asarray(im)
            else:
                crop = np.asarray(im)[top:bottom, left:right]
                out = _resize_linear(crop.reshape(bottom - top, right - left, -1), (out_width, out_height))
    return out.reshape(out_height, out_width, -1)


def image_folder(
    directory: PathLike,
    size: int | tuple[int, int],
    color_space: str = "Grayscale",
    recursive: bool = True,
    resampling: str = "Bilinear",
) -> ImageFolderData:
    """Every image in a folder, centre-cropped to a square, resized to ``size`` × ``size``; or, with
    ``size=(width, height)``, centre-cropped to that aspect ratio and resized to width × height.

    Files ending in .jpg, .jpeg, .png, .bmp, .gif, .webp, .tif or .tiff (any
    case) are read, in a fixed order (each folder's files by name, then its
    sub-folders when ``recursive``; names starting with a dot and linked folders
    are left out). Each image is turned upright by its EXIF orientation,
    converted to ``color_space`` ("Grayscale": 1 channel, Pillow's ITU-R 601-2
    luma; "RGB": 3 channels, transparency dropped; 16-bit images scaled to 8
    bits), cropped to the largest centred box with the output's aspect ratio
    (for a square, the longer side cut to the shorter one), and resized:

    * ``resampling="Bilinear"`` (default): Pillow's BILINEAR filter, which
      averages over the whole footprint when shrinking (antialiased). Large
      JPEGs are decoded at 1/2, 1/4 or 1/8 scale (``Image.draft``) and other
      large images reduced by whole factors first (``reducing_gap``) - the
      result differs from a full-resolution resize by a grey level or two.
    * ``resampling="OpenCV"``: exactly ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)``
      of the cropped square: two taps per axis at half-pixel centres, no
      antialiasing, OpenCV's fixed-point rounding; always decoded at full size.
      Upscaling gives the same as "Bilinear" to within one grey level;
      shrinking differs (INTER_LINEAR reads only the pixels next to each sample).

    Returns ``ImageFolderData(images, paths, skipped)`` (unpacks as a 3-tuple):
    ``uint8 (N, C, height, width)`` channels first, the path of each image, and a
    :class:`SkippedFile` (path, reason) for each file left out - unreadable,
    empty, truncated, damaged, not an image, too large for Pillow's
    decompression-bomb guard, not named as an image, or not a regular file
    (a FIFO or a device, which would block or never end, is never read). A bad file never stops
    the load; a folder with no usable image raises :class:`DatasetError`.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> Image.new("RGB", (40, 20), (255, 0, 0)).save(os.path.join(folder, "red.png"))
        >>> Image.new("L", (1, 1), 200).save(os.path.join(folder, "dot.gif"))
        >>> with open(os.path.join(folder, "notes.txt"), "w") as f:
        ...     _ = f.write("not an image")
        >>> images, paths, skipped = image_folder(folder, 8, color_space="RGB")
        >>> images.shape, images.dtype, [p.name for p in paths]
        ((2, 3, 8, 8), dtype('uint8'), ['dot.gif', 'red.png'])
        >>> images[0, :, 0, 0].tolist(), images[1, :, 0, 0].tolist()
        ([200, 200, 200], [255, 0, 0])
        >>> [(s.path.name, s.reason) for s in skipped]
        [('notes.txt', 'not an image file (extension .txt)')]

        Portrait pictures 6 wide and 8 high, keeping the aspect ratio: a 40 × 20 picture, red at
        the sides and blue in the middle, keeps only a centred 15 × 20 box (all blue), then is resized.

        >>> picture = Image.new("RGB", (40, 20), (255, 0, 0))
        >>> picture.paste((0, 0, 255), (10, 0, 30, 20))
        >>> picture.save(os.path.join(folder, "red.png"))
        >>> images, _, _ = image_folder(folder, (6, 8), color_space="RGB")
        >>> images.shape, np.unique(images[1].reshape(3, -1), axis=1).T.tolist()
        ((2, 3, 8, 6), [[0, 0, 255]])
    """
    directory = Path(directory)
    if color_space not in ("Grayscale", "RGB"):
        raise ValueError(f'color_space must be "Grayscale" or "RGB", got {color_space!r}')
    if resampling not in ("Bilinear", "OpenCV"):
        raise ValueError(f'resampling must be "Bilinear" or "OpenCV", got {resampling!r}')
    pair = _size_pair(size)
    if not directory.is_dir():
        raise DatasetNotFoundError(f"{directory}: no such folder (expected a folder of images)")
    mode = "L" if color_space == "Grayscale" else "RGB"
    images: list[np.ndarray] = []
    paths: list[Path] = []
    skipped: list[SkippedFile] = []
    for path in _walk_files(directory, recursive):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(SkippedFile(path, f"not an image file (extension {path.suffix or 'none'})"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                images.append(_load_image(path, pair, mode, resampling))
            paths.append(path)
        except _SkipFileError as e:
            skipped.append(SkippedFile(path, str(e)))
        except Image.DecompressionBombError as e:
            skipped.append(SkippedFile(path, f"too large: {e}"))
        except Exception as e:  # truncated or damaged data, odd modes: report it and go on
            reason = str(e) or type(e).__name__
            if "truncated" in reason.lower():
                reason = f"truncated image: {reason}"
            else:
                reason = f"damaged or unsupported image: {type(e).__name__}: {reason}"
            skipped.append(SkippedFile(path, reason))
    if not images:
        detail = ""
        if skipped:
            detail = f"; all {len(skipped)} files were skipped, e.g. {skipped[0].path.name}: {skipped[0].reason}"
        raise DatasetError(
            f"{directory}: no usable images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}"
            f"{', in sub-folders too' if recursive else ''}){detail}"
        )
    stacked = np.stack(images).transpose(0, 3, 1, 2)
    return ImageFolderData(np.ascontiguousarray(stacked), paths, skipped)


# --- splits and augmentation ----------------------------------------------------------------------------


def split(arrays: Any, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int | None = 0) -> list[Any]:
    """Shuffles examples with a seed and cuts them into parts of the given fractions.

    ``arrays`` is one array, or a tuple or list of arrays with the same first
    dimension (shuffled together, so images stay with their labels). The
    fractions must be non-negative and add up to at most 1 (the rest is left
    out); part sizes are rounded so they add up to ``round(sum * N)``. Returns a
    list with one part per fraction: an array, or a tuple of arrays.
    ``seed=None`` draws a fresh shuffle.

    Example:
        >>> import numpy as np
        >>> x, y = np.arange(20).reshape(10, 2), np.arange(10)
        >>> train, valid, test = split((x, y), fractions=(0.6, 0.2, 0.2), seed=1)
        >>> [len(part[1]) for part in (train, valid, test)]
        [6, 2, 2]
        >>> bool(np.all(train[0][:, 0] == 2 * train[1]))  # rows stay with their labels
        True
        >>> sorted(np.concatenate([train[1], valid[1], test[1]]).tolist()) == list(range(10))
        True
    """
    several = isinstance(arrays, (tuple, list))
    items = [np.asarray(a) for a in arrays] if several else [np.asarray(arrays)]
    if not items or any(a.ndim == 0 for a in items):
        raise ValueError("split: give an array or a tuple of arrays, each with a first (example) dimension")
    n = len(items[0])
    if any(len(a) != n for a in items):
        raise ValueError(f"split: the arrays have different numbers of examples: {[len(a) for a in items]}")
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0 <= f <= 1 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"split: fractions must be in [0, 1] and add up to at most 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.rint(np.cumsum([0.0, *fractions]) * n).astype(int).clip(0, n)
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index = order[lo:hi]
        parts.append(tuple(a[index] for a in items) if several else items[0][index])
    return parts


def random_horizontal_flip(images: Any, rng: np.random.Generator | int | None = None, p: float = 0.5) -> np.ndarray:
    """A copy of a batch of images with each image mirrored left-right with probability ``p``.

    ``images`` is ``(N, C, H, W)`` (or ``(N, H, W)``); the last level is the
    width. ``rng`` is a ``numpy.random.Generator`` (advanced by one draw per
    image) or a seed. The input is not changed.

    Example:
        >>> import numpy as np
        >>> batch = np.arange(8).reshape(2, 1, 2, 2)
        >>> random_horizontal_flip(batch, np.random.default_rng(0), p=1.0)[0, 0].tolist()
        [[1, 0], [3, 2]]
        >>> bool(np.array_equal(random_horizontal_flip(batch, 0, p=0.0), batch))
        True
    """
    images = np.asarray(images)
    if images.ndim < 3:
        raise ValueError(f"random_horizontal_flip: expected images (N, C, H, W) or (N, H, W), got shape {images.shape}")
    if not 0 <= p <= 1:
        raise ValueError(f"random_horizontal_flip: p must be in [0, 1], got {p}")
    flip = np.random.default_rng(rng).random(len(images)) < p
    out = images.copy()
    out[flip] = images[flip][..., ::-1]
    return out


def to_float(images: Any, range: tuple[float, float] = (0, 1)) -> np.ndarray:
    """Pixel values 0..255 (uint8) as float32 scaled to ``range``: (0, 1), (-1, 1) or any (low, high).

    0 maps to ``low`` and 255 to ``high`` exactly.

    Example:
        >>> import numpy as np
        >>> pixels = np.array([0, 51, 255], dtype=np.uint8)
        >>> to_float(pixels).tolist()
        [0.0, 0.2, 1.0]
        >>> to_float(pixels, range=(-1, 1)).tolist()
        [-1.0, -0.6, 1.0]
    """
    images = np.asarray(images)
    if not (np.issubdtype(images.dtype, np.integer) or images.dtype == np.bool_):
        raise ValueError(
            f"to_float: expected integer pixel values 0..255 (uint8), got {images.dtype}; "
            "the images look converted already"
        )
    if images.dtype != np.uint8 and images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(f"to_float: pixel values must lie in 0..255, got {images.min()}..{images.max()}")
    try:
        low, high = (float(v) for v in range)
    except (TypeError, ValueError):
        raise ValueError(f"to_float: range must be two numbers (low, high), got {range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"to_float: range must be two finite numbers with low < high, got {range!r}")
    x = images.astype(np.float32)
    return x * np.float32(high - low) / np.float32(255) + np.float32(low)


# --- one entry point for the examples -------------------------------------------------------------------


class ImageSet(NamedTuple):
    """Images found by :func:`load_images`: ``uint8 (N, C, H, W)``, labels (or None), a description, skipped files."""

    images: np.ndarray
    labels: np.ndarray | None
    description: str
    skipped: list[SkippedFile]


def _resize_batch(images: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """uint8 (N, H, W) grey images → uint8 (N, C, height, width) for ``size`` = (width, height): centre-cropped
    to its aspect ratio, Pillow bilinear, grey copied to RGB if asked."""
    width, height = size
    out = np.empty((len(images), height, width), dtype=np.uint8)
    for i, image in enumerate(images):
        im = Image.fromarray(image, "L")
        if im.size != size:
            box = _crop_box(*im.size, width, height)
            im = (im if box == (0, 0, *im.size) else im.crop(box)).resize(size, _BILINEAR)
        out[i] = np.asarray(im)
    return np.repeat(out[:, None], 3 if mode == "RGB" else 1, axis=1)


def load_images(
    source: PathLike | None,
    size: int | tuple[int, int],
    color_space: str = "Grayscale",
    kind: str = "train",
    limit: int | None = None,
) -> ImageSet:
    """Images for an image model, from whatever ``source`` holds, as ``uint8 (N, C, size, size)``,
    or ``uint8 (N, C, height, width)`` for ``size=(width, height)``.

    ``source`` may be a folder of MNIST-format IDX files, CIFAR-10 batches (or
    their archive), or pictures (read with :func:`image_folder`: centre-cropped,
    resized bilinearly, bad files skipped and listed in ``skipped``). With
    ``source=None`` it falls back to Fashion-MNIST (Debian's
    ``dataset-fashion-mnist``), real pictures that are always at hand. Grey
    images asked for in "RGB" have their one channel copied three times;
    colour images asked for in "Grayscale" are converted with the ITU-R 601-2
    luma. ``limit`` keeps only the first N images (before resizing). Images
    whose aspect ratio differs from the asked size's are centre-cropped to it
    first (the square data sets, for instance, lose their sides or their top
    and bottom when ``size`` is not square).

    Example:
        >>> import os, tempfile, numpy as np
        >>> folder = tempfile.mkdtemp()
        >>> write_idx(os.path.join(folder, "train-images-idx3-ubyte"), np.full((3, 28, 28), 7, np.uint8))
        >>> write_idx(os.path.join(folder, "train-labels-idx1-ubyte"), np.arange(3, dtype=np.uint8))
        >>> found = load_images(folder, 32, color_space="RGB")
        >>> found.images.shape, found.labels.tolist(), found.description.startswith("MNIST-format files in")
        ((3, 3, 32, 32), [0, 1, 2], True)
        >>> load_images(folder, (48, 64), color_space="RGB").images.shape  # 48 wide, 64 high
        (3, 3, 64, 48)
    """
    if color_space not in ("Grayscale", "RGB"):
        raise ValueError(f'color_space must be "Grayscale" or "RGB", got {color_space!r}')
    mode = "L" if color_space == "Grayscale" else "RGB"
    pair = _size_pair(size)
    width, height = pair

    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or limit is None else a[:limit]

    if source is None:
        images, labels = fashion_mnist(kind=kind)
        images, labels = cut(images), cut(labels)
        return ImageSet(_resize_batch(images, pair, mode), labels, f"Fashion-MNIST ({kind})", [])
    folder = Path(source).expanduser()
    if not folder.exists():
        raise DatasetNotFoundError(
            f"{folder}: no such folder (expected MNIST-format files, CIFAR-10 batches or pictures)"
        )
    if folder.is_dir() and _has_mnist_files(folder, kind):
        images, labels = load_mnist_format(folder, kind)
        images, labels = cut(images), cut(labels)
        return ImageSet(_resize_batch(images, pair, mode), labels, f"MNIST-format files in {folder}", [])
    try:
        images, labels = cifar10(folder, kind)
    except DatasetNotFoundError:
        if folder.is_file():
            raise
    else:
        images, labels = cut(images), cut(labels)
        if (pair, color_space) != ((32, 32), "RGB"):
            box = _crop_box(32, 32, width, height)
            pictures = [Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0)), "RGB") for im in images]
            pictures = [p.convert(mode).crop(box).resize(pair, _BILINEAR) for p in pictures]
            images = np.stack([np.asarray(p).reshape(height, width, -1) for p in pictures]).transpose(0, 3, 1, 2)
        return ImageSet(np.ascontiguousarray(images), labels, f"CIFAR-10 ({kind}) in {folder}", [])
    found = image_folder(folder, pair, color_space=color_space)
    return ImageSet(cut(found.images), None, f"{len(found.images)} pictures in {folder}", found.skipped)
