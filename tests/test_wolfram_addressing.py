"""NetChain and NetGraph addressing as the Wolfram reference pages give it.

Each test transcribes a form from the pages of NetChain, NetGraph, NetPort,
NetExtract, NetTake and NetDrop; the expected values are worked out by hand
from fixed weights. The bad forms are NetErrors naming what was given.
"""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from gradcheck import check_net
from netgraph import All, NetChain, NetDrop, NetError, NetExtract, NetGraph, NetInitialize, NetPort, NetTake


def lin() -> L.LinearLayer:
    """y = W x + b with W = [[1, -1], [2, 0.5]], b = [0, 1]: x = (1, 2) gives (-1, 4)."""
    return L.LinearLayer(2, weights=[[1, -1], [2, 0.5]], biases=[0, 1], input=2)


X = np.array([1.0, 2.0])


# -- NetChain: "If the first layer has more than one input port, the NetChain will have those same input ports" ----


def test_a_chain_with_a_loss_layer_first_has_its_input_ports():
    # NetChain[{MeanSquaredLossLayer[], ElementwiseLayer[Sqrt]}]: the root-mean-square error
    chain = NetChain([L.MeanSquaredLossLayer(), L.ElementwiseLayer("Sqrt")])
    assert chain.input_ports == ("Input", "Target") and chain.output_ports == ("Output",)
    value = chain({"Input": np.array([1.0, 2.0, 3.0]), "Target": np.array([1.0, 2.0, 5.0])})
    assert value == pytest.approx(np.sqrt(4 / 3), rel=1e-6)


def test_a_chain_with_a_multi_input_layer_first_has_its_input_ports():
    # NetChain[{ThreadingLayer[Plus], Ramp}] has the ports "Input1" and "Input2"
    chain = NetChain([L.TotalLayer(), "Ramp"])
    assert chain.input_ports == ("Input1", "Input2")
    np.testing.assert_array_equal(chain({"Input1": np.array([1.0, -2.0]), "Input2": np.array([1.0, 1.0])}), [2.0, 0.0])


def test_a_chain_with_a_multi_output_layer_last_has_its_output_ports():
    # "If the last layer has more than one output port, the NetChain will have those same output ports"
    inner = NetGraph({"a": "Ramp", "b": "Tanh"}, [(NetPort("Input"), "a", NetPort("pos")), (NetPort("Input"), "b")])
    chain = NetChain([lin(), inner])
    assert chain.output_ports == ("pos", "Output")
    out = chain(X)
    np.testing.assert_allclose(out["pos"], [0.0, 4.0])
    np.testing.assert_allclose(out["Output"], np.tanh([-1.0, 4.0]), rtol=1e-6)


def test_the_one_layer_chain_with_several_inputs():
    chain = NetChain([L.MeanSquaredLossLayer()])
    assert chain.input_ports == ("Input", "Target") and chain.output_ports == ("Output",)
    assert chain({"Input": np.array([3.0]), "Target": np.array([1.0])}) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "layers, bad",
    [
        (["Ramp", L.MeanSquaredLossLayer(), "Sqrt"], "NetChain layer 2 (MeanSquaredLossLayer) has inputs"),
        ([L.TotalLayer(), L.TotalLayer()], "NetChain layer 2 (TotalLayer) has inputs"),
    ],
)
def test_only_the_first_layer_of_a_chain_may_have_several_inputs(layers, bad):
    with pytest.raises(NetError) as err:
        NetChain(layers)
    assert bad in str(err.value) and "only the first layer of a chain may have several inputs" in str(err.value)


def test_a_multi_input_chain_has_exact_gradients():
    chain = NetInitialize(NetChain([L.MeanSquaredLossLayer(), L.ElementwiseLayer("Sqrt")]))
    rng = np.random.default_rng(3)
    check_net(chain, {"Input": rng.standard_normal((4, 3)), "Target": rng.standard_normal((4, 3))})


# -- layers given by name, addressed by number ---------------------------------------------------------------


