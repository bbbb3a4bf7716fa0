"""The seed-001 MNIST VAE encoder and decoder, forward + backward: netgraph against PyTorch (CPU).

The encoder and decoder are the ones of ``tests/test_convolution.py``:

    encoder  (1, 28, 28) -> Conv 32 k3 -> Ramp -> Conv 64 k3 s2 -> Ramp -> Conv 64 k4 -> Ramp
             -> Flatten -> 5184
    decoder  8 -> Linear 5184 -> Ramp -> Reshape (64, 9, 9) -> Deconv 64 k4 -> Ramp
             -> Deconv 32 k3 s2 -> Ramp -> Deconv 1 k4 -> LogisticSigmoid -> (1, 28, 28)

Both frameworks get the same weights (netgraph's, copied into ``Conv2d``, ``ConvTranspose2d`` and
``Linear``), the same float32 data and the same thread count (``torch.set_num_threads`` and
OPENBLAS/OMP/MKL_NUM_THREADS, set before NumPy loads). One step is a forward pass and a backward
pass with the gradients of every weight, every bias and the input; the cotangent of the output is
all ones, as ``NetPortGradient`` takes it. netgraph is timed twice: at the autograd level
(``Tape``, the layers' ``forward`` with a ``Context``, ``backward``, as in
``benchmarks/conv_speed.py``) and through the evaluation API, ``net(x, NetPortGradient(All))``.

Each framework runs in its own worker process (netgraph's never imports torch) and the turns
alternate between them, the order rotating: a pause, one untimed step, then a few timed ones;
each figure is the median over all turns. Page faults and kernel time per step are reported too,
and with ``--allocators default keep`` the whole measurement is repeated with glibc told from the
start to keep freed memory (netgraph sets this itself when it first runs on the CPU, since
returning large temporaries to the system and faulting them in again was a large, machine-
dependent part of its time). A layer-by-layer pass (each layer on its own tape, or with a
detached input in torch) splits the time into forward and backward per layer.

Before timing, the outputs and gradients of the two frameworks are compared on random data
with a random output cotangent, in float32 and float64 (maximum absolute difference, and that
difference relative to the largest magnitude of the reference).

PyTorch is needed only here, never by netgraph or its tests; its CPU build in a separate
environment is enough:

    python3 -m venv torchenv && torchenv/bin/pip install torch numpy networkx pillow
    torchenv/bin/pip install -e . --no-deps
    torchenv/bin/python benchmarks/seed001_vs_torch.py [--threads 2] [--batches 32 128] [--repeats 30]

Without PyTorch the script prints these lines and times netgraph alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
INSTALL = (
    "PyTorch is not installed here; to compare, install its CPU build in a separate environment:\n"
    "    python3 -m venv torchenv && torchenv/bin/pip install torch numpy networkx pillow\n"
    "    torchenv/bin/pip install -e . --no-deps\n"
    "    torchenv/bin/python benchmarks/seed001_vs_torch.py\n"
)


# --- the nets ------------------------------------------------------------------------------------


def netgraph_nets(seed: int = 1):
    """The encoder and decoder, initialized, with small random biases (so biases are compared too)."""
    from pathlib import Path

    import numpy as np

    from netgraph import NetInitialize
    from netgraph.cli import load_script
    from netgraph.paths import iter_arrays

    # the very nets of the example, so the benchmark measures what users train
    example = load_script(Path(__file__).resolve().parents[1] / "examples" / "mnist_vae.py", "example_mnist_vae")
    encoder, decoder = example.build_encoder(), example.build_decoder()
    rng = np.random.default_rng(seed)
    nets = []
    for net in (encoder, decoder):
        net = NetInitialize(net, random_seeding=seed)
        for _, layer, name in iter_arrays(net):
            if name == "Biases":
                layer.arrays[name] = (0.05 * rng.standard_normal(layer.arrays[name].shape)).astype(np.float32)
        nets.append(net)
    return nets


def torch_net(net, dtype):
    """A ``torch.nn.Sequential`` equal to the netgraph chain ``net``, its weights copied, in ``dtype``:
    the twin that ``training_nets.torch_chain`` builds for the training benchmarks."""
    from training_nets import torch_chain  # here, not at the top: NumPy must load after THREAD_VARIABLES are set

    return torch_chain(net).to(dtype)


def layer_names(net) -> list[str]:
    """Short names of the chain's layers: "Conv 32 k3 s2", "Ramp", "Linear 5184", ..."""
    names = []
    for layer in net.vertices.values():
        kind = type(layer).__name__
        if kind in ("ConvolutionLayer", "DeconvolutionLayer"):
            stride = f" s{layer.stride}" if layer.stride != 1 else ""
            names.append(f"{kind[:-5].replace('olution', '')} {layer.n} k{layer.kernel_size}{stride}")
        elif kind == "LinearLayer":
            names.append(f"Linear {layer.port_shapes['Output'][0]}")
        elif kind == "ElementwiseLayer":
            names.append(str(layer))
        else:
            names.append(kind[:-5])
    return names


