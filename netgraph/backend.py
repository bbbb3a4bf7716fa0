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

import sys
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
