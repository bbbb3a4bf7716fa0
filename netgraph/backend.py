"""The array backend: NumPy on the CPU, CuPy on a CUDA GPU.

Every line of math in netgraph is written once against an array module called
``xp`` (Chainer's convention). This module is the only place that chooses it.
CuPy is imported only when the GPU is asked for.

Example:
    >>> from netgraph.backend import get_xp, to_numpy
    >>> xp = get_xp("CPU")
    >>> to_numpy(xp.ones(2)).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

DEVICES = ("CPU", "GPU")
PRECISIONS = {"Real32": np.float32, "Real64": np.float64}


class BackendError(RuntimeError):
    """Raised when the requested device or precision cannot be provided."""


def get_xp(target_device: str = "CPU") -> Any:
    """Return the array module for ``target_device`` ("CPU" or "GPU")."""
    if isinstance(target_device, (tuple, list)) and target_device:
        target_device = target_device[0]  # Wolfram's {"GPU", n}
    if target_device == "CPU":
        keep_freed_memory()
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
#
# NOTE: OpenBLAS's worker threads spin for a while after every product, so a pass that NumPy runs
# next on a second thread finds the other core taken. netgraph therefore sets OpenBLAS to one
# thread and splits products and copies over its own pool, whose idle threads sleep.

_THREADS: int | None = None  # None: read from the environment when next needed
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0
_BLAS_PINNED: bool | None = None  # None: not tried yet; False: NumPy's BLAS offers no thread setter
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
    """Fix the thread count of :func:`cpu_threads` (None: back to the environment's)."""
    global _THREADS, _POOL
    if count is not None and (not isinstance(count, int) or count < 1):
        raise BackendError(f"the CPU thread count must be a positive int, got {count!r}")
    _THREADS = count
    if _POOL is not None:
        _POOL.shutdown()
        _POOL = None


def _openblas_thread_setter() -> Callable[[int], Any] | None:
    """OpenBLAS's set_num_threads, from the copy NumPy has loaded (None if NumPy uses another BLAS)."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        pass
    names = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_")
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            if hasattr(library, name):
                return getattr(library, name)
    return None


def _pin_blas() -> bool:
    """Sets OpenBLAS to one thread, the first time (see the NOTE above); False if it cannot be."""
    global _BLAS_PINNED
    if _BLAS_PINNED is None:
        setter = _openblas_thread_setter()
        if setter is not None:
            setter(1)
        _BLAS_PINNED = setter is not None
    return _BLAS_PINNED


# NOTE: glibc hands every block above its mmap threshold (128 KiB at first, raised as such blocks are
# freed) straight back to the system, and trims the top of its heap once 128 KiB there are free. A
# training step allocates and frees the same few-MB temporaries every time, so with glibc as it is
# each of them is faulted in again, page by page: measured on the seed-001 encoder (batch 32,
# forward + backward), 5,500 page faults and 21 ms of kernel time in a 33 ms step. Keeping freed
# memory for reuse takes that to no faults and 17 ms. Peak memory is unchanged (what is kept was
# in use at the peak); memory freed at the end stays with the process, as with PyTorch's caching.
KEEP_BELOW = 32 << 20  # bytes: blocks up to this size come from the heap (glibc's largest threshold)
KEEP_FREE = 1 << 30  # bytes: free memory at the top of the heap kept for reuse before any is returned
_MALLOC_SET: bool | None = None  # None: not tried yet


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (once per process; see the NOTE above).

    Runs the first time the CPU is chosen or netgraph's CPU passes run. Setting the environment
    variable NETGRAPH_MALLOC=system leaves malloc as it is. Returns whether the settings were made
    (False without glibc, e.g. on macOS, Windows or musl).
    """
    global _MALLOC_SET
    if _MALLOC_SET is None:
        _MALLOC_SET = False
        if os.environ.get("NETGRAPH_MALLOC", "").lower() != "system" and sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
            except OSError:
                return False
            if not hasattr(libc, "gnu_get_libc_version"):  # musl has a mallopt that does nothing
                return False
            mallopt = libc.mallopt
            mmap_threshold, trim_threshold = -3, -1  # glibc's M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
            _MALLOC_SET = bool(mallopt(mmap_threshold, KEEP_BELOW)) and bool(mallopt(trim_threshold, KEEP_FREE))
    return _MALLOC_SET


def _pool(parts: int) -> ThreadPoolExecutor:
    """The worker threads; OpenBLAS is set to one thread before they start."""
    global _POOL, _POOL_PID
    _pin_blas()
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
    parts = min(cpu_threads(), length) if xp is np and size >= PARALLEL_MINIMUM else 1
    if parts <= 1:
        work(0, length)
        return
    pool = _pool(parts)
    bounds = [length * i // parts for i in range(parts + 1)]
    futures = [pool.submit(work, bounds[i], bounds[i + 1]) for i in range(1, parts)]
    work(bounds[0], bounds[1])  # the calling thread does the first part
    for future in futures:
        future.result()


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` (2-D, or stacks of them), split over :func:`cpu_threads` on the CPU; into ``out`` if given.

    Each thread multiplies a block of rows or of columns of the result, whichever is longer,
    into a view of one output array (BLAS writes strided blocks directly). Where NumPy's BLAS is
    not OpenBLAS the product is left to the BLAS's own threads.

    Example:
        >>> import numpy as np
        >>> a, b = np.ones((300, 200), np.float32), np.ones((200, 500), np.float32)
        >>> bool((matmul(a, b) == a @ b).all())
        True
    """
    xp = array_module(a, b)
    if xp is np:
        keep_freed_memory()
    rows, inner, columns = a.shape[-2], a.shape[-1], b.shape[-1]
    if xp is np and rows <= FEW_ROWS < columns <= inner and rows * inner * columns >= PRODUCT_MINIMUM:
        # NOTE: OpenBLAS runs a product with a long inner dimension and few rows (a weight gradient
        # of 64 output channels, say) 5-20% faster as its transpose, bᵀ·aᵀ, with the short side as
        # columns; the copy back into rows costs rows·columns, next to rows·inner·columns.
        product = matmul(b.swapaxes(-1, -2), a.swapaxes(-1, -2)).swapaxes(-1, -2)
        if out is None:
            return np.ascontiguousarray(product)
        out[...] = product
        return out
    if xp is not np or cpu_threads() == 1 or rows * inner * columns < PRODUCT_MINIMUM or not _pin_blas():
        return xp.matmul(a, b, out=out)
    if out is None:
        out = np.empty((*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), rows, columns), np.result_type(a, b))

    def multiply(begin: int, end: int) -> None:
        if columns >= rows:
            np.matmul(a, b[..., begin:end], out=out[..., begin:end])
        else:
            np.matmul(a[..., begin:end, :], b, out=out[..., begin:end, :])

    in_parallel(xp, multiply, max(rows, columns), out.size * inner)
    return out
