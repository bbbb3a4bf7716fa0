"""The forms that broadcast or reshape, transcribed from the Wolfram reference pages.

CatenateLayer replicating a lower-rank input, ThreadingLayer[f, n], "InputPorts" on the
layers with several inputs, ReshapeLayer with Inherited and All, FlattenLayer[Infinity]
and its level groups, AggregationLayer[Times]: the documented values, the shape rules,
the errors, float64 gradient checks and the save/load round trip of each.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import layers as L
import netgraph
from gradcheck import check_function, check_net
from netgraph import All, Automatic, Inherited, NetError, NetGraph, NetInitialize, NetPort, ShapeError, load

RNG = np.random.default_rng(17)


def check(device, net, inputs):
    """The float64 central-difference check of ``net`` at ``inputs`` (batches)."""
    check_net(net, inputs, device=device)


def roundtrip(layer, tmp_path, name="net.npz"):
    path = tmp_path / name
    layer.save(path)
    return load(path)


# --- InputPorts -------------------------------------------------------------------------------


def test_input_ports_count_names_and_shapes():
    assert L.TotalLayer(input_ports=3).input_ports == ("Input1", "Input2", "Input3")
    named = L.TotalLayer(input_ports=["a", "b"])
    assert named.input_ports == ("a", "b")
    assert named({"a": np.array([1.0, 2]), "b": np.array([3.0, 4])}).tolist() == [4.0, 6.0]
    shaped = L.CatenateLayer(input_ports=[(2,), 3])
    assert shaped.port_shapes == {"Input1": (2,), "Input2": (3,), "Output": (5,)}
    both = L.ThreadingLayer("Times", input_ports={"x": 2, "y": (2,)})
    assert both.port_shapes == {"x": (2,), "y": (2,), "Output": (2,)}
    assert both({"x": np.array([1.0, 2]), "y": np.array([3.0, 4])}).tolist() == [3.0, 8.0]


def test_input_ports_fix_the_wiring_of_a_graph():
    # three fixed ports, two wired: the third becomes an input of the graph
    net = NetGraph({"sum": L.TotalLayer(input_ports=3)}, [([NetPort("a"), NetPort("b")], "sum")], ports={"a": 2})
    assert net.input_ports == ("a", "b", "Input3")
    out = net({"a": np.array([1.0, 2]), "b": np.array([10.0, 20]), "Input3": np.array([100.0, 200])})
    assert out.tolist() == [111.0, 222.0]
    # named ports are addressed by name
    net = NetGraph(
        {"f": L.ThreadingLayer(lambda x, y: x - y, input_ports=["x", "y"])},
        [(NetPort("p"), NetPort("f", "y")), (NetPort("q"), NetPort("f", "x"))],
        ports={"p": 2, "q": 2},
    )
    assert net({"p": np.array([1.0, 1]), "q": np.array([5.0, 7])}).tolist() == [4.0, 6.0]
    with pytest.raises(NetError, match="no free input port"):
        NetGraph([L.TotalLayer(input_ports=["a", "b"])], [([NetPort("x"), NetPort("y"), NetPort("z")], 1)])
    with pytest.raises(NetError, match="no input port 'c'"):
        NetGraph({"t": L.TotalLayer(input_ports=["a", "b"])}, [(NetPort("x"), NetPort("t", "c"))])


@pytest.mark.parametrize(
    "spec, message",
    [
        (0, "a count of at least 1"),
        ([], "give a count"),
        ("ab", "give a count"),
        (True, "give a count"),
        (["a", "a"], "distinct"),
        (["Output", "a"], "cannot be named 'Output'"),
        ([(2, 0), 3], "positive integers"),
        ({"a": "x"}, "unknown shape spec"),
    ],
)
def test_input_ports_errors(spec, message):
    for make in (L.TotalLayer, L.CatenateLayer, lambda **kw: L.ThreadingLayer("Plus", **kw)):
        with pytest.raises(NetError, match=message):
            make(input_ports=spec)


def test_input_ports_limits_and_conflicts():
    with pytest.raises(NetError, match="not both"):
        L.TotalLayer(inputs=2, input_ports=2)
    with pytest.raises(NetError, match="not both"):
        L.ThreadingLayer("Plus", inputs=2, input_ports=2)
    with pytest.raises(NetError, match="beyond the limit Inputs"):
        L.CatenateLayer(input_ports=10**6)
    with pytest.raises(NetError, match="takes 2"):
        L.ThreadingLayer(lambda a, b: a + b, input_ports=["a", "b", "c"])
    with pytest.raises(ShapeError, match="do not match"):
        L.TotalLayer(input_ports=[2, 3])
    with pytest.raises(NetError, match="wired to 3"):
        L.TotalLayer(input_ports=2).set_input_count(3)


def test_input_ports_survive_save_and_load(tmp_path):
    for layer in (
        L.TotalLayer(input_ports={"a": 3, "b": 3}),
        L.CatenateLayer(-1, input_ports=[(2, 2), 3]),
        L.ThreadingLayer("Max", input_ports=["u", "v", "w"]),
        L.ThreadingLayer(lambda a, b: a / b, -1, input_ports={"num": (2, 3), "den": 2}),
        L.TotalLayer(input_ports=4),
    ):
        again = roundtrip(layer, tmp_path)
        assert type(again) is type(layer)
        assert again.input_ports == layer.input_ports and again.port_shapes == layer.port_shapes
        assert not again.variadic and again.config() == layer.config()
    assert L.TotalLayer(input_ports=4).config() == {"input_ports": 4}
    assert L.TotalLayer(input_ports=["a", "b"]).config() == {"input_ports": ["a", "b"]}
    assert L.TotalLayer().config() == {"inputs": 2}


# --- CatenateLayer ------------------------------------------------------------------------------


def test_catenate_reference_examples():
    # CatenateLayer[InputPorts -> {{2}, {3}}][{{1, 2}, {3, 4, 5}}]
    catenate = L.CatenateLayer(input_ports=[(2,), (3,)])
    assert catenate([np.array([1.0, 2]), np.array([3.0, 4, 5])]).tolist() == [1, 2, 3, 4, 5]
    # NetGraph[{CatenateLayer[]}, {{NetPort["In1"], NetPort["In2"]} -> 1}, "In1" -> {2}, "In2" -> {3}]
    net = NetGraph([L.CatenateLayer()], [([NetPort("In1"), NetPort("In2")], 1)], ports={"In1": 2, "In2": 3})
    assert net({"In1": np.array([1.0, 2]), "In2": np.array([3.0, 4, 5])}).tolist() == [1, 2, 3, 4, 5]
    # the rows of two matrices
    rows = L.CatenateLayer(input_ports=[(2, 2), (1, 2)])
    out = rows([np.array([[1.0, 2], [3, 4]]), np.array([[5.0, 6]])])
    assert out.tolist() == [[1, 2], [3, 4], [5, 6]]
    # two sequences of vectors into one sequence of longer vectors
    seqs = L.CatenateLayer(2, input_ports=[(3, 2), (3, 1)])
    assert seqs([np.ones((3, 2)), np.zeros((3, 1))]).tolist() == [[1, 1, 0]] * 3
    # two images side by side (level 3, the width of a channels-first image)
    side = L.CatenateLayer(3, input_ports=[(3, 4, 5), (3, 4, 2)])
    assert side.port_shapes["Output"] == (3, 4, 7)


def test_catenate_matrix_and_vector_replicates_the_vector():
    catenate = L.CatenateLayer(input_ports=[(2, 2), 3])
    assert catenate.port_shapes["Output"] == (2, 5)
    out = catenate([np.array([[1.0, 2], [3, 4]]), np.array([5.0, 6, 7])])
    assert out.tolist() == [[1, 2, 5, 6, 7], [3, 4, 5, 6, 7]]
    # the vector may come first, and a negative level counts from the end in every input
    first = L.CatenateLayer(-1, input_ports=[3, (2, 2)])
    assert first([np.array([5.0, 6, 7]), np.array([[1.0, 2], [3, 4]])]).tolist() == [[5, 6, 7, 1, 2], [5, 6, 7, 3, 4]]
    # rank 3 with a matrix: the matrix repeats along the first level
    deep = L.CatenateLayer(2, input_ports=[(2, 3, 4), (3, 1)])
    assert deep.port_shapes["Output"] == (2, 3, 5)
    x, m = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(3, 1))
    np.testing.assert_allclose(
        deep([x, m]), np.concatenate([x, np.broadcast_to(m, (2, 3, 1))], axis=2), rtol=1e-5, atol=1e-6
    )
    # a batch of both
    xs, vs = RNG.normal(size=(4, 2, 2)), RNG.normal(size=(4, 3))
    batch = catenate([xs, vs])
    assert batch.shape == (4, 2, 5)
    np.testing.assert_allclose(batch[:, 1, 2:], vs, rtol=1e-5, atol=1e-6)


def test_catenate_possible_issues():
    with pytest.raises(ShapeError, match="differ outside level 1"):
        L.CatenateLayer(input_ports=[(2, 3), (2, 4)])
    with pytest.raises(ShapeError, match="must be the last dimensions"):
        L.CatenateLayer(input_ports=[(2, 3, 4), (5, 1)])
    with pytest.raises(ShapeError, match="level 2 does not exist"):
        L.CatenateLayer(2, input_ports=[(2, 3), 3])
    with pytest.raises(ShapeError, match="scalar inputs"):
        L.CatenateLayer(input_ports=["Real", 3])
    for level in (0, 1.5, True, "1"):
        with pytest.raises(NetError, match="nonzero integer"):
            L.CatenateLayer(level)


def test_catenate_gradients(device):
    net = L.CatenateLayer(input_ports=[(2, 2), 3])
    check(device, net, {"Input1": RNG.normal(size=(3, 2, 2)), "Input2": RNG.normal(size=(3, 3))})
    deep = L.CatenateLayer(-2, input_ports=[(2, 3, 4), (5, 4), (1, 4)])
    assert deep.port_shapes["Output"] == (2, 9, 4)
    inputs = {"Input1": (2, 2, 3, 4), "Input2": (2, 5, 4), "Input3": (2, 1, 4)}
    check(device, deep, {port: RNG.normal(size=shape) for port, shape in inputs.items()})


# --- ThreadingLayer ------------------------------------------------------------------------------


def test_threading_reference_examples():
    assert L.ThreadingLayer(lambda a, b: a * b)([np.array([1.0, 2]), np.array([3.0, 4])]).tolist() == [3.0, 8.0]
    # ThreadingLayer[Plus, -1] broadcasts as Plus does: a vector threads over the rows of a matrix
    plus = L.ThreadingLayer("Plus", -1, input_ports=[2, (2, 3)])
    assert plus.port_shapes["Output"] == (2, 3)
    out = plus([np.array([1.0, 2]), np.array([[1.0, 2, 3], [4, 5, 6]])])
    assert out.tolist() == (np.array([1.0, 2])[:, None] + np.array([[1.0, 2, 3], [4, 5, 6]])).tolist()
    assert out.tolist() == [[2, 3, 4], [6, 7, 8]]
    # level 1: the levels go in front, as NumPy broadcasts
    front = L.ThreadingLayer("Plus", 1, input_ports=[3, (2, 3)])
    assert front([np.array([1.0, 2, 3]), np.array([[1.0, 2, 3], [4, 5, 6]])]).tolist() == [[2, 4, 6], [5, 7, 9]]
    # Automatic: an axis of size 1 stretches
    auto = L.ThreadingLayer("Times", input_ports=[(2, 1), (2, 3)])
    assert auto([np.array([[1.0], [2]]), np.ones((2, 3))]).tolist() == [[1, 1, 1], [2, 2, 2]]


def test_threading_inserted_levels_in_the_middle_and_per_input():
    # a 2×4 input lacks level 2 of a 2×3×4 one: inserted at its level 2
    mid = L.ThreadingLayer(lambda a, b: a - b, [Automatic, 2], input_ports=[(2, 3, 4), (2, 4)])
    a, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 4))
    np.testing.assert_allclose(mid([a, b]), a - b[:, None, :], rtol=1e-5, atol=1e-6)
    # -2 counts from the end: the same place for a rank-2 input
    assert L.ThreadingLayer("Plus", -2, input_ports=[(2, 3, 4), (2, 4)]).port_shapes["Output"] == (2, 3, 4)
    # several levels at once, and a size-1 axis that still stretches
    many = L.ThreadingLayer("Plus", -1, input_ports=[(2, 1, 5), 2])
    assert many.port_shapes["Output"] == (2, 1, 5)
    three = L.ThreadingLayer("Plus", [1, -1, Automatic], input_ports=[4, 2, (2, 4)])
    x, y, z = np.arange(4.0), np.array([10.0, 20]), np.zeros((2, 4))
    assert three([x, y, z]).tolist() == (x[None, :] + y[:, None] + z).tolist()


def test_threading_broadcasting_errors():
    with pytest.raises(ShapeError, match=r"different ranks.*ThreadingLayer\(f, n\) inserts"):
        L.ThreadingLayer("Plus", input_ports=[2, (2, 3)])
    with pytest.raises(ShapeError, match="do not broadcast: level 1 has sizes"):
        L.ThreadingLayer("Plus", -1, input_ports=[3, (2, 3)])
    with pytest.raises(ShapeError, match="level 3 does not exist"):
        L.ThreadingLayer("Plus", 3, input_ports=[3, (2, 3)])
    with pytest.raises(ShapeError, match="do not match"):
        L.ThreadingLayer("Plus", None, input_ports=[(3, 1), (3, 3)])
    with pytest.raises(ShapeError, match="the shapes must be equal"):
        L.ThreadingLayer("Plus", [None, Automatic], input_ports=[(3, 1), (3, 3)])
    for bad in (0, 1.5, "Automatic", [], [1, 0], True):
        with pytest.raises(NetError, match="broadcasting must be Automatic, None"):
            L.ThreadingLayer("Plus", bad)
    with pytest.raises(NetError, match="2 settings for 3 inputs"):
        L.ThreadingLayer("Plus", [1, -1], inputs=3)


def test_threading_prints_its_broadcasting():
    assert repr(L.ThreadingLayer("Plus")) == "ThreadingLayer(Plus)"
    assert repr(L.ThreadingLayer("Plus", -1)) == "ThreadingLayer(Plus, -1)"
    assert repr(L.ThreadingLayer(lambda a, b: a * b, None)) == "ThreadingLayer(#1*#2&, None)"
    assert repr(L.ThreadingLayer("Times", [1, Automatic])) == "ThreadingLayer(Times, {1, Automatic})"


def test_threading_gradients(device):
    net = L.ThreadingLayer(lambda a, b: a * netgraph.exp(b), -1, input_ports=[(2,), (2, 3)])
    check(device, net, {"Input1": RNG.normal(size=(3, 2)), "Input2": RNG.normal(size=(3, 2, 3))})
    net = L.ThreadingLayer("Times", [Automatic, 2, 1], input_ports=[(2, 3, 4), (2, 4), (1, 4)])
    inputs = {"Input1": (2, 2, 3, 4), "Input2": (2, 2, 4), "Input3": (2, 1, 4)}
    check(device, net, {port: RNG.normal(size=shape) for port, shape in inputs.items()})


def test_threading_round_trip(tmp_path):
    layer = L.ThreadingLayer("Plus", [1, -1, Automatic], input_ports=[4, 2, (2, 4)])
    again = roundtrip(layer, tmp_path)
    assert again.broadcasting == [1, -1, Automatic] and again.port_shapes == layer.port_shapes
    data = [np.arange(4.0), np.array([1.0, 2]), np.ones((2, 4))]
    np.testing.assert_array_equal(again(data), layer(data))
    plain = roundtrip(L.ThreadingLayer("Plus", None), tmp_path, "none.npz")
    assert plain.broadcasting is None and repr(plain) == "ThreadingLayer(Plus, None)"


# --- ReshapeLayer ------------------------------------------------------------------------------------


def test_reshape_reference_examples():
    assert L.ReshapeLayer([2, 3])(np.arange(1.0, 7)).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert L.ReshapeLayer([2, 3], input=(3, 2)).port_shapes["Output"] == (2, 3)
    # a vector of length 1 into a single number
    scalar = L.ReshapeLayer([], input=1)
    assert scalar.port_shapes["Output"] == () and float(scalar(np.array([4.0]))) == 4.0
    assert L.ReshapeLayer([Automatic, 2], input=6).port_shapes["Output"] == (3, 2)
    assert L.ReshapeLayer(np.array([3, 2]), input=6).port_shapes["Output"] == (3, 2)


def test_reshape_inherited_and_all():
    x = np.arange(24.0).reshape(2, 3, 4)
    keep = L.ReshapeLayer([Inherited, Automatic], input=(2, 3, 4))
    assert keep.port_shapes["Output"] == (2, 12)
    np.testing.assert_array_equal(keep(x), x.reshape(2, 12))
    assert L.ReshapeLayer([Inherited, 2, Automatic], input=(5, 6)).port_shapes["Output"] == (5, 2, 3)
    assert L.ReshapeLayer([2, 3, All], input=(6, 4, 5)).port_shapes["Output"] == (2, 3, 4, 5)
    assert L.ReshapeLayer([Inherited, 2, 3, All], input=(5, 6, 7, 8)).port_shapes["Output"] == (5, 2, 3, 7, 8)
    assert L.ReshapeLayer([All, 12], input=(5, 3, 4)).port_shapes["Output"] == (5, 12)
    assert L.ReshapeLayer([All, Inherited], input=(5, 3, 4)).port_shapes["Output"] == (5, 3, 4)
    assert L.ReshapeLayer([All], input=(5, 3)).port_shapes["Output"] == (5, 3)
    assert L.ReshapeLayer([6, All], input=(2, 3)).port_shapes["Output"] == (6,)
    split = L.ReshapeLayer([2, 3, All], input=(6, 2))
    y = RNG.normal(size=(6, 2))
    np.testing.assert_allclose(split(y), y.reshape(2, 3, 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "dims, shape, error, message",
    [
        ([Automatic, Automatic], None, NetError, "at most one dimension may be Automatic or All"),
        ([Automatic, All], None, NetError, "at most one"),
        ([All, 2, All], None, NetError, "at most one"),
        ([0, 2], None, NetError, "positive integer, Automatic"),
        ([2.5], None, NetError, "positive integer"),
        (["Inherited", 2], None, NetError, "positive integer"),
        ([True, 2], None, NetError, "positive integer"),
        ([4, 5], (2, 3), ShapeError, r"cannot reshape 2×3 \(6 elements\) into \{4, 5\}"),
        ([Inherited, Inherited, Inherited], (2, 3), ShapeError, "inherits a level that 2×3 lacks"),
        ([5, All], (2, 3), ShapeError, "whole leading and trailing dimensions"),
        ([All, 2, Inherited], (5, 6, 4, 8), ShapeError, "whole leading"),
    ],
)
def test_reshape_errors(dims, shape, error, message):
    with pytest.raises(error, match=message):
        L.ReshapeLayer(dims, input=shape)


def test_reshape_gradient_and_round_trip(tmp_path, device):
    check(device, L.ReshapeLayer([Inherited, Automatic], input=(2, 3, 4)), {"Input": RNG.normal(size=(2, 2, 3, 4))})
    check(device, L.ReshapeLayer([2, 3, All], input=(6, 2)), {"Input": RNG.normal(size=(2, 6, 2))})
    for dims, shape in (
        ([Inherited, Automatic], (2, 3, 4)),
        ([2, 3, All], (6, 7)),
        ([Inherited, 2, 3, All], (5, 6, 7)),
    ):
        layer = L.ReshapeLayer(dims, input=shape)
        again = roundtrip(layer, tmp_path)
        assert again.dims == layer.dims and again.port_shapes == layer.port_shapes
    assert netgraph.Inherited is Inherited and repr(Inherited) == "Inherited"


# --- FlattenLayer -------------------------------------------------------------------------------------


def test_flatten_infinity_and_levels():
    x = np.arange(24.0).reshape(2, 3, 4)
    for layer in (L.FlattenLayer(), L.FlattenLayer(math.inf), L.FlattenLayer(np.inf)):
        assert layer.config() == {"n": None}
        np.testing.assert_array_equal(layer(x), x.flatten())  # FlattenLayer[] acts as Flatten
    # the first two levels; the first three of a 2×3×4×5 array; the last three
    assert L.FlattenLayer(1, input=(2, 3, 4)).port_shapes["Output"] == (6, 4)
    assert L.FlattenLayer(2, input=(2, 3, 4, 5)).port_shapes["Output"] == (24, 5)
    assert L.FlattenLayer(-2, input=(2, 3, 4, 5)).port_shapes["Output"] == (2, 60)
    assert L.FlattenLayer(0, input=(2, 3)).port_shapes["Output"] == (2, 3)
    # FlattenLayer[n] is a ReshapeLayer
    y = RNG.normal(size=(2, 3, 4, 5))  # one example: its shape is not fixed
    np.testing.assert_array_equal(L.FlattenLayer(2)(y), L.ReshapeLayer([24, 5])(y))


def test_flatten_level_groups():
    x = np.arange(24.0).reshape(2, 3, 4)
    # levels 2 and 3 into level 1 of the result, as Flatten[x, {{2, 3}, {1}}]
    groups = L.FlattenLayer([[2, 3]], input=(2, 3, 4))
    assert groups.port_shapes["Output"] == (12, 2)
    out = groups(x)
    assert out.shape == (12, 2)
    np.testing.assert_array_equal(out, x.reshape(2, 12).T)
    np.testing.assert_array_equal(L.FlattenLayer([[2, 3], [1]])(x), out)
    # one level per group transposes; a bare level is a group of one
    np.testing.assert_array_equal(L.FlattenLayer([[2], [1]])(x), x.transpose(1, 0, 2))
    np.testing.assert_array_equal(L.FlattenLayer([2])(x), x.transpose(1, 0, 2))
    np.testing.assert_array_equal(L.FlattenLayer([[1, 2], [3]])(x), x.reshape(6, 4))
    np.testing.assert_array_equal(L.FlattenLayer([[3, 1]])(x), x.transpose(2, 0, 1).reshape(8, 3))


@pytest.mark.parametrize(
    "spec, message",
    [("x", "expected Infinity"), ([[0]], "expected Infinity"), ([[]], "expected Infinity"), (True, "expected Infinity"),
     ([[1], [1]], "appears twice"), ([], "expected Infinity"), (-math.inf, "expected Infinity")],
)  # fmt: skip
def test_flatten_errors(spec, message):
    with pytest.raises(NetError, match=message):
        L.FlattenLayer(spec)


def test_flatten_shape_errors():
    with pytest.raises(ShapeError, match="level 4 of"):
        L.FlattenLayer([[2, 4]], input=(2, 3, 4))
    with pytest.raises(ShapeError, match="needs rank > 3"):
        L.FlattenLayer(3, input=(2, 3, 4))


def test_flatten_gradient_and_round_trip(tmp_path, device):
    check(device, L.FlattenLayer([[3, 1]], input=(2, 3, 4)), {"Input": RNG.normal(size=(2, 2, 3, 4))})
    for spec in ([[2, 3]], math.inf, -1):
        layer = L.FlattenLayer(spec, input=(2, 3, 4))
        again = roundtrip(layer, tmp_path)
        assert again.n == layer.n and again.port_shapes == layer.port_shapes


# --- AggregationLayer[Times] ---------------------------------------------------------------------------


def test_aggregation_times():
    m = np.array([[1.0, 2, 3], [4, 5, 6]])
    assert L.AggregationLayer("Times", input=(2, 3))(m).tolist() == [6.0, 120.0]
    assert L.AggregationLayer("Times", 1, input=(2, 3))(m).tolist() == [4.0, 10.0, 18.0]
    assert float(L.AggregationLayer("Times", All, input=(2, 3))(m)) == 720.0
    assert L.AggregationLayer("Times", All, input=(2, 3)).port_shapes["Output"] == ()
    with pytest.raises(NetError, match="'Times'"):
        L.AggregationLayer("Product")


def test_aggregation_times_gradient_holds_at_zeros(device):
    def product(x):
        return L.array._product(x, axis=(1, 2))

    for x in (RNG.normal(size=(3, 2, 4)), np.array([[[0.0, 2], [3, 4]], [[0.0, 0], [1, 2]]])):
        check_function(product, [x], device=device)
    # the gradient at an input with a zero: the product of the other factors
    layer = L.AggregationLayer("Times", All, input=3)
    assert layer(np.array([0.0, 2.0, 3.0]), netgraph.NetPortGradient("Input")).tolist() == [6.0, 0.0, 0.0]
    assert layer(np.array([0.0, 0.0, 3.0]), netgraph.NetPortGradient("Input")).tolist() == [0.0, 0.0, 0.0]
    check(
        device,
        NetInitialize(L.AggregationLayer("Times", [1, 3], input=(2, 3, 2))),
        {"Input": RNG.normal(size=(2, 2, 3, 2))},
    )


def test_aggregation_times_round_trip(tmp_path):
    layer = L.AggregationLayer("Times", [1, 3], input=(2, 3, 2))
    again = roundtrip(layer, tmp_path)
    x = RNG.normal(size=(2, 3, 2))
    np.testing.assert_allclose(again(x), x.prod(axis=(0, 2)), rtol=1e-5)
