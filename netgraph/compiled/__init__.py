"""Compiled CPU kernels (Numba): the CPU's counterpart of the fused CuPy kernels of :mod:`netgraph.fused`.

NumPy runs every operation as its own pass over memory, writing a temporary each time. Where
that is the limit (a bias added and an activation taken after a product, the window copies of a
convolution, an optimiser's update, a chain of traced elementwise operations), netgraph runs one
compiled loop instead. Each such kernel is a plain Python function over arrays and scalars,
wrapped by :func:`kernel`; its NumPy twin, the shared ``xp`` path, stays the reference, and the
tests compare the two on every operation, exactly as they do for the CuPy kernels.

Rules every kernel keeps:

- A compiled kernel exists only where it fuses passes; the math it does is also written once
  on the shared path, which runs whenever the kernel cannot (NumPy only, kernels off, no Numba).
- Kernels are single-threaded and release the interpreter lock (``nogil``): netgraph splits a
  pass over its own threads (:func:`netgraph.backend.in_parallel`), so there is one thread pool
  and one thread count, whatever runs.
- Without Numba, netgraph works as before at NumPy's speed: :func:`compiled_kernels_enabled`
  is then False everywhere.

The switch: :func:`set_compiled_kernels` (or ``NETGRAPH_COMPILED=0`` in the environment) turns
the compiled path off.

Compile time. Numba compiles a kernel on its first call for each combination of argument types
(about 0.1-1 s each) and keeps the machine code on disk (``cache=True``: next to the module in
``__pycache__``, or in Numba's user-wide cache where that folder is not writable; generated
kernels live in :func:`cache_dir`), so a second process loads it in milliseconds. Every first call
is timed and recorded: :func:`report` lists them, and ``python -m netgraph.cli.compile_kernels`` compiles
(or loads) every static kernel and prints the report.

Example:
    >>> import numpy as np
    >>> @kernel
    ... def double_into(x, out):
    ...     for i in range(x.size):
    ...         out[i] = 2 * x[i]
    >>> out = np.empty(3)
    >>> double_into(np.arange(3.0), out)
    >>> out.tolist()
    [0.0, 2.0, 4.0]
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CompileRecord",
    "cache_dir",
    "compiled_kernels_enabled",
    "kernel",
    "numba_available",
    "report",
    "set_compiled_kernels",
]

_enabled = os.environ.get("NETGRAPH_COMPILED", "1").lower() not in ("0", "false", "no", "off", "")


@functools.lru_cache(maxsize=1)
def _numba() -> Any:
    """The numba module, or None where it is not installed (imported on first need: it takes ~0.5 s)."""
    try:
        return importlib.import_module("numba")
    except ImportError:
        return None


def numba_available() -> bool:
    """Whether Numba can be imported here.

    Example:
        >>> isinstance(numba_available(), bool)
        True
    """
    return _numba() is not None


def set_compiled_kernels(enabled: bool) -> bool:
    """Turn the compiled CPU kernels on or off (on by default where Numba is installed); returns
    the previous setting.

    Example:
        >>> previous = set_compiled_kernels(False)
        >>> compiled_kernels_enabled(np)
        False
        >>> _ = set_compiled_kernels(previous)
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def compiled_kernels_enabled(xp: Any = np) -> bool:
    """Whether the compiled kernels run for arrays of the module ``xp``: NumPy only, switch on, Numba present."""
    return _enabled and xp is np and numba_available()


def cache_dir() -> Path:
    """Where generated kernels (traced elementwise functions) and tuning choices are kept:
    ``$NETGRAPH_CACHE`` when set, else ``$XDG_CACHE_HOME/netgraph`` (``~/.cache/netgraph``).

    Example:
        >>> cache_dir().name in ("netgraph", os.environ.get("NETGRAPH_CACHE", "netgraph").rstrip("/").split("/")[-1])
        True
    """
    chosen = os.environ.get("NETGRAPH_CACHE")
    if chosen:
        return Path(chosen)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "netgraph"


@dataclass(frozen=True)
class CompileRecord:
    """One first call of a kernel for one set of argument types: compiled, or loaded from the disk cache."""

    name: str
    types: str
    seconds: float
    from_disk: bool

    def __str__(self) -> str:
        how = "loaded from the disk cache" if self.from_disk else "compiled"
        return f"{self.name}({self.types}): {how} in {self.seconds:.3f} s"


_records: list[CompileRecord] = []
_records_lock = threading.Lock()


def report() -> list[CompileRecord]:
    """The first calls of compiled kernels in this process, in order.

    Example:
        >>> all(isinstance(r, CompileRecord) for r in report())
        True
    """
    with _records_lock:
        return list(_records)


def _type_text(args: tuple) -> str:
    return ", ".join(
        f"{a.dtype}[{a.ndim}d{'' if a.flags.c_contiguous else ', strided'}]"
        if isinstance(a, np.ndarray)
        else type(a).__name__
        for a in args
    )


class Kernel:
    """A plain Python function compiled by Numba on first call (``nogil``, cached on disk).

    ``kernel.python`` is the function itself, uncompiled; ``kernel.dispatcher`` the Numba
    dispatcher (compiled kernels call each other through it). Without Numba, calling a
    kernel raises: callers ask :func:`compiled_kernels_enabled` first.
    """

    def __init__(self, function: Callable, options: dict[str, Any]) -> None:
        self.python = function
        self.name = function.__name__
        cacheable = os.path.isfile(function.__code__.co_filename)  # not a doctest's or exec's function
        self.options = {"nogil": True, "cache": cacheable, **options}
        self._dispatcher: Any = None
        self._recorded = 0  # signatures recorded so far
        self._hits = 0  # the dispatcher's disk cache hits when the last one was recorded
        self._lock = threading.RLock()
        functools.update_wrapper(self, function)

    @property
    def dispatcher(self) -> Any:
        if self._dispatcher is None:
            numba = _numba()
            if numba is None:
                raise RuntimeError(f"the compiled kernel {self.name} needs Numba: pip install numba")
            with self._lock:
                if self._dispatcher is None:
                    self._dispatcher = numba.njit(**self.options)(self.python)
        return self._dispatcher

    def __call__(self, *args: Any) -> Any:
        dispatcher = self.dispatcher
        known = len(dispatcher.overloads)
        start = time.perf_counter()
        result = dispatcher(*args)
        if len(dispatcher.overloads) != known:  # this call compiled a new signature, or loaded it from disk
            self._record(args, time.perf_counter() - start)
        return result

    def _record(self, args: tuple, seconds: float) -> None:
        """Record the first call of a signature (once, when calls on several threads compiled it together)."""
        dispatcher = self.dispatcher
        with self._lock:
            if len(dispatcher.overloads) <= self._recorded:
                return
            self._recorded = len(dispatcher.overloads)
            hits = sum(dispatcher.stats.cache_hits.values())  # they grow only as signatures are added
            from_disk, self._hits = hits > self._hits, hits
        with _records_lock:
            _records.append(CompileRecord(self.name, _type_text(args), seconds, from_disk))


def kernel(function: Callable | None = None, **options: Any) -> Any:
    """Decorator: ``function`` becomes a :class:`Kernel`; ``options`` go to ``numba.njit``
    (``nogil=True`` and ``cache=True`` by default). Usable bare (``@kernel``) or with options."""
    if function is None:
        return lambda f: Kernel(f, options)
    return Kernel(function, options)
