"""The worked examples of the reference, as unit tests, plus layer shape rules."""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from netgraph import All, NetChain, NetError, ShapeError


def test_linear_layer_example():
    assert L.LinearLayer(2, weights=[[1, 2], [3, 4]], biases=[0.5, -1])(np.array([1.0, 1.0])).tolist() == [3.5, 6.0]


def test_linear_layer_forms():
    assert L.LinearLayer((3, 2), input=(2, 5)).array_shapes() == {"Weights": (6, 10), "Biases": (3, 2)}
    assert L.LinearLayer((), input=4).port_shapes["Output"] == ()
    assert "Biases" not in L.LinearLayer(3, biases=None).arrays
    assert L.LinearLayer(weights=np.ones((4, 3))).port_shapes == {"Input": (3,), "Output": (4,)}


def test_elementwise_examples():
    assert L.ElementwiseLayer("Ramp")(np.array([-1.0, 0, 2])).tolist() == [0.0, 0.0, 2.0]
    assert L.ElementwiseLayer(lambda x: -0.5 * x)(np.array([2.0, 4])).tolist() == [-1.0, -2.0]


def test_total_threading_summation_examples():
    assert L.TotalLayer()([np.array([1.0, 2, 3]), np.array([4.0, 5, 6])]).tolist() == [5.0, 7.0, 9.0]
    assert L.ThreadingLayer(lambda a, b: a * b)([np.array([1.0, 2]), np.array([3.0, 4])]).tolist() == [3.0, 8.0]
    assert float(L.SummationLayer(input=4)(np.array([1, 2, 3, -0.3]))) == pytest.approx(5.7)


def test_aggregation_catenate_flatten_reshape():
    assert L.AggregationLayer("Max")(np.array([[1.0, 5], [3, 2]])).tolist() == [5.0, 3.0]
    assert L.CatenateLayer()([np.array([1.0, 2]), np.array([3.0, 4, 5])]).tolist() == [1, 2, 3, 4, 5]
    assert L.FlattenLayer(input=(2, 3, 4)).port_shapes["Output"] == (24,)
    assert L.FlattenLayer(1, input=(2, 3, 4)).port_shapes["Output"] == (6, 4)
    assert L.FlattenLayer(-1, input=(2, 3, 4)).port_shapes["Output"] == (2, 12)
    assert L.ReshapeLayer([2, 3])(np.arange(1.0, 7)).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert L.AggregationLayer("Mean", All, input=(2, 3)).port_shapes["Output"] == ()


def test_part_transpose_replicate():
    assert float(L.PartLayer(-2)(np.arange(1.0, 7))) == 5.0
    assert L.PartLayer(slice(2, 4))(np.arange(1.0, 7)).tolist() == [2.0, 3.0, 4.0]
    assert L.TransposeLayer([(1, 3), (2, 4)], input=(3, 4, 5, 6)).port_shapes["Output"] == (5, 6, 3, 4)
    assert L.TransposeLayer(input=(2, 3))(np.arange(6.0).reshape(2, 3)).tolist() == [[0, 3], [1, 4], [2, 5]]
    assert L.ReplicateLayer(3)(np.array([1.0, 2])).tolist() == [[1, 2], [1, 2], [1, 2]]
    assert L.ReplicateLayer(3, -1, input=(2,)).port_shapes["Output"] == (2, 3)


def test_constant_layers():
    assert L.ConstantTimesLayer(scaling=[2, 3])(np.array([1.0, 1])).tolist() == [2.0, 3.0]
    assert L.ConstantPlusLayer(biases=[1, -1])(np.array([1.0, 1])).tolist() == [2.0, 0.0]
    assert L.ConstantArrayLayer(array=[1, 2])().tolist() == [1.0, 2.0]


def test_losses():
    data = {"Input": np.array([1.0, 2, 3]), "Target": np.array([1.0, 2, 5])}
    assert float(L.MeanSquaredLossLayer()(data)) == pytest.approx(4 / 3)
    assert float(L.MeanAbsoluteLossLayer()(data)) == pytest.approx(2 / 3)
    assert float(L.CrossEntropyLossLayer("Index")({"Input": np.array([0.1, 0.7, 0.2]), "Target": 2})) == pytest.approx(
        0.356675, abs=1e-6
    )
    assert float(L.CrossEntropyLossLayer("Binary")({"Input": np.array(0.8), "Target": np.array(1.0)})) == pytest.approx(
        0.223144, abs=1e-6
    )
    p, t = np.array([0.2, 0.5, 0.3]), np.array([0.0, 1.0, 0.0])
    assert float(L.CrossEntropyLossLayer("Probabilities")({"Input": p, "Target": t})) == pytest.approx(-np.log(0.5))


def test_binary_cross_entropy_is_finite_at_the_ends():
    out = L.CrossEntropyLossLayer("Binary")({"Input": np.array([0.0, 1.0]), "Target": np.array([1.0, 0.0])})
    assert np.isfinite(out) and out == pytest.approx(100.0)


def test_index_target_out_of_range():
    with pytest.raises(NetError, match="1..3"):
        L.CrossEntropyLossLayer("Index")({"Input": np.array([0.1, 0.7, 0.2]), "Target": 4})


def test_softmax_sums_to_one():
    out = L.SoftmaxLayer()(np.random.default_rng(0).normal(size=(4, 5)) * 50)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-6)


def test_shape_rule_errors_name_the_layer():
    with pytest.raises(ShapeError, match="ReshapeLayer"):
        L.ReshapeLayer([4, 4], input=10)
    with pytest.raises(ShapeError, match="PartLayer"):
        L.PartLayer(5, input=3)
    with pytest.raises(NetError, match="unknown activation"):
        L.ElementwiseLayer("Relu6")


def test_shorthand_conversions_in_chains():
    chain = NetChain([3, "Ramp", 2], input=4)
    assert [type(layer).__name__ for layer in chain.vertices.values()] == [
        "LinearLayer",
        "ElementwiseLayer",
        "LinearLayer",
    ]
    assert chain.port_shapes["Output"] == (2,)


def test_given_weights_of_a_standalone_layer_are_checked():
    with pytest.raises(ShapeError, match="Weights"):
        L.LinearLayer(2, input=3, weights=np.ones((2, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_matches_its_traced_definition(dtype):
    """The hand-written primitive against the clamped formula traced and differentiated symbolically,
    including p = 0 and 1 exactly and p so small that its log is clamped."""
    import netgraph.symbolic as sym
    from layers.loss import binary_cross_entropy
    from netgraph.fused import apply_function

    definition = sym.trace(
        lambda p, t: -(t * sym.maximum(sym.log(p), -100.0) + (1.0 - t) * sym.maximum(sym.log(1.0 - p), -100.0))
    )
    rng = np.random.default_rng(3)
    edges = np.array([0.0, 1.0, 1e-45 if dtype == np.float32 else 1e-300, 1e-20, 0.5])
    for p in (rng.uniform(0.001, 0.999, (6, 7)), np.broadcast_to(edges, (3, 5)).copy()):
        p = p.astype(dtype)
        t = rng.uniform(0, 1, p.shape).astype(dtype)
        g = rng.normal(size=p.shape).astype(dtype)
        loss, vjp = binary_cross_entropy.raw(p, t)
        expected, expected_vjp = apply_function.raw(p, t, function=definition)
        assert loss.dtype == dtype and np.isfinite(loss).all()
        np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
        for got, want in zip(vjp(g, (True, True)), expected_vjp(g, (True, True))):
            assert got.dtype == dtype
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-5)
