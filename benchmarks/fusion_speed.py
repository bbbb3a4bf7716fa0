"""Training steps with and without graph-level fusion, side by side in one process.

Trains a net of ``benchmarks/training_nets.py`` (seed-001 by default) with NetTrain for a few
steps at a time in three configurations, interleaved (A, B, C, A, B, C, ...):

- ``unfused``: fusion off (``netgraph.graph.set_fusion(False)``): each layer its own step;
- ``fused, shared``: fusion on, the epilogue on the shared NumPy path (compiled kernels off);
- ``fused, compiled``: fusion on, the compiled epilogue.

It prints the median milliseconds per step of each and their ratios to ``unfused``, then, from
``netgraph.profile.timings()``, the forward and backward milliseconds of every producer and the
activation after it (unfused: the two layers' sum; fused: the one step).

    python benchmarks/fusion_speed.py [--net seed001|augment] [--batch 32] [--steps 6] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import training_nets as nets

from netgraph import profile
from netgraph.compiled import set_compiled_kernels
from netgraph.graph import FusedStep, set_fusion
from netgraph.layer import iter_layers

CONFIGURATIONS = {"unfused": (False, True), "fused, shared": (True, False), "fused, compiled": (True, True)}


def _pairs(net: Any) -> dict[tuple, tuple]:
    """The fused pairs of every plan in ``net``: producer path -> activation path."""
    pairs = {}
    for path, layer in iter_layers(net):
        for producer, activation in getattr(layer, "fused", {}).items():
            pairs[(*path, producer)] = (*path, activation)
    return pairs


def _train(net: Any, images: Any, spec: Any, batch: int, steps: int) -> float:
    n, rounds = nets.plan_data(spec, batch, steps)
    start = time.perf_counter()
    nets.netgraph_fit(net, images[:n], spec, batch, steps, rounds, seed=1)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="seed001", choices=sorted(nets.SPECS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    spec = nets.SPECS[args.net]
    net = nets.build_netgraph(args.net)
    images = nets.training_images(args.net, args.batch * args.steps)
    times: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    layer_times: dict[str, dict[tuple, list[float]]] = {name: {} for name in CONFIGURATIONS}
    pairs = _pairs(net)
    for repeat in range(args.repeats + 1):
        for name, (fusion, compiled) in CONFIGURATIONS.items():
            set_fusion(fusion)
            set_compiled_kernels(compiled)
            if repeat == 0:  # warm-up: compiles the kernels, fills the caches
                _train(net, images, spec, args.batch, 2)
                continue
            times[name].append(_train(net, images, spec, args.batch, args.steps))
            with profile.timings() as timer:
                _train(net, images, spec, args.batch, 2)
            for producer, activation in pairs.items():
                seconds = sum(timer.forward.get(p, 0.0) + timer.backward.get(p, 0.0) for p in (producer, activation))
                layer_times[name].setdefault(producer, []).append(seconds / 2)
    set_fusion(True)
    set_compiled_kernels(True)
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    print(f"{args.net}, batch {args.batch}: ms per training step, medians of {args.repeats} runs of {args.steps}")
    for name, ms in medians.items():
        print(f"  {name:16} {ms:8.2f}   {medians['unfused'] / ms:5.3f}x")
    print("\n  producer + activation, forward and backward ms a step (unfused: the two layers; fused: one step)")
    print(f"  {'layers':42} " + " ".join(f"{name:>16}" for name in CONFIGURATIONS))
    for producer in pairs:
        described = FusedStep(net_layer(net, producer), net_layer(net, pairs[producer])).describe()
        row = [statistics.median(layer_times[name][producer]) * 1e3 for name in CONFIGURATIONS]
        print(f"  {described[:42]:42} " + " ".join(f"{ms:16.3f}" for ms in row))
    totals = [sum(statistics.median(v) for v in layer_times[name].values()) * 1e3 for name in CONFIGURATIONS]
    print(f"  {'all pairs':42} " + " ".join(f"{ms:16.3f}" for ms in totals))


def net_layer(net: Any, path: tuple) -> Any:
    for key in path:
        net = net.vertices[key]
    return net


if __name__ == "__main__":
    main()
