"""Training speed: netgraph's NetTrain against PyTorch on the same nets, data, batches and threads (CPU),
or on the same GPU (--device GPU: CuPy against PyTorch CUDA; see "On a GPU" below).

The nets (benchmarks/training_nets.py builds them and their PyTorch twins):

  seed001  the seed-001 conv VAE of examples/mnist_vae.py (1×28×28, latent 8), batches of 32 and 128
  mlp      the MLP VAE of pytorch/examples (784-400-20, ReLU, sigmoid, BCE summed + KL), batches of 128
  augment  the seed-004 conv VAE of examples/augment_vae.py (3×64×64, latent 512, 27 million
           parameters), batches of 32

Each is trained on Fashion-MNIST (Debian's dataset-fashion-mnist; 64×64 RGB for augment) with
loss_function=["Loss", "KL"] and ADAM (5e-4; 1e-3 for mlp, 1e-4 for augment), from the same initial
weights (netgraph's, copied into PyTorch) and on the same batches in the same order (NetTrain's
shuffle, replayed for PyTorch and checked on the first batches). Only the noise of the
reparametrisation differs.

Run it on a quiet machine. With more threads than free cores both frameworks slow down, PyTorch's
OpenMP threads by an order of magnitude (they wait for each other at every parallel region);
--threads 1 gives each framework one core.

Each framework trains in its own worker process (netgraph's never imports torch) with the same
thread count (torch.set_num_threads and OPENBLAS/OMP/MKL_NUM_THREADS, set before NumPy loads). A
run is one NetTrain call, or one PyTorch loop, of --steps batches; a step's time is measured from
the end of one optimiser update to the end of the next, so it holds fetching the batch, forward,
backward, the update and the loop's own work, and the first step (warm-up) is left out. The
frameworks take turns, the order rotating, --repeats runs each; the figures are medians over the
runs. Printed per net and batch size:

  ms/step, images/s      per configuration (framework, processes × threads)
  /torch                 the time per step over that of the fastest PyTorch configuration
  peak RSS               peak resident memory of one more run of --steps batches, in a fresh
                         process (VmHWM, reset once the data is loaded, so the imports and the data
                         count but the loading's temporaries do not); for ranks, the largest
                         rank's during its first run
  GFLOP/s, of matmul     the matrix-product work of a step (2 flops per multiply-add of every
                         convolution, deconvolution and linear layer, forward and both gradients)
                         per second, and that as a share of one 2048×2048 float32 matrix product
                         timed in the same worker (NumPy's BLAS, or torch.matmul)
  loss                   the mean training loss over the last half of the steps of the first run

After the timed steps it compares each configuration's loss with PyTorch's in one process (the
same batches in all) and flags a difference above --tolerance: a fast engine that computes the
wrong thing must not win. The noise alone moves that mean by a few percent (five
PyTorch runs of the seed-001 net at batch 32, alike but for the noise, gave 71.1 to 74.8 after 100
steps), so the default tolerance is 5%; a wrong gradient shows as a much larger gap.

A full run (the defaults: 100 steps for seed001, 200 for mlp, 10 for augment, 5 runs each) takes
about 10 minutes on 2 cores; --quick checks that everything works in about 3.

--ranks N adds two data-parallel configurations to each table, N processes of one thread each
(OPENBLAS/OMP/MKL/NETGRAPH_NUM_THREADS=1, torch.set_num_threads(1)), next to the one-process ones of
--threads threads (benchmarks/timed_runs.py runs them):

  netgraph N×1 mpiexec   `mpiexec -n N` on this same Python, each rank making the very NetTrain call
                         of the one-process run: under mpiexec NetTrain trains data-parallel, and
                         batch_size stays the global batch (netgraph.distributed; it needs mpi4py and
                         an MPI, `pip install mpi4py mpich`, the mpiexec next to this Python first)
  torch N×1 DDP gloo     PyTorch's DistributedDataParallel over the gloo backend, N spawned
                         processes, each training on its contiguous share of every global batch

Every configuration trains on the same global batches; the time of a group is that of its rank 0,
its loss the global batch's. The ratio column then compares each configuration with the fastest
PyTorch one, and the summary names netgraph's fastest. Without --nets, --ranks times seed001
(batches of 32 and 128) and mlp. In a checkout without netgraph.distributed, or without mpi4py,
the script says so and leaves netgraph's ranks out. With --ranks 2 a full run takes about 20 minutes
on 2 cores, --quick about 3.

--numpy-only adds "netgraph 1×T NumPy only": netgraph with its compiled kernels (Numba), graph-level
fusion and tuned convolution lowering switched off, as it runs where Numba is not installed; the
ratio of the two netgraph rows is what the compiled path gains on this machine.

--profile adds, per net and batch size, a profile of one netgraph training step (the mean over a few
steps after two warm-up steps), from netgraph.profile.timings(): the phases (forward, backward,
ADAM update, fetching the batch, and the NetTrain loop's own work, i.e. the rest of the step) and
the forward and backward milliseconds of every layer. The loop's own work is what is left of the
step: reading the loss and the gradient checksums out, the loss seeds, NetTrain's bookkeeping.

PyTorch is needed only here, never by netgraph or its tests; its CPU build in a separate
environment is enough:

    python3 -m venv torchenv && torchenv/bin/pip install torch numpy networkx pillow
    torchenv/bin/pip install -e . --no-deps
    torchenv/bin/python benchmarks/train_speed.py [--nets seed001 mlp augment] [--threads 2] [--profile]

Without PyTorch the script says so and times netgraph alone. `make bench` runs it.

On a GPU: `make bench-gpu` (this script with --device GPU, on the Python of `make test-gpu`; BENCH_GPU_PYTHON
and BENCH_ARGS choose others). netgraph trains with NetTrain's target_device="GPU" (CuPy), PyTorch the same
twin on "cuda"; both read every batch from host memory and copy it to the device, as NetTrain does. What
changes from the CPU run:

  batches        seed001 32, 128 and 512; mlp 128 and 512; augment 32 and 128 (a GPU needs larger ones
                 to be busy)
  ms/step        each step's time ends once the device is synchronised (cupy.cuda.Device().synchronize(),
                 torch.cuda.synchronize()) after the optimiser's update, so that it holds all the GPU work
                 of its update and none of it spills into the next step. A netgraph step also waits once
                 in the middle, when the loss and the gradients' finiteness flags come to the host before
                 the update; PyTorch's loop waits when it reads the loss (loss.item()) after the update.
  warm-up        before the timed runs of a case each worker trains one untimed run (CuPy compiles its
                 kernels for the case's shapes, cuBLAS and cuDNN set up), which also measures the memory
  peak GPU MB    the most GPU memory in use at once during that run: for netgraph the blocks of CuPy's
                 memory pool handed out (a CuPy memory hook counts them), for PyTorch
                 torch.cuda.max_memory_allocated(); below the table, what each allocator held (the pool's
                 total_bytes(), torch.cuda.max_memory_reserved()) and the host's peak RSS
  of matmul      the share of one 8192×8192 float32 product on the GPU (cupy.matmul, torch.matmul), timed
                 between synchronisations. Neither framework uses TF32 for float32 unless told
                 (CUPY_TF32=1, torch.backends.cuda.matmul.allow_tf32): both rates are full float32.
  cuDNN          PyTorch's default, benchmark mode off; --cudnn-benchmark turns it on

The loss check is as on the CPU. --ranks and --profile are for the CPU only. Without CuPy or a CUDA device,
--device GPU stops at once, saying what is missing, with exit status 2; without PyTorch, or with a PyTorch
that cannot use CUDA (a CPU build, no device visible), it says so and times netgraph alone.

--data synthetic trains on made-up pictures of the same shapes (training_nets.synthetic_images) in place
of Fashion-MNIST, for a machine that has neither the data set nor network access; both frameworks still
train on the same ones. benchmarks/gpu_check.sh runs the GPU tests, the examples on the GPU and this
script's --quick run in one go.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import bench_devices as devices
import training_nets as nets
from timed_runs import THREAD_VARIABLES, Case, DDPGroup, MPIGroup, mpi_missing, netgraph_run, torch_run

from netgraph.backend import cpu_work

INSTALL = (
    "PyTorch is not installed here; to compare, install its CPU build in a separate environment:\n"
    "    python3 -m venv torchenv && torchenv/bin/pip install torch numpy networkx pillow\n"
    "    torchenv/bin/pip install -e . --no-deps\n"
    "    torchenv/bin/python benchmarks/train_speed.py\n"
)
INSTALL_CUDA = (
    "so netgraph is timed alone. To compare, install PyTorch's CUDA build next to CuPy (`pip install torch`\n"
    "on Linux gives one) and run this script with that Python: make bench-gpu BENCH_GPU_PYTHON=that/python\n"
)
EXIT_CANNOT_RUN = 2  # the exit status when the device asked for cannot be used
STEPS = {"seed001": 100, "mlp": 200, "augment": 10}  # per run, when --steps is not given
QUICK_STEPS = {"seed001": 8, "mlp": 16, "augment": 3}
RANK_NETS = ("seed001", "mlp")  # the nets of --ranks when --nets is not given
PROFILE_WARMUP = 2
MATMUL_SIZE = 2048


class CannotRunError(RuntimeError):
    """The benchmark cannot run as asked on this machine (the GPU asked for is not usable here)."""


# --- profiling netgraph's step ---------------------------------------------------------------------------


def netgraph_profile(case: Case, steps: int) -> dict[str, Any]:
    """Phases and layers of NetTrain steps, per step, over ``steps`` steps after the warm-up ones."""
    import numpy as np

    from netgraph import profile
    from netgraph.optimizers import Optimizer

    total = PROFILE_WARMUP + steps
    n, rounds = nets.plan_data(case.spec, case.batch, total)
    images = case.images[:n] if len(case.images) >= n else nets.training_images(case.spec.name, n)
    marks: list[tuple[float, dict, dict, dict]] = []
    update = Optimizer.update
    with profile.timings() as timer:

        def timed(self, *args, **kwargs):
            with timer.phase("optimiser"):
                update(self, *args, **kwargs)
            counted[0] += 1
            if counted[0] in (PROFILE_WARMUP, total):  # snapshots at the ends of two steps only
                marks.append((time.perf_counter(), dict(timer.phases), dict(timer.forward), dict(timer.backward)))

        counted = [0]
        Optimizer.update = timed
        try:
            nets.netgraph_fit(case.net, images, case.spec, case.batch, total, rounds, case.seed)
        finally:
            Optimizer.update = update
    (t0, p0, f0, b0), (t1, p1, f1, b1) = marks

    def per_step(after: dict, before: dict, key: Any) -> float:
        return (after.get(key, 0.0) - before.get(key, 0.0)) / steps

    # fetching a batch, as NetTrain does it (a gather and a conversion), replayed for the same batches
    batches = nets.batch_order(n, case.batch, total, case.seed)[PROFILE_WARMUP:]
    start = time.perf_counter()
    for index in batches:
        np.asarray(images[index], dtype=np.float32)
    data = (time.perf_counter() - start) / steps
    layers = [(path, describe_layer(timer.layers[path]), per_step(f1, f0, path), per_step(b1, b0, path)) for path in f1]
    return {
        "step": (t1 - t0) / steps,
        "phases": {name: per_step(p1, p0, name) for name in p1},
        "data": data,
        "layers": layers,
        "steps": steps,
    }


def describe_layer(layer: Any) -> str:
    """A short description: "Convolution 32 k5 s2", "Linear 1024", "BatchNormalization", "Ramp"; a fused
    step of a plan (netgraph.graph.FusedStep) names both its layers: "Convolution 32 k3 + Ramp"."""
    if hasattr(layer, "parts"):
        return " + ".join(describe_layer(part) for part in layer.parts)
    kind = type(layer).__name__.removesuffix("Layer")
    if kind in ("Convolution", "Deconvolution"):
        k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
        s = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
        return f"{kind} {layer.n} k{k}" + (f" s{s}" if s != 1 else "")
    if kind == "Linear":
        return f"Linear {'×'.join(map(str, layer.port_shapes['Output']))}"
    if kind in ("Elementwise", "Threading"):
        text = str(layer)
        leaky = re.fullmatch(r"If\[# >= 0, #, ([0-9.e-]+)\*#\]&", text)  # how ("LeakyRamp", slope) prints
        if leaky:
            return f"LeakyRamp {leaky.group(1)}"
        return text if len(text) <= 24 else text[:21] + "..."
    return kind


# --- the worker processes ---------------------------------------------------------------------------------
#
# NOTE: each framework runs in its own process, and the parent alternates between them: in one process
# the two thread pools (NumPy's OpenBLAS and PyTorch's OpenMP) compete for the cores and both measure
# slower. A pause before each turn lets the other process's threads go back to sleep.


def matmul_rate(framework: str, device: str = "CPU") -> float:
    """GFLOP/s of one MATMUL_SIZE² float32 matrix product (median of 5 after one warm-up); on the GPU
    that of :func:`bench_devices.gpu_matmul_rate` (8192², synchronised).

    netgraph's worker multiplies with :func:`netgraph.backend.matmul` inside ``cpu_work()``, as NetTrain
    runs: NumPy's OpenBLAS is set to one thread and the product is split over netgraph's own threads.
    """
    import numpy as np

    if device == "GPU":
        return devices.gpu_matmul_rate(framework)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32) for _ in range(2))
    scope: Any = contextlib.nullcontext()
    if framework == "torch":
        import torch

        a, b = torch.from_numpy(a), torch.from_numpy(b)
        product = torch.matmul
    else:
        from netgraph.backend import matmul as product  # netgraph's threads, as its layers use them

        scope = cpu_work()
    times = []
    with scope:
        for _ in range(6):
            start = time.perf_counter()
            _ = product(a, b)
            times.append(time.perf_counter() - start)
    return 2 * MATMUL_SIZE**3 / statistics.median(times[1:]) / 1e9


def describe(framework: str, device: str = "CPU") -> str:
    """Versions and thread pools of a worker; on the GPU, the device and the settings that change its speed."""
    import numpy as np

    if device == "GPU":
        return devices.describe_gpu(framework)
    if framework == "torch":
        import torch

        return f"torch {torch.__version__} (get_num_threads {torch.get_num_threads()}), numpy {np.__version__}"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{blas.get('name')} {blas.get('version')}"
    except Exception as error:  # the layout of show_config is not a stable API
        name = f"unknown ({error})"
    loaded = "yes (it must not be)" if "torch" in sys.modules else "no"
    return f"netgraph on numpy {np.__version__}, BLAS {name}; torch loaded in this process: {loaded}"


def _numpy_only() -> None:
    """netgraph without its compiled kernels, graph fusion and tuned lowering, in this process."""
    from netgraph import compiled, graph, tuning

    compiled.set_compiled_kernels(False)
    graph.set_fusion(False)
    tuning.set_autotuning(False)


def worker(
    connection: Any,
    framework: str,
    threads: int,
    seed: int,
    device: str = "CPU",
    cudnn_benchmark: bool = False,
    numpy_only: bool = False,
) -> None:
    """Serve requests for one framework until told to stop: ("describe",), ("matmul",),
    ("run", name, batch, steps), ("check", name, batch, steps), ("profile", name, batch, steps, n),
    ("gpu memory", name, batch, steps), ("stop",). ``numpy_only``: netgraph without its compiled
    kernels, graph fusion and tuned lowering."""
    if numpy_only:
        _numpy_only()
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark
    cases: dict[tuple, Case] = {}
    run = netgraph_run if framework == "netgraph" else torch_run
    on_device = {"target_device": device} if device != "CPU" else {}
    connection.send("ready")
    serve = nets.serving(connection)

    def case(name: str, batch: int, steps: int) -> Case:
        if (name, batch, steps) not in cases:
            cases.clear()  # one case's data at a time
            cases[(name, batch, steps)] = Case(name, batch, steps, seed)
        return cases[(name, batch, steps)]

    def check(name: str, batch: int, steps: int) -> bool:
        c = case(name, batch, steps)
        return nets.check_netgraph_order(c.net, c.images, c.spec, c.batch, c.seed, **on_device)

    handlers = {
        "describe": lambda: describe(framework, device),
        "matmul": lambda: matmul_rate(framework, device),
        "run": lambda *a: run(case(*a), device),
        "check": check,
        "profile": lambda name, batch, steps, n: netgraph_profile(case(name, batch, steps), n),
        "gpu memory": lambda *a: gpu_memory_run(framework, case(*a)),
    }
    # NOTE: the netgraph worker serves inside one cpu_work(), as a long training run is: otherwise each
    # NetTrain run hands back, as it ends, the memory netgraph kept, and the next run's first timed step
    # faults it in again (about 12,000 page faults in the seed-004 net's second step).
    with cpu_work() if framework == "netgraph" else contextlib.nullcontext():
        while True:
            request = connection.recv()
            if request[0] == "stop":
                break
            serve(handlers[request[0]], *request[1:])
    connection.close()


def memory_run(
    framework: str, threads: int, seed: int, name: str, batch: int, steps: int, numpy_only: bool = False
) -> tuple:
    """One training run, meant for a fresh process: (resident MB before training, peak MB, whether the
    peak could be reset after the imports and the data)."""
    if numpy_only:
        _numpy_only()
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    case = Case(name, batch, steps, seed)
    model = nets.torch_twin(name, case.net) if framework == "torch" else None
    gc.collect()
    before = nets.rss_mb()
    reset = nets.reset_peak_rss()
    if framework == "torch":
        nets.torch_fit(model, case.images, case.spec, case.batch, case.steps, case.seed)
    else:
        nets.netgraph_fit(case.net, case.images, case.spec, case.batch, case.steps, case.rounds, case.seed)
    return before, nets.peak_rss_mb(), reset


def gpu_memory_run(framework: str, case: Case) -> dict[str, Any]:
    """One untimed training run on the GPU in a worker, measured by :func:`bench_devices.gpu_memory`:
    {"peak": MB in use at most, "held": MB its allocator held, "peak_rss": the process's peak resident
    MB during the run, "peak_reset": whether that peak could be reset before it}.

    It is also the run that warms the worker up for the case: CuPy compiles its kernels for the shapes
    of the case, cuBLAS and cuDNN set up theirs, before any run is timed."""
    run = netgraph_run if framework == "netgraph" else torch_run
    gc.collect()
    reset = nets.reset_peak_rss()
    with devices.gpu_memory(framework) as figures:
        run(case, "GPU")
    return {**figures, "peak_rss": nets.peak_rss_mb(), "peak_reset": reset}


@dataclass(frozen=True)
class Configuration:
    """One way to train: a framework, on how many processes (ranks), each with how many threads."""

    key: str  # "netgraph", "netgraph-numpy", "torch" (one process), "netgraph-mpi", "torch-ddp" (ranks)
    framework: str
    ranks: int
    threads: int
    device: str = "CPU"
    numpy_only: bool = False  # netgraph without compiled kernels, fusion and tuning (--numpy-only)

    @property
    def label(self) -> str:
        if self.device == "GPU":
            return f"{self.framework} {'GPU (CuPy)' if self.framework == 'netgraph' else 'CUDA'}"
        launches = {"netgraph-mpi": " mpiexec", "torch-ddp": " DDP gloo", "netgraph-numpy": " NumPy only"}
        launch = launches.get(self.key, "")
        return f"{self.framework} {self.ranks}×{self.threads}{launch}"


class Workers:
    """One worker process per one-process configuration and one group per ranked one; ``ask`` waits
    ``pause`` seconds, then sends a request."""

    def __init__(
        self, configurations: list[Configuration], seed: int, pause: float, cudnn_benchmark: bool = False
    ) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # fresh interpreters: netgraph's never imports torch
        self.pause, self.seed = pause, seed
        self.threads = {c.key: c.threads for c in configurations}
        self.connections: dict[str, Any] = {}
        self.groups: dict[str, MPIGroup | DDPGroup] = {}
        self.processes = []
        for c in configurations:
            if c.ranks > 1:
                continue
            parent, child = context.Pipe()
            process = context.Process(
                target=worker,
                args=(child, c.framework, c.threads, seed, c.device, cudnn_benchmark, c.numpy_only),
                daemon=True,
            )
            process.start()
            self.connections[c.key] = parent
            self.processes.append(process)
        for connection in self.connections.values():  # every import done before anything is timed
            nets.answer(connection)
        self.configurations = [c for c in configurations if c.ranks == 1]
        for c in configurations:
            if c.ranks == 1:
                continue
            try:
                self.groups[c.key] = (MPIGroup if c.key == "netgraph-mpi" else DDPGroup)(c.ranks, seed, pause)
            except Exception as error:  # the others are still timed
                print(f"  {c.label}: not timed, the ranks did not start: {error}")
                continue
            self.configurations.append(c)

    def ask(self, key: str, *request: Any) -> Any:
        if key in self.groups:
            return self.groups[key].ask(*request)
        time.sleep(self.pause)
        self.connections[key].send(request)
        return nets.answer(self.connections[key])

    def memory(self, c: Configuration, name: str, batch: int, steps: int) -> tuple[float | None, float, bool]:
        """:func:`memory_run` in a fresh process."""
        time.sleep(self.pause)
        return nets.run_in_process(memory_run, c.framework, c.threads, self.seed, name, batch, steps, c.numpy_only)

    def close(self) -> None:
        for connection in self.connections.values():
            connection.send(("stop",))
        for process in self.processes:
            process.join()
        for group in self.groups.values():
            group.close()


# --- the run ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train_speed.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--nets",
        nargs="+",
        choices=list(nets.SPECS),
        help=f"nets to train (default {' '.join(nets.SPECS)}; with --ranks {' '.join(RANK_NETS)})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="batches per run (default " + ", ".join(f"{k} {v}" for k, v in STEPS.items()) + ")",
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per configuration and case (default 5)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of each framework")
    parser.add_argument(
        "--ranks",
        type=int,
        help="also time each framework data-parallel on this many processes of one thread each: netgraph "
        "under mpiexec, PyTorch DDP (gloo)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short check that everything runs: "
        + ", ".join(f"{k} {v}" for k, v in QUICK_STEPS.items())
        + " steps, 2 repeats",
    )
    parser.add_argument("--profile", action="store_true", help="also profile netgraph's training step")
    parser.add_argument(
        "--numpy-only",
        action="store_true",
        help="also time netgraph without its compiled kernels, graph fusion and tuned lowering (NumPy alone)",
    )
    parser.add_argument("--profile-steps", type=int, default=5, help="steps the profile averages (default 5)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="loss difference flagged (default 0.05 = 5%%)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of rest before each turn (default 0.5)")
    parser.add_argument("--seed", type=int, default=1, help="initial weights, batch order and noise (default 1)")
    parser.add_argument(
        "--device",
        choices=devices.DEVICES,
        default="CPU",
        help="CPU (NumPy against PyTorch's CPU build; the default) or GPU (CuPy against PyTorch CUDA)",
    )
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="with --device GPU: PyTorch picks each convolution's cuDNN algorithm by timing them "
        "(torch.backends.cudnn.benchmark; off by default, as in PyTorch)",
    )
    parser.add_argument(
        "--data",
        choices=("fashion-mnist", "synthetic"),
        default="fashion-mnist",
        help="Fashion-MNIST (the default), or made-up pictures of the same shapes for a machine without it "
        "and without network access (training_nets.synthetic_images)",
    )
    args = parser.parse_args(argv)
    if args.device == "GPU" and args.ranks:
        parser.error("--ranks times data-parallel training on CPU cores; it does not go with --device GPU")
    if args.device == "GPU" and args.profile:
        parser.error(
            "--profile times the layers of a CPU step; on the GPU those times would be the times to queue "
            "the kernels, so it does not go with --device GPU"
        )
    if args.cudnn_benchmark and args.device != "GPU":
        parser.error("--cudnn-benchmark is for --device GPU")
    if args.quick:
        args.repeats = min(args.repeats, 2)
    for name in ("steps", "repeats", "threads", "profile_steps", "ranks"):
        value, least = getattr(args, name), {"steps": 2, "ranks": 2}.get(name, 1)
        if value is not None and value < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}, got {value}")
    if args.nets is None:
        args.nets = list(RANK_NETS if args.ranks else nets.SPECS)
    return args


def steps_for(args: argparse.Namespace, name: str) -> int:
    return args.steps or (QUICK_STEPS if args.quick else STEPS)[name]


def gpu_check(has_torch: bool) -> bool:
    """Whether PyTorch can be timed next to netgraph on the GPU (says why not when it cannot); raises
    CannotRunError when netgraph itself cannot train on a GPU here. PyTorch is asked in a fresh process:
    this one never imports it."""
    missing = devices.gpu_missing()
    if missing:
        raise CannotRunError(
            f"--device GPU cannot run here: {missing}. Without a GPU, time the CPU instead: make bench, "
            "or this script without --device GPU"
        )
    if not has_torch:
        print("PyTorch is not installed here, " + INSTALL_CUDA)
        return False
    problem = nets.run_in_process(devices.torch_cuda_missing)
    if problem:
        print(f"{problem}, " + INSTALL_CUDA)
        return False
    return True


def configurations_for(args: argparse.Namespace, has_torch: bool) -> list[Configuration]:
    """The configurations to time; says which of those asked for cannot be, and why."""
    configurations = [Configuration("netgraph", "netgraph", 1, args.threads, args.device)]
    if args.numpy_only:
        configurations.append(Configuration("netgraph-numpy", "netgraph", 1, args.threads, args.device, True))
    if has_torch:
        configurations.append(Configuration("torch", "torch", 1, args.threads, args.device))
    if args.ranks:
        missing = mpi_missing()
        if missing:
            print(f"netgraph on {args.ranks} ranks is not timed: {missing}")
        else:
            configurations.append(Configuration("netgraph-mpi", "netgraph", args.ranks, 1))
        if has_torch:
            configurations.append(Configuration("torch-ddp", "torch", args.ranks, 1))
    return configurations


def timed(c: Configuration, runs: list[dict], steps: int) -> list[float]:
    """Seconds per step of each run, from its end-of-update times (the first step left out)."""
    for run in runs:
        if len(run["stamps"]) != steps:
            raise RuntimeError(
                f"{c.label}: {len(run['stamps'])} optimiser updates were timed in a run of {steps} steps"
            )
    return [(r["stamps"][-1] - r["stamps"][0]) / (len(r["stamps"]) - 1) for r in runs]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time, compare and print; returns the figures by (net, batch) for tests and scripts."""
    args = parse_args(argv)
    on_gpu = args.device == "GPU"
    for variable in THREAD_VARIABLES:  # inherited by the workers, which load NumPy after this
        os.environ[variable] = str(args.threads)
    if args.data == "synthetic":  # inherited by the workers and ranks, read by training_nets.training_images
        os.environ[nets.DATA_VARIABLE] = "synthetic"
    has_torch = importlib.util.find_spec("torch") is not None
    if on_gpu:
        has_torch = gpu_check(has_torch)
    elif not has_torch:
        print(INSTALL)
    started = time.perf_counter()
    print(
        f"threads: {args.threads} of {os.cpu_count()} cores; "
        + ", ".join(f"{v}={args.threads}" for v in THREAD_VARIABLES)
        + (f"; on ranks, 1 thread each ({', '.join(f'{v}=1' for v in THREAD_VARIABLES)})" if args.ranks else "")
    )
    if on_gpu:
        print(
            "device: GPU; each step's time ends once the device is synchronised; each case first trains one "
            "untimed run in each worker (the warm-up, which measures the GPU memory)"
        )
    if args.data == "synthetic":
        print("data: synthetic pictures in place of Fashion-MNIST (training_nets.synthetic_images)")
    workers = Workers(configurations_for(args, has_torch), args.seed, args.pause, args.cudnn_benchmark)
    configurations = workers.configurations
    rates = {}
    for c in configurations:
        print(f"  {c.label}: {workers.ask(c.key, 'describe')}")
        if c.ranks == 1:
            rates[c.framework] = workers.ask(c.key, "matmul")
    where = f"{devices.GPU_MATMUL_SIZE}×{devices.GPU_MATMUL_SIZE} on the GPU" if on_gpu else "2048×2048, one process"
    print(f"  float32 matmul {where}: " + ", ".join(f"{f} {r:.0f} GFLOP/s" for f, r in rates.items()))

    cases = [(name, batch) for name in args.nets for batch in nets.SPECS[name].batches_on(args.device)]
    results: dict[tuple[str, int], dict] = {}
    for name, batch in cases:
        spec, steps = nets.SPECS[name], steps_for(args, name)
        net = nets.build_netgraph(name, args.seed)
        flops = nets.step_flops(net, batch)
        print(
            f"\n{spec.title}: {nets.parameter_count(net):,} parameters, batch {batch}, {steps} steps a run, "
            f"{flops / 1e9:.2f} GFLOP of matrix products a step"
        )
        ordered = workers.ask("netgraph", "check", name, batch, steps)
        print(f"  batch order: NetTrain's first batches are the ones the PyTorch loop is given: {ordered}")
        on_device = {c.key: workers.ask(c.key, "gpu memory", name, batch, steps) for c in configurations if on_gpu}
        runs: dict[str, list] = {c.key: [] for c in configurations}
        for repeat in range(args.repeats):
            shift = repeat % len(configurations)
            for c in configurations[shift:] + configurations[:shift]:
                runs[c.key].append(workers.ask(c.key, "run", name, batch, steps))
        row: dict[str, Any] = {"flops": flops, "order_checked": ordered}
        for c in configurations:
            done = runs[c.key]
            per_run = timed(c, done, steps)
            if on_gpu:  # measured in the worker during its untimed run
                before, peak, reset = None, on_device[c.key]["peak_rss"], on_device[c.key]["peak_reset"]
            elif c.ranks == 1:
                before, peak, reset = workers.memory(c, name, batch, steps)
            else:  # measured by the ranks during their first run
                before, peak, reset = done[0]["rss_before"], done[0]["peak_rss"], done[0]["peak_reset"]
            row[c.key] = {
                "label": c.label,
                "seconds": statistics.median(per_run),
                "fastest": min(per_run),
                "slowest": max(per_run),
                "losses": done[0]["losses"],
                "rss_before": before,
                "peak_rss": peak,
                "peak_reset": reset,
            }
            if on_gpu:
                row[c.key].update(gpu_peak=on_device[c.key]["peak"], gpu_held=on_device[c.key]["held"])
        if args.profile:
            row["profile"] = workers.ask("netgraph", "profile", name, batch, steps, args.profile_steps)
        results[(name, batch)] = row
        report_case(args, name, batch, row, rates, configurations)
    workers.close()
    summary(results, configurations)
    print(f"\ntime taken: {time.perf_counter() - started:.0f} s")
    return {"results": results, "matmul": rates, "device": args.device}


