"""benchmarks/training_nets.py, which the training benchmarks rely on: NetTrain's batch order replayed,
the FLOP count, and the pytorch/examples VAE written in netgraph (without PyTorch)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from deadlines import deadline

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


# --- train_speed.py --ranks: the data-parallel configurations (benchmarks/timed_runs.py) ---------------------


@pytest.fixture(scope="module")
def speed(nets):
    """train_speed.py and timed_runs.py as modules (they import training_nets, bench_devices and timed_runs by
    name)."""
    try:
        load_script(BENCHMARKS / "bench_devices.py", "bench_devices")
        load_script(BENCHMARKS / "timed_runs.py", "timed_runs")
        yield load_script(BENCHMARKS / "train_speed.py", "train_speed")
    finally:
        for name in ("bench_devices", "timed_runs", "train_speed"):
            sys.modules.pop(name, None)


def test_ranks_option(speed, capsys):
    with pytest.raises(SystemExit):
        speed.parse_args(["--ranks", "1"])
    assert "--ranks must be at least 2, got 1" in capsys.readouterr().err
    assert speed.parse_args(["--ranks", "2"]).nets == ["seed001", "mlp"]  # the nets of the comparison
    assert speed.parse_args([]).nets == ["seed001", "mlp", "augment"]
    assert speed.parse_args(["--ranks", "2", "--nets", "mlp"]).nets == ["mlp"]


def test_configurations_say_what_is_left_out(speed, monkeypatch, capsys):
    args = speed.parse_args(["--ranks", "2", "--threads", "2"])
    monkeypatch.setattr(speed, "mpi_missing", lambda: "no mpi4py here")
    labels = [c.label for c in speed.configurations_for(args, has_torch=True)]
    assert labels == ["netgraph 1×2", "torch 1×2", "torch 2×1 DDP gloo"]
    assert "netgraph on 2 ranks is not timed: no mpi4py here" in capsys.readouterr().out
    monkeypatch.setattr(speed, "mpi_missing", lambda: None)
    keys = [c.key for c in speed.configurations_for(args, has_torch=False)]
    assert keys == ["netgraph", "netgraph-mpi"]


def test_rank_answers_combined(speed):
    runs = speed.sys.modules["timed_runs"]
    ranks = [
        {"stamps": [1.0, 2.0], "losses": [3.0, 1.0], "rss_before": 50.0, "peak_rss": 90.0, "peak_reset": True},
        {"stamps": [1.1, 2.1], "losses": [2.0, 0.5], "rss_before": 60.0, "peak_rss": 80.0, "peak_reset": False},
    ]
    ddp = runs.combine(ranks, "sum")  # DDP: each rank's share of the batch loss
    assert ddp["losses"] == [5.0, 1.5] and ddp["stamps"] == [1.0, 2.0]
    assert (ddp["peak_rss"], ddp["rss_before"], ddp["peak_reset"]) == (90.0, 60.0, False)
    assert runs.combine(ranks, "root")["losses"] == [3.0, 1.0]  # netgraph: every rank has the global loss
    failed = ValueError("rank 1 failed")
    assert runs.combine([ranks[0], failed], "sum") is failed


def test_timed_steps_must_match(speed):
    c = speed.Configuration("netgraph-mpi", "netgraph", 2, 1)
    assert speed.timed(c, [{"stamps": [0.0, 0.5, 1.0]}], steps=3) == [0.5]
    with pytest.raises(RuntimeError, match="netgraph 2×1 mpiexec: 2 optimiser updates were timed in a run of 3"):
        speed.timed(c, [{"stamps": [0.0, 0.5]}], steps=3)


def test_mpiexec_group_starts_or_says_why(speed):
    runs = speed.sys.modules["timed_runs"]
    if runs.find_mpiexec() is None:
        pytest.skip("no mpiexec (pip install mpi4py mpich)")
    with deadline(120):
        if importlib.util.find_spec("netgraph.distributed") is None:
            with pytest.raises(RuntimeError, match="netgraph has no data-parallel engine in this checkout"):
                runs.MPIGroup(2, seed=1, pause=0)
            return
        if importlib.util.find_spec("mpi4py") is None:
            pytest.skip("no mpi4py (pip install mpi4py mpich)")
        group = runs.MPIGroup(2, seed=1, pause=0)
        try:
            assert group.ask("describe").startswith("2 ranks under mpiexec")
            with pytest.raises(ValueError, match="no such request 'dance'"):
                group.ask("dance")
        finally:
            group.close()
        assert group.process.returncode == 0
