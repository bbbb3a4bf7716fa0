"""netgraph.profile.timings(): per-layer forward and backward seconds, off by default."""

from __future__ import annotations

import time

import numpy as np

from layers import ConvolutionLayer, ElementwiseLayer, FlattenLayer, LinearLayer, MeanSquaredLossLayer
from netgraph import NetChain, NetGraph, NetInitialize, NetPort, NetPortGradient, NetTrain, profile
from netgraph.autograd import Tape, Tensor, backward, primitive
from netgraph.graph import FusedStep, set_fusion
from netgraph.layer import Context, Layer
from netgraph.optimizers import Optimizer


def _net() -> NetGraph:
    encoder = NetChain([ConvolutionLayer(3, 2), "Ramp", FlattenLayer()], input=(1, 4, 4))
    return NetInitialize(
        NetGraph(
            {"enc": encoder, "out": LinearLayer(2), "loss": MeanSquaredLossLayer()},
            [("enc", "out", NetPort("loss", "Input")), (NetPort("loss", "Loss"), NetPort("Loss"))],
        ),
        random_seeding=3,
    )


def test_off_by_default_and_results_unchanged():
    net = _net()
    x = np.random.default_rng(0).uniform(size=(5, 1, 4, 4)).astype(np.float32)
    t = np.zeros((5, 2), np.float32)
    assert profile.active() is None
    plain = net({"Input": x, "Target": t}, NetPortGradient(("out", "Weights")))
    with profile.timings() as timer:
        assert profile.active() is timer
        timed = net({"Input": x, "Target": t}, NetPortGradient(("out", "Weights")))
    assert profile.active() is None
    np.testing.assert_array_equal(plain, timed)
    recorded = dict(timer.forward)
    net({"Input": x, "Target": t}, NetPortGradient(("out", "Weights")))  # after the block: nothing added
    assert timer.forward == recorded


def test_leaf_layers_by_path_and_phases():
    net = _net()
    x = np.random.default_rng(0).uniform(size=(5, 1, 4, 4)).astype(np.float32)
    previous = set_fusion(False)
    try:
        with profile.timings() as timer:
            net({"Input": x, "Target": np.zeros((5, 2), np.float32)}, NetPortGradient(("enc", 1, "Weights")))
    finally:
        set_fusion(previous)
    leaves = [("enc", 1), ("enc", 2), ("enc", 3), ("out",), ("loss",)]
    assert sorted(timer.forward, key=str) == sorted(leaves, key=str)  # sub-nets are not counted twice
    assert all(timer.calls[p] == 1 for p in leaves)
    assert isinstance(timer.layers[("enc", 1)], ConvolutionLayer)
    # every layer that recorded a primitive on the tape got backward time (flatten only reshapes)
    assert {("enc", 1), ("enc", 2), ("out",), ("loss",)} <= set(timer.backward)
    assert all(v >= 0 for v in (*timer.forward.values(), *timer.backward.values()))
    assert timer.phases["forward"] >= sum(timer.forward.values())
    assert timer.phases["backward"] >= sum(timer.backward.values())


def test_a_fused_step_is_one_leaf_under_the_producers_path():
    net = _net()
    x = np.random.default_rng(0).uniform(size=(5, 1, 4, 4)).astype(np.float32)
    with profile.timings() as timer:
        net({"Input": x, "Target": np.zeros((5, 2), np.float32)}, NetPortGradient(("enc", 1, "Weights")))
    assert sorted(timer.forward, key=str) == sorted([("enc", 1), ("enc", 3), ("out",), ("loss",)], key=str)
    step = timer.layers[("enc", 1)]
    assert isinstance(step, FusedStep) and isinstance(step.parts[0], ConvolutionLayer)
    assert step.describe() == "ConvolutionLayer '1' + ElementwiseLayer '2'"
    assert ("enc", 1) in timer.backward and ("enc", 2) not in timer.backward


def test_backward_time_goes_to_the_layer_that_recorded_it():
    class Slow(Layer):  # a layer whose vjp is measurably slow
        def __init__(self) -> None:
            super().__init__()
            self._finish_init()

        def forward(self, inputs, ctx):
            @primitive
            def slow(x):
                def vjp(g, needs):
                    time.sleep(0.02)
                    return (g,)

                return x * 1.0, vjp

            return {"Output": slow(inputs["Input"])}

    net = NetChain([ElementwiseLayer("Tanh"), Slow(), ElementwiseLayer("Tanh")], input=3)
    ctx = Context(xp=np, dtype=np.float32, batch_size=2)
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with profile.timings() as timer:
        with Tape() as tape:
            y = net.forward({"Input": x}, ctx)["Output"]
        grads = backward(tape, {y: np.ones((2, 3), np.float32)})
    assert grads[id(x)].shape == (2, 3)
    assert timer.backward[(2,)] >= 0.02
    assert timer.backward[(1,)] < 0.02 and timer.backward[(3,)] < 0.02
    assert timer.phases["backward"] >= 0.02


def test_training_steps_and_a_caller_phase():
    net = NetInitialize(NetChain([LinearLayer(3), "Ramp", LinearLayer(1)], input=2), random_seeding=1)
    x = np.random.default_rng(1).normal(size=(12, 2)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    update = Optimizer.update

    with profile.timings() as timer:

        def timed_update(self, *args, **kwargs):
            with timer.phase("optimiser"):
                return update(self, *args, **kwargs)

        Optimizer.update = timed_update
        try:
            NetTrain(net, (x, y), batch_size=4, max_training_rounds=2, training_progress_reporting=None)
        finally:
            Optimizer.update = update
    assert timer.calls[("net", 1)] == 6  # 3 batches a round, 2 rounds; the loss is attached around "net"
    assert timer.phases["optimiser"] > 0 and timer.phases["forward"] > 0 and timer.phases["backward"] > 0
