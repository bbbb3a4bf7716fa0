"""Without Numba, netgraph runs its NumPy path: the same training, the same numbers as with the
compiled kernels switched off, and no kernel ever called."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A small conv VAE-like net with every compiled part in reach: convolution and deconvolution with
# fused Ramp and LeakyRamp, a traced chain, ADAM; three training steps, then the loss and a checksum.
SCRIPT = """
import json, sys
if sys.argv[1] == "blocked":
    sys.modules["numba"] = None  # import numba now raises ImportError, as where it is not installed
import numpy as np
from layers import ConvolutionLayer, DeconvolutionLayer, ElementwiseLayer, MeanSquaredLossLayer
from netgraph import NetChain, NetGraph, NetInitialize, NetPort, NetTrain, compiled
from netgraph.symbolic import exp

chain = NetChain([ConvolutionLayer(8, 3), "Ramp", DeconvolutionLayer(2, 3), ("LeakyRamp", 0.1),
                  ElementwiseLayer(lambda x: x * exp(-x * x) + 0.5 * x)], input=(2, 12, 12))
wiring = [(NetPort("Input"), "net"), ("net", NetPort("loss", "Input")),
          (NetPort("Target"), NetPort("loss", "Target"))]
net = NetGraph({"net": chain, "loss": MeanSquaredLossLayer()}, wiring)
net = NetInitialize(net, random_seeding=3)
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 2, 12, 12)).astype(np.float32)
trained = NetTrain(net, {"Input": x, "Target": np.tanh(x)}, batch_size=32, max_training_rounds=3,
                   random_seeding=1, training_progress_reporting=None)
out = trained["net"](x[:4])
print(json.dumps({"numba": compiled.numba_available(), "enabled": compiled.compiled_kernels_enabled(),
                  "kernels": len(compiled.report()), "sum": float(np.sum(out, dtype=np.float64))}))
"""


def _run(mode: str, **environment: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **environment}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_numba_training_runs_on_numpy_and_matches_the_switched_off_path():
    blocked = _run("blocked")
    switched_off = _run("present", NETGRAPH_COMPILED="0")
    assert blocked["numba"] is False and blocked["enabled"] is False and blocked["kernels"] == 0
    assert switched_off["enabled"] is False and switched_off["kernels"] == 0
    assert blocked["sum"] == switched_off["sum"]  # the same path, the same bits
