"""Graph-level fusion: a convolution, deconvolution or linear layer and the activation after it as one step.

The fused plan must give what the unfused layers give: the same values (bit for bit), the same
inner ports when asked for, and the same gradients (the biases' to rounding), checked in float64 by
central differences too.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import netgraph.epilogue as epilogue
from gradcheck import check_function, check_net
from layers import (
    ConvolutionLayer,
    DeconvolutionLayer,
    ElementwiseLayer,
    FlattenLayer,
    LinearLayer,
    MeanSquaredLossLayer,
)
from netgraph import All, NetChain, NetGraph, NetInitialize, NetPort, NetPortGradient, NetTrain, profile
from netgraph.autograd import Tensor
from netgraph.compiled import numba_available, set_compiled_kernels
from netgraph.epilogue import Activation, activation_of, bias_activation
from netgraph.graph import FusedStep, fusion_enabled, set_fusion
from netgraph.symbolic import exp, leaky_ramp, ramp, trace

COMPILED = [False, pytest.param(True, marks=pytest.mark.skipif(not numba_available(), reason="no Numba"))]


@pytest.fixture(params=COMPILED, ids=["shared", "compiled"])
def compiled(request, monkeypatch):
    """Runs a test on the shared path and on the compiled kernels (every array size)."""
    monkeypatch.setattr(epilogue, "COMPILED_MINIMUM", 0)
    previous = set_compiled_kernels(request.param)
    yield request.param
    set_compiled_kernels(previous)


def _random_biases(net, seed: int = 5):
    """Nonzero biases everywhere (NetInitialize makes them zero, which would hide a missing bias)."""
    rng = np.random.default_rng(seed)
    for layer in [net, *(v for v in _leaves(net))]:
        if "Biases" in layer.arrays and layer.arrays["Biases"] is not None:
            layer.arrays["Biases"] = rng.normal(size=layer.arrays["Biases"].shape).astype(np.float32)
    return net


def _leaves(net):
    for _, layer in net.children():
        yield layer
        yield from _leaves(layer)


def _nets() -> dict[str, NetChain]:
    """Each fusable producer with each activation, and the cases around them."""
    return {
        "conv+Ramp": NetChain([ConvolutionLayer(4, 3), "Ramp", FlattenLayer(), LinearLayer(3)], input=(2, 7, 6)),
        "deconv+LeakyRamp (cropped)": NetChain(
            [
                DeconvolutionLayer(3, 5, stride=2, padding_size="Same"),
                ("LeakyRamp", 0.1),
                FlattenLayer(),
                LinearLayer(2),
            ],
            input=(2, 3, 4),
        ),
        "deconv+LeakyRamp negative slope": NetChain(
            [DeconvolutionLayer(2, 3, stride=2), ("LeakyRamp", -0.5), FlattenLayer(), LinearLayer(2)], input=(3, 3, 3)
        ),
        "linear+Ramp": NetChain([LinearLayer(6), "Ramp", LinearLayer(2)], input=5),
        "linear+bias-only": NetChain([LinearLayer(6), ElementwiseLayer(lambda x: x - 0.25), LinearLayer(2)], input=5),
        "linear(3x2)+constant+x": NetChain(
            [LinearLayer((3, 2)), ElementwiseLayer(lambda x: 1.5 + x), FlattenLayer()], input=4
        ),
        "no biases": NetChain(
            [ConvolutionLayer(3, 2, biases=None), "Ramp", LinearLayer(4, biases=None), ("LeakyRamp", 0.2)],
            input=(2, 5, 5),
        ),
        "interleaved conv+Ramp, 1-D": NetChain(
            [ConvolutionLayer(3, 2, interleaving=True), "Ramp", FlattenLayer(), LinearLayer(2)], input=(6, 2)
        ),
        "3-D conv+Ramp": NetChain([ConvolutionLayer(2, 2), "Ramp", FlattenLayer(), LinearLayer(2)], input=(1, 3, 4, 3)),
    }


def _initialized(name: str):
    return _random_biases(NetInitialize(_nets()[name], random_seeding=1))


def _input(net, n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *net.port_shapes["Input"]))


def _unfused(run):
    previous = set_fusion(False)
    try:
        return run()
    finally:
        set_fusion(previous)


# --- the plan ---------------------------------------------------------------------------------------


def test_the_plan_fuses_each_producer_with_its_activation():
    assert _nets()["conv+Ramp"].fused == {1: 2}
    assert _nets()["no biases"].fused == {1: 2, 3: 4}
    assert _nets()["linear+bias-only"].fused == {1: 2}


@pytest.mark.parametrize(
    "net",
    [
        NetChain([LinearLayer(3), "Tanh"], input=2),  # not an epilogue
        NetChain([LinearLayer(3), ElementwiseLayer(lambda x: 2 * x)], input=2),  # scales: not bias-only
        NetChain([LinearLayer(3), ElementwiseLayer(lambda x: leaky_ramp(x, 0.0))], input=2),  # slope 0: folded away
        NetChain([FlattenLayer(), "Ramp"], input=(2, 2)),  # not a producer
        NetChain([LinearLayer(3)], input=2),
    ],
)
def test_what_is_not_fused(net):
    assert net.fused == {}


def test_no_fusion_when_the_producer_feeds_two_ports_or_a_graph_output():
    two_readers = NetGraph(
        {"lin": LinearLayer(3), "relu": ElementwiseLayer("Ramp"), "other": ElementwiseLayer("Tanh")},
        [("lin", "relu", NetPort("A")), ("lin", "other", NetPort("B"))],
        input=2,
    )
    exposed = NetGraph(
        {"lin": LinearLayer(3), "relu": ElementwiseLayer("Ramp")},
        [("lin", "relu", NetPort("A")), ("lin", NetPort("Raw"))],
        input=2,
    )
    assert two_readers.fused == {} and exposed.fused == {}


def test_a_subclass_that_computes_otherwise_is_not_fused():
    class Doubled(LinearLayer):
        def apply(self, x, ctx):
            return super().apply(x, ctx) * 2.0

    class Shifted(ElementwiseLayer):
        def apply(self, x, ctx):
            return super().apply(x, ctx) + 1.0

    assert NetChain([Doubled(3), "Ramp"], input=2).fused == {}
    assert NetChain([LinearLayer(3), Shifted("Ramp")], input=2).fused == {}


def test_nested_nets_fuse_inside_their_own_plans():
    inner = NetChain([ConvolutionLayer(2, 2), "Ramp", FlattenLayer()])
    net = NetGraph(
        {"enc": inner, "out": LinearLayer(2), "relu": ElementwiseLayer("Ramp")},
        [("enc", "out", "relu")],
        input=(1, 4, 4),
    )
    assert net.vertices["enc"].fused == {1: 2} and net.fused == {"out": "relu"}


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (ramp, Activation("ramp")),
        (lambda x: leaky_ramp(x, 0.02), Activation("leaky_ramp", slope=0.02)),
        (lambda x: leaky_ramp(x, -3.0), Activation("leaky_ramp", slope=-3.0)),
        (lambda x: x + 2, Activation("identity", shift=2.0)),
        (lambda x: 0.5 + x, Activation("identity", shift=0.5)),
        (lambda x: x - 0.75, Activation("identity", shift=-0.75)),
        (lambda x: x, Activation("identity")),
        (lambda x: 2 - x, None),
        (lambda x: 2 * x + 1, None),
        (lambda x: exp(x), None),
        (lambda x: ramp(x) + 1, None),
    ],
)
def test_activations_recognised_from_traced_functions(function, expected):
    assert activation_of(trace(function)) == expected


def test_the_switch_and_the_environment_variable():
    assert fusion_enabled()
    net = _initialized("conv+Ramp")
    previous = set_fusion(False)
    try:
        with profile.timings() as timer:
            net(_input(net), NetPortGradient("Input"))
    finally:
        set_fusion(previous)
    assert (2,) in timer.forward and not any(isinstance(layer, FusedStep) for layer in timer.layers.values())
    code = "from netgraph.graph import fusion_enabled; print(fusion_enabled())"
    env = {**os.environ, "NETGRAPH_FUSION": "0"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_profile_names_a_fused_step_after_both_layers():
    net = _initialized("conv+Ramp")
    with profile.timings() as timer:
        net(_input(net), NetPortGradient("Input"))
    step = timer.layers[(1,)]
    assert isinstance(step, FusedStep) and (2,) not in timer.forward and (1,) in timer.backward
    assert [type(part).__name__ for part in step.parts] == ["ConvolutionLayer", "ElementwiseLayer"]


# --- the same answers as the unfused layers --------------------------------------------------------------


@pytest.mark.parametrize("name", list(_nets()))
@pytest.mark.parametrize("precision", ["Real32", "Real64"])
def test_fused_values_are_the_unfused_ones_exactly(name, precision, compiled):
    net = _initialized(name)
    x = _input(net)
    fused = net(x, working_precision=precision)
    unfused = _unfused(lambda: net(x, working_precision=precision))
    np.testing.assert_array_equal(fused, unfused)


@pytest.mark.parametrize("name", list(_nets()))
def test_fused_gradients_are_the_unfused_ones(name, compiled):
    net = _initialized(name)
    x = _input(net)
    fused = net(x, NetPortGradient(All), working_precision="Real64")
    unfused = _unfused(lambda: net(x, NetPortGradient(All), working_precision="Real64"))
    assert fused.keys() == unfused.keys()
    for key in fused:
        np.testing.assert_allclose(fused[key], unfused[key], rtol=1e-12, atol=1e-12, err_msg=str(key))


@pytest.mark.parametrize("name", list(_nets()))
def test_fused_nets_pass_the_gradient_check(name, compiled):
    net = _initialized(name)
    check_net(net, {"Input": _input(net, n=3, seed=2)})


def test_the_primitive_passes_the_gradient_check(compiled):
    y, b = np.random.default_rng(3).normal(size=(3, 4, 5, 2)), np.random.default_rng(4).normal(size=4)
    for activation in (Activation("ramp"), Activation("leaky_ramp", slope=-0.3), Activation("identity", shift=1.5)):

        def fused(y, b, activation=activation):
            return bias_activation(y * 1.0, b, activation=activation)  # a fresh array: the primitive writes into it

        check_function(fused, [y, b])


def test_an_inner_producer_output_asked_for_runs_unfused():
    net = _initialized("conv+Ramp")
    x = _input(net)
    raw = net(x, NetPort([1, "Output"]))  # before the Ramp: the biases added, nothing else
    assert raw.min() < 0
    np.testing.assert_array_equal(raw, _unfused(lambda: net(x, NetPort([1, "Output"]))))
    np.testing.assert_array_equal(net(x, NetPort([2, "Output"])), np.maximum(raw, 0))
    both = list(net(x, [NetPort([1, "Output"]), NetPort([2, "Output"]), "Output"]).values())
    np.testing.assert_array_equal(both[0], raw)
    np.testing.assert_array_equal(both[1], np.maximum(raw, 0))
    np.testing.assert_array_equal(both[2], net(x))


def test_an_inner_port_of_a_nested_net_and_its_gradients():
    encoder = NetChain([ConvolutionLayer(3, 2), ("LeakyRamp", 0.1), FlattenLayer()])
    net = _random_biases(
        NetInitialize(
            NetGraph(
                {"enc": encoder, "out": LinearLayer(2), "loss": MeanSquaredLossLayer()},
                [("enc", "out", NetPort("loss", "Input")), (NetPort("loss", "Loss"), NetPort("Loss"))],
                input=(1, 5, 5),
            ),
            random_seeding=2,
        )
    )
    data = {"Input": _input(net), "Target": np.zeros((4, 2))}
    specs = [
        NetPort(["enc", 1, "Output"]),
        NetPortGradient(("enc", 1, "Biases")),
        NetPortGradient(("enc", 1, "Weights")),
    ]
    asked = list(net(data, specs, working_precision="Real64").values())
    plain = list(_unfused(lambda: net(data, specs, working_precision="Real64")).values())
    assert asked[0].min() < 0  # the convolution's output, before the LeakyRamp
    for a, b in zip(asked, plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    gradients = list(net(data, specs[1:], working_precision="Real64").values())  # fused this time
    for a, b in zip(gradients, plain[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_training_a_fused_net_follows_the_unfused_one():
    def train():
        net = _random_biases(
            NetInitialize(
                NetChain([LinearLayer(8), "Ramp", LinearLayer(8), ("LeakyRamp", 0.1), LinearLayer(1)], input=3),
                random_seeding=7,
            )
        )
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 3)).astype(np.float32)
        y = np.sin(x.sum(axis=1, keepdims=True)).astype(np.float32)
        trained = NetTrain(
            net, (x, y), batch_size=8, max_training_rounds=3, random_seeding=1, training_progress_reporting=None
        )
        return trained(x)

    np.testing.assert_allclose(train(), _unfused(train), rtol=1e-5, atol=1e-6)


def test_the_primitive_writes_into_a_dense_output_and_leaves_a_cropped_view_alone():
    full = np.random.default_rng(0).normal(size=(2, 5, 5, 3))
    cropped = np.moveaxis(full, -1, 0)[:, :, 1:4, 1:4]
    out = bias_activation(Tensor(cropped), None, activation=Activation("ramp")).data
    assert not np.shares_memory(out, full) and out.flags.c_contiguous is False
    np.testing.assert_array_equal(out, np.maximum(np.moveaxis(full, -1, 0)[:, :, 1:4, 1:4], 0))
    dense = np.random.default_rng(1).normal(size=(4, 3))
    assert bias_activation(Tensor(dense), None, activation=Activation("ramp")).data is dense


@pytest.mark.parametrize("name", ["conv+Ramp", "deconv+LeakyRamp (cropped)", "linear+bias-only", "no biases"])
def test_fused_answers_on_each_device(name, device):
    net = _initialized(name)
    x = _input(net)
    options = {"target_device": device, "working_precision": "Real64"}
    fused = net(x, ["Output", NetPortGradient(All)], **options)
    unfused = _unfused(lambda: net(x, ["Output", NetPortGradient(All)], **options))
    np.testing.assert_allclose(fused["Output"], unfused["Output"], rtol=1e-13, atol=1e-13)
    for key, value in fused[NetPortGradient(All)].items():
        np.testing.assert_allclose(value, unfused[NetPortGradient(All)][key], rtol=1e-12, atol=1e-12, err_msg=str(key))