# --- one step in each framework --------------------------------------------------------------------


def netgraph_tape_step(net, x, cotangent):
    """Forward and backward at the autograd level; returns the output and the gradients by path."""
    import numpy as np

    from netgraph.autograd import Tape, Tensor, backward
    from netgraph.layer import Context
    from netgraph.paths import iter_arrays

    arrays = list(iter_arrays(net))

    def step():
        ctx = Context(xp=np, dtype=x.dtype, batch_size=x.shape[0])
        ctx.grad_arrays.update((id(layer), name) for _, layer, name in arrays)
        xt = Tensor(x, requires_grad=True)
        with Tape() as tape:
            y = net.forward({"Input": xt}, ctx)["Output"]
        grads = backward(tape, {y: cotangent})
        out = {path: grads[id(ctx.array(layer, name))] for path, layer, name in arrays}
        out["Input"] = grads[id(xt)]
        return y.data, out

    return step


def netgraph_api_step(net, x):
    """Forward and backward through ``net(x, NetPortGradient(All))`` (cotangent: all ones)."""
    from netgraph import All, NetPortGradient

    return lambda: net(x, NetPortGradient(All))


def torch_step(model, x, cotangent):
    """Forward and backward of a torch model; returns the output and the gradients by parameter name."""
    import torch

    xt = torch.from_numpy(x)
    gt = torch.from_numpy(cotangent)

    def step():
        model.zero_grad(set_to_none=True)
        leaf = xt.detach().requires_grad_(True)
        y = model(leaf)
        y.backward(gt)
        grads = {name: p.grad for name, p in model.named_parameters()}
        grads["Input"] = leaf.grad
        return y.detach(), grads

    return step


# --- per-layer timing ---------------------------------------------------------------------------------


def netgraph_layer_times(net, x, cotangent):
    """One pass, layer by layer, each on its own tape: forward and backward seconds per layer."""
    import numpy as np

    from netgraph.autograd import Tape, Tensor, backward
    from netgraph.layer import Context
    from netgraph.paths import iter_arrays

    ctx = Context(xp=np, dtype=x.dtype, batch_size=x.shape[0])
    ctx.grad_arrays.update((id(layer), name) for _, layer, name in iter_arrays(net))
    value, records, fwd, bwd = Tensor(x, requires_grad=True), [], [], []
    for layer in net.vertices.values():
        start = time.perf_counter()
        with Tape() as tape:
            out = layer.forward({"Input": value}, ctx)["Output"]
        fwd.append(time.perf_counter() - start)
        records.append((tape, value, out))
        value = Tensor(out.data, requires_grad=True)
    g = cotangent
    for tape, inp, out in reversed(records):
        start = time.perf_counter()
        g = backward(tape, {out: g})[id(inp)]
        bwd.append(time.perf_counter() - start)
    return fwd, bwd[::-1]


