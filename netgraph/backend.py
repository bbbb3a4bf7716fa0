"""The array backend: NumPy on the CPU, CuPy on a CUDA GPU; netgraph's threads on the CPU.

Every line of math in netgraph is written once against an array module called
``xp`` (Chainer's convention). This module is the only place that chooses it.
CuPy is imported only when the GPU is asked for. Choosing a device changes nothing
in the process.

On the CPU, netgraph splits big matrix products, window copies and scatter-adds over
:func:`cpu_threads` threads of its own. Its evaluation and NetTrain run inside
:func:`cpu_work`, which for their duration sets NumPy's OpenBLAS to one thread and tells
glibc's malloc to keep freed memory for reuse, and puts both back afterwards (its docstring
says exactly what is restored). Environment variables, read once per process (the thread count
again after ``set_cpu_threads(None)``):

- NETGRAPH_NUM_THREADS (else OMP_NUM_THREADS, OPENBLAS_NUM_THREADS): netgraph's thread count.
- NETGRAPH_BLAS=system: cpu_work leaves OpenBLAS's thread count as it is, and netgraph leaves
  each product to OpenBLAS's own threads.
- NETGRAPH_MALLOC=system: cpu_work leaves glibc's malloc as it is.

Example:
    >>> from netgraph.backend import get_xp, to_numpy
    >>> xp = get_xp("CPU")
    >>> to_numpy(xp.ones(2)).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

DEVICES = ("CPU", "GPU")
PRECISIONS = {"Real32": np.float32, "Real64": np.float64}


class BackendError(RuntimeError):
    """Raised when the requested device or precision cannot be provided."""


def get_xp(target_device: str = "CPU") -> Any:
    """Return the array module for ``target_device`` ("CPU" or "GPU"); nothing in the process changes.

    Example:
        >>> get_xp("CPU").__name__
        'numpy'
    """
    if isinstance(target_device, (tuple, list)) and target_device:
        target_device = target_device[0]  # Wolfram's {"GPU", n}
    if target_device == "CPU":
        return np
    if target_device != "GPU":
        raise BackendError(f"target_device must be one of {DEVICES}, got {target_device!r}")
    try:
        import cupy
    except ImportError as err:
        raise BackendError(
            f'target_device="GPU" needs CuPy: install it with `pip install .[gpu]` on a machine with CUDA ({err})'
        ) from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendError('target_device="GPU" asked for, but no CUDA device is visible')
    except cupy.cuda.runtime.CUDARuntimeError as err:
        raise BackendError(f'target_device="GPU" asked for, but CUDA is not usable: {err}') from None
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        get_xp("GPU")
    except BackendError:
        return False
    return True


def array_module(*arrays: Any) -> Any:
    """The module (numpy or cupy) that owns the arrays; never imports CuPy."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and any(isinstance(a, cupy.ndarray) for a in arrays):
        return cupy
    return np


def to_numpy(array: Any) -> np.ndarray:
    """Copy an array to host memory as a NumPy array (no copy if it already is)."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get"):
        return array.get()
    return np.asarray(array)


def get_dtype(working_precision: str | Any = "Real32") -> np.dtype:
    """Map Wolfram's WorkingPrecision ("Real32", "Real64") or a NumPy dtype to a dtype."""
    if isinstance(working_precision, str):
        if working_precision not in PRECISIONS:
            raise BackendError(f"working_precision must be one of {sorted(PRECISIONS)}, got {working_precision!r}")
        return np.dtype(PRECISIONS[working_precision])
    dtype = np.dtype(working_precision)
    if dtype not in (np.float32, np.float64):
        raise BackendError(f"working_precision must be float32 or float64, got {dtype}")
    return dtype