def test_named_vertices_are_wired_by_number():
    # NetGraph[<|"lin" -> LinearLayer[...], "ramp" -> Ramp|>, {1 -> 2}]
    net = NetGraph({"lin": lin(), "ramp": "Ramp"}, [(1, 2)])
    assert net.connections()[0] == (NetPort("lin", "Output"), NetPort("ramp", "Input"))
    np.testing.assert_array_equal(net(X), [0.0, 4.0])
    by_name = NetGraph({"lin": lin(), "ramp": "Ramp"}, [("lin", "ramp")])
    assert by_name.connections() == net.connections()


def test_named_vertices_in_netport_by_number_and_from_the_end():
    net = NetGraph(
        {"lin": lin(), "ramp": "Ramp", "tanh": "Tanh"},
        [(NetPort(1, "Output"), NetPort(-1, "Input")), ("lin", NetPort("ramp", 1))],
    )
    out = net(X)
    np.testing.assert_allclose(out["Output1"], [0.0, 4.0])
    np.testing.assert_allclose(out["Output2"], np.tanh([-1.0, 4.0]), rtol=1e-6)


def test_netextract_of_a_named_chain_by_number():
    # NetExtract[net, 1], NetExtract[net, -1] and NetExtract[net, {1, "Weights"}] on a chain of named layers
    chain = NetChain({"lin": lin(), "ramp": "Ramp"})
    assert str(NetExtract(chain, 1)) == str(NetExtract(chain, "lin"))
    assert str(NetExtract(chain, -1)) == "Ramp"
    np.testing.assert_array_equal(NetExtract(chain, (1, "Weights")), [[1, -1], [2, 0.5]])
    np.testing.assert_array_equal(NetExtract(chain, [1, "Biases"]), [0, 1])  # {1, "Biases"}: a path
    assert chain[2] is chain["ramp"]


def test_netport_paths_by_number_in_a_named_chain():
    # net[data, NetPort[{1, "Output"}]] equals net[data, NetPort[1, "Output"]] and net[data, NetPort[1]]
    chain = NetChain({"lin": lin(), "ramp": "Ramp"})
    for spec in (NetPort((1, "Output")), NetPort(1, "Output"), NetPort(1), NetPort("lin"), NetPort(1, 1)):
        np.testing.assert_array_equal(chain(X, spec), [-1.0, 4.0])
    # the outputs of the first two layers: net[data, {NetPort[1], NetPort[2]}]
    both = chain(X, [NetPort(1), NetPort(2)])
    np.testing.assert_array_equal(both[NetPort(1)], [-1.0, 4.0])
    np.testing.assert_array_equal(both[NetPort(2)], [0.0, 4.0])


def test_netport_by_number_inside_a_nested_named_net():
    # NetPort[{2, 1, "Output"}]: layer 1 of the chain that is vertex 2
    post = NetChain({"neg": L.ElementwiseLayer(lambda x: -x), "ramp": "Ramp"})
    net = NetGraph({"pre": lin(), "post": post}, [(1, 2)])
    np.testing.assert_array_equal(net(X, NetPort(2, 1, "Output")), [1.0, -4.0])
    np.testing.assert_array_equal(net(X, NetPort("post", "neg", "Output")), [1.0, -4.0])
    np.testing.assert_array_equal(net(X, NetPort(("post", -1, "Output"))), [1.0, 0.0])


def test_wiring_by_number_has_exact_gradients():
    net = NetInitialize(
        NetGraph({"a": L.LinearLayer(3, input=2), "b": "Tanh", "t": L.ThreadingLayer("Times")}, [(1, 2, 3), (1, 3)])
    )
    check_net(net, {"Input": np.random.default_rng(0).standard_normal((5, 2))})


# -- NetPort with a port number, and a layer alone ------------------------------------------------------------


def test_netport_with_a_port_number_in_a_connection():
    # NetPort[{3, 1}]: the first input port of layer 3 where a connection ends, so 1 -> NetPort[3, 2] feeds "Input2"
    net = NetGraph(
        [L.ElementwiseLayer(lambda x: 2 * x), L.ElementwiseLayer(lambda x: x + 1), L.ThreadingLayer("Subtract")],
        [(1, NetPort(3, 2)), (2, NetPort(3, 1))],
    )
    assert (NetPort(1, "Output"), NetPort(3, "Input2")) in net.connections()
    np.testing.assert_array_equal(net(np.array([1.0, 3.0])), [0.0, -2.0])  # (x + 1) - 2x


