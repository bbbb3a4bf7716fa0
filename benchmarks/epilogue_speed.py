"""Microbenchmark of the bias-and-activation epilogue: unfused layers, fused on the shared path, fused compiled.

For each shape (the outputs of seed-001's and seed-004's layers that fusion pairs with an activation),
it times one forward and one backward of:

- ``unfused``: the biases added as the producer adds them, then the ElementwiseLayer's traced function
  (:func:`netgraph.fused.apply_function`) and its backward, then the biases' gradient as the producer sums it;
- ``shared``: :func:`netgraph.epilogue.bias_activation` with the compiled kernels off;
- ``compiled``: the same with them on.

The variants run interleaved (A, B, C, A, B, C, ...) inside ``cpu_work()``, as NetTrain runs, and the
medians are printed with their ratios to ``unfused``.

    python benchmarks/epilogue_speed.py [--repeats 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from netgraph.backend import cpu_work, set_cpu_threads
from netgraph.compiled import set_compiled_kernels
from netgraph.epilogue import Activation, bias_activation
from netgraph.fused import apply_function
from netgraph.symbolic import leaky_ramp, ramp, trace

#: (what, batch-last shape (N, C, *spatial) or (N, O), cropped by, activation)
CASES = [
    ("seed-001 conv 32 k3 + Ramp, batch 32", (32, 32, 26, 26), 0, "ramp"),
    ("seed-001 conv 64 k4 + Ramp, batch 32", (32, 64, 9, 9), 0, "ramp"),
    ("seed-001 linear 5184 + Ramp, batch 32", (32, 5184), 0, "ramp"),
    ("seed-001 deconv 32 k3 s2 + Ramp, batch 32", (32, 32, 25, 25), 0, "ramp"),
    ("seed-004 deconv 32 k5 s2 Same + LeakyRamp, batch 32", (32, 32, 64, 64), (1, 2), "leaky_ramp"),
    ("seed-004 conv 32 k5 Same + LeakyRamp, batch 32", (32, 32, 64, 64), 0, "leaky_ramp"),
    ("small: linear 64 + Ramp, batch 32", (32, 64), 0, "ramp"),
]


def _output(shape: tuple[int, ...], crop: Any, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    """A maker of fresh producer outputs of one value: batch-last (memory (C, *spatial, N)) for a
    convolution, cropped if asked, row-major (N, O) for a linear layer; each call copies the buffer."""
    if len(shape) == 2:
        values = rng.standard_normal(shape, dtype=np.float32)
        return values.copy
    n, c, *spatial = shape
    b, e = crop or (0, 0)
    full = rng.standard_normal((c, *(s + b + e for s in spatial), n), dtype=np.float32)
    window = (slice(None), slice(None), *(slice(b, b + s) for s in spatial))
    return lambda: np.moveaxis(full.copy(), -1, 0)[window]


def run_unfused(y, b, g, function) -> None:
    y += b.reshape(-1, *(1,) * (y.ndim - 2))
    out, vjp = apply_function.raw(y, function=function)
    (gy,) = vjp(g, (True,))
    if gy.ndim > 2 and not (gy.strides[0] == gy.itemsize):  # the producer's backward wants it batch-last
        gy = np.moveaxis(np.moveaxis(gy, 0, -1).copy(), -1, 0)
    gy.sum(axis=(0, *range(2, gy.ndim)))


def run_fused(y, b, g, activation) -> None:
    out, vjp = bias_activation.raw(y, b, activation=activation)
    vjp(g, (True, True))


def timed(step: Callable[[np.ndarray], None], make: Callable[[], np.ndarray]) -> float:
    fresh = make()
    start = time.perf_counter()
    step(fresh)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        set_cpu_threads(args.threads)
    rng = np.random.default_rng(0)
    functions = {"ramp": trace(ramp), "leaky_ramp": trace(lambda x: leaky_ramp(x, 0.02))}
    activations = {"ramp": Activation("ramp"), "leaky_ramp": Activation("leaky_ramp", slope=0.02)}
    print(f"{'case':55} {'values':>9} {'unfused ms':>11} {'shared ms':>10} {'compiled ms':>12} {'ratio':>7}")
    with cpu_work():
        for what, shape, crop, kind in CASES:
            make = _output(shape, crop, rng)
            b = rng.standard_normal(shape[1], dtype=np.float32)
            g = _output(shape, 0, rng)()  # a batch-last (or row-major) cotangent, as the next layer gives it
            times: dict[str, list[float]] = {"unfused": [], "shared": [], "compiled": []}
            function, activation = functions[kind], activations[kind]
            variants: dict[str, Callable[[np.ndarray], None]] = {
                "unfused": lambda fresh, b=b, g=g, f=function: run_unfused(fresh, b, g, f),
                "shared": lambda fresh, b=b, g=g, a=activation: run_fused(fresh, b, g, a),
                "compiled": lambda fresh, b=b, g=g, a=activation: run_fused(fresh, b, g, a),
            }
            for repeat in range(args.repeats + 2):
                for name, step in variants.items():
                    set_compiled_kernels(name == "compiled")
                    seconds = timed(step, make)
                    if repeat >= 2:
                        times[name].append(seconds)
            set_compiled_kernels(True)
            medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
            ratio = medians["unfused"] / medians["compiled"]
            print(
                f"{what:55} {g.size:9,} {medians['unfused']:11.3f} {medians['shared']:10.3f} "
                f"{medians['compiled']:12.3f} {ratio:6.2f}x"
            )


if __name__ == "__main__":
    main()