def seeded_rng(xp: Any, key: Any) -> Any:
    """A random generator on ``xp``'s device, a pure function of ``key`` (an int or a list of ints).

    NumPy gets its default PCG64; CuPy gets Philox4x32-10, whose cuRAND set-up is cheap
    enough to make a fresh generator for every training step. CuPy's generator states cannot
    be saved, so NetTrain derives each step's generator from (seed, step) instead: a run
    resumed from a checkpoint draws the same numbers as an uninterrupted one, on both devices.

    Example:
        >>> import numpy as np
        >>> a, b = seeded_rng(np, [7, 3]).random(2), seeded_rng(np, [7, 3]).random(2)
        >>> bool(np.array_equal(a, b)), bool(np.array_equal(a, seeded_rng(np, [7, 4]).random(2)))
        (True, False)
    """
    sequence = np.random.SeedSequence(key)
    if xp is np:
        return np.random.default_rng(sequence)
    return xp.random.Generator(xp.random.Philox4x3210(sequence))


# --- threads for netgraph's own array passes on the CPU --------------------------------------------

_THREADS: int | None = None  # None: read from the environment when next needed
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0
# NOTE: handing a part to a worker thread and waiting for it costs 40-70 µs on a 2-core VM (two
# wake-ups through the OS), as long as a 1M-value copy or an 8M multiply-add product takes on one core.
PARALLEL_MINIMUM = 1 << 20  # elements a pass touches, below which it is not split
PRODUCT_MINIMUM = 1 << 23  # multiply-adds of a product, below which it is not split
FEW_ROWS = 128  # a long-inner product with at most this many rows is computed as its transpose (see matmul)


def cpu_threads() -> int:
    """Threads for netgraph's passes on the CPU: matrix products, window copies, scatter-adds.

    The count comes from :func:`set_cpu_threads`, else from NETGRAPH_NUM_THREADS, OMP_NUM_THREADS
    or OPENBLAS_NUM_THREADS, else the cores this process may run on. The environment is read
    the first time the count is needed and again after ``set_cpu_threads(None)``.

    Example:
        >>> cpu_threads() >= 1
        True
    """
    global _THREADS
    if _THREADS is None:
        _THREADS = _environment_threads()
    return _THREADS


