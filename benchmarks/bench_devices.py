"""What the training benchmark does differently on a GPU: synchronising, peak memory, the matmul rate.

``train_speed.py --device GPU`` trains netgraph with ``target_device="GPU"`` (CuPy) and PyTorch on
``"cuda"``. Everything that depends on the device is here, in small functions, so that the rest of
the benchmark reads the same on both devices:

- :func:`gpu_missing` and :func:`torch_cuda_missing`: why a framework cannot train on the GPU here;
- :func:`synchronizer`: what waits for the device before a time stamp (nothing on the CPU);
- :class:`HighWater` and :func:`gpu_memory`: the peak of the bytes in use on the device during a run,
  from CuPy's memory pool (a memory hook) or PyTorch's caching allocator (its peak statistics);
- :func:`product_seconds` and :func:`gpu_matmul_rate`: the reference rate of one big float32 product;
- :func:`describe_gpu`: versions, the device's name and the settings that change the speed.

CuPy and PyTorch are imported only inside the functions that need them: a netgraph worker never
loads PyTorch, and on a machine without a GPU this module loads without either.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from netgraph.backend import BackendError, get_xp

DEVICES = ("CPU", "GPU")
TORCH_DEVICES = {"CPU": "cpu", "GPU": "cuda"}
GPU_MATMUL_SIZE = 8192  # the GPU's reference product: 8192×8192 float32 (2048 on the CPU)
MEGABYTE = 1 << 20


# --- what is missing ----------------------------------------------------------------------------------------


def gpu_missing() -> str | None:
    """Why netgraph cannot train on a GPU in this process (CuPy missing, no device, CUDA unusable), or None.

    Example:
        >>> reason = gpu_missing()
        >>> reason is None or "GPU" in reason
        True
    """
    try:
        get_xp("GPU")
    except BackendError as error:
        return str(error)
    return None


def torch_cuda_problem(version: str, cuda: str | None, devices: int) -> str | None:
    """Why a PyTorch of ``version``, built for CUDA ``cuda`` (None: a CPU build) and seeing ``devices``
    CUDA devices, cannot train on the GPU; None when it can.

    Example:
        >>> torch_cuda_problem("2.5.0+cpu", None, 0)
        'PyTorch 2.5.0+cpu is a CPU build (torch.version.cuda is None)'
        >>> torch_cuda_problem("2.5.0", "12.4", 1) is None
        True
    """
    if cuda is None:
        return f"PyTorch {version} is a CPU build (torch.version.cuda is None)"
    if devices < 1:
        return f"PyTorch {version} (CUDA {cuda}) sees no CUDA device (torch.cuda.is_available() is False)"
    return None


def torch_cuda_missing() -> str | None:
    """Why PyTorch cannot train on the GPU here, or None. It imports torch: call it in a fresh process.

    Example:
        >>> import importlib.util
        >>> importlib.util.find_spec("torch") is not None or torch_cuda_missing() is not None
        True
    """
    try:
        import torch
    except ImportError as error:
        return f"PyTorch does not import ({error})"
    return torch_cuda_problem(torch.__version__, torch.version.cuda, torch.cuda.device_count())


# --- synchronising ------------------------------------------------------------------------------------------


def synchronizer(framework: str, device: str) -> Callable[[], None] | None:
    """What waits until ``framework``'s queued work on ``device`` is done; None on the CPU (nothing to wait
    for). netgraph's is CuPy's ``Device().synchronize()``, PyTorch's ``torch.cuda.synchronize()``.

    Example:
        >>> synchronizer("netgraph", "CPU") is None
        True
    """
    if device == "CPU":
        return None
    if device != "GPU":
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if framework == "torch":
        import torch

        return torch.cuda.synchronize
    cupy = get_xp("GPU")
    return cupy.cuda.Device().synchronize


# --- peak memory on the GPU ---------------------------------------------------------------------------------


class HighWater:
    """Bytes in use, counted up and down, and the most there were at once since the count started.

    Example:
        >>> level = HighWater(100)
        >>> level.add(50); level.remove(120); level.add(20)
        >>> level.used, level.peak
        (50, 150)
    """

    def __init__(self, used: int = 0) -> None:
        self.used = self.peak = int(used)

    def add(self, nbytes: int) -> None:
        self.used += int(nbytes)
        self.peak = max(self.peak, self.used)

    def remove(self, nbytes: int) -> None:
        self.used -= int(nbytes)


def _pool_hook(level: HighWater) -> Any:
    """A CuPy memory hook that counts the pool's blocks handed out and given back into ``level``.

    NOTE: CuPy's hooks belong to the thread that enters them; NetTrain allocates on the GPU from the
    thread that calls it, which is the one the hook is entered on.
    """
    cupy = get_xp("GPU")

    class PoolHighWater(cupy.cuda.MemoryHook):
        name = "train_speed_high_water"

        def malloc_postprocess(self, **kwargs: Any) -> None:
            if kwargs.get("mem_ptr"):  # 0 when the allocation failed
                level.add(kwargs["mem_size"])

        def free_postprocess(self, **kwargs: Any) -> None:
            level.remove(kwargs["mem_size"])

    return PoolHighWater()


@contextlib.contextmanager
def gpu_memory(framework: str) -> Iterator[dict[str, float]]:
    """Measure the GPU memory of the work inside; the dict yielded is filled on exit with (MB):

    - ``peak``: the most bytes in use at once (netgraph: blocks of CuPy's default memory pool handed
      out, counted by a memory hook from the pool's ``used_bytes()`` at entry; PyTorch:
      ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``), both rounded up to
      their allocators' 512-byte blocks;
    - ``held``: what the allocator took from the device and held at most (CuPy's pool keeps every block
      it took: its ``total_bytes()`` at exit; PyTorch: ``max_memory_reserved()``).

    The blocks the allocator keeps cached but unused are given back to the device first, so that
    ``held`` is the work's own. The hook costs a Python call per allocation: measure an untimed run
    with it, not a timed one.
    """
    figures: dict[str, float] = {}
    sync = synchronizer(framework, "GPU")
    assert sync is not None
    sync()
    release_cached(framework)
    if framework == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats()
        yield figures
        sync()
        figures.update(
            peak=torch.cuda.max_memory_allocated() / MEGABYTE, held=torch.cuda.max_memory_reserved() / MEGABYTE
        )
        return
    pool = get_xp("GPU").get_default_memory_pool()
    level = HighWater(pool.used_bytes())
    with _pool_hook(level):
        yield figures
        sync()
    figures.update(peak=level.peak / MEGABYTE, held=pool.total_bytes() / MEGABYTE)


def release_cached(framework: str) -> None:
    """Give the GPU memory that ``framework``'s allocator caches but does not use back to the device
    (CuPy: ``free_all_blocks()`` of the default pool; PyTorch: ``torch.cuda.empty_cache()``)."""
    if framework == "torch":
        import torch

        torch.cuda.empty_cache()
    else:
        get_xp("GPU").get_default_memory_pool().free_all_blocks()


# --- the reference rate of a matrix product ---------------------------------------------------------------


def product_seconds(
    product: Callable[[Any, Any], Any], a: Any, b: Any, sync: Callable[[], None] | None = None, repeats: int = 5
) -> float:
    """Median seconds of ``product(a, b)`` over ``repeats`` calls after one warm-up; with ``sync``, the
    device is synchronised before each clock starts and before it stops, so each time is that of the
    work itself and not of queueing it.

    Example:
        >>> import numpy as np
        >>> a = np.ones((64, 64), np.float32)
        >>> product_seconds(np.matmul, a, a, repeats=3) > 0
        True
    """
    wait = sync or (lambda: None)
    times = []
    for _ in range(repeats + 1):
        wait()
        start = time.perf_counter()
        product(a, b)
        wait()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def gpu_matmul_rate(framework: str, size: int = GPU_MATMUL_SIZE) -> float:
    """GFLOP/s of one ``size``² float32 matrix product on the GPU, in CuPy (``cupy.matmul``, as netgraph's
    layers multiply there) or in PyTorch (``torch.matmul``), with the same numbers copied from the host.

    NOTE: neither framework uses TF32 tensor cores for float32 products unless told to (CUPY_TF32=1;
    ``torch.backends.cuda.matmul.allow_tf32``): the rate is that of full float32.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    if framework == "torch":
        import torch

        a, b = torch.from_numpy(a).to("cuda"), torch.from_numpy(b).to("cuda")
        product = torch.matmul
    else:
        cupy = get_xp("GPU")
        a, b = cupy.asarray(a), cupy.asarray(b)
        product = cupy.matmul
    seconds = product_seconds(product, a, b, synchronizer(framework, "GPU"))
    del a, b
    release_cached(framework)  # three size² blocks that no training run should find cached
    return 2 * size**3 / seconds / 1e9


# --- describing the GPU worker --------------------------------------------------------------------------


def describe_gpu(framework: str) -> str:
    """Versions, the device's name and memory, and the settings that change the speed."""
    if framework == "torch":
        import torch

        properties = torch.cuda.get_device_properties(0)
        return (
            f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()} "
            f"(benchmark mode {'on' if torch.backends.cudnn.benchmark else 'off'}), TF32 matmul "
            f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}; {properties.name}, "
            f"{properties.total_memory / (1 << 30):.0f} GiB"
        )
    cupy = get_xp("GPU")
    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties["name"].decode() if isinstance(properties["name"], bytes) else properties["name"]
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    return (
        f"netgraph on cupy {cupy.__version__}, CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}, "
        f"TF32 {'on' if os.environ.get('CUPY_TF32') == '1' else 'off'} (CUPY_TF32); {name}, "
        f"{properties['totalGlobalMem'] / (1 << 30):.0f} GiB"
    )
