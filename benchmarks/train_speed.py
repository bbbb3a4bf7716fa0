"""Training speed: netgraph's NetTrain against PyTorch on the same nets, data, batches and threads (CPU).

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

  ms/step, images/s      per framework
  ng/torch               netgraph's time per step over PyTorch's
  peak RSS               peak resident memory of one more run of --steps batches, in a fresh
                         process (VmHWM, reset once the data is loaded, so the imports and the data
                         count but the loading's temporaries do not)
  GFLOP/s, of matmul     the matrix-product work of a step (2 flops per multiply-add of every
                         convolution, deconvolution and linear layer, forward and both gradients)
                         per second, and that as a share of one 2048×2048 float32 matrix product
                         timed in the same worker (NumPy's BLAS, or torch.matmul)

After the timed steps it compares the two frameworks' mean training loss over the last half of
the steps (the same batches in both) and flags a difference above --tolerance: a fast engine that
computes the wrong thing must not win. The noise alone moves that mean by a few percent (five
PyTorch runs of the seed-001 net at batch 32, alike but for the noise, gave 71.1 to 74.8 after 100
steps), so the default tolerance is 5%; a wrong gradient shows as a much larger gap.

A full run (the defaults: 100 steps for seed001, 200 for mlp, 10 for augment, 5 runs each) takes
about 10 minutes on 2 cores; --quick checks that everything works in about 3.

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
from typing import Any

import training_nets as nets

from netgraph.backend import cpu_work

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
INSTALL = (
    "PyTorch is not installed here; to compare, install its CPU build in a separate environment:\n"
    "    python3 -m venv torchenv && torchenv/bin/pip install torch numpy networkx pillow\n"
    "    torchenv/bin/pip install -e . --no-deps\n"
    "    torchenv/bin/python benchmarks/train_speed.py\n"
)
STEPS = {"seed001": 100, "mlp": 200, "augment": 10}  # per run, when --steps is not given
QUICK_STEPS = {"seed001": 8, "mlp": 16, "augment": 3}
PROFILE_WARMUP = 2
MATMUL_SIZE = 2048


# --- one training run in each framework -----------------------------------------------------------------


class Case:
    """One net at one batch size in a worker: the initial net, the training images, the rounds."""

    def __init__(self, name: str, batch: int, steps: int, seed: int) -> None:
        self.spec = nets.SPECS[name]
        self.batch, self.steps, self.seed = batch, steps, seed
        self.net = nets.build_netgraph(name, seed)
        n, self.rounds = nets.plan_data(self.spec, batch, steps)
        self.images = nets.training_images(name, n)


def netgraph_run(case: Case) -> dict[str, Any]:
    """One NetTrain run; step times from the ends of the optimiser's updates."""
    from netgraph.optimizers import Optimizer

    stamps: list[float] = []
    update = Optimizer.update

    def stamped(self, *args, **kwargs):
        update(self, *args, **kwargs)
        stamps.append(time.perf_counter())

    Optimizer.update = stamped
    try:
        results = nets.netgraph_fit(case.net, case.images, case.spec, case.batch, case.steps, case.rounds, case.seed)
    finally:
        Optimizer.update = update
    return {"stamps": stamps, "losses": list(results["BatchLossList"])}


def torch_run(case: Case) -> dict[str, Any]:
    """The same run in PyTorch, from a fresh twin of the initial net."""
    model = nets.torch_twin(case.spec.name, case.net)
    losses, stamps = nets.torch_fit(model, case.images, case.spec, case.batch, case.steps, case.seed)
    return {"stamps": stamps, "losses": losses}


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
    """A short description: "Convolution 32 k5 s2", "Linear 1024", "BatchNormalization", "Ramp"."""
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


def matmul_rate(framework: str) -> float:
    """GFLOP/s of one MATMUL_SIZE² float32 matrix product (median of 5 after one warm-up).

    netgraph's worker multiplies with :func:`netgraph.backend.matmul` inside ``cpu_work()``, as NetTrain
    runs: NumPy's OpenBLAS is set to one thread and the product is split over netgraph's own threads.
    """
    import numpy as np

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


def describe(framework: str) -> str:
    """Versions and thread pools of a worker."""
    import numpy as np

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