def _environment_threads() -> int:
    for name in ("NETGRAPH_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_cpu_threads(count: int | None) -> None:
    """Fix the thread count of :func:`cpu_threads` (None: back to the environment's).

    Example:
        >>> set_cpu_threads(2); cpu_threads()
        2
        >>> set_cpu_threads(None)
    """
    global _THREADS, _POOL
    if count is not None and (not isinstance(count, int) or count < 1):
        raise BackendError(f"the CPU thread count must be a positive int, got {count!r}")
    _THREADS = count
    if _POOL is not None:
        _POOL.shutdown()
        _POOL = None


# --- the process settings netgraph's CPU work runs under --------------------------------------------
#
# NOTE: OpenBLAS's worker threads spin for a while after every product, so a pass that NumPy runs
# next on a second thread finds the other core taken. Inside cpu_work() OpenBLAS therefore runs on
# one thread and netgraph splits the products and copies over its own pool, whose idle threads sleep.
#
# NOTE: glibc hands every block above its mmap threshold (128 KiB at first, raised as such blocks are
# freed) straight back to the system, and trims the top of its heap once 128 KiB there are free. A
# training step allocates and frees the same few-MB temporaries every time, so with glibc as it is
# each of them is faulted in again, page by page: measured on the seed-001 encoder (batch 32,
# forward + backward), 5,500 page faults and 21 ms of kernel time in a 33 ms step. Keeping freed
# memory for reuse takes that to no faults and 17 ms. Peak memory is unchanged (what is kept was
# in use at the peak).
#
# NOTE: both settings belong to the process, not to a thread: while one thread is inside cpu_work(),
# NumPy code on the process's other threads runs under them too.

KEEP_BELOW = 32 << 20  # bytes: blocks up to this size come from the heap (glibc's largest threshold)
KEEP_FREE = 1 << 30  # bytes: free memory at the top of the heap kept for reuse before any is returned
GLIBC_THRESHOLD = 128 << 10  # bytes: glibc's initial mmap and trim thresholds
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers in glibc's malloc.h
_INT_MAX = (1 << 31) - 1  # mallopt takes an int
# NOTE: the variables glibc reads for malloc when the process starts, as they are when netgraph is
# imported (os.environ may change later; /proc/self/environ does not hold GLIBC_TUNABLES whole, since
# glibc 2.36 cuts the original string at its first ':' as it parses it).
_MALLOC_ENVIRONMENT = {
    name: os.environ.get(name) for name in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
}

_WORK_LOCK = threading.Lock()
_WORK_DEPTH = 0  # cpu_work() scopes open now, over all threads
_BLAS_BEFORE: int | None = None  # OpenBLAS's thread count before the outermost entry, if it was changed
_BLAS_SINGLE = False  # inside cpu_work() with OpenBLAS on one thread: netgraph's matmul splits products
_MALLOC_KEPT = False  # inside cpu_work() with glibc keeping freed memory


class _Library:
    """What is looked up once per process: OpenBLAS's thread count getter and setter, glibc's mallopt
    and malloc_trim, malloc's start-up thresholds, and the switches NETGRAPH_BLAS and NETGRAPH_MALLOC."""

    looked = False
    blas_get: Callable[[], int] | None = None
    blas_set: Callable[[int], Any] | None = None
    mallopt: Callable[[int, int], int] | None = None
    malloc_trim: Callable[[int], int] | None = None
    thresholds = (GLIBC_THRESHOLD, GLIBC_THRESHOLD)  # (mmap, trim) as the process started
    pin_blas = True  # False under NETGRAPH_BLAS=system
    keep_memory = True  # False under NETGRAPH_MALLOC=system

    @classmethod
    def find(cls) -> type[_Library]:
        if not cls.looked:
            cls.blas_get, cls.blas_set = _openblas_thread_functions()
            cls.mallopt, cls.malloc_trim = _glibc_malloc_functions()
            if cls.mallopt is not None:
                cls.thresholds = _startup_thresholds()
            cls.pin_blas = os.environ.get("NETGRAPH_BLAS", "").lower() != "system"
            cls.keep_memory = os.environ.get("NETGRAPH_MALLOC", "").lower() != "system"
            cls.looked = True
        return cls


def _openblas_thread_functions() -> tuple[Callable[[], int] | None, Callable[[int], Any] | None]:
    """OpenBLAS's get_num_threads and set_num_threads, from the copy NumPy has loaded (Nones without one)."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        pass
    names = (("openblas_", ""), ("scipy_openblas_", "64_"), ("openblas_", "64_"))
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in names:
            getter, setter = f"{prefix}get_num_threads{suffix}", f"{prefix}set_num_threads{suffix}"
            if hasattr(library, getter) and hasattr(library, setter):
                get = getattr(library, getter)
                get.restype, get.argtypes = ctypes.c_int, []
                put = getattr(library, setter)
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None, None


def _glibc_malloc_functions() -> tuple[Callable[[int, int], int] | None, Callable[[int], int] | None]:
    """glibc's mallopt and malloc_trim (Nones elsewhere: macOS, Windows, musl, whose mallopt does nothing)."""
    if not sys.platform.startswith("linux"):
        return None, None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None, None
    if not all(hasattr(libc, name) for name in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
        return None, None
    mallopt, trim = libc.mallopt, libc.malloc_trim
    mallopt.restype, mallopt.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]
    trim.restype, trim.argtypes = ctypes.c_int, [ctypes.c_size_t]
    return mallopt, trim


def _startup_thresholds() -> tuple[int, int]:
    """glibc's mmap and trim thresholds as the process started: its defaults, or what the environment
    set for glibc to read at start-up (GLIBC_TUNABLES' glibc.malloc.mmap_threshold and trim_threshold,
    else MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_), as the environment was when this module
    was imported."""
    tunables = dict(item.partition("=")[::2] for item in (_MALLOC_ENVIRONMENT["GLIBC_TUNABLES"] or "").split(":"))
    values = []
    for name in ("mmap_threshold", "trim_threshold"):
        text = tunables.get(f"glibc.malloc.{name}", _MALLOC_ENVIRONMENT[f"MALLOC_{name.upper()}_"] or "")
        try:
            values.append(int(text, 0))
        except ValueError:
            values.append(GLIBC_THRESHOLD)
    return values[0], values[1]


def blas_threads() -> int | None:
    """The thread count of NumPy's OpenBLAS now (None where NumPy's BLAS is not OpenBLAS or it cannot be read).

    Example:
        >>> count = blas_threads()
        >>> count is None or count >= 1
        True
    """
    library = _Library.find()
    return None if library.blas_get is None else int(library.blas_get())


class CPUWork(contextlib.ContextDecorator):
    """The scope of :func:`cpu_work`: a context manager, and a decorator that runs a function inside one."""

    def __init__(self, release: bool = False) -> None:
        self.release = release

    def __enter__(self) -> CPUWork:
        global _WORK_DEPTH
        with _WORK_LOCK:
            if _WORK_DEPTH == 0:
                _apply_settings()
            _WORK_DEPTH += 1
        return self

    def __exit__(self, *error: object) -> None:
        global _WORK_DEPTH
        with _WORK_LOCK:
            _WORK_DEPTH -= 1
            if _WORK_DEPTH == 0:
                _restore_settings(self.release)


def cpu_work(release: bool = False) -> CPUWork:
    """A scope for netgraph's work on the CPU: evaluation and NetTrain each run inside one.

    Two settings of the whole process make netgraph's passes faster (the NOTEs above say why).
    They are made on the outermost entry and put back on the outermost exit; scopes nest, and
    may be entered from several threads at once (the outermost ones over all threads count).
    A scope rather than one call at import or start-up, because both settings also change the
    program's own NumPy code, and both can be put back: the BLAS setting exactly, malloc's as
    far as glibc lets it be read.

    - OpenBLAS: NumPy's OpenBLAS runs on one thread and :func:`matmul` splits big products over
      :func:`cpu_threads` threads of netgraph's own, whose idle threads sleep. On exit the
      thread count OpenBLAS had on entry is set back exactly. Outside any scope netgraph leaves
      products to OpenBLAS's own threads. NETGRAPH_BLAS=system leaves OpenBLAS as it is.
    - malloc: glibc keeps freed memory for reuse (blocks up to KEEP_BELOW, 32 MB, come from the
      heap, and up to KEEP_FREE, 1 GB, of free memory at its top is kept), so a step's
      temporaries are not faulted in again, page by page, on every step. On exit the mmap and
      trim thresholds are set back to the values the process started with: glibc's 128 KiB,
      or what GLIBC_TUNABLES (glibc.malloc.mmap_threshold, trim_threshold) or
      MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set at start-up (one above what mallopt
      can set, 32 MB and 2 GiB, comes back as that largest value). glibc offers no way to
      read or restore the rest: its dynamic mmap threshold (glibc raises both thresholds by
      itself as large blocks are freed, until the first mallopt of either fixes them for the
      rest of the process, so after the first scope they stay at the start-up values), and any
      value the program set with its own mallopt, which the exit replaces by the start-up value.
      NETGRAPH_MALLOC=system leaves malloc as it is.

    Memory kept inside the scope stays with the process after it, until glibc returns the top
    of its heap at a later free; ``release=True`` on the outermost scope hands all free memory
    back at its exit (malloc_trim, a few ms after a training run). NetTrain releases;
    evaluation does not, as it runs batch by batch and the next batch would fault the memory
    in again. For the same reason a loop that evaluates gradients batch after batch, or calls
    NetTrain run after run, is faster inside one ``with cpu_work():`` around the loop:
    otherwise the memory a call kept goes back when its results are dropped (or when
    NetTrain ends), and the next call faults it in again (measured: the seed-001 net's
    gradients at batch 32, 6,500 page faults and about 50% more time a call; the seed-004
    net's second training step, 12,000 page faults).

    The settings belong to the process: NumPy code on other threads runs under them while any
    thread is inside a scope, and so do the functions NetTrain calls (a data generator, a
    progress function). The two switches are read once per process, when first needed.
    Without OpenBLAS or glibc the part that needs it is skipped. An outermost entry and exit
    take about 5 µs together (on a 2-core VM); a nested one under 1 µs.

    Example:
        >>> import numpy as np
        >>> before = blas_threads()
        >>> with cpu_work():
        ...     inside = blas_threads()
        ...     with cpu_work():  # nested: nothing changes
        ...         product = matmul(np.ones((2, 3)), np.ones((3, 2)))
        >>> inside in (None, 1) or os.environ.get("NETGRAPH_BLAS", "").lower() == "system"
        True
        >>> blas_threads() == before
        True
        >>> @cpu_work()
        ... def work() -> float:
        ...     return float(matmul(np.ones((2, 3)), np.ones((3, 2))).sum())
        >>> work()
        12.0
    """
    return CPUWork(release)


def _apply_settings() -> None:
    """The outermost entry of :func:`cpu_work` (under its lock)."""
    global _BLAS_BEFORE, _BLAS_SINGLE, _MALLOC_KEPT
    library = _Library.find()
    _BLAS_BEFORE, _BLAS_SINGLE, _MALLOC_KEPT = None, False, False
    if library.blas_get is not None and library.blas_set is not None:
        count = library.blas_get()
        if count != 1 and library.pin_blas:
            library.blas_set(1)
            _BLAS_BEFORE, count = count, 1
        _BLAS_SINGLE = count == 1
    if library.mallopt is not None and library.keep_memory:
        kept = library.mallopt(_M_MMAP_THRESHOLD, KEEP_BELOW)
        _MALLOC_KEPT = bool(library.mallopt(_M_TRIM_THRESHOLD, KEEP_FREE)) or bool(kept)


def _restore_settings(release: bool) -> None:
    """The outermost exit of :func:`cpu_work` (under its lock); ``release``: glibc's malloc_trim too."""
    global _BLAS_BEFORE, _BLAS_SINGLE, _MALLOC_KEPT
    library = _Library.find()
    if _BLAS_BEFORE is not None and library.blas_set is not None:
        library.blas_set(_BLAS_BEFORE)
    if _MALLOC_KEPT and library.mallopt is not None:
        # a start-up value above what mallopt takes (KEEP_BELOW, the int range) comes back as that largest
        for parameter, value, largest in zip(
            (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD), library.thresholds, (KEEP_BELOW, _INT_MAX)
        ):
            if not library.mallopt(parameter, min(value, largest)):  # one glibc refused left its default
                library.mallopt(parameter, GLIBC_THRESHOLD)
        if release and library.malloc_trim is not None:
            library.malloc_trim(0)
    _BLAS_BEFORE, _BLAS_SINGLE, _MALLOC_KEPT = None, False, False


def _reset_lock_after_fork() -> None:
    """A forked child gets a fresh lock: another thread may have held the parent's at the fork."""
    global _WORK_LOCK
    _WORK_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def _pool(parts: int) -> ThreadPoolExecutor:
    """The worker threads, made again in a forked child (which has none)."""
    global _POOL, _POOL_PID
    if _POOL is None or _POOL._max_workers < parts - 1 or _POOL_PID != os.getpid():  # a forked child has no workers
        _POOL = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="netgraph")
        _POOL_PID = os.getpid()
    return _POOL