# --- printing ---------------------------------------------------------------------------------------------------


def fastest(row: dict, configurations: list[Configuration], framework: str) -> Configuration | None:
    """The configuration of ``framework`` with the shortest median step in ``row``."""
    own = [c for c in configurations if c.framework == framework and c.key in row]
    return min(own, key=lambda c: row[c.key]["seconds"]) if own else None


def report_case(
    args: argparse.Namespace, name: str, batch: int, row: dict, rates: dict, configurations: list[Configuration]
) -> None:
    """The table rows, the loss check and the profile of one case."""
    best_torch = fastest(row, configurations, "torch")
    width = max(len(c.label) for c in configurations)
    half = max(1, len(row["netgraph"]["losses"]) // 2)
    on_gpu = any(c.device == "GPU" for c in configurations)
    print(
        f"  {'configuration':<{width}} {'ms/step':>9} {'(min-max)':>19} {'images/s':>9} {'/torch':>7}"
        f" {'peak GPU MB' if on_gpu else 'peak RSS MB':>11} {'GFLOP/s':>8} {'of matmul':>9} {'loss':>9}"
    )
    for c in configurations:
        r = row[c.key]
        r["loss"] = sum(r["losses"][-half:]) / half
        ratio = f"{r['seconds'] / row[best_torch.key]['seconds']:>6.2f}x" if best_torch else f"{'':>7}"
        rate = row["flops"] / r["seconds"] / 1e9
        spread = f"({r['fastest'] * 1e3:.1f}-{r['slowest'] * 1e3:.1f})"
        print(
            f"  {c.label:<{width}} {r['seconds'] * 1e3:>9.1f} {spread:>19} {batch / r['seconds']:>9.0f} {ratio}"
            f" {r['gpu_peak'] if on_gpu else r['peak_rss']:>11.0f} {rate:>8.1f} {rate / rates[c.framework]:>9.0%}"
            f" {r['loss']:>9.3f}"
        )
    (print_gpu_memory if on_gpu else print_host_memory)(row, configurations)
    if best_torch:
        print(f"  /torch: the time of a step over that of the fastest PyTorch configuration, {best_torch.label}")
    print(f"  loss: the mean training loss of the last {half} steps of the first run (the same batches in all)")
    if "torch" in row:
        reference = row["torch"]["loss"]
        row["loss_differences"] = {}
        for c in configurations:
            if c.key == "torch":
                continue
            difference = abs(row[c.key]["loss"] - reference) / abs(reference)
            row["loss_differences"][c.key] = difference
            verdict = "same" if difference <= args.tolerance else f"DIFFERENT: more than {args.tolerance:.0%} apart"
            print(
                f"    {c.label} against {row['torch']['label']}: {difference:.1%} apart ({verdict}); first step "
                f"{row[c.key]['losses'][0]:.3f} and {row['torch']['losses'][0]:.3f}"
            )
        row["loss_difference"] = row["loss_differences"]["netgraph"]
    if "profile" in row:
        print_profile(name, batch, row["profile"])


def print_host_memory(row: dict, configurations: list[Configuration]) -> None:
    """The resident memory before training, and what the peak RSS column holds."""
    for c in configurations:
        r = row[c.key]
        before = f"{r['rss_before']:.0f} MB resident before training" if r["rss_before"] is not None else ""
        if c.ranks > 1:
            before += " (the largest rank; peak RSS: that rank's, during its first run)"
        if not r["peak_reset"]:
            before += " (peak not reset after loading: it includes the set-up)"
        print(f"    {c.label}: {before}")


def print_gpu_memory(row: dict, configurations: list[Configuration]) -> None:
    """What the GPU memory column means, and what each allocator held."""
    print(
        "  peak GPU MB: the most memory in use on the GPU during one untimed run of the case\n"
        "    (netgraph: CuPy's memory pool blocks handed out, counted by a memory hook; PyTorch: max_memory_allocated)"
    )
    for c in configurations:
        r = row[c.key]
        allocator = "CuPy's memory pool" if c.framework == "netgraph" else "PyTorch's caching allocator"
        peak = f"{r['peak_rss']:.0f} MB" + ("" if r["peak_reset"] else " (not reset after the set-up)")
        print(f"    {c.label}: {allocator} held {r['gpu_held']:.0f} MB of the GPU at most; host peak RSS {peak}")


def print_profile(name: str, batch: int, profile: dict) -> None:
    step, phases = profile["step"], profile["phases"]
    forward, backward = phases.get("forward", 0.0), phases.get("backward", 0.0)
    optimiser, data = phases.get("optimiser", 0.0), profile["data"]
    rest = step - forward - backward - optimiser - data
    print(
        f"\n  profile of a netgraph training step, {name} batch {batch}: {step * 1e3:.1f} ms, the mean of "
        f"{profile['steps']} steps after {PROFILE_WARMUP} warm-up steps (timings on)"
    )
    for label, seconds in (
        ("forward (the whole net)", forward),
        ("backward (the whole pass)", backward),
        ("optimiser (ADAM update)", optimiser),
        ("fetching the batch (replayed)", data),
        ("NetTrain loop (loss, checks, the rest)", rest),
    ):
        print(f"    {label:<38} {seconds * 1e3:>8.2f} ms {seconds / step:>6.1%}")
    width = max(len("/".join(map(str, path))) for path, *_ in profile["layers"])
    print(f"    {'layer':<{width}} {'':<24} {'fwd ms':>8} {'bwd ms':>8} {'of step':>8}")
    for path, what, fwd, bwd in profile["layers"]:
        where = "/".join(map(str, path))
        print(f"    {where:<{width}} {what:<24} {fwd * 1e3:>8.2f} {bwd * 1e3:>8.2f} {(fwd + bwd) / step:>8.1%}")
    in_layers = sum(f for _, _, f, _ in profile["layers"]), sum(b for _, _, _, b in profile["layers"])
    print(
        f"    {'outside layers (graph, engine)':<{width + 25}} {(forward - in_layers[0]) * 1e3:>8.2f}"
        f" {(backward - in_layers[1]) * 1e3:>8.2f} {(forward + backward - sum(in_layers)) / step:>8.1%}"
    )
    top = sorted(profile["layers"], key=lambda r: -(r[2] + r[3]))[:3]
    print(
        "    the largest layers: "
        + "; ".join(f"{'/'.join(map(str, p))} {w} {(f + b) / step:.0%}" for p, w, f, b in top)
    )


def summary(results: dict, configurations: list[Configuration]) -> None:
    print("\nsummary: ms per step (median of the runs), images/s, time over the fastest PyTorch configuration's")
    width = max(len(c.label) for c in configurations)
    for (name, batch), row in results.items():
        best_torch = fastest(row, configurations, "torch")
        print(f"  {name} batch {batch}")
        for c in configurations:
            r = row[c.key]
            ratio = f"{r['seconds'] / row[best_torch.key]['seconds']:>6.2f}x" if best_torch else ""
            check = f"  loss {r['loss']:.3f}"
            if c.key in row.get("loss_differences", {}):
                check += f" ({row['loss_differences'][c.key]:.1%} from {row['torch']['label']})"
            figures = f"{r['seconds'] * 1e3:>8.1f} ms {batch / r['seconds']:>7.0f} img/s"
            if "gpu_peak" in r:
                check += f", peak GPU {r['gpu_peak']:.0f} MB"
            print(f"    {c.label:<{width}} {figures} {ratio}{check}")
        best = fastest(row, configurations, "netgraph")
        if best is not None and len([c for c in configurations if c.framework == "netgraph"]) > 1:
            against = (
                f", {row[best.key]['seconds'] / row[best_torch.key]['seconds']:.2f}x the time of {best_torch.label}"
            )
            print(f"    fastest netgraph: {best.label}{against if best_torch else ''}")


if __name__ == "__main__":
    from netgraph import BackendError
    from netgraph.datasets import DatasetError

    try:
        main()
    except CannotRunError as err:
        print(f"train_speed.py: {err}", file=sys.stderr)
        sys.exit(EXIT_CANNOT_RUN)
    except (DatasetError, BackendError) as err:
        sys.exit(f"train_speed.py: {err}")
    except KeyboardInterrupt:
        sys.exit("train_speed.py: interrupted")
