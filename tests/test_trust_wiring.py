"""Wiring and evaluation that must never drop, overwrite or guess: each bad input is a NetError naming it."""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from netgraph import (
    All,
    BackendError,
    NetChain,
    NetDrop,
    NetError,
    NetExtract,
    NetGraph,
    NetInitialize,
    NetPort,
    NetPortGradient,
    NetReplacePart,
    NetTake,
    ShapeError,
    gpu_available,
)

# -- graph outputs: never dropped, never overwritten -------------------------------------------------


def test_two_vertices_into_one_graph_output_name_both_sources_and_the_port():
    with pytest.raises(NetError) as err:
        NetGraph(["Ramp", "Tanh"], [(NetPort("x"), 1, NetPort("y")), (NetPort("x"), 2, NetPort("y"))], ports={"x": 2})
    text = str(err.value)
    assert "NetPort('y')" in text and "NetPort(1, 'Output')" in text and "NetPort(2, 'Output')" in text


def test_fan_in_list_into_a_graph_output_is_two_sources():
    with pytest.raises(NetError, match=r"NetPort\('y'\) is fed by both NetPort\('a', 'Output'\).*NetPort\('b'"):
        NetGraph({"a": "Ramp", "b": "Tanh"}, [(["a", "b"], NetPort("y"))])


def test_the_same_source_twice_into_a_graph_output():
    with pytest.raises(NetError, match=r"NetPort\('y'\) is fed twice by NetPort\(1, 'Output'\)"):
        NetGraph(["Ramp"], [(1, NetPort("y")), (1, NetPort("y"))])


def test_named_output1_is_not_overwritten_by_the_automatic_name():
    with pytest.raises(NetError) as err:
        NetGraph(["Ramp", "Tanh", "Sin"], [(1, NetPort("Output1"))])
    text = str(err.value)
    assert "NetPort('Output1')" in text and "NetPort(1, 'Output')" in text and "NetPort(2, 'Output')" in text


def test_named_output2_is_not_overwritten_by_the_automatic_name():
    wiring = [(NetPort("Input"), 1), (NetPort("Input"), 2), (NetPort("Input"), 3, NetPort("Output2"))]
    with pytest.raises(NetError, match=r"NetPort\('Output2'\) is fed by NetPort\(3, 'Output'\).*NetPort\(2, 'Output'"):
        NetGraph(["Ramp", "Tanh", "Sin"], wiring)


def test_automatic_names_that_do_not_collide_still_work():
    net = NetGraph(["Ramp", "Tanh", "Sin"], [(NetPort("Input"), 3, NetPort("Output3"))], input=1)
    assert net.output_ports == ("Output3", "Output1", "Output2")
    out = net(np.array([-1.0]))
    assert out["Output1"].tolist() == [0.0] and out["Output3"].tolist() == pytest.approx([np.sin(-1.0)])


def test_a_port_both_input_and_output_of_the_graph():
    with pytest.raises(NetError, match=r"NetPort\('x'\) is both an input of the graph .* and an output"):
        NetGraph(["Ramp"], [(NetPort("x"), 1, NetPort("x"))])
    with pytest.raises(NetError, match=r"NetPort\('Input'\) is both an input"):
        NetGraph(["Ramp", "Tanh"], [(1, NetPort("Input"))])


def test_a_graph_port_in_the_middle_of_a_chain_of_arrows():
    # 1 -> NetPort("y") -> 2 would feed 2 from a graph input "y", not from 1
    with pytest.raises(NetError, match=r"NetPort\('y'\) is both an input .*NetPort\(2, 'Input'\).*fed by NetPort\(1"):
        NetGraph(["Ramp", "Tanh"], [(NetPort("x"), 1, NetPort("y"), 2)])


def test_an_output_both_muted_and_exposed():
    with pytest.raises(NetError, match=r"NetPort\(1, 'Output'\).* both muted .* NetPort\('y'\)"):
        NetGraph(["Ramp"], [(1, NetPort("y")), (1, None)])


def test_muting_a_graph_input_is_refused():
    with pytest.raises(NetError, match=r"None mutes an output of a vertex; NetPort\('x'\) is an input"):
        NetGraph(["Ramp"], [(NetPort("x"), None), (NetPort("x"), 1)])


def test_a_graph_input_passed_straight_to_an_output_still_works():
    net = NetGraph(["Ramp"], [(NetPort("x"), NetPort("y"))], ports={"x": 2}, input=2)
    out = net({"x": np.array([1.0, -2.0]), "Input": np.array([1.0, -2.0])})
    assert out["y"].tolist() == [1.0, -2.0] and out["Output"].tolist() == [1.0, 0.0]