def in_parallel(xp: Any, work: Callable[[int, int], None], length: int, size: int) -> None:
    """Run ``work(begin, end)`` over ``range(length)`` cut into one contiguous part per CPU thread.

    ``size`` is the number of array elements the whole pass touches (multiply-adds for a
    product). The parts must write to disjoint memory. NumPy lets go of the interpreter lock
    inside its copies, ufunc loops and matrix products, so the parts run on separate cores. On
    CuPy, for small passes or with one thread, ``work`` runs once over everything.

    Example:
        >>> import numpy as np
        >>> a = np.zeros(1 << 17)
        >>> in_parallel(np, lambda begin, end: a[begin:end].fill(1.0), len(a), a.size)
        >>> float(a.sum()) == a.size
        True
    """
    parts = min(cpu_threads(), length) if xp is np and size >= PARALLEL_MINIMUM and not in_part() else 1
    if parts <= 1:
        work(0, length)
        return
    pool = _pool(parts)
    bounds = [length * i // parts for i in range(parts + 1)]
    futures = [pool.submit(_as_part, work, bounds[i], bounds[i + 1]) for i in range(1, parts)]
    _as_part(work, bounds[0], bounds[1])  # the calling thread does the first part
    for future in futures:
        future.result()


_PART = threading.local()


def in_part() -> bool:
    """Whether the calling thread is running one part of an :func:`in_parallel` pass now. Passes and
    products started there run whole on that thread: a part is already one thread's share.

    Example:
        >>> import numpy as np
        >>> seen = []
        >>> set_cpu_threads(2)
        >>> in_parallel(np, lambda begin, end: seen.append(in_part()), 4, 1 << 30)
        >>> set_cpu_threads(None)
        >>> seen, in_part()
        ([True, True], False)
    """
    return getattr(_PART, "active", False)


def _as_part(work: Callable[[int, int], None], begin: int, end: int) -> None:
    outer, _PART.active = in_part(), True
    try:
        work(begin, end)
    finally:
        _PART.active = outer


def products_split() -> bool:
    """Whether :func:`matmul` splits products over netgraph's threads now: inside :func:`cpu_work`
    with NumPy's OpenBLAS on one thread.

    Example:
        >>> with cpu_work():
        ...     inside = products_split()
        >>> products_split()
        False
    """
    return _BLAS_SINGLE


def transposes(rows: int, inner: int, columns: int) -> bool:
    """The fixed rule of :func:`matmul`: whether a NumPy product of this shape is computed as its transpose.

    Example:
        >>> transposes(64, 4096, 1024), transposes(1024, 64, 4096)
        (True, False)
    """
    return rows <= FEW_ROWS < columns <= inner and rows * inner * columns >= PRODUCT_MINIMUM


SPLITS = ("rows", "columns", "none")
"""How :func:`matmul` may be told to cut a product over the threads (None: its fixed rule)."""


def matmul(a: Any, b: Any, out: Any = None, *, transpose: bool | None = None, split: str | None = None) -> Any:
    """``a @ b`` (2-D, or stacks of them), split over :func:`cpu_threads` on the CPU; into ``out`` if given.

    Each thread multiplies a block of rows or of columns of the result, whichever is longer,
    into a view of one output array (BLAS writes strided blocks directly). Outside
    :func:`cpu_work`, or where NumPy's BLAS is not OpenBLAS or keeps its own threads
    (NETGRAPH_BLAS=system), the product is left to the BLAS's own threads.

    The fixed rules (which products are computed as their transposes, :func:`transposes`; which
    are split, and how) were measured on one machine; ``transpose`` (True, False) and ``split``
    (one of :data:`SPLITS`) override them for one call on NumPy, which is how
    :mod:`netgraph.tuning`'s choices for a convolution reach its products.

    Example:
        >>> import numpy as np
        >>> a, b = np.ones((300, 200), np.float32), np.ones((200, 500), np.float32)
        >>> bool((matmul(a, b) == a @ b).all())
        True
        >>> bool((matmul(a, b, transpose=True, split="rows") == a @ b).all())
        True
    """
    xp = array_module(a, b)
    rows, inner, columns = a.shape[-2], a.shape[-1], b.shape[-1]
    if xp is np and (transposes(rows, inner, columns) if transpose is None else transpose):
        # NOTE: OpenBLAS runs a product with a long inner dimension and few rows (a weight gradient
        # of 64 output channels, say) 5-20% faster as its transpose, bᵀ·aᵀ, with the short side as
        # columns; the copy back into rows costs rows·columns, next to rows·inner·columns.
        split = {"rows": "columns", "columns": "rows"}.get(split, split)  # type: ignore[arg-type]
        product = matmul(b.swapaxes(-1, -2), a.swapaxes(-1, -2), transpose=False, split=split).swapaxes(-1, -2)
        if out is None:
            return np.ascontiguousarray(product)
        out[...] = product
        return out
    if split is None:
        small = rows * inner * columns < PRODUCT_MINIMUM
        split = "none" if small else "columns" if columns >= rows else "rows"
    if xp is not np or cpu_threads() == 1 or split == "none" or not _BLAS_SINGLE or in_part():
        return xp.matmul(a, b, out=out)
    if out is None:
        out = np.empty((*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), rows, columns), np.result_type(a, b))

    def multiply(begin: int, end: int) -> None:
        if split == "columns":
            np.matmul(a, b[..., begin:end], out=out[..., begin:end])
        else:
            np.matmul(a[..., begin:end, :], b, out=out[..., begin:end, :])

    in_parallel(xp, multiply, columns if split == "columns" else rows, max(out.size * inner, PARALLEL_MINIMUM))
    return out
