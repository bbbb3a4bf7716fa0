"""Speed of the compiled CPU kernels against the shared NumPy path: traced elementwise functions
(forward and backward) and the ADAM update.

Each case runs both ways in one process, interleaved (shared, compiled, shared, compiled, ...),
inside ``cpu_work()`` as training runs; the figure is the median over the repeats of the mean
time of a few calls, and the ratio is shared / compiled (above 1: the compiled kernel is faster).
Kernels are compiled (or loaded from the disk cache) before timing.

    python benchmarks/compiled_speed.py                      # everything, netgraph's thread count
    python benchmarks/compiled_speed.py --threads 2 --only adam
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from layers.elementwise import ACTIVATIONS
from netgraph import symbolic as sym
from netgraph.backend import cpu_threads, cpu_work, set_cpu_threads
from netgraph.compiled import elementwise as compiled_elementwise
from netgraph.compiled import set_compiled_kernels
from netgraph.fused import apply_function
from netgraph.optimizers import make_optimizer

FUNCTIONS: dict[str, tuple[Callable, int]] = {
    "Ramp": (ACTIVATIONS["Ramp"], 1),
    "LeakyRamp": (ACTIVATIONS["LeakyRamp"], 1),
    "SELU": (ACTIVATIONS["SELU"], 1),
    "LogisticSigmoid": (ACTIVATIONS["LogisticSigmoid"], 1),
    "KL -0.5*(1 + #2 - #1^2 - Exp[#2])": (lambda mu, logvar: -0.5 * (1 + logvar - mu**2 - sym.exp(logvar)), 2),
}


def timed(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def interleaved(variants: dict[str, Callable[[], object]], repeats: int, calls: int) -> dict[str, float]:
    """Median seconds per call of each variant, the variants run in turn, ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, call in variants.items():
            times[name].append(timed(call, calls))
    return {name: statistics.median(values) for name, values in times.items()}


def switched(enabled: bool, call: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        previous = set_compiled_kernels(enabled)
        try:
            return call()
        finally:
            set_compiled_kernels(previous)

    return run


def elementwise_passes(function: sym.Function, inputs: list[np.ndarray], g: np.ndarray) -> dict[str, dict]:
    """For "forward" and "backward": the pass on the shared path (False) and compiled (True)."""
    needs = (True,) * function.arity

    def value(enabled: bool) -> Callable[[], object]:
        return switched(enabled, lambda: apply_function.raw(*inputs, function=function))

    def gradient(enabled: bool) -> Callable[[], object]:
        vjp = value(enabled)()[1]
        return switched(enabled, lambda: vjp(g, needs))

    return {
        "forward": {enabled: value(enabled) for enabled in (False, True)},
        "backward": {enabled: gradient(enabled) for enabled in (False, True)},
    }


def elementwise(sizes: list[int], repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"{'function':<36}{'values':>9}{'pass':>10}{'shared µs':>11}{'compiled µs':>13}{'ratio':>7}")
    for name, (fn, arity) in FUNCTIONS.items():
        function = sym.trace(fn, arity)
        for size in sizes:
            inputs = [rng.normal(size=(32, size // 32)).astype(np.float32) for _ in range(arity)]
            g = rng.normal(size=inputs[0].shape).astype(np.float32)
            for what, variants in elementwise_passes(function, inputs, g).items():
                variants[True]()  # compiled, or loaded from the disk cache
                medians = interleaved({"shared": variants[False], "compiled": variants[True]}, repeats, 10)
                shared, compiled = medians["shared"] * 1e6, medians["compiled"] * 1e6
                print(f"{name:<36}{size:>9}{what:>10}{shared:>11.1f}{compiled:>13.1f}{shared / compiled:>7.2f}")


def adam_step(w: np.ndarray, g: np.ndarray, enabled: bool) -> Callable[[], object]:
    """One ADAM step on ``w`` with its own optimiser state, on the shared path or compiled."""
    optimizer, steps = make_optimizer("ADAM", None), [0]

    def run() -> None:
        steps[0] += 1
        optimizer.update([("w", w, g)], step=steps[0], total_steps=10**6)

    return switched(enabled, run)


def adam(sizes: list[int], repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"{'ADAM, parameters':<36}{'':>9}{'':>10}{'shared ms':>11}{'compiled ms':>13}{'ratio':>7}")
    for size in sizes:
        w = rng.normal(size=size).astype(np.float32)
        g = rng.normal(size=size).astype(np.float32)
        variants = {enabled: adam_step(w, g, enabled) for enabled in (False, True)}
        variants[True]()
        medians = interleaved({"shared": variants[False], "compiled": variants[True]}, repeats, 3)
        shared, compiled = medians["shared"] * 1e3, medians["compiled"] * 1e3
        print(f"{size:<36}{'':>9}{'':>10}{shared:>11.2f}{compiled:>13.2f}{shared / compiled:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="netgraph's CPU threads (default: as configured)")
    parser.add_argument("--only", choices=("elementwise", "adam"), default=None)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sizes", type=int, nargs="*", default=[692_224, 20_000])
    parser.add_argument("--adam-sizes", type=int, nargs="*", default=[300_000, 27_000_000])
    args = parser.parse_args()
    if args.threads:
        set_cpu_threads(args.threads)
    compiled_elementwise.MINIMUM_SIZE = 0  # time the compiled kernels at every size
    compiled_elementwise.MINIMUM_FUSED = 1
    print(f"threads: {cpu_threads()}")
    with cpu_work():
        if args.only in (None, "elementwise"):
            elementwise(args.sizes, args.repeats)
        if args.only in (None, "adam"):
            adam(args.adam_sizes, args.repeats)


if __name__ == "__main__":
    main()