def test_netport_with_a_port_number_where_a_connection_starts():
    split = NetGraph({"a": "Ramp", "b": "Tanh"}, [(NetPort("Input"), "a", NetPort("p")), (NetPort("Input"), "b")])
    net = NetGraph(
        {"split": split, "neg": L.ElementwiseLayer(lambda x: -x)}, [(NetPort(1, 1), "neg"), (NetPort(1, 2), None)]
    )
    assert (NetPort("split", "p"), NetPort("neg", "Input")) in net.connections()
    assert (NetPort("split", "Output"), None) in net.connections()  # the second output, muted
    np.testing.assert_allclose(net(np.array([-1.0, 2.0])), [0.0, -2.0])  # -Ramp(x)


def test_netport_of_a_layer_alone_in_a_connection():
    # in a connection NetPort("name") is a port of the graph; a vertex alone is NetPort(n)
    net = NetGraph({"lin": lin(), "ramp": "Ramp"}, [(NetPort(1), NetPort(2)), (NetPort(2), NetPort("y"))])
    assert net.output_ports == ("y",)
    np.testing.assert_array_equal(net(X), [0.0, 4.0])


@pytest.mark.parametrize(
    "wiring, message",
    [
        ([(1, NetPort(2, 3))], r"NetPort\(2, 3\): ElementwiseLayer '2' has 1 input port \['Input'\]; port number 3"),
        ([(NetPort(1, 2), 2)], r"NetPort\(1, 2\): LinearLayer '1' has 1 output port \['Output'\]; port number 2"),
        ([(NetPort(5), 2)], r"unknown layer 5; the layers of this graph are 1..2"),
    ],
)
def test_bad_port_numbers_are_named(wiring, message):
    with pytest.raises(NetError, match=message):
        NetGraph([lin(), "Ramp"], wiring)


def test_unknown_names_say_numbers_work_too():
    with pytest.raises(NetError, match=r"unknown layer 'zz'; the layers of this graph are \['a', 'b'\] \(or by posi"):
        NetGraph({"a": "Ramp", "b": "Tanh"}, [("zz", "b")])
    with pytest.raises(NetError, match=r"unknown layer 3; the layers .* \(or by position, 1..2\)"):
        NetGraph({"a": "Ramp", "b": "Tanh"}, [(3, "b")])


@pytest.mark.parametrize(
    "spec, message",
    [
        (NetPort(3), r"NetPort\(3\): the net has no layer 3; its layers are \['lin', 'ramp'\] \(or by position, 1"),
        (NetPort(1, 2), r"NetPort\(1, 2\): LinearLayer 'lin' has 1 output port \['Output'\]; port number 2"),
        (NetPort("lin", "Input"), "has no output port 'Input'; .*inner values are read at output ports only"),
    ],
)
def test_bad_netport_specs_in_evaluation(spec, message):
    chain = NetChain({"lin": lin(), "ramp": "Ramp"})
    with pytest.raises(NetError, match=message):
        chain(X, spec)


def test_a_layer_alone_with_several_outputs_asks_which():
    split = NetGraph({"a": "Ramp", "b": "Tanh"}, [(NetPort("Input"), "a"), (NetPort("Input"), "b")])
    net = NetGraph({"split": split}, [])
    with pytest.raises(NetError, match=r"NetPort\(1\): NetGraph 'split' has output ports \['Output1', 'Output2'\]"):
        net(X, NetPort(1))


@pytest.mark.parametrize("parts", [(0,), (1, 0), (1, -1), (1, 1.5), (True,), ()])
def test_netport_numbers_count_from_one(parts):
    with pytest.raises(NetError, match="NetPort needs a port name|ports are numbered from 1"):
        NetPort(*parts)


# -- NetExtract with a list of specifications ----------------------------------------------------------------


