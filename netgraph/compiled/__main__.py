"""``python -m netgraph.compiled``: compile (or load from the disk cache) every static kernel, and
report how long each took.

The static kernels are ADAM's update and the elementwise passes of the named activations of
ElementwiseLayer (forward and backward, float32) that the compiled path takes; traced functions
of a user's own are compiled on first use. Run once after installing, and no training run waits
for a compiler.

NOTE: a program entry, not a module of the library: it imports the layer library, which
nothing under netgraph.compiled does otherwise.
"""

from __future__ import annotations

import time

import numpy as np

from layers.elementwise import ACTIVATIONS
from netgraph import symbolic
from netgraph.compiled import compiled_kernels_enabled, report
from netgraph.compiled import elementwise as compiled_elementwise
from netgraph.compiled.optimizer import adam


def main() -> None:
    if not compiled_kernels_enabled(np):
        print("compiled kernels are off (Numba missing, or NETGRAPH_COMPILED=0): nothing to compile")
        return
    start = time.perf_counter()
    w = np.zeros(8, np.float32)
    adam(w, np.ones_like(w), np.zeros_like(w), np.zeros_like(w), beta1=0.9, beta2=0.999, epsilon=1e-5, step_size=1e-3)
    x = np.linspace(-2, 2, 8, dtype=np.float32)
    seen = set()
    for fn in ACTIVATIONS.values():
        function = symbolic.trace(fn, 1)
        if str(function) in seen or not compiled_elementwise.supported(function, [x]):
            continue
        seen.add(str(function))
        compiled_elementwise.forward(function, [x])
        compiled_elementwise.backward(function, [x], np.ones_like(x), [True])
    for record in report():
        print(record)
    print(f"{len(report())} kernels in {time.perf_counter() - start:.2f} s (cache: {compiled_elementwise.cache_dir()})")


if __name__ == "__main__":
    main()
