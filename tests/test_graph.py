"""NetGraph/NetChain: wiring, numbering, graph ports, shape inference, nesting, errors."""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from netgraph import (
    NetChain,
    NetError,
    NetGraph,
    NetInitialize,
    NetPort,
    NetPortGradient,
    ShapeError,
    exp,
)


def test_wolfram_reference_example_named_vertices():
    net = NetGraph(
        {"double": L.ElementwiseLayer(lambda x: 2 * x), "add": L.ThreadingLayer(lambda a, b: a + b)},
        [(NetPort("a"), "double", "add"), (NetPort("b"), "add")],
    )
    data = {"a": np.array([1.0, 2, 3]), "b": np.array([10.0, 20, 30])}
    assert net(data).tolist() == [12.0, 24.0, 36.0]
    assert net(data, NetPort("double", "Output")).tolist() == [2.0, 4.0, 6.0]


def test_unconnected_outputs_are_numbered():
    two = NetGraph(
        [L.ElementwiseLayer("Sin"), L.ElementwiseLayer("Cos")], [(NetPort("Input"), 1), (NetPort("Input"), 2)]
    )
    assert two.output_ports == ("Output1", "Output2")
    out = two(np.array([0.0]))
    assert out["Output1"].tolist() == [0.0] and out["Output2"].tolist() == [1.0]


def test_unconnected_inputs_become_graph_ports_and_outputs_can_be_muted():
    net = NetGraph(
        {"loss": L.MeanSquaredLossLayer(), "lin": L.LinearLayer(2, input=3), "tap": L.ElementwiseLayer("Tanh")},
        [("lin", "loss"), ("lin", "tap"), (NetPort("tap", "Output"), None)],
    )
    assert set(net.input_ports) == {"Input", "Target"}
    assert net.output_ports == ("Loss",)
    assert net.port_shapes["Target"] == (2,)


def test_fan_in_list_goes_to_inputs_in_order():
    net = NetGraph(
        [L.ThreadingLayer(lambda a, b: a - b), L.ElementwiseLayer(lambda x: 10 * x)],
        [([NetPort("p"), 2], 1), (NetPort("q"), 2)],
    )
    assert net({"p": np.array([5.0]), "q": np.array([0.1])}).tolist() == pytest.approx([4.0])


def test_shapes_are_inferred_before_data_both_ways():
    enc = NetChain([L.LinearLayer(16), "Ramp", L.LinearLayer(8)], input=5184)
    assert enc.port_shapes == {"Input": (5184,), "Output": (8,)}
    assert enc[1].port_shapes["Input"] == (5184,)
    # the output size of LinearLayer() comes from what it feeds
    net = NetGraph(
        [L.LinearLayer(), L.TotalLayer()], [(NetPort("x"), 1), ([1, NetPort("y")], 2)], ports={"x": 3, "y": 4}
    )
    assert net[1].port_shapes["Output"] == (4,)


def test_nested_nets_act_as_layers_and_keep_their_weights():
    inner = NetInitialize(NetChain({"a": L.LinearLayer(3), "b": "Tanh"}, input=2))
    outer = NetGraph({"enc": inner, "neg": L.ElementwiseLayer(lambda x: -x)}, [(NetPort("Input"), "enc", "neg")])
    x = np.array([0.3, -0.2])
    np.testing.assert_allclose(outer(x), -inner(x), rtol=1e-6)
    np.testing.assert_allclose(outer(x, NetPort("enc", "a", "Output")), inner(x, NetPort("a", "Output")))


def test_list_vertices_are_numbered_from_one():
    net = NetChain([L.LinearLayer(2, input=2), "Ramp"])
    assert list(net.vertices) == [1, 2]
    with pytest.raises(NetError, match="layer number 0 does not exist"):
        NetGraph([L.ElementwiseLayer("Tanh")], [(NetPort("Input"), 0)])


@pytest.mark.parametrize(
    "wiring, message",
    [
        ([(NetPort("Input"), 3)], "unknown layer 3"),
        ([(NetPort("Input"), "nope")], "numbered 1..2"),
        ([(NetPort(1, "Weights"), 2)], "no output port 'Weights'"),
        ([(1, NetPort(2, "Target2"))], "no input port 'Target2'"),
        ([(1, 2), (2, 1)], "cycle"),
        ([1, 2], "a connection is a tuple"),
    ],
)
def test_bad_wiring_fails_at_construction_naming_the_ends(wiring, message):
    with pytest.raises(NetError, match=message):
        NetGraph([L.ElementwiseLayer("Tanh"), L.ElementwiseLayer("Sin")], wiring)


def test_shape_mismatch_names_both_ends_and_shapes():
    with pytest.raises(ShapeError) as err:
        NetGraph({"a": L.LinearLayer(3, input=2), "b": L.LinearLayer(2, input=4)}, [("a", "b")])
    text = str(err.value)
    assert "NetPort('a', 'Output')" in text and "NetPort('b', 'Input')" in text and "3" in text and "4" in text


def test_total_layer_shape_mismatch():
    with pytest.raises(ShapeError, match="2 .* 3|3 .* 2"):
        NetGraph([L.TotalLayer()], [([NetPort("a"), NetPort("b")], 1)], ports={"a": 2, "b": 3})


def test_given_weights_are_checked_against_inferred_shapes():
    with pytest.raises(ShapeError, match="gives 2 .* expects 5"):
        NetChain([L.LinearLayer(2, input=3), L.LinearLayer(1, weights=np.ones((1, 5)))])


def test_a_net_is_a_value_its_layers_are_copied():
    lin = L.LinearLayer(2, input=2)
    chain = NetInitialize(NetChain([lin, "Tanh"]))
    assert lin.arrays["Weights"] is None and chain[1].arrays["Weights"] is not None


def test_same_layer_used_twice_gives_two_independent_vertices():
    lin = NetInitialize(L.LinearLayer(2, input=2))
    net = NetChain([lin, lin])
    net[1].arrays["Weights"][:] = 0
    assert np.any(net[2].arrays["Weights"] != 0)


def test_fan_out_accumulates_gradients():
    # y = x*x + exp(x) + x, all from one port: dy/dx = 2x + exp(x) + 1
    net = NetGraph(
        [L.ElementwiseLayer(lambda x: x * x), L.ElementwiseLayer(exp), L.TotalLayer()],
        [(NetPort("x"), 1), (NetPort("x"), 2), ([1, 2, NetPort("x")], 3)],
        ports={"x": 3},
    )
    x = np.array([0.5, -1.0, 2.0])
    g = net({"x": x}, NetPortGradient("x"), working_precision="Real64")
    np.testing.assert_allclose(g, 2 * x + np.exp(x) + 1)


def test_chain_rejects_multi_port_layers_inside():
    # only the first layer may have several inputs (the chain then has them); see test_wolfram_addressing.py
    with pytest.raises(NetError, match="one of each"):
        NetChain(["Ramp", L.MeanSquaredLossLayer()])