def test_netextract_a_list_of_specifications_gives_a_list():
    # NetExtract[net, {{1}, {"lin", "Weights"}, {-1}}]
    chain = NetChain({"lin": lin(), "ramp": "Ramp"})
    first, weights, last = NetExtract(chain, [[1], ["lin", "Weights"], (-1,)])
    assert str(first) == str(chain["lin"]) and str(last) == "Ramp"
    np.testing.assert_array_equal(weights, [[1, -1], [2, 0.5]])
    assert NetExtract(chain, [("lin", "Biases")])[0].tolist() == [0, 1]


def test_netextract_all_of_one_layer():
    chain = NetChain({"lin": lin(), "ramp": "Ramp"})
    arrays = NetExtract(chain, (1, All))
    assert sorted(arrays) == ["Biases", "Weights"] and arrays["Biases"].tolist() == [0, 1]


def test_netextract_a_list_of_keys_that_is_no_path_says_how_to_ask_for_several():
    chain = NetChain({"lin": lin(), "ramp": "Ramp"})
    with pytest.raises(NetError, match=r"reads the list \[1, 2\] as one path.* each a list or tuple: \[\[1\], \[2\]\]"):
        NetExtract(chain, [1, 2])
    with pytest.raises(NetError, match=r"NetExtract: \[1, \[2\]\] mixes paths and plain keys"):
        NetExtract(chain, [1, [2]])


# -- NetTake and NetDrop at ports -----------------------------------------------------------------------------


@pytest.fixture
def two_outputs() -> NetGraph:
    # a net with two outputs: x -> lin -> Ramp -> "pos", lin -> Tanh -> "th"
    return NetGraph({"lin": lin(), "a": "Ramp", "b": "Tanh"}, [("lin", "a", NetPort("pos")), (1, 3, NetPort("th"))])


def test_nettake_the_first_layers_of_a_chain():
    # NetTake[chain, 2] and NetTake[chain, {2, 3}]
    chain = NetChain([lin(), "Ramp", L.ElementwiseLayer(lambda x: -x), "Tanh"])
    np.testing.assert_array_equal(NetTake(chain, 2)(X), [0.0, 4.0])
    assert [str(v) for v in NetTake(chain, (2, 3)).vertices.values()][0] == "Ramp"
    assert len(NetTake(chain, (NetPort(2, "Input"), NetPort(3, "Output")))) == 2
    after_first = NetTake(chain, (NetPort(1, "Output"), NetPort(4, "Input")))  # cut after layer 1, before layer 4
    assert [str(v) for v in after_first.vertices.values()][0] == "Ramp" and len(after_first) == 2
    np.testing.assert_array_equal(after_first(np.array([-1.0, 4.0])), [0.0, -4.0])


def test_nettake_one_output_of_a_graph(two_outputs):
    # NetTake[net, NetPort["th"]]: a subnet that computes only that output, which keeps its name
    taken = NetTake(two_outputs, NetPort("th"))
    assert list(taken.vertices) == ["lin", "b"] and taken.output_ports == ("th",)
    np.testing.assert_allclose(taken(X), np.tanh([-1.0, 4.0]), rtol=1e-6)


def test_nettake_all_and_a_union_of_ends(two_outputs):
    assert NetTake(two_outputs, All).output_ports == ("pos", "th")
    both = NetTake(two_outputs, [NetPort("th"), NetPort("a", "Output")])
    assert both.output_ports == ("th", "Output")
    np.testing.assert_allclose(both(X)["Output"], [0.0, 4.0])


def test_nettake_from_an_input_port_of_a_vertex(two_outputs):
    # NetTake[net, {NetPort[{"b", "Input"}], NetPort["th"]}]: the graph cut open at b's input
    taken = NetTake(two_outputs, (NetPort("b", "Input"), NetPort("th")))
    assert list(taken.vertices) == ["b"] and taken.input_ports == ("Input",)
    np.testing.assert_allclose(taken(np.array([0.5, -2.0])), np.tanh([0.5, -2.0]), rtol=1e-6)
    assert list(NetTake(two_outputs, (NetPort(3, 1), 3)).vertices) == ["b"]  # the first input port of vertex 3


