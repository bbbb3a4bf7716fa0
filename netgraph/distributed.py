"""Data-parallel training across processes: the world of an MPI launch and the few collectives NetTrain uses.

An unchanged script launched as ``mpiexec -n N python script.py`` trains data-parallel: every process
(a *rank*) runs the same script, and each ``NetTrain`` call works on 1/N of every batch, then all ranks sum
their gradients in one allreduce and take the same update (see :mod:`netgraph.train.nettrain`). Without
a launcher, or with one process, nothing changes and mpi4py is not imported.

Install: ``pip install netgraph[mpi]`` (mpi4py and MPICH's wheel, which puts ``mpiexec`` next to the
Python it is installed for). Commands::

    mpiexec -n 2 python script.py                     # 2 processes on this machine (CPU)
    mpiexec -n 8 -f hosts python script.py            # MPICH: 8 processes over the machines in the file
                                                      # "hosts", one "name:processes" line per machine
    mpiexec -n 4 python script.py                     # with target_device="GPU": one GPU per process

Several machines need the same Python environment and script at the same path on each, and a shared file
system for the data and for resuming (every rank reads the checkpoint; only rank 0 writes one).

**The world.** :func:`world` gives the process's :class:`World` (cached): ``rank``, ``size``,
``local_rank`` (the rank among the processes on this machine), ``is_root`` (rank 0) and ``comm`` (mpi4py's
``COMM_WORLD``, or None in one process). The launch is read from the environment (``PMI_SIZE`` of
MPICH's Hydra and Intel MPI, ``OMPI_COMM_WORLD_SIZE`` of Open MPI, ``MV2_COMM_WORLD_SIZE`` of MVAPICH,
``PMIX_RANK`` of a PMIx launcher); with more than one process mpi4py is imported and MPI's own rank and
size are used. ``NETGRAPH_DISTRIBUTED=0`` makes every process a world of its own (each trains alone, say
for a sweep of settings under one ``mpiexec``). The processes on one machine share its cores: unless
NETGRAPH_NUM_THREADS (or OMP_NUM_THREADS, OPENBLAS_NUM_THREADS) says otherwise, each takes
cores / processes-on-the-machine threads for netgraph's CPU work (:func:`netgraph.backend.cpu_threads`).

**GPUs (NCCL).** With ``target_device="GPU"`` each rank uses the GPU numbered by its ``local_rank`` on its
machine, and the gradients are summed by NCCL (``cupy.cuda.nccl``) on the devices; the NCCL id is sent
from rank 0 over MPI. Wolfram's ``TargetDevice -> {"GPU", All}`` (all GPUs of the machine, one batch split
over them) is ``mpiexec -n <GPUs per machine> python script.py`` with ``target_device=("GPU", All)`` or
``"GPU"``: one process per GPU. ``("GPU", All)`` in a single process uses one GPU. On a machine with k GPUs
the GPU tests run as ``python -m pytest tests/test_distributed.py -k gpu`` (they launch ``mpiexec -n 2``
themselves and need 2 GPUs; they are skipped without CuPy, mpiexec or 2 GPUs).

**Errors on one rank.** Inside NetTrain a rank's exception in a training step, or a non-finite number on
one rank, becomes the same error on every rank (the collectives carry a flag for it). An exception that
escapes elsewhere on one rank would leave the others waiting in their next collective; as ChainerMN's
global except hook does, NetTrain then prints it once (prefixed ``rank r:``) and ends the whole job with
``MPI_Abort``. With more than one process, :func:`world` also installs a ``sys.excepthook`` that shows an
error raised alike on every rank (:func:`mark_together`) on rank 0 only, and aborts the job for any other
uncaught exception.

What is and is not exact across processes is in :mod:`netgraph.train.nettrain`.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import array_module, set_cpu_threads
from .layer import NetError

#: the environment variables a launcher sets: number of processes, and this process's rank on its machine
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LAUNCHED_VARIABLES = ("PMIX_RANK",)  # a launch whose size only MPI knows
OFF = ("0", "off", "false", "no")
THREAD_VARIABLES = ("NETGRAPH_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: the attribute that marks an exception raised alike on every rank (shown by rank 0 only)
TOGETHER = "raised_on_every_rank"


@dataclass(eq=False)
class World:
    """The processes training together: this process's ``rank`` among ``size``, its ``local_rank`` among the
    ``local_size`` processes of its machine, and the MPI communicator (None in one process)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    comm: Any = None
    mpi: Any = field(default=None, repr=False)  # mpi4py's MPI module, with more than one process
    _nccl: Any = field(default=None, repr=False)

    @property
    def is_root(self) -> bool:
        """Rank 0: the rank that reports, writes files and takes the decisions that depend on time."""
        return self.rank == 0

    def allreduce_sum(self, buffer: Any) -> Any:
        """Sum ``buffer`` (a contiguous NumPy or CuPy array) over all ranks, in place; returns it.

        A NumPy buffer goes through MPI; a CuPy buffer through NCCL on the device.
        """
        if self.size == 1:
            return buffer
        if array_module(buffer) is not np:
            self._nccl_call("allReduce", buffer)
        else:
            self.comm.Allreduce(self.mpi.IN_PLACE, buffer, op=self.mpi.SUM)
        return buffer

    def broadcast(self, array: Any) -> Any:
        """Overwrite ``array`` (contiguous, NumPy or CuPy) with rank 0's, in place; returns it."""
        if self.size == 1:
            return array
        if array_module(array) is not np:
            self._nccl_call("bcast", array)
        else:
            self.comm.Bcast(array, root=0)
        return array

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` (a small Python object: a decision, a seed, a list of names) on every rank."""
        return value if self.size == 1 else self.comm.bcast(value, root=0)

    def allgather_object(self, value: Any) -> list:
        """Every rank's ``value`` (small Python objects), in rank order, on every rank."""
        return [value] if self.size == 1 else self.comm.allgather(value)

    def raise_together(self, error: BaseException | None, make_error: Callable[[str], BaseException]) -> None:
        """A collective: each rank passes the exception it met (or None); if any rank met one, every rank raises.

        When every rank met the same error (a mistake in the script, seen alike everywhere), each raises its
        own; otherwise every rank raises ``make_error(summary)``, the summary naming the ranks and the first
        error (``"rank 1 (of 2) failed: ValueError: ..."``), chained to its own error where it had one. The
        error raised is marked (:func:`mark_together`) so that it is shown once.
        """
        texts = self.allgather_object(None if error is None else describe(error))
        failed = [(rank, text) for rank, text in enumerate(texts) if text is not None]
        if not failed:
            return
        if error is not None and len(failed) == self.size and len(set(texts)) == 1:
            raise mark_together(error)
        if len(failed) == 1:
            summary = f"rank {failed[0][0]} (of {self.size}) failed: {failed[0][1]}"
        else:
            ranks = ", ".join(str(rank) for rank, _ in failed)
            summary = f"ranks {ranks} (of {self.size}) failed; rank {failed[0][0]}: {failed[0][1]}"
        raise mark_together(make_error(summary)) from error

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (``MPI_Abort``); in one process, exit with ``code``."""
        sys.stdout.flush()
        sys.stderr.flush()
        if self.comm is not None:
            self.comm.Abort(code)
        os._exit(code)

    def use_gpu(self) -> None:
        """Make the GPU numbered by this rank's ``local_rank`` CuPy's current device (one GPU per rank). A
        process that sees one GPU only (a launcher that sets CUDA_VISIBLE_DEVICES per rank) takes that one."""
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        if count == 1:
            cupy.cuda.Device(0).use()
            return
        if self.local_size > count:
            raise NetError(
                f'NetTrain: target_device="GPU" under mpiexec takes one GPU per process; this machine runs '
                f"{self.local_size} processes but has {count} GPUs: launch at most {count} per machine"
            )
        cupy.cuda.Device(self.local_rank).use()

    def _nccl_call(self, name: str, array: Any) -> None:
        """NCCL's allReduce (sum) or bcast (from rank 0) of a contiguous CuPy array, in place, on the current
        stream; the communicator is made on first use, its id sent from rank 0 over MPI."""
        import cupy
        from cupy.cuda import nccl

        if self._nccl is None:
            uid = nccl.get_unique_id() if self.is_root else None
            self._nccl = nccl.NcclCommunicator(self.size, self.comm.bcast(uid, root=0), self.rank)
        kinds = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}
        if np.dtype(array.dtype) not in kinds or not array.flags.c_contiguous:
            raise NetError(f"NCCL takes contiguous float32 or float64 arrays here, got {array.dtype}")
        stream = cupy.cuda.get_current_stream().ptr
        pointer, count, kind = array.data.ptr, array.size, kinds[np.dtype(array.dtype)]
        if name == "allReduce":
            self._nccl.allReduce(pointer, pointer, count, kind, nccl.NCCL_SUM, stream)
        else:
            self._nccl.bcast(pointer, count, kind, 0, stream)


ONE_PROCESS = World()
_WORLD: World | None = None


def world() -> World:
    """This process's :class:`World`, read from the environment the first time (see the module docstring).

    Example:
        >>> w = world()          # a plain Python process
        >>> (w.rank, w.size, w.is_root, w.comm)
        (0, 1, True, None)
    """
    global _WORLD
    if _WORLD is None:
        _WORLD = _detect()
        if _WORLD.size > 1:
            sys.excepthook = _excepthook(sys.excepthook)
    return _WORLD


def launched_size() -> int | None:
    """The number of processes the environment says were launched (None when it does not say, or when
    ``NETGRAPH_DISTRIBUTED`` is off); 0 for a PMIx launch, whose size only MPI knows."""
    if os.environ.get("NETGRAPH_DISTRIBUTED", "").strip().lower() in OFF:
        return None
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0 if any(name in os.environ for name in LAUNCHED_VARIABLES) else None


def _detect() -> World:
    size = launched_size()
    if size is None or size == 1:
        return World()
    try:
        from mpi4py import MPI
    except ImportError as err:
        if size == 0:  # a PMIx launch without mpi4py: a world of one, as without a launcher
            return World()
        raise NetError(
            f"netgraph: this process is one of {size} launched by mpiexec, and training them together needs "
            f"mpi4py ({err}): pip install netgraph[mpi] (or NETGRAPH_DISTRIBUTED=0 to train each alone)"
        ) from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return World()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    found = World(comm.Get_rank(), comm.Get_size(), local.Get_rank(), local.Get_size(), comm, MPI)
    if not any(os.environ.get(name, "").strip() for name in THREAD_VARIABLES):  # share the cores, as torchrun does
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        set_cpu_threads(max(1, cores // found.local_size))
    return found


def describe(error: BaseException) -> str:
    """An exception in one line: its class and message."""
    text = str(error).strip() or repr(error)
    return f"{type(error).__name__}: {text}"


def mark_together(error: BaseException) -> BaseException:
    """Mark ``error`` as raised alike on every rank (the except hook shows it on rank 0 only); returns it."""
    setattr(error, TOGETHER, True)
    return error


def raised_together(error: BaseException) -> bool:
    """Whether ``error`` (or the error it was raised from) was raised alike on every rank."""
    return bool(getattr(error, TOGETHER, False))


def guard_rank(world_: World, error: BaseException) -> None:
    """What a rank does with an exception that escapes NetTrain (ChainerMN's global except hook): one raised
    alike on every rank goes on up; any other is printed once, prefixed with this rank, and the whole job is
    aborted, so that no rank waits for ever in a collective."""
    if world_.size == 1 or raised_together(error):
        return
    if not isinstance(error, KeyboardInterrupt):
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        sys.stderr.write("".join(f"rank {world_.rank}: {line}" for text in lines for line in text.splitlines(True)))
    world_.abort(1)


def _excepthook(previous: Callable) -> Callable:
    def hook(kind: type, error: BaseException, trace: Any) -> None:
        current = _WORLD or ONE_PROCESS
        if raised_together(error):
            if current.is_root:
                previous(kind, error, trace)
            return  # the other ranks exit quietly (status 1)
        if not isinstance(error, KeyboardInterrupt):
            sys.stderr.write(f"rank {current.rank}: ")
            previous(kind, error, trace)
        current.abort(1)

    return hook
