"""benchmarks/training_nets.py, which the training benchmarks rely on: NetTrain's batch order replayed,
the FLOP count, and the pytorch/examples VAE written in netgraph (without PyTorch)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from layers import ConvolutionLayer, LinearLayer
from netgraph import NetChain, NetInitialize, NetPort
from netgraph.cli import load_script
from scripts import BENCHMARKS


@pytest.fixture(scope="module")
def nets():
    try:
        yield load_script(BENCHMARKS / "training_nets.py", "training_nets")
    finally:
        sys.modules.pop("training_nets", None)


def test_batch_order_is_nettrains(nets, monkeypatch):
    """The PyTorch loops are given the batches NetTrain trains on, a short last batch included."""
    net = nets.build_netgraph("mlp", seed=2)
    images = np.random.default_rng(0).uniform(size=(10, 784)).astype(np.float32)
    assert nets.check_netgraph_order(net, images, nets.SPECS["mlp"], batch=4, seed=5)
    with monkeypatch.context() as patch:  # the check notices another order
        patch.setattr(
            nets, "batch_order", lambda n, batch, steps, seed: [np.arange(i, i + batch) for i in range(steps)]
        )
        assert not nets.check_netgraph_order(net, images, nets.SPECS["mlp"], batch=4, seed=5)
    order = nets.batch_order(10, 4, 5, seed=5)
    assert [len(b) for b in order] == [4, 4, 2, 4, 4]
    assert sorted(np.concatenate(order[:3]).tolist()) == list(range(10))


def test_step_flops(nets):
    chain = NetInitialize(NetChain([LinearLayer(3), "Ramp", LinearLayer(1)], input=2))
    # first layer fed by the data: forward and weight gradient only (2·6 each); second: three times 2·3
    assert nets.step_flops(chain, batch=5) == 5 * (2 * 6 * 2 + 2 * 3 * 3)
    conv = NetInitialize(NetChain([ConvolutionLayer(4, 3)], input=(2, 5, 5)))
    assert nets.step_flops(conv, batch=1) == 2 * (4 * 2 * 9) * 9 * 2  # 3×3 outputs


def test_mlp_vae_losses(nets):
    net = nets.build_netgraph("mlp", seed=1)
    assert nets.parameter_count(net) == 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784
    x = np.random.default_rng(1).uniform(size=(6, 784)).astype(np.float32)
    ports = [NetPort("mu", "Output"), NetPort("logvar", "Output"), NetPort("KL"), NetPort("Loss")]
    out = net(x, ports)
    mu, log_var = out[ports[0]].astype(np.float64), out[ports[1]].astype(np.float64)
    kl = -0.5 * (1 + log_var - mu**2 - np.exp(log_var)).sum(axis=1)
    np.testing.assert_allclose(out[ports[2]], kl, rtol=1e-4)
    assert out[ports[3]].shape == (6,) and np.all(out[ports[3]] > 0)  # binary cross-entropy summed over pixels
    assert "torch" not in sys.modules  # building and running the nets does not load PyTorch