# -- vertex inputs ---------------------------------------------------------------------------------------


def test_two_connections_into_one_named_input_name_both_sources():
    with pytest.raises(NetError, match=r"NetPort\(3, 'Input'\).* fed by both NetPort\(1, 'Output'\).*NetPort\(2, "):
        NetGraph(["Ramp", "Tanh", "Sin"], [(1, NetPort(3, "Input")), (2, NetPort(3, "Input"))])


def test_no_free_input_names_what_already_feeds_it():
    with pytest.raises(NetError, match=r"no free input port left .*NetPort\(2, 'Output'\).*'Input' by NetPort\(1, "):
        NetGraph(["Ramp", "Tanh", "Sin"], [(1, 3), (2, 3)])
    with pytest.raises(NetError, match="no free input port left"):
        NetGraph(["Ramp", "Tanh"], [(1, 2), (1, 2)])


def test_a_variadic_layer_port_that_does_not_exist():
    with pytest.raises(NetError, match=r"NetPort\(1, 'Foo'\): TotalLayer '1' has no input port 'Foo'.*'Input1'"):
        NetGraph([L.TotalLayer()], [(NetPort("a"), NetPort(1, "Foo"))], ports={"a": 2})
    with pytest.raises(NetError, match="has no input port 'Input3'"):
        NetGraph([L.TotalLayer()], [(NetPort("a"), NetPort(1, "Input3")), (NetPort("b"), 1)])


def test_a_variadic_layer_port_fed_twice():
    wiring = [(NetPort("a"), NetPort(1, "Input1")), (NetPort("b"), NetPort(1, "Input1"))]
    with pytest.raises(NetError, match=r"NetPort\(1, 'Input1'\).* fed by both NetPort\('a'\) and NetPort\('b'\)"):
        NetGraph([L.TotalLayer()], wiring)


# -- the forms of layers, connections and ports ------------------------------------------------------------


@pytest.mark.parametrize(
    "layers, message",
    [
        (5, "NetGraph layers must be a list .* got int 5"),
        ("Ramp", "NetGraph layers must be a list .* got str 'Ramp'"),
        ([], "a NetGraph needs at least one layer"),
        ([object()], "vertex 1: cannot make a layer from <object"),
        ([True], "vertex 1: cannot make a layer from True"),
        ({"a": None}, "vertex 'a': cannot make a layer from None"),
        ({1: "Ramp"}, "vertex names must be strings"),
    ],
)
def test_bad_layers_of_a_graph(layers, message):
    with pytest.raises(NetError, match=message):
        NetGraph(layers)


@pytest.mark.parametrize(
    "layers, message",
    [
        (5, "NetChain layers must be a list .* got int 5"),
        ("Ramp", "NetChain layers must be a list .* got str 'Ramp'"),
        ([], "a NetChain needs at least one layer"),
        (["Ramp", None], "vertex 2: cannot make a layer from None"),
    ],
)
def test_bad_layers_of_a_chain(layers, message):
    with pytest.raises(NetError, match=message):
        NetChain(layers)


@pytest.mark.parametrize(
    "connections, message",
    [
        (5, "connections must be a list of tuples .* got int 5"),
        ("ab", "connections must be a list of tuples .* got str 'ab'"),
        ({1: 2}, r"got dict \{1: 2\}; write a dict \{a: b\} as \[\(a, b\)\]"),
        ([({"x": 1}, 1)], r"unknown layer \{'x': 1\}|numbered 1..2"),
    ],
)
def test_bad_connection_forms(connections, message):
    with pytest.raises(NetError, match=message):
        NetGraph(["Ramp", "Tanh"], connections)


def test_an_unhashable_vertex_in_a_named_graph():
    with pytest.raises(NetError, match=r"unknown layer \{'x': 1\}; the layers of this graph are \['a'\]"):
        NetGraph({"a": "Ramp"}, [({"x": 1}, "a")])


@pytest.mark.parametrize("parts", [(0,), ("",), (), (1, 1.5), (2, 0)])
def test_netport_needs_a_port_name(parts):
    with pytest.raises(NetError, match="NetPort needs a port name"):
        NetPort(*parts)


def test_a_port_shape_given_twice_differently():
    with pytest.raises(NetError, match=r"port 'Input' is given twice, differently: input=2 and ports=\{'Input': 3\}"):
        NetGraph(["Ramp"], input=2, ports={"Input": 3})
    assert NetGraph(["Ramp"], input=2, ports={"Input": (2,)}).port_shapes["Input"] == (2,)


