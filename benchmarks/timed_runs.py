"""Timed training runs for train_speed.py: one process per framework, and groups of ranks.

The configurations (``train_speed.py --ranks N`` adds the two groups):

- netgraph in one process: one NetTrain call (:func:`netgraph_run`);
- PyTorch in one process: the same loop in PyTorch (:func:`torch_run`);
- netgraph on N ranks (:class:`MPIGroup`): ``mpiexec -n N python timed_runs.py``, on the Python that runs
  the benchmark. Under mpiexec an unchanged NetTrain call trains data-parallel, ``batch_size`` being the
  global batch (netgraph.distributed), so each rank runs the very call of the one-process run;
- PyTorch DDP on N ranks (:class:`DDPGroup`): N processes from multiprocessing's spawn, joined by
  torch.distributed's gloo backend over a free localhost TCP port, each training a DistributedDataParallel
  twin on its share of every global batch (:func:`ddp_run`).

A group is started once and serves every run of the benchmark, as the one-process workers do: rank 0
takes the requests of the benchmark, over a pipe (DDP) or a local socket (mpiexec), and hands each to
the other ranks; every rank does its part; rank 0 sends back the combined answer. Each rank runs one
thread (OPENBLAS/OMP/MKL_NUM_THREADS and NETGRAPH_NUM_THREADS = 1, torch.set_num_threads(1)).

A group's timings are rank 0's (the allreduce of every step keeps the ranks in step), its losses the
global batch's, and its peak memory that of its largest rank during its first run (the data loaded,
the peak reset, then the run).
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Client, Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

import numpy as np
import training_nets as nets
from bench_devices import TORCH_DEVICES, synchronizer

from netgraph.backend import cpu_work

ROOT = Path(__file__).resolve().parents[1]
ADDRESS_VARIABLE = "TRAIN_SPEED_RANKS_ADDRESS"  # host:port:key of the benchmark, for rank 0 of mpiexec
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NETGRAPH_NUM_THREADS")
ONE_THREAD = dict.fromkeys(THREAD_VARIABLES, "1")
NO_ENGINE = "netgraph has no data-parallel engine in this checkout (no netgraph.distributed)"
START_TIMEOUT = 300.0  # seconds for the ranks to load and report, before the start is given up
POLL = 0.005  # seconds an idle rank sleeps between looks at the next request


# --- one training run -------------------------------------------------------------------------------------


class Case:
    """One net at one batch size in a worker: the initial net, the training images, the rounds."""

    def __init__(self, name: str, batch: int, steps: int, seed: int) -> None:
        self.spec = nets.SPECS[name]
        self.batch, self.steps, self.seed = batch, steps, seed
        self.net = nets.build_netgraph(name, seed)
        n, self.rounds = nets.plan_data(self.spec, batch, steps)
        self.images = nets.training_images(name, n)


def netgraph_run(case: Case, device: str = "CPU") -> dict[str, Any]:
    """One NetTrain run; step times from the ends of the optimiser's updates. Under mpiexec it is the
    same call, which the data-parallel engine runs on this rank's share of every batch. On the GPU
    (``device`` "GPU": NetTrain's ``target_device``) the device is synchronised before each stamp, so
    that a step's time holds all the work its update queued."""
    from netgraph.optimizers import Optimizer

    stamps: list[float] = []
    update = Optimizer.update
    synchronize = synchronizer("netgraph", device)

    def stamped(self, *args, **kwargs):
        update(self, *args, **kwargs)
        if synchronize is not None:
            synchronize()
        stamps.append(time.perf_counter())

    on_device = {"target_device": device} if device != "CPU" else {}
    Optimizer.update = stamped
    try:
        results = nets.netgraph_fit(
            case.net, case.images, case.spec, case.batch, case.steps, case.rounds, case.seed, **on_device
        )
    finally:
        Optimizer.update = update
    return {"stamps": stamps, "losses": list(results["BatchLossList"])}


def torch_run(case: Case, device: str = "CPU") -> dict[str, Any]:
    """The same run in PyTorch, from a fresh twin of the initial net (on ``device``: "CPU", or "GPU" for
    CUDA, the device synchronised before each stamp)."""
    model = nets.torch_twin(case.spec.name, case.net)
    where = TORCH_DEVICES[device]
    if where != "cpu":
        model = model.to(where)
    losses, stamps = nets.torch_fit(
        model,
        case.images,
        case.spec,
        case.batch,
        case.steps,
        case.seed,
        device=where,
        synchronize=synchronizer("torch", device),
    )
    return {"stamps": stamps, "losses": losses}


def ddp_run(case: Case, rank: int, ranks: int) -> dict[str, Any]:
    """This rank's part of a DistributedDataParallel run: the batches of :func:`training_nets.batch_order`,
    each cut into ``ranks`` contiguous shares, this rank training on share ``rank``.

    DDP averages the gradients over the ranks, so each rank's loss is its share's sum over the images
    divided by the global batch, times ``ranks``: the update is that of the global batch mean, as in the
    one-process loop, uneven shares included. The losses returned are the shares' parts of the global
    batch loss (their sum over the ranks is the loss of the batch)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    torch.manual_seed(case.seed * 1000 + rank)  # the noise of each rank its own
    model = DistributedDataParallel(nets.torch_twin(case.spec.name, case.net))
    optimizer = torch.optim.Adam(model.parameters(), lr=case.spec.learning_rate, eps=nets.ADAM_EPSILON)
    model.train()
    losses, stamps = [], []
    for index in nets.batch_order(len(case.images), case.batch, case.steps, case.seed):
        x = torch.from_numpy(case.images[np.array_split(index, ranks)[rank]])
        optimizer.zero_grad(set_to_none=True)
        terms = model(x)
        share = (terms["Loss"].sum() + terms["KL"].sum()) / len(index)
        (share * ranks).backward()
        optimizer.step()
        losses.append(float(share.item()))
        stamps.append(time.perf_counter())
    return {"stamps": stamps, "losses": losses}


def measured(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``'s answer with this process's resident memory before it and its peak during it."""
    gc.collect()
    before, reset = nets.rss_mb(), nets.reset_peak_rss()
    result = run()
    result.update(rss_before=before, peak_rss=nets.peak_rss_mb(), peak_reset=reset)
    return result


# --- serving the ranks ------------------------------------------------------------------------------------


def attempt(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or the exception it raised (sent to rank 0, then to the benchmark)."""
    try:
        return function(*args)
    except Exception as error:
        return error


def combine(answers: list[Any], losses: str) -> Any:
    """One answer from the ranks' answers: the first exception, or rank 0's result with the memory of the
    largest rank and the losses rank 0's ("root") or the sum of the ranks' ("sum")."""
    for answer in answers:
        if isinstance(answer, Exception):
            return answer
    first = answers[0]
    if not isinstance(first, dict):
        return first
    result = dict(first)
    if "peak_rss" in first:
        result["peak_rss"] = max(a["peak_rss"] for a in answers)
        known = [a["rss_before"] for a in answers if a["rss_before"] is not None]
        result["rss_before"] = max(known) if known else None
        result["peak_reset"] = all(a["peak_reset"] for a in answers)
    if losses == "sum":
        result["losses"] = [float(sum(values)) for values in zip(*(a["losses"] for a in answers))]
    return result


class RankServer:
    """What every rank of a group does with a request: ("describe",), ("run", name, batch, steps)."""

    def __init__(self, seed: int, describe: Callable[[], str], run: Callable[[Case], dict[str, Any]]) -> None:
        self.seed, self.describe, self.run = seed, describe, run
        self.cases: dict[tuple, Case] = {}
        self.measured: set[tuple] = set()

    def __call__(self, request: tuple) -> Any:
        if request[0] == "describe":
            return attempt(self.describe)
        if request[0] != "run":
            return ValueError(f"no such request {request[0]!r}")
        key = tuple(request[1:])
        if key not in self.cases:
            self.cases.clear()  # one case's data at a time
            case = attempt(Case, *key, self.seed)
            if isinstance(case, Exception):
                return case
            self.cases[key] = case
        case = self.cases[key]
        if key in self.measured:
            return attempt(self.run, case)
        self.measured.add(key)
        return attempt(measured, lambda: self.run(case))


def serve_mpi_ranks(seed: int) -> None:
    """The body of ``mpiexec -n N python timed_runs.py SEED``: rank 0 connects to the benchmark at
    ADDRESS_VARIABLE, then every rank serves its requests until ("stop",)."""
    host, port, key = os.environ[ADDRESS_VARIABLE].rsplit(":", 2)
    try:
        from netgraph import distributed
    except ImportError:
        distributed = None
    rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
    if distributed is None:
        if rank == 0:
            connection = Client((host, int(port)), authkey=bytes.fromhex(key))
            connection.send(RuntimeError(NO_ENGINE))
        return
    world = distributed.world()
    connection = Client((host, int(port)), authkey=bytes.fromhex(key)) if world.is_root else None
    launched = int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1")))
    if world.size != launched or world.comm is None:
        if connection is not None:
            connection.send(
                RuntimeError(
                    f"mpiexec started {launched} ranks, but netgraph.distributed sees a world of {world.size}: "
                    "NETGRAPH_DISTRIBUTED=0 is set, or mpi4py is built against another MPI than this mpiexec's"
                )
            )
        return
    comm = world.comm

    def describe() -> str:
        from mpi4py import MPI

        from netgraph.backend import blas_threads, cpu_threads

        library = MPI.Get_library_version().splitlines()[0].strip()
        return (
            f"{world.size} ranks under mpiexec, {library}; netgraph threads {cpu_threads()} a rank, "
            f"BLAS threads {blas_threads()}"
        )

    server = RankServer(seed, describe, netgraph_run)
    with cpu_work():  # as the one-process worker: the memory of one run kept for the next
        if connection is not None:
            connection.send("ready")
        while True:
            request = connection.recv() if connection is not None else None
            barrier = comm.Ibarrier()  # NOTE: a blocking MPI wait spins on its core; an idle rank sleeps
            while not barrier.Test():
                time.sleep(POLL)
            request = comm.bcast(request, root=0)
            if request[0] == "stop":
                break
            answers = comm.gather(server(request), root=0)
            if connection is not None:
                connection.send(combine(answers, "root"))
    if connection is not None:
        connection.close()


def serve_ddp_rank(rank: int, ranks: int, address: str, connection: Connection | None, seed: int) -> None:
    """One rank of the DDP group (a spawned process); rank 0 holds the pipe to the benchmark."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    # NOTE: the gradient of a convolution with one input channel comes with other (equally valid) strides
    # than DDP's bucket, which DDP reports once per rank; it then copies those 288 numbers each step.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    try:
        dist.init_process_group("gloo", init_method=address, rank=rank, world_size=ranks)
    except Exception as error:
        if connection is not None:
            connection.send(error)
        return

    def describe() -> str:
        threads = torch.get_num_threads()
        return (
            f"torch {torch.__version__} DistributedDataParallel, gloo, {ranks} ranks, get_num_threads {threads} a rank"
        )

    server = RankServer(seed, describe, lambda case: ddp_run(case, rank, ranks))
    if connection is not None:
        connection.send("ready")
    while True:
        request = [connection.recv() if connection is not None else None]
        barrier = dist.barrier(async_op=True)  # an idle rank sleeps between looks, as under mpiexec
        while not barrier.is_completed():
            time.sleep(POLL)
        dist.broadcast_object_list(request, src=0)
        if request[0][0] == "stop":
            break
        answers = [None] * ranks if rank == 0 else None
        dist.gather_object(server(request[0]), answers, dst=0)
        if connection is not None:
            connection.send(combine(answers, "sum"))
    dist.destroy_process_group()
    if connection is not None:
        connection.close()


# --- the groups, seen from the benchmark -------------------------------------------------------------------


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` for the duration (for the processes started inside)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def rank_environment() -> dict[str, str]:
    """One thread a rank, and the tree on the import path of every rank."""
    path = [str(ROOT), str(Path(__file__).resolve().parent)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return {**ONE_THREAD, "PYTHONPATH": os.pathsep.join(path)}


def find_mpiexec() -> str | None:
    """The mpiexec next to this Python (the mpich wheel installs it there), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def mpi_missing() -> str | None:
    """Why netgraph cannot be timed on ranks with this Python, or None when it can."""
    import importlib.util

    install = f"{sys.executable} -m pip install mpi4py mpich  (netgraph's [mpi] extra)"
    if importlib.util.find_spec("netgraph.distributed") is None:
        return NO_ENGINE
    if importlib.util.find_spec("mpi4py") is None:
        return f"mpi4py is not installed for {sys.executable}; {install}"
    if find_mpiexec() is None:
        return f"no mpiexec next to {sys.executable} or on PATH; {install}"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RankGroup:
    """A group of rank processes, seen from the benchmark through rank 0's connection: ``ask`` waits
    ``pause`` seconds, sends a request and waits for the answer as long as the processes live."""

    name = "the ranks"
    connection: Connection

    def __init__(self, ranks: int, pause: float) -> None:
        self.ranks, self.pause = ranks, pause

    def ended(self) -> str | None:
        """How the processes ended, or None while they all run."""
        raise NotImplementedError

    def end(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the processes to end, then kill what is left."""
        raise NotImplementedError

    def _answer(self) -> Any:
        while not self.connection.poll(1.0):
            if self.ended():
                self.end(5)
                raise RuntimeError(f"{self.name} ended ({self.ended()}; the output is above)")
        try:
            return nets.answer(self.connection)
        except (EOFError, OSError):
            self.end(30)
            raise RuntimeError(f"{self.name} ended ({self.ended()}; the output is above)") from None

    def _started(self) -> None:
        """Wait for rank 0's "ready"; on any other answer end the processes and raise."""
        try:
            self._answer()
        except BaseException:
            self.end(5)
            raise

    def ask(self, *request: Any) -> Any:
        time.sleep(self.pause)
        self.connection.send(request)
        return self._answer()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(("stop",))
        self.end(60)
        self.connection.close()


class MPIGroup(RankGroup):
    """``mpiexec -n ranks python timed_runs.py SEED``, serving the benchmark's requests through rank 0,
    which connects back to a local socket with a one-time key."""

    def __init__(self, ranks: int, seed: int, pause: float) -> None:
        super().__init__(ranks, pause)
        self.name = f"mpiexec -n {ranks}"
        key = secrets.token_bytes(32)
        with socket.create_server(("127.0.0.1", 0)) as server:
            server.settimeout(1.0)
            port = server.getsockname()[1]
            variables = {**rank_environment(), ADDRESS_VARIABLE: f"127.0.0.1:{port}:{key.hex()}"}
            command = [str(find_mpiexec()), "-n", str(ranks), sys.executable, __file__, str(seed)]
            self.process = subprocess.Popen(command, env={**os.environ, **variables}, stdin=subprocess.DEVNULL)
            started = time.monotonic()
            while True:
                try:
                    accepted, _ = server.accept()
                    break
                except TimeoutError:
                    if self.ended() or time.monotonic() - started > START_TIMEOUT:
                        self.end(0)
                        raise RuntimeError(
                            f"{self.name} did not connect within {START_TIMEOUT:.0f} s ({self.ended()})"
                        ) from None
        accepted.setblocking(True)
        self.connection = Connection(accepted.detach())
        try:
            deliver_challenge(self.connection, key)
            answer_challenge(self.connection, key)
        except BaseException:
            self.end(5)
            raise
        self._started()

    def ended(self) -> str | None:
        code = self.process.poll()
        return None if code is None else f"exit status {code}"

    def end(self, timeout: float) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class DDPGroup(RankGroup):
    """``ranks`` spawned processes joined by torch.distributed (gloo) over a free localhost TCP port,
    serving the benchmark's requests through rank 0, which holds a pipe to it."""

    def __init__(self, ranks: int, seed: int, pause: float) -> None:
        import multiprocessing

        super().__init__(ranks, pause)
        self.name = f"the {ranks} DDP ranks"
        context = multiprocessing.get_context("spawn")
        self.processes: list[Any] = []
        address = f"tcp://127.0.0.1:{free_port()}"
        self.connection, child = context.Pipe()
        with environment(rank_environment()):  # read by NumPy and PyTorch as each rank loads them
            for rank in range(ranks):
                process = context.Process(
                    target=serve_ddp_rank, args=(rank, ranks, address, child if rank == 0 else None, seed), daemon=True
                )
                process.start()
                self.processes.append(process)
        child.close()
        self._started()

    def ended(self) -> str | None:
        codes = [p.exitcode for p in self.processes]
        return None if all(code is None for code in codes) else f"exit codes {codes}"

    def end(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


if __name__ == "__main__":
    serve_mpi_ranks(int(sys.argv[1]))