def torch_layer_times(model, x, cotangent):
    """As :func:`netgraph_layer_times`, for the torch model: each module's input a fresh leaf."""
    import torch

    model.zero_grad(set_to_none=True)
    value, records, fwd, bwd = torch.from_numpy(x).requires_grad_(True), [], [], []
    for module in model:
        start = time.perf_counter()
        out = module(value)
        fwd.append(time.perf_counter() - start)
        records.append((value, out))
        value = out.detach().requires_grad_(True)
    g = torch.from_numpy(cotangent)
    for inp, out in reversed(records):
        start = time.perf_counter()
        out.backward(g)
        g = inp.grad
        bwd.append(time.perf_counter() - start)
    return fwd, bwd[::-1]


def max_difference(a, b) -> tuple[float, float]:
    """Maximum absolute difference and that relative to the largest magnitude of ``b``."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(np.abs(a - b).max())
    return diff, diff / max(float(np.abs(b).max()), 1e-300)


def agreement(nets, batch: int) -> None:
    """Outputs and every gradient of netgraph and torch on the same data, float32 and float64."""
    import numpy as np
    import torch

    from netgraph import All, NetPortGradient

    rng = np.random.default_rng(7)
    print(
        f"Agreement, batch {batch}, random data and output cotangent: max |netgraph - torch| (relative to max |torch|)"
    )
    print(f"  {'net':<8} {'dtype':<8} {'output':>19} {'input gradient':>19} {'worst array gradient':>33}")
    for net, part, shape in zip(nets, ("encoder", "decoder"), ((1, 28, 28), (8,))):
        x64 = rng.uniform(size=(batch, *shape)) if part == "encoder" else rng.standard_normal((batch, *shape))
        g64 = rng.standard_normal((batch, *net.port_shapes["Output"]))
        keys = list(net.vertices)
        for dtype, tdtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
            x, g = x64.astype(dtype), g64.astype(dtype)
            y_ng, grads_ng = netgraph_tape_step(net, x, g)()
            y_t, grads_t = torch_step(torch_net(net, tdtype), x, g)()
            cells = [max_difference(y_ng, y_t.numpy()), max_difference(grads_ng.pop("Input"), grads_t["Input"].numpy())]
            arrays = []
            for path, value in grads_ng.items():  # path: (layer number, "Weights" or "Biases")
                prefix, suffix = f"{keys.index(path[0])}.", ".weight" if path[-1] == "Weights" else ".bias"
                torch_name = next(n for n in grads_t if n.startswith(prefix) and n.endswith(suffix))
                arrays.append((max_difference(value, grads_t[torch_name].numpy()), f"{path[0]} {path[-1]}"))
            (diff, rel), where = max(arrays, key=lambda a: a[0][1])
            line = " ".join(f"{d:>9.2e} ({r:.1e})" for d, r in cells)
            print(f"  {part:<8} {np.dtype(dtype).name:<8} {line} {diff:>9.2e} ({rel:.1e}) layer {where:<10}")
        # the evaluation API gives what the tape gives (float32, cotangent all ones)
        x = x64.astype(np.float32)
        api = net(x, NetPortGradient(All))
        _, tape = netgraph_tape_step(net, x, np.ones((batch, *net.port_shapes["Output"]), np.float32))()
        worst = max(max_difference(api[NetPortGradient(path)], value)[0] for path, value in tape.items())
        print(f"  {part:<8} float32  net(x, NetPortGradient(All)) against the tape, every gradient: {worst:.2e}")
    print()


# --- the worker processes ---------------------------------------------------------------------------
#
# NOTE: each framework is timed in its own process, and the parent alternates between them. In one
# process the two thread pools (NumPy's OpenBLAS, whose idle workers spin, and PyTorch's OpenMP)
# fight over the cores and the two frameworks' use of the allocator interferes: both then measure
# slower (PyTorch up to twice as slow) than they run alone. A pause before each turn lets the other
# process's threads go back to sleep; one untimed step then warms the measured one up.
#
# NOTE: a turn is 10 timed steps by default. netgraph's first steps after a rest are slower than
# the ones that follow (encoder + decoder, batch 32, after a 0.3 s pause: 52, 34.5 and 33.6 ms for
# the first three steps, 32.7 ms back to back), while a training loop runs its steps back to back.
# With turns of 3 steps much of that reaches the medians: 1.45-1.54x PyTorch's time, against 1.22x
# with turns of 10, same code and machine.
#
# NOTE: glibc hands large freed blocks back to the system (munmap, heap trimming), so a step that
# allocates large temporaries faults its pages in again every time. That cost is kernel time and
# depends on the machine (it is high in virtual machines). netgraph sets glibc to keep freed memory
# itself while it works (netgraph.backend.cpu_work); the "keep" allocator setting does it for
# both frameworks from the start (GLIBC_TUNABLES, read when a process starts, so it applies to
# the workers only), to show that PyTorch does not depend on it.

ALLOCATORS = {
    "default": None,
    "keep": "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296",
}


def thread_pools() -> list[str]:
    """The BLAS and OpenMP pools loaded in this process, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["(threadpoolctl not installed: thread pools not listed)"]
    return [
        f"{pool.get('internal_api')} {pool.get('version') or ''} num_threads={pool.get('num_threads')}"
        f" ({os.path.basename(pool.get('filepath', ''))})"
        for pool in threadpool_info()
    ]