def worker(connection: Any, framework: str, threads: int, seed: int) -> None:
    """Serve requests for one framework until told to stop: ("describe",), ("matmul",),
    ("run", name, batch, steps), ("check", name, batch, steps), ("profile", name, batch, steps, n), ("stop",)."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    cases: dict[tuple, Case] = {}
    connection.send("ready")
    serve = nets.serving(connection)

    def case(name: str, batch: int, steps: int) -> Case:
        if (name, batch, steps) not in cases:
            cases.clear()  # one case's data at a time
            cases[(name, batch, steps)] = Case(name, batch, steps, seed)
        return cases[(name, batch, steps)]

    def check(name: str, batch: int, steps: int) -> bool:
        c = case(name, batch, steps)
        return nets.check_netgraph_order(c.net, c.images, c.spec, c.batch, c.seed)

    handlers = {
        "describe": lambda: describe(framework),
        "matmul": lambda: matmul_rate(framework),
        "run": lambda *a: (netgraph_run if framework == "netgraph" else torch_run)(case(*a)),
        "check": check,
        "profile": lambda name, batch, steps, n: netgraph_profile(case(name, batch, steps), n),
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


def memory_run(framework: str, threads: int, seed: int, name: str, batch: int, steps: int) -> tuple:
    """One training run, meant for a fresh process: (resident MB before training, peak MB, whether the
    peak could be reset after the imports and the data)."""
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


class Workers:
    """One worker process per framework; ``ask`` waits ``pause`` seconds, then sends a request."""

    def __init__(self, frameworks: list[str], threads: int, seed: int, pause: float) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # fresh interpreters: netgraph's never imports torch
        self.pause, self.threads, self.seed = pause, threads, seed
        self.connections, self.processes = {}, []
        for framework in frameworks:
            parent, child = context.Pipe()
            process = context.Process(target=worker, args=(child, framework, threads, seed), daemon=True)
            process.start()
            self.connections[framework] = parent
            self.processes.append(process)
        for connection in self.connections.values():  # every import done before anything is timed
            nets.answer(connection)

    def ask(self, framework: str, *request: Any) -> Any:
        time.sleep(self.pause)
        self.connections[framework].send(request)
        return nets.answer(self.connections[framework])

    def memory(self, framework: str, name: str, batch: int, steps: int) -> tuple[float | None, float, bool]:
        """:func:`memory_run` in a fresh process."""
        time.sleep(self.pause)
        return nets.run_in_process(memory_run, framework, self.threads, self.seed, name, batch, steps)

    def close(self) -> None:
        for connection in self.connections.values():
            connection.send(("stop",))
        for process in self.processes:
            process.join()


# --- the run ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train_speed.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nets", nargs="+", default=list(nets.SPECS), choices=list(nets.SPECS), help="nets to train")
    parser.add_argument(
        "--steps",
        type=int,
        help="batches per run (default " + ", ".join(f"{k} {v}" for k, v in STEPS.items()) + ")",
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per framework and case (default 5)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of each framework")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short check that everything runs: "
        + ", ".join(f"{k} {v}" for k, v in QUICK_STEPS.items())
        + " steps, 2 repeats",
    )
    parser.add_argument("--profile", action="store_true", help="also profile netgraph's training step")
    parser.add_argument("--profile-steps", type=int, default=5, help="steps the profile averages (default 5)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="loss difference flagged (default 0.05 = 5%%)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of rest before each turn (default 0.5)")
    parser.add_argument("--seed", type=int, default=1, help="initial weights, batch order and noise (default 1)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
    for name in ("steps", "repeats", "threads", "profile_steps"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "steps" else 1):
            parser.error(f"--{name.replace('_', '-')} must be at least {2 if name == 'steps' else 1}, got {value}")
    return args


def steps_for(args: argparse.Namespace, name: str) -> int:
    return args.steps or (QUICK_STEPS if args.quick else STEPS)[name]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time, compare and print; returns the figures by (net, batch) for tests and scripts."""
    args = parse_args(argv)
    for variable in THREAD_VARIABLES:  # inherited by the workers, which load NumPy after this
        os.environ[variable] = str(args.threads)
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_torch:
        print(INSTALL)
    frameworks = ["netgraph"] + (["torch"] if has_torch else [])
    started = time.perf_counter()
    print(
        f"threads: {args.threads} of {os.cpu_count()} cores; "
        + ", ".join(f"{v}={args.threads}" for v in THREAD_VARIABLES)
    )
    workers = Workers(frameworks, args.threads, args.seed, args.pause)
    rates = {}
    for framework in frameworks:
        print(f"  {framework}: {workers.ask(framework, 'describe')}")
        rates[framework] = workers.ask(framework, "matmul")
    print("  float32 matmul 2048×2048: " + ", ".join(f"{f} {r:.0f} GFLOP/s" for f, r in rates.items()))

    cases = [(name, batch) for name in args.nets for batch in nets.SPECS[name].batch_sizes]
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
        runs: dict[str, list] = {f: [] for f in frameworks}
        for repeat in range(args.repeats):
            turn = frameworks[repeat % len(frameworks) :] + frameworks[: repeat % len(frameworks)]
            for framework in turn:
                runs[framework].append(workers.ask(framework, "run", name, batch, steps))
        row: dict[str, Any] = {"flops": flops, "order_checked": ordered}
        for framework, done in runs.items():
            per_run = [(r["stamps"][-1] - r["stamps"][0]) / (len(r["stamps"]) - 1) for r in done]
            before, peak, reset = workers.memory(framework, name, batch, steps)
            row[framework] = {
                "seconds": statistics.median(per_run),
                "fastest": min(per_run),
                "slowest": max(per_run),
                "losses": done[0]["losses"],
                "rss_before": before,
                "peak_rss": peak,
                "peak_reset": reset,
            }
        if args.profile:
            row["profile"] = workers.ask("netgraph", "profile", name, batch, steps, args.profile_steps)
        results[(name, batch)] = row
        report_case(args, name, batch, row, rates, frameworks)
    workers.close()
    summary(results, frameworks, rates)
    print(f"\ntime taken: {time.perf_counter() - started:.0f} s")
    return {"results": results, "matmul": rates}