def test_nettake_from_a_graph_input_to_an_input_port():
    net = NetGraph({"lin": lin(), "neg": L.ElementwiseLayer(lambda x: -x)}, [(NetPort("x"), "lin", "neg")])
    taken = NetTake(net, (NetPort("x"), NetPort("neg", "Input")))
    assert list(taken.vertices) == ["lin"] and taken.input_ports == ("x",) and taken.output_ports == ("Output",)
    np.testing.assert_array_equal(taken({"x": X}), [-1.0, 4.0])


def test_nettake_mutes_the_outputs_it_was_not_asked_for():
    split = NetGraph({"a": "Ramp", "b": "Tanh"}, [(NetPort("Input"), "a", NetPort("p")), (NetPort("Input"), "b")])
    neg = L.ElementwiseLayer(lambda x: -x)
    net = NetGraph({"lin": lin(), "split": split, "neg": neg}, [(1, 2), (NetPort(2, "p"), 3)])
    taken = NetTake(net, "neg")
    assert taken.output_ports == ("Output",)  # split's other output is muted, not a new output
    np.testing.assert_array_equal(taken(X), [0.0, -4.0])


def test_nettake_keeps_two_different_cut_values_apart():
    net = NetGraph(
        {"a": "Ramp", "b": "Tanh", "t": L.ThreadingLayer("Subtract")},
        [(NetPort("Input"), "a", NetPort("t", "Input1")), (NetPort("Input"), "b", NetPort("t", "Input2"))],
    )
    taken = NetTake(net, ("t", "t"))
    assert taken.input_ports == ("Input1", "Input2")
    np.testing.assert_array_equal(taken({"Input1": np.array([3.0]), "Input2": np.array([1.0])}), [2.0])


def test_a_cut_graph_has_exact_gradients(two_outputs):
    taken = NetTake(two_outputs, (NetPort("lin", "Output"), [NetPort("pos"), NetPort("th")]))
    assert taken.input_ports == ("Input",) and taken.output_ports == ("pos", "th")
    check_net(taken, {"Input": np.random.default_rng(1).standard_normal((3, 2))})


def test_netdrop_cuts_a_graph(two_outputs):
    dropped = NetDrop(two_outputs, "lin")  # lin is gone: its output is the new "Input"
    assert list(dropped.vertices) == ["a", "b"] and dropped.input_ports == ("Input",)
    out = dropped(np.array([-1.0, 4.0]))
    np.testing.assert_allclose(out["pos"], [0.0, 4.0])
    np.testing.assert_allclose(out["th"], np.tanh([-1.0, 4.0]), rtol=1e-6)
    assert NetDrop(two_outputs, NetPort("lin", "Output")).output_ports == ("pos", "th")
    after_b = NetDrop(two_outputs, NetPort("b", "Input"))  # what arrives at b's input is the new input
    assert list(after_b.vertices) == ["b"] and after_b.output_ports == ("th",)


@pytest.mark.parametrize(
    "spec, message",
    [
        (NetPort("nope"), r"NetTake: NetPort\('nope'\) is not an output port of the graph; its outputs are"),
        (NetPort("b", "Foo"), r"ElementwiseLayer 'b' has no port 'Foo'; its outputs are \['Output'\]"),
        (NetPort(3, 2), r"ElementwiseLayer 'b' has 1 output port \['Output'\]; port number 2 does not exist"),
        ((NetPort("nope"), "b"), r"NetPort\('nope'\) is not an input port of the graph; its inputs are \['Input'\]"),
        (("a", "b"), "nothing lies between 'a' and 'b'"),
        (NetPort("lin", "Input"), "fed straight by the graph's input 'Input'; nothing lies before it"),
    ],
)
def test_bad_nettake_specs_on_a_graph(two_outputs, spec, message):
    with pytest.raises(NetError, match=message):
        NetTake(two_outputs, spec)


def test_bad_netdrop_specs_on_a_graph(two_outputs):
    with pytest.raises(NetError, match=r"NetDrop: NetPort\('th'\) is a port of the graph itself"):
        NetDrop(two_outputs, NetPort("th"))
    with pytest.raises(NetError, match="unknown layer 'zz'"):
        NetDrop(two_outputs, "zz")
    with pytest.raises(NetError, match="NetDrop works on a NetChain or a NetGraph; got ElementwiseLayer"):
        NetDrop(L.ElementwiseLayer("Ramp"), 1)