def gemm_rate(matmul, n: int, repeats: int = 5) -> float:
    """GFLOP/s of ``matmul()``, one n×n by n×n product."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        matmul()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times[1:]) / 1e9


def describe(framework: str) -> list[str]:
    """What a worker runs on: library versions, BLAS, thread pools, one float32 GEMM rate."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2048, 2048), dtype=np.float32) for _ in range(2))
    if framework == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        lines = [
            f"torch {torch.__version__}: get_num_threads()={torch.get_num_threads()}, oneDNN "
            f"{'on' if torch.backends.mkldnn.is_available() else 'off'}, "
            f"MKL {'on' if torch.backends.mkl.is_available() else 'off'}; "
            f"float32 matmul 2048: {gemm_rate(lambda: ta @ tb, 2048):.0f} GFLOP/s"
        ]
    else:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            name = f"{blas.get('name')} {blas.get('version')}"
        except Exception as error:  # the layout of show_config is not a stable API
            name = f"unknown ({error})"
        lines = [
            f"numpy {np.__version__}, BLAS {name}; float32 matmul 2048: {gemm_rate(lambda: a @ b, 2048):.0f} GFLOP/s"
        ]
    lines.append(f"  torch loaded in this process: {'yes' if 'torch' in sys.modules else 'no'}")
    return lines + [f"  thread pool: {line}" for line in thread_pools()]


def worker(connection, framework: str, threads: int) -> None:
    """Serve timing requests for one framework ("netgraph" or "torch") until told to stop.

    Requests: ("describe",); ("time", part, batch, variant, n) -> (n wall times after one warm-up
    step, minor page faults and kernel seconds over them); ("layers", part, batch, n) -> n
    (forward, backward) per-layer lists; ("stop",).
    """
    import resource

    import numpy as np

    scope = contextlib.nullcontext
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        from netgraph.backend import cpu_work as scope  # the settings NetTrain runs under, around the timings
    nets = dict(zip(("encoder", "decoder"), netgraph_nets()))
    cases: dict = {}
    connection.send("ready")

    def case(part: str, batch: int) -> dict:
        if (part, batch) not in cases:
            net = nets[part]
            rng = np.random.default_rng(batch)
            x = rng.uniform(size=(batch, *net.port_shapes["Input"])).astype(np.float32)
            ones = np.ones((batch, *net.port_shapes["Output"]), np.float32)
            if framework == "torch":
                model = torch_net(net, torch.float32)
                steps = {"torch": torch_step(model, x, ones), "layers": lambda: torch_layer_times(model, x, ones)}
            else:
                steps = {
                    "netgraph tape": netgraph_tape_step(net, x, ones),
                    "netgraph net(x, grad)": netgraph_api_step(net, x),
                    "layers": lambda: netgraph_layer_times(net, x, ones),
                }
            cases[(part, batch)] = steps
        return cases[(part, batch)]

    while True:
        request = connection.recv()
        if request[0] == "stop":
            break
        if request[0] == "describe":
            connection.send(describe(framework))
        elif request[0] == "time":
            _, part, batch, variant, n = request
            step = case(part, batch)[variant]
            with scope():
                step()  # warm-up
                times, before = [], resource.getrusage(resource.RUSAGE_SELF)
                for _ in range(n):
                    start = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_SELF)
            connection.send((times, after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime))
        elif request[0] == "layers":
            _, part, batch, n = request
            step = case(part, batch)["layers"]
            with scope():
                step()
                figures = [step() for _ in range(n)]
            connection.send(figures)
    connection.close()