# --- printing ---------------------------------------------------------------------------------------------------


def report_case(args: argparse.Namespace, name: str, batch: int, row: dict, rates: dict, frameworks: list[str]) -> None:
    """The table rows, the loss check and the profile of one case."""
    print(
        f"  {'framework':<9} {'ms/step':>9} {'(min-max)':>19} {'images/s':>9} {'ng/torch':>8}"
        f" {'peak RSS MB':>11} {'GFLOP/s':>8} {'of matmul':>9}"
    )
    reference = row["torch"]["seconds"] if "torch" in row else None
    for framework in frameworks:
        r = row[framework]
        ratio = f"{r['seconds'] / reference:>7.2f}x" if reference else f"{'':>8}"
        rate = row["flops"] / r["seconds"] / 1e9
        spread = f"({r['fastest'] * 1e3:.1f}-{r['slowest'] * 1e3:.1f})"
        print(
            f"  {framework:<9} {r['seconds'] * 1e3:>9.1f} {spread:>19} {batch / r['seconds']:>9.0f} {ratio}"
            f" {r['peak_rss']:>11.0f} {rate:>8.1f} {rate / rates[framework]:>9.0%}"
        )
    for framework in frameworks:
        r = row[framework]
        before = f"{r['rss_before']:.0f} MB resident before training" if r["rss_before"] is not None else ""
        if not r["peak_reset"]:
            before += " (peak not reset after loading: it includes the set-up)"
        print(f"    {framework}: {before}")
    if "torch" in row:
        losses = {f: row[f]["losses"] for f in frameworks}
        last = max(1, len(losses["netgraph"]) // 2)
        means = {f: sum(v[-last:]) / last for f, v in losses.items()}
        difference = abs(means["netgraph"] - means["torch"]) / abs(means["torch"])
        verdict = "same" if difference <= args.tolerance else f"DIFFERENT: more than {args.tolerance:.0%} apart"
        print(
            f"  training loss, mean of the last {last} steps: netgraph {means['netgraph']:.3f}, torch "
            f"{means['torch']:.3f} ({difference:.1%} apart: {verdict}); first step {losses['netgraph'][0]:.3f} and "
            f"{losses['torch'][0]:.3f}"
        )
        row["loss_difference"] = difference
    if "profile" in row:
        print_profile(name, batch, row["profile"])


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


def summary(results: dict, frameworks: list[str], rates: dict) -> None:
    print("\nsummary: ms per step (median of the runs), images/s, netgraph over PyTorch")
    for (name, batch), row in results.items():
        cells = [f"{f} {row[f]['seconds'] * 1e3:.1f} ms {batch / row[f]['seconds']:.0f} img/s" for f in frameworks]
        ratio = f"  ng/torch {row['netgraph']['seconds'] / row['torch']['seconds']:.2f}x" if "torch" in row else ""
        check = ""
        if "loss_difference" in row:
            check = f"  losses {row['loss_difference']:.1%} apart"
        print(f"  {name:<8} {batch:>4}  " + ";  ".join(cells) + ratio + check)


if __name__ == "__main__":
    from netgraph import BackendError
    from netgraph.datasets import DatasetError

    try:
        main()
    except (DatasetError, BackendError) as err:
        sys.exit(f"train_speed.py: {err}")
    except KeyboardInterrupt:
        sys.exit("train_speed.py: interrupted")
