"""``python -m netgraph.cli.compile_kernels``: compile (or load from the disk cache) every static kernel, and
report how long each took.

The static kernels, float32, as training uses them: ADAM's update, the elementwise passes of the
named activations of ElementwiseLayer (forward and backward) that the compiled path takes, the
window copies and scatter-adds of a 2-D convolution and deconvolution, and the bias + activation
epilogue after them and after a linear layer (Ramp and LeakyRamp, forward and backward). Traced
functions of a user's own, other precisions and other layouts are compiled on first use. Run once
after installing, and no training run waits for a compiler.

A program entry beside the examples' command-line plumbing, above the layers it runs (the kernels
themselves, in netgraph.compiled, import nothing of the layer library).
"""

from __future__ import annotations

import time

import numpy as np

from layers.convolution import Window, convolution, deconvolution
from layers.elementwise import ACTIVATIONS
from netgraph import symbolic
from netgraph.backend import cpu_work
from netgraph.compiled import compiled_kernels_enabled, report
from netgraph.compiled import elementwise as compiled_elementwise
from netgraph.compiled.optimizer import adam
from netgraph.epilogue import Activation, bias_activation


def _convolutions_and_epilogues() -> None:
    """A 2-D convolution and deconvolution of 32 channels, forward and backward, each output through
    the epilogue with Ramp and LeakyRamp, and a linear layer's output likewise."""
    rng = np.random.default_rng(0)
    window = Window((3, 3), (1, 1), (1, 1), ((0, 0), (0, 0)))
    x = rng.standard_normal((8, 32, 34, 34)).astype(np.float32)
    weights = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    with cpu_work():
        y, back = convolution.raw(x, weights, None, window=window)
        back(np.ones_like(y), (True, True, False))
        z, back = deconvolution.raw(y, weights, None, window=window)
        back(np.ones_like(z), (True, True, False))
        for activation in (Activation("ramp"), Activation("leaky_ramp", slope=0.01)):
            linear = rng.standard_normal((256, 256)).astype(np.float32)  # (examples, outputs)
            for output in (convolution.raw(x, weights, None, window=window)[0], linear):
                out, back = bias_activation.raw(output, np.zeros(output.shape[1], np.float32), activation=activation)
                back(np.ones_like(out), (True, True))


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
    _convolutions_and_epilogues()
    for record in report():
        print(record)
    print(f"{len(report())} kernels in {time.perf_counter() - start:.2f} s (cache: {compiled_elementwise.cache_dir()})")


if __name__ == "__main__":
    main()