class Workers:
    """One worker process per framework; ``ask`` waits ``pause`` seconds, then sends a request."""

    def __init__(self, frameworks: list[str], threads: int, pause: float, tunables: str | None) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # fresh interpreters: netgraph's never imports torch
        self.pause, self.connections, self.processes = pause, {}, []
        saved = os.environ.get("GLIBC_TUNABLES")
        if tunables:
            os.environ["GLIBC_TUNABLES"] = tunables  # inherited by the workers as they start
        try:
            for framework in frameworks:
                parent, child = context.Pipe()
                process = context.Process(target=worker, args=(child, framework, threads), daemon=True)
                process.start()
                self.connections[framework] = parent
                self.processes.append(process)
        finally:
            if saved is None:
                os.environ.pop("GLIBC_TUNABLES", None)
            else:
                os.environ["GLIBC_TUNABLES"] = saved
        for connection in self.connections.values():  # every import done before anything is timed
            connection.recv()

    def ask(self, framework: str, *request):
        time.sleep(self.pause)
        self.connections[framework].send(request)
        return self.connections[framework].recv()

    def close(self) -> None:
        for connection in self.connections.values():
            connection.send(("stop",))
        for process in self.processes:
            process.join()


# --- the run ------------------------------------------------------------------------------------------


def measure(args, frameworks: list[str], variants: list[tuple[str, str]], tunables: str | None):
    """Per (part, batch): median and fastest step, faults and kernel time per step; per-layer medians."""
    workers = Workers(frameworks, args.threads, args.pause, tunables)
    for framework in frameworks:
        print("\n".join(workers.ask(framework, "describe")))
    steps, per_layer = {}, {}
    for batch in args.batches:
        for part in ("encoder", "decoder"):
            runs: dict[str, list] = {name: [] for _, name in variants}
            for turn in range(-(-args.repeats // args.block)):
                shift = turn % len(variants)
                for framework, name in variants[shift:] + variants[:shift]:
                    runs[name].append(workers.ask(framework, "time", part, batch, name, args.block))
            steps[(part, batch)] = {
                name: (
                    statistics.median(t for times, _, _ in blocks for t in times),
                    min(t for times, _, _ in blocks for t in times),
                    sum(f for _, f, _ in blocks) / sum(len(times) for times, _, _ in blocks),
                    sum(s for _, _, s in blocks) / sum(len(times) for times, _, _ in blocks),
                )
                for name, blocks in runs.items()
            }
            passes: dict[str, list] = {framework: [] for framework in frameworks}
            for turn in range(-(-args.layer_repeats // args.block)):
                for framework in frameworks[turn % 2 :] + frameworks[: turn % 2]:
                    passes[framework] += workers.ask(framework, "layers", part, batch, args.block)
            per_layer[(part, batch)] = {
                framework: [[statistics.median(p[k][i] for p in ps) for i in range(len(ps[0][k]))] for k in (0, 1)]
                for framework, ps in passes.items()
            }
    workers.close()
    return steps, per_layer


def report(args, variants, steps, per_layer) -> None:
    n_steps = -(-args.repeats // args.block) * args.block
    print(
        f"\nfloat32, forward + backward (every weight, bias and input gradient), median of {n_steps} steps "
        f"in turns of {args.block}"
    )
    print(
        f"{'net':<15} {'batch':>5}  {'framework':<22} {'ms':>8} {'min ms':>8} {'images/s':>9} {'/ torch':>8}"
        f" {'faults/step':>11} {'sys ms/step':>11}"
    )
    for batch in args.batches:
        rows = [(part, steps[(part, batch)]) for part in ("encoder", "decoder")]
        rows.append(
            ("enc+dec", {name: tuple(sum(m[name][k] for _, m in rows) for k in range(4)) for _, name in variants})
        )
        for part, row in rows:
            for _, name in variants:
                (seconds, fastest, faults, kernel), reference = row[name], row.get("torch", (None,))[0]
                ratio = f"{seconds / reference:>7.2f}x" if reference else f"{'':>8}"
                print(
                    f"{part:<15} {batch:>5}  {name:<22} {seconds * 1e3:>8.2f} {fastest * 1e3:>8.2f}"
                    f" {batch / seconds:>9.0f} {ratio}"
                    f" {faults:>11.0f} {kernel * 1e3:>11.2f}"
                )
    nets = dict(zip(("encoder", "decoder"), netgraph_nets()))
    for (part, batch), med in per_layer.items():
        names = layer_names(nets[part])
        print(
            f"\n{part}, batch {batch}: ms per layer, median of the layer-by-layer passes (each layer on its own tape)"
        )
        header = f"  {'#':>2} {'layer':<16} {'ng fwd':>8} {'ng bwd':>8}"
        if "torch" in med:
            header += f" {'torch fwd':>9} {'torch bwd':>9} {'ng/torch':>8}"
        print(header + f" {'share of ng':>11}")
        ng_total = sum(med["netgraph"][0]) + sum(med["netgraph"][1])
        for i, name in enumerate(names):
            f, b = med["netgraph"][0][i], med["netgraph"][1][i]
            line = f"  {i + 1:>2} {name:<16} {f * 1e3:>8.2f} {b * 1e3:>8.2f}"
            if "torch" in med:
                tf, tb = med["torch"][0][i], med["torch"][1][i]
                line += f" {tf * 1e3:>9.2f} {tb * 1e3:>9.2f} {(f + b) / (tf + tb):>7.1f}x"
            print(line + f" {(f + b) / ng_total:>10.0%}")
        line = f"  {'':>2} {'total':<16} {sum(med['netgraph'][0]) * 1e3:>8.2f} {sum(med['netgraph'][1]) * 1e3:>8.2f}"
        if "torch" in med:
            t_total = sum(med["torch"][0]) + sum(med["torch"][1])
            line += f" {sum(med['torch'][0]) * 1e3:>9.2f} {sum(med['torch'][1]) * 1e3:>9.2f}"
            line += f" {ng_total / t_total:>7.1f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per framework and case")
    parser.add_argument("--block", type=int, default=10, help="timed steps per turn of a framework (see the NOTE)")
    parser.add_argument("--layer-repeats", type=int, default=9, help="layer-by-layer passes per framework and case")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds of rest before each turn")
    parser.add_argument(
        "--allocators",
        nargs="+",
        default=["default"],
        choices=list(ALLOCATORS),
        help='glibc malloc as it is ("default"), or keeping freed memory instead of returning it ("keep")',
    )
    args = parser.parse_args()
    for variable in THREAD_VARIABLES:  # before NumPy (and its BLAS) is first imported, here and in the workers
        os.environ[variable] = str(args.threads)

    try:
        import torch
    except ImportError:
        torch = None
        print(INSTALL)
    print(
        f"threads: {args.threads} of {os.cpu_count()} cores; "
        + ", ".join(f"{v}={args.threads}" for v in THREAD_VARIABLES)
    )
    if torch is not None:
        torch.set_num_threads(args.threads)
        agreement(netgraph_nets(), batch=min(args.batches))

    frameworks = ["netgraph"] + (["torch"] if torch is not None else [])
    variants = [("netgraph", "netgraph tape"), ("netgraph", "netgraph net(x, grad)")]
    variants += [("torch", "torch")] if torch is not None else []
    for allocator in args.allocators:
        tunables = ALLOCATORS[allocator]
        print(f"=== allocator: {allocator}" + (f" (GLIBC_TUNABLES={tunables})" if tunables else " (glibc as it is)"))
        report(args, variants, *measure(args, frameworks, variants, tunables))
        print()


if __name__ == "__main__":
    main()