def test_ports_must_be_a_dict():
    with pytest.raises(NetError, match=r"ports must be a dict .* got \[\('Input', 3\)\]"):
        NetGraph(["Ramp"], ports=[("Input", 3)])


@pytest.mark.parametrize("shape", [2.5, object(), True, (True, 2)])
def test_shape_specs_that_are_not_shapes(shape):
    with pytest.raises(NetError, match="port 'Input': (unknown shape spec|dimensions must be positive integers)"):
        NetGraph(["Ramp"], input=shape)


def test_wiring_that_stays_valid_round_trips():
    net = NetGraph(["Ramp", "Tanh"], [(NetPort("x"), 1, NetPort("y")), (NetPort("x"), 2, NetPort("z"))], ports={"x": 2})
    again = NetGraph([net[1], net[2]], net.connections(), ports={"x": 2})
    assert again.output_ports == net.output_ports == ("y", "z") and again.input_ports == ("x",)


# -- surgery ---------------------------------------------------------------------------------------------


@pytest.fixture
def chain():
    return NetChain({"lin": L.LinearLayer(3), "act": "Tanh", "out": L.LinearLayer(1)}, input=2)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("lin", "NetDrop takes a number of layers n .* got 'lin'"),
        (1.5, "NetDrop takes a number of layers n .* got 1.5"),
        (None, "got None"),
        ((1, 2, 3), r"a range is \(start, end\), two elements; got \(1, 2, 3\)"),
        ((3, 1), "the range 3..1 is empty"),
    ],
)
def test_netdrop_bad_specs(chain, spec, message):
    with pytest.raises(NetError, match=message):
        NetDrop(chain, spec)


def test_nettake_bad_specs(chain):
    with pytest.raises(NetError, match="a range is"):
        NetTake(chain, (1, 2, 3))
    graph = NetGraph({"a": "Ramp", "b": L.TotalLayer()}, [(NetPort("Input"), "a", "b"), (NetPort("Input"), "b")])
    with pytest.raises(NetError, match="unknown layer 'zz'"):
        NetTake(graph, NetPort("zz", "Output"))
    with pytest.raises(NetError, match=r"ElementwiseLayer 'a' has no port 'Foo'; its outputs are \['Output'\]"):
        NetTake(graph, NetPort("a", "Foo"))
    with pytest.raises(NetError, match=r"NetPort\('Nope'\) is not an output port of the graph"):
        NetTake(graph, NetPort("Nope"))


def test_netextract_and_netreplacepart_bad_specs(chain):
    with pytest.raises(NetError, match="the empty path"):
        NetExtract(chain, ())
    with pytest.raises(NetError, match="takes a dict or a list of"):
        NetReplacePart(chain, 5)
    with pytest.raises(NetError, match="takes a dict or a list of"):
        NetReplacePart(chain, [1, 2])
    with pytest.raises(NetError, match="array 'Weights' takes real numbers; got 'abc'"):
        NetReplacePart(NetInitialize(chain), {("lin", "Weights"): "abc"})


# -- evaluation options ------------------------------------------------------------------------------------


@pytest.fixture
def net():
    return NetInitialize(NetChain({"a": L.LinearLayer(3), "b": "Tanh"}, input=2))


@pytest.mark.parametrize("value", [-1, 0, 2.7, 2.0, "a", True])
def test_evaluation_batch_size_must_be_a_positive_integer(net, value):
    with pytest.raises(NetError, match=rf"batch_size must be a positive integer .* got {value!r}"):
        net(np.zeros((5, 2)), batch_size=value)


def test_evaluation_batch_size_in_chunks_still_works(net):
    x = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(net(x, batch_size=np.int64(2)), net(x), rtol=1e-6)


@pytest.mark.parametrize("value", ["cpu", "TPU", 3, None, ("GPU", -1), ("GPU",)])
def test_evaluation_target_device(net, value):
    with pytest.raises(NetError, match="target_device must be"):
        net(np.zeros(2), target_device=value)


def test_evaluation_takes_gpu_all_as_one_gpu(net):
    x = np.random.default_rng(0).normal(size=(3, 2))
    if gpu_available():
        np.testing.assert_allclose(net(x, target_device=("GPU", All)), net(x), rtol=1e-5)
    else:  # the form is accepted; the missing GPU is what is said
        with pytest.raises(BackendError, match='target_device="GPU"'):
            net(x, target_device=("GPU", All))


