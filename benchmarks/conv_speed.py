"""Speed of ConvolutionLayer, DeconvolutionLayer and PoolingLayer on VAE-sized batches.

Times forward + backward of each layer's primitive through the autograd tape (no evaluation
API around it), float32, the median of several runs, and compares the achieved GFLOP/s with
one large float32 matrix product measured in the same run.

    python benchmarks/conv_speed.py                 # NumPy
    python benchmarks/conv_speed.py --device GPU    # CuPy
    python benchmarks/conv_speed.py --torch         # NumPy, and PyTorch's CPU build on the same layers

With ``--torch`` (PyTorch installed in the environment running the script; netgraph never needs
it) the same convolutions run through ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` in a
separate process after netgraph's pass (two frameworks' thread pools in one process slow each
other down), with the same thread count, and their time and rate against PyTorch's own matrix
product are printed next to netgraph's: what the machine allows a convolution layer to reach.

FLOPs counted: a convolution's forward pass is 2·N·O·(C/groups)·∏kernel·∏out multiply-adds
turned into flops, and its backward pass (input and weight gradients) twice that; a transposed
convolution the same with input and output swapped. Pooling is reported in GB/s moved
(input read, output written, and the same again backward), since it does no matrix products.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from layers.convolution import (
    ConvolutionLayer,
    DeconvolutionLayer,
    PoolingLayer,
    convolution,
    deconvolution,
    max_pooling,
    total_pooling,
)
from netgraph.autograd import Tape, Tensor, backward
from netgraph.backend import cpu_work, get_xp, matmul


@dataclass
class Case:
    name: str
    batch: int
    layer: object  # a layer with its input shape fixed


def cases() -> list[Case]:
    """The seed-001 MNIST VAE, a 64×64 convolutional VAE, and wide stride-1 layers."""
    conv, deconv, pool = ConvolutionLayer, DeconvolutionLayer, PoolingLayer
    return [
        Case("mnist enc conv 1→32 k3", 128, conv(32, 3, input=(1, 28, 28))),
        Case("mnist enc conv 32→64 k3 s2", 128, conv(64, 3, stride=2, input=(32, 26, 26))),
        Case("mnist enc conv 64→64 k4", 128, conv(64, 4, input=(64, 12, 12))),
        Case("mnist dec deconv 64→64 k4", 128, deconv(64, 4, input=(64, 9, 9))),
        Case("mnist dec deconv 64→32 k3 s2", 128, deconv(32, 3, stride=2, input=(64, 12, 12))),
        Case("mnist dec deconv 32→1 k4", 128, deconv(1, 4, input=(32, 25, 25))),
        Case("64px enc conv 3→32 k3 s2 p1", 64, conv(32, 3, stride=2, padding_size=1, input=(3, 64, 64))),
        Case("64px enc conv 32→64 k3 s2 p1", 64, conv(64, 3, stride=2, padding_size=1, input=(32, 32, 32))),
        Case("64px enc conv 64→128 k3 s2 p1", 64, conv(128, 3, stride=2, padding_size=1, input=(64, 16, 16))),
        Case("64px enc conv 128→256 k3 s2 p1", 64, conv(256, 3, stride=2, padding_size=1, input=(128, 8, 8))),
        Case("64px dec deconv 256→128 k4 s2 p1", 64, deconv(128, 4, stride=2, padding_size=1, input=(256, 4, 4))),
        Case("64px dec deconv 128→64 k4 s2 p1", 64, deconv(64, 4, stride=2, padding_size=1, input=(128, 8, 8))),
        Case("64px dec deconv 64→32 k4 s2 p1", 64, deconv(32, 4, stride=2, padding_size=1, input=(64, 16, 16))),
        Case("64px dec deconv 32→32 k4 s2 p1", 64, deconv(32, 4, stride=2, padding_size=1, input=(32, 32, 32))),
        Case("conv 64→64 k3 Same 32×32", 64, conv(64, 3, padding_size="Same", input=(64, 32, 32))),
        Case("conv 128→128 k3 Same 16×16", 64, conv(128, 3, padding_size="Same", input=(128, 16, 16))),
        Case("conv 256→256 k3 Same 8×8", 128, conv(256, 3, padding_size="Same", input=(256, 8, 8))),
        Case("conv 64→64 k3 Same groups 4", 64, conv(64, 3, padding_size="Same", channel_groups=4, input=(64, 32, 32))),
        Case("pool max 2 s2 64×32×32", 128, pool(2, 2, input=(64, 32, 32))),
        Case("pool mean 2 s2 64×32×32", 128, pool(2, 2, function="Mean", input=(64, 32, 32))),
    ]


def synchronize(xp) -> None:
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def median_time(xp, run, repeats: int) -> float:
    run()  # warm-up (allocations, BLAS threads, CUDA kernels)
    synchronize(xp)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(xp)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_rate(xp, n: int, repeats: int) -> float:
    """GFLOP/s of one n×n float32 matrix product, on the threads the layers use (netgraph's own;
    NumPy's OpenBLAS is on one thread inside netgraph.backend.cpu_work(), where main runs this)."""
    rng = np.random.default_rng(0)
    a = xp.asarray(rng.standard_normal((n, n)), dtype=xp.float32)
    b = xp.asarray(rng.standard_normal((n, n)), dtype=xp.float32)
    return 2 * n**3 / median_time(xp, lambda: matmul(a, b), repeats) / 1e9


LAYOUTS = ("in a net", "from NCHW")
"""How the input and the output's cotangent are laid out. "in a net": batch-last, (C, *spatial, N)
in memory, as netgraph's convolutions, ramps and other elementwise layers hand them on to each
other; "from NCHW": C-ordered (N, C, *spatial), as a user's arrays (the first layer of a net, or a
layer called alone), so the times include turning them batch-last."""


def random_array(xp, rng, shape: tuple[int, ...], layout: str):
    """Standard normal float32 values of ``shape`` (N, C, *spatial) in one of :data:`LAYOUTS`."""
    if layout == "from NCHW":
        return xp.asarray(rng.standard_normal(shape), dtype=xp.float32)
    memory = (*shape[1:], shape[0])
    return xp.moveaxis(xp.asarray(rng.standard_normal(memory), dtype=xp.float32), -1, 0)


def layer_step(xp, case: Case, layout: str = "in a net"):
    """A closure running forward + backward of the case's primitive, and its work (flops or bytes)."""
    layer, n = case.layer, case.batch
    in_shape, out_shape = layer.port_shapes["Input"], layer.port_shapes["Output"]
    window = layer._window(in_shape[1:])
    rng = np.random.default_rng(1)

    def tensor(shape):
        return Tensor(xp.asarray(rng.standard_normal(shape), dtype=xp.float32), requires_grad=True)

    x = Tensor(random_array(xp, rng, (n, *in_shape), layout), requires_grad=True)
    seed = random_array(xp, rng, (n, *out_shape), layout)
    if isinstance(layer, PoolingLayer):
        if layer.function == "Max":
            apply = lambda: max_pooling(x, window=window)
        else:
            apply = lambda: total_pooling(x, window=window, scale=1 / math.prod(window.kernel))
        work = 2 * 4 * n * (math.prod(in_shape) + math.prod(out_shape))  # bytes, forward and backward
    else:
        arrays = layer.array_shapes()
        w, b = tensor(arrays["Weights"]), tensor(arrays["Biases"])
        primitive = convolution if isinstance(layer, ConvolutionLayer) else deconvolution
        apply = lambda: primitive(x, w, b, window=window, groups=layer.channel_groups)
        small = in_shape if isinstance(layer, DeconvolutionLayer) else out_shape  # where the GEMM columns live
        per_group = math.prod(arrays["Weights"][:2]) * math.prod(window.kernel)  # O·C/groups·∏kernel
        work = 3 * 2 * n * per_group * math.prod(small[1:])

    def step():
        with Tape() as tape:
            y = apply()
        backward(tape, {y: seed})

    return step, work


def torch_config(case: Case) -> dict | None:
    """What PyTorch needs to run the same layer (None for pooling, or padding it cannot express)."""
    layer = case.layer
    if isinstance(layer, PoolingLayer):
        return None
    in_shape = layer.port_shapes["Input"]
    window = layer._window(in_shape[1:])
    if len(window.kernel) != 2 or any(b != e for b, e in window.pads):
        return None
    return {
        "deconvolution": isinstance(layer, DeconvolutionLayer),
        "input": [case.batch, *in_shape],
        "weights": list(layer.array_shapes()["Weights"]),
        "stride": list(window.stride),
        "padding": [b for b, _ in window.pads],
        "dilation": list(window.dilation),
        "groups": layer.channel_groups,
    }


def torch_step(config: dict):
    """A closure running forward + backward of one layer in PyTorch (input, weights and biases get gradients)."""
    import torch
    import torch.nn.functional as functional

    deconvolution, groups = config["deconvolution"], config["groups"]
    outputs = config["weights"][1] * groups if deconvolution else config["weights"][0]
    x, w, bias = (torch.randn(shape, requires_grad=True) for shape in (config["input"], config["weights"], [outputs]))
    options = {key: config[key] for key in ("stride", "padding", "dilation", "groups")}
    apply = functional.conv_transpose2d if deconvolution else functional.conv2d
    seed = torch.randn(apply(x, w, bias, **options).shape)
    return lambda: apply(x, w, bias, **options).backward(seed)


def torch_times(configs: list[dict | None], size: int, repeats: int) -> tuple[float, list[float | None]]:
    """Run by the worker process: PyTorch's matmul rate and each layer's forward + backward seconds."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    a, b = torch.randn(size, size), torch.randn(size, size)
    rate = 2 * size**3 / median_time(np, lambda: torch.mm(a, b), repeats) / 1e9
    return rate, [None if c is None else median_time(np, torch_step(c), repeats) for c in configs]


def run_torch(configs: list[dict | None], size: int, repeats: int, threads: int) -> tuple[float, list] | None:
    """PyTorch's figures from a worker process of its own (None, with a line saying why, if it cannot)."""
    environment = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    request = json.dumps({"configs": configs, "size": size, "repeats": repeats})
    answer = subprocess.run(
        [sys.executable, __file__, "--torch-worker"], input=request, capture_output=True, text=True, env=environment
    )
    if answer.returncode != 0:
        why = answer.stderr.strip().splitlines()[-1] if answer.stderr.strip() else f"exit {answer.returncode}"
        print(f"(PyTorch could not be timed: {why})")
        return None
    rate, times = json.loads(answer.stdout)
    return rate, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="CPU", choices=["CPU", "GPU"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--matmul-size", type=int, default=None, help="default 4096 on CPU, 8192 on GPU")
    parser.add_argument("--torch", action="store_true", help="also time PyTorch's CPU build on the same layers")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:  # the PyTorch process of --torch: a request on stdin, the figures on stdout
        request = json.loads(sys.stdin.read())
        print(json.dumps(torch_times(request["configs"], request["size"], request["repeats"])))
        return
    with cpu_work():  # the settings netgraph's evaluation and NetTrain run under (see netgraph.backend)
        time_netgraph(args)


def time_netgraph(args: argparse.Namespace) -> None:
    """netgraph's matmul rate and layers (and PyTorch's, from a worker process, with --torch)."""
    xp = get_xp(args.device)
    size = args.matmul_size or (4096 if args.device == "CPU" else 8192)
    before = matmul_rate(xp, size, args.repeats)
    print(f"device {args.device}; float32 matmul {size}×{size}: {before:.1f} GFLOP/s\n")
    print("times: forward + backward, median; 'in a net' takes the input and the cotangent batch-last, as")
    print("netgraph's layers pass them on; 'from NCHW' takes C-ordered arrays, so it includes relayout copies\n")
    header = "".join(f" {layout + ' ms':>16} {'rate':>14} {'of matmul':>10}" for layout in LAYOUTS)
    print(f"{'layer':<36} {'batch':>5}{header}")
    results = []  # (case, {layout: seconds}, work)
    for case in cases():
        seconds, row = {}, ""
        for layout in LAYOUTS:
            step, work = layer_step(xp, case, layout)
            seconds[layout] = median_time(xp, step, args.repeats)
            rate = work / seconds[layout] / 1e9
            if isinstance(case.layer, PoolingLayer):
                row += f" {seconds[layout] * 1e3:>16.2f} {rate:>9.1f} GB/s {'':>10}"
            else:
                row += f" {seconds[layout] * 1e3:>16.2f} {rate:>7.1f} GFLOP/s {rate / before:>10.0%}"
        results.append((case, seconds, work))
        print(f"{case.name:<36} {case.batch:>5}{row}")
    after = matmul_rate(xp, size, args.repeats)
    print(f"\nfloat32 matmul again at the end: {after:.1f} GFLOP/s")
    for layout in LAYOUTS:
        filters = [(s[layout], w) for c, s, w in results if not isinstance(c.layer, PoolingLayer)]
        overall = sum(w for _, w in filters) / sum(s for s, _ in filters) / 1e9
        share = overall / before
        print(f"all conv and deconv layers together, {layout}: {overall:.1f} GFLOP/s, {share:.0%} of matmul")
    if args.torch and args.device == "CPU":
        from netgraph.backend import cpu_threads

        torch_figures = run_torch([torch_config(c) for c, _, _ in results], size, args.repeats, cpu_threads())
        if torch_figures is not None:
            torch_rate, torch_seconds = torch_figures
            threads = cpu_threads()
            print(f"\nPyTorch, same layers, {threads} threads; its float32 matmul {size}²: {torch_rate:.1f} GFLOP/s")
            print("(PyTorch's input and cotangent are contiguous NCHW, its own layout; the ratios take netgraph's")
            print("time in each of its two layouts)")
            ratios = "".join(f" {'netgraph/torch, ' + layout:>28}" for layout in LAYOUTS)
            print(f"{'layer':<36} {'torch ms':>9} {'rate':>14} {'of its matmul':>14}{ratios}")
            for (case, seconds, work), theirs in zip(results, torch_seconds):
                if theirs is not None:
                    rate = work / theirs / 1e9
                    ratios = "".join(f" {seconds[layout] / theirs:>27.2f}x" for layout in LAYOUTS)
                    figures = f"{theirs * 1e3:>9.2f} {rate:>7.1f} GFLOP/s {rate / torch_rate:>13.0%}"
                    print(f"{case.name:<36} {figures}{ratios}")


if __name__ == "__main__":
    main()