@pytest.mark.parametrize("value", ["Real16", "float32", 32, None])
def test_evaluation_working_precision(net, value):
    with pytest.raises(NetError, match=r'working_precision must be "Real32" or "Real64"'):
        net(np.zeros(2), working_precision=value)


@pytest.mark.parametrize("value", ["abc", -1, 2.5, [1, 2], True])
def test_evaluation_random_seeding(net, value):
    with pytest.raises(NetError, match="random_seeding must be an integer >= 0"):
        net(np.zeros(2), random_seeding=value)


def test_evaluation_mode(net):
    with pytest.raises(NetError, match='evaluation_mode must be "Test" or "Train"'):
        net(np.zeros(2), evaluation_mode=1)


def test_a_bad_option_fails_before_arrays_are_filled():
    fresh = NetChain([L.LinearLayer(3)], input=2)
    with pytest.raises(NetError, match="batch_size"):
        fresh(np.zeros(2), batch_size=-1)
    with pytest.raises(NetError, match="no output port 'Foo'"):
        fresh(np.zeros(2), "Foo")
    assert fresh[1].arrays["Weights"] is None


@pytest.mark.parametrize(
    "data, message",
    [
        ("abc", "got str 'abc' .*text is not numbers"),
        (["1", "2"], "got list .*text is not numbers"),
        (object(), "got object"),
        ([[1, 2], [3]], "got list"),
        (np.zeros((2, 2), complex), "got an array of complex128 .*complex numbers"),
    ],
)
def test_evaluation_data_that_is_not_real_numbers(net, data, message):
    with pytest.raises(NetError, match="port 'Input' takes an array of real numbers; " + message):
        net(data)


def test_forced_output_gradient_with_the_wrong_shape(net):
    with pytest.raises(NetError, match=r"gradient forced at output 'Output' must have the shape .* 5×3; got 7"):
        net({"Input": np.ones((5, 2)), NetPortGradient("Output"): np.ones(7)}, NetPortGradient("Input"))
    with pytest.raises(NetError, match="NetPortGradient\\('Output'\\) takes an array of real numbers"):
        net({"Input": np.ones((5, 2)), NetPortGradient("Output"): "a"}, NetPortGradient("Input"))


# -- what to evaluate ------------------------------------------------------------------------------------


def test_netportgradient_naming_nothing_lists_ports_and_arrays(net):
    with pytest.raises(NetError) as err:
        net(np.zeros(2), NetPortGradient("Foo"))
    text = str(err.value)
    assert "NetPortGradient('Foo') names no input port and no array" in text
    assert "['Input']" in text and "('a', 'Weights')" in text and "('a', 'Biases')" in text
    assert "its arrays are []" not in text  # the top level holding no arrays itself is beside the point


def test_netportgradient_with_a_path_says_why(net):
    with pytest.raises(NetError, match=r"names no input port and no array of NetChain \(the net has no layer 'zz'"):
        net(np.zeros(2), NetPortGradient(("zz", "Weights")))
    with pytest.raises(NetError, match=r"\(ElementwiseLayer 'b' has no array 'Weights'"):
        net(np.zeros(2), [NetPortGradient("Input"), NetPortGradient(("b", "Weights"))])


@pytest.mark.parametrize("target", [3, None, NetPort("Input"), ()])
def test_netportgradient_needs_a_name(target):
    with pytest.raises(NetError, match="NetPortGradient needs a port or array name"):
        NetPortGradient(target)


def test_netportgradient_all_and_paths_still_work(net):
    grads = net(np.ones((3, 2)), NetPortGradient(All))
    assert NetPortGradient(("a", "Weights")) in grads and NetPortGradient("Input") in grads


@pytest.mark.parametrize(
    "spec, message",
    [
        ("Foo", r"NetChain has no output port 'Foo'; its outputs are \['Output'\]"),
        ("Input", "no output port 'Input' \\(an input port: NetPortGradient gives the gradient there\\)"),
        (NetPort("zz", "Output"), r"NetPort\('zz', 'Output'\): the net has no layer 'zz'"),
        (NetPort("a", "Input"), "LinearLayer 'a' has no output port 'Input'; .*output ports only"),
        (3, "cannot evaluate NetChain for 3"),
    ],
)
def test_bad_specs_are_named(net, spec, message):
    with pytest.raises(NetError, match=message):
        net(np.zeros(2), spec)


def test_shape_errors_stay_shape_errors():
    with pytest.raises(ShapeError):
        NetGraph({"a": L.LinearLayer(3, input=2), "b": L.LinearLayer(2, input=4)}, [("a", "b")])
