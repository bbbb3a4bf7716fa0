"""Table-driven gradient checks: one line per primitive and per layer.

hypothesis draws the batch size, the shapes, the options and the values;
every case goes through the one checker in gradcheck.py, on every backend.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layers as L
import netgraph.symbolic as sym
from gradcheck import check_function, check_net
from netgraph import NetChain, NetGraph, NetInitialize, NetPort, NormalDistribution, ops
from netgraph.fused import apply_function

dims = st.integers(1, 4)
batch = st.integers(1, 3)


def values(draw, shape, low=-2.0, high=2.0):
    seed = draw(st.integers(0, 2**31))
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def away_from(draw, shape, points, margin=0.05):
    """Values that keep a margin from the kinks of non-smooth functions."""
    x = values(draw, shape)
    for p in points:
        x = np.where(np.abs(x - p) < margin, p + margin * np.sign(x - p + 1e-12) * 2, x)
    return x


# --- primitives: (name, draw -> (function of tensors, argument arrays)) ---------------


def _binary(op):
    def case(draw):
        shape = tuple(draw(st.lists(dims, min_size=1, max_size=3)))
        other = tuple(draw(st.sampled_from([n, 1])) for n in shape)  # broadcasting
        return op, [values(draw, shape), values(draw, other) + (3.0 if op is ops.div else 0.0)]

    return case


def _unary(fn, low=-2.0, high=2.0, **kw):
    def case(draw):
        shape = tuple(draw(st.lists(dims, min_size=1, max_size=3)))
        return (lambda x: fn(x, **kw)), [values(draw, shape, low, high)]

    return case


def _reduce(fn):
    def case(draw):
        shape = tuple(draw(st.lists(dims, min_size=1, max_size=3)))
        axis = draw(st.sampled_from([None, *range(len(shape))]))
        keep = draw(st.booleans())
        return (lambda x: fn(x, axis=axis, keepdims=keep)), [values(draw, shape)]

    return case


def _matmul(draw):
    n, k, m = draw(dims), draw(dims), draw(dims)
    lead = tuple(draw(st.lists(dims, max_size=1)))
    return ops.matmul, [values(draw, lead + (n, k)), values(draw, (k, m))]


def _affine(draw):
    n, k, m = draw(dims), draw(dims), draw(dims)
    x, w, b = values(draw, (n, k)), values(draw, (m, k)), values(draw, (m,))
    if draw(st.booleans()):  # column-major, as a flattened batch-last convolution output
        x = np.asfortranarray(x)
    if draw(st.booleans()):
        return ops.affine, [x, w, b]
    return (lambda x, w: ops.affine(x, w)), [x, w]


def _getitem(draw):
    shape = (draw(dims), draw(dims))
    if draw(st.booleans()):
        index = (slice(draw(st.integers(0, shape[0] - 1)), None), draw(st.integers(0, shape[1] - 1)))
    else:
        index = np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5)))  # repeats add up
    return (lambda x: ops.getitem(x, index)), [values(draw, shape)]


def _concatenate(draw):
    a, b, c = draw(dims), draw(dims), draw(dims)
    return (lambda x, y: ops.concatenate(x, y, axis=1)), [values(draw, (a, b)), values(draw, (a, c))]


def _pad(draw):
    shape = (draw(dims), draw(dims))
    width = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    return (lambda x: ops.pad(x, width, value=0.5)), [values(draw, shape)]


def _transpose(draw):
    shape = tuple(draw(st.lists(dims, min_size=2, max_size=4)))
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return (lambda x: ops.transpose(x, perm)), [values(draw, shape)]


def _broadcast(draw):
    n = draw(dims)
    return (lambda x: ops.broadcast_to(x, (3, n))), [values(draw, (1, n))]


PRIMITIVES = {
    "add": _binary(ops.add),
    "sub": _binary(ops.sub),
    "mul": _binary(ops.mul),
    "div": _binary(ops.div),
    "neg": _unary(ops.neg),
    "power": _unary(ops.power, 0.5, 2.0, exponent=2.5),
    "matmul": _matmul,
    "affine": _affine,
    "sum": _reduce(ops.sum),
    "mean": _reduce(ops.mean),
    "max": _reduce(ops.max),
    "min": _reduce(ops.min),
    "reshape": _unary(lambda x: ops.reshape(x, (-1,))),
    "transpose": _transpose,
    "broadcast_to": _broadcast,
    "getitem": _getitem,
    "concatenate": _concatenate,
    "pad": _pad,
    "softmax": _unary(ops.softmax, axis=-1),
}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@given(data=st.data())
def test_primitive_gradient(name, data, device):
    f, args = PRIMITIVES[name](data.draw)
    check_function(f, args, device=device)


# --- every symbolic elementwise operation, through the fused primitive -------------

SYMBOLIC = {
    "exp": (sym.exp, (-2, 2)),
    "log": (sym.log, (0.2, 3)),
    "sqrt": (sym.sqrt, (0.2, 3)),
    "log1p": (sym.log1p, (-0.5, 2)),
    "expm1": (sym.expm1, (-2, 2)),
    "tanh": (sym.tanh, (-2, 2)),
    "sin": (sym.sin, (-3, 3)),
    "cos": (sym.cos, (-3, 3)),
    "tan": (sym.tan, (-1, 1)),
    "arctan": (sym.arctan, (-3, 3)),
    "erf": (sym.erf, (-2.5, 2.5)),
    "abs": (abs, (-2, 2)),
    "ramp": (sym.ramp, (-2, 2)),
    "logistic_sigmoid": (sym.logistic_sigmoid, (-6, 6)),
    "softplus": (sym.softplus, (-30, 30)),
    "pow": (lambda x: x**1.7, (0.2, 2)),
    "pow_var": (lambda x: 1.5**x, (-2, 2)),
    "div": (lambda x: 1 / (1 + x * x), (-2, 2)),
    "maximum": (lambda x: sym.maximum(x, 0.3 * x), (-2, 2)),
    "minimum": (lambda x: sym.minimum(x, 1.0), (-2, 2)),
    "where": (lambda x: sym.where(x > 0.5, x * x, -x), (-2, 2)),
    "clip": (lambda x: sym.clip(x, -1, 1), (-2, 2)),
    "leaky_ramp": (lambda x: sym.leaky_ramp(x, 0.2), (-2, 2)),
}
KINKS = {"abs": [0], "ramp": [0], "maximum": [0], "minimum": [1], "where": [0.5], "clip": [-1, 1], "leaky_ramp": [0]}


@pytest.mark.parametrize("name", sorted(SYMBOLIC))
@given(data=st.data())
def test_symbolic_gradient(name, data, device):
    fn, (low, high) = SYMBOLIC[name]
    function = sym.trace(fn, 1)
    shape = (data.draw(dims), data.draw(dims))
    x = values(data.draw, shape, low, high)
    for p in KINKS.get(name, []):
        x = np.where(np.abs(x - p) < 0.05, p + 0.1, x)
    check_function(lambda t: apply_function(t, function=function), [x], device=device)


# Each named function inside its domain (real values, away from poles); WITH_JUMPS jump at integers or halves.
ACTIVATION_DOMAINS = {
    **dict.fromkeys(["Log", "Sqrt", "Gamma", "LogGamma"], (0.2, 3.0)),
    **dict.fromkeys(["ArcSin", "ArcCos", "ArcTanh"], (-0.9, 0.9)),
    "ArcCosh": (1.2, 3.0),
    "Tan": (-1.2, 1.2),
}
WITH_JUMPS = {"Round", "Floor", "Ceiling", "Sign", "IntegerPart", "FractionalPart", "Unitize", "KroneckerDelta"}


@pytest.mark.parametrize("name", sorted(L.ACTIVATIONS))
@given(data=st.data())
def test_named_activation_gradient(name, data, device):
    layer = L.ElementwiseLayer(name, input=(data.draw(dims), data.draw(dims)))
    low, high = ACTIVATION_DOMAINS.get(name, (-3.0, 3.0))
    x = values(data.draw, (data.draw(batch), *layer.port_shapes["Input"]), low, high)
    if name in WITH_JUMPS:
        x = np.floor(x) + 0.25  # away from every jump (integers and halves)
    elif low < 0:
        x = np.where(np.abs(x) < 0.05, 0.1, x)  # away from kinks at 0
        x = np.where(np.abs(np.abs(x) - 1) < 0.05, 1.1 * np.sign(x), x)  # and at ±1 (HardTanh, HardSigmoid)
    check_net(layer, {"Input": x}, device=device)


# --- layers: (name, draw -> (layer or net, inputs)) ------------------------------------


def _linear(draw):
    in_shape = tuple(draw(st.lists(dims, min_size=1, max_size=3)))
    out = draw(st.sampled_from([draw(dims), (), (2, draw(dims))]))
    biases = draw(st.sampled_from(["Automatic", None]))
    layer = L.LinearLayer(out, input=in_shape, biases=biases)
    return layer, {"Input": values(draw, (draw(batch), *in_shape))}


def _threading(draw):
    shape = (draw(dims), draw(dims))
    other = tuple(draw(st.sampled_from([n, 1])) for n in shape)
    layer = NetGraph(
        [L.ThreadingLayer(lambda a, b: a * sym.exp(b) - b / (2 + a * a))],
        [(NetPort("a"), NetPort(1, "Input1")), (NetPort("b"), NetPort(1, "Input2"))],
        ports={"a": shape, "b": other},
    )
    n = draw(batch)
    return layer, {"a": values(draw, (n, *shape)), "b": values(draw, (n, *other))}


def _variadic(cls, **kw):
    def case(draw):
        k = draw(st.integers(1, 4))
        shape = (draw(dims), draw(dims))
        net = NetGraph(
            [cls(**kw)], [([NetPort(f"x{i}") for i in range(k)], 1)], ports={f"x{i}": shape for i in range(k)}
        )
        n = draw(batch)
        return net, {f"x{i}": values(draw, (n, *shape)) for i in range(k)}

    return case


def _unary_layer(make, shape_st=None, low=-2.0, high=2.0):
    def case(draw):
        shape = tuple(draw(st.lists(dims, min_size=1, max_size=3) if shape_st is None else shape_st))
        layer = make(draw, shape)
        return layer, {"Input": values(draw, (draw(batch), *shape), low, high)}

    return case


def _part(draw, shape):
    n = shape[0]
    spec = draw(
        st.sampled_from(
            [
                draw(st.integers(1, n)),
                -draw(st.integers(1, n)),
                slice(draw(st.integers(1, n)), None),
                [draw(st.integers(1, n)) for _ in range(3)],
            ]
        )
    )
    return L.PartLayer(spec, input=shape)


def _loss(kind):
    def case(draw):
        shape = (draw(dims), draw(dims))
        n = draw(batch)
        if kind == "Index":
            layer = L.CrossEntropyLossLayer("Index", input=shape)
            target = np.random.default_rng(draw(st.integers(0, 99))).integers(1, shape[-1] + 1, size=(n, shape[0]))
            return layer, {"Input": values(draw, (n, *shape), 0.1, 1.0), "Target": target.astype(float)}
        if kind in ("Binary", "Probabilities"):
            layer = L.CrossEntropyLossLayer(kind, input=shape)
            return layer, {"Input": values(draw, (n, *shape), 0.05, 0.95), "Target": values(draw, (n, *shape), 0, 1)}
        layer = kind(input=shape)
        x, t = values(draw, (n, *shape)), values(draw, (n, *shape))
        return layer, {"Input": x, "Target": np.where(np.abs(x - t) < 0.05, t + 0.2, t)}

    return case


LAYERS = {
    "LinearLayer": _linear,
    "ThreadingLayer": _threading,
    "TotalLayer": _variadic(L.TotalLayer),
    "CatenateLayer": _variadic(L.CatenateLayer, level=-1),
    "ThreadingLayer Times": _variadic(L.ThreadingLayer, f="Times"),
    "SummationLayer": _unary_layer(lambda d, s: L.SummationLayer(input=s)),
    "AggregationLayer": _unary_layer(
        lambda d, s: L.AggregationLayer(
            d(st.sampled_from(["Mean", "Max", "Min", "Total"])), d(st.sampled_from([None, 1, [len(s)]])), input=s
        ),
        st.lists(dims, min_size=2, max_size=3),
    ),
    "FlattenLayer": _unary_layer(
        lambda d, s: L.FlattenLayer(d(st.sampled_from([None, 0, -1])), input=s), st.lists(dims, min_size=2, max_size=3)
    ),
    "ReshapeLayer": _unary_layer(
        lambda d, s: L.ReshapeLayer([int(np.prod(s[1:])), s[0]], input=s), st.lists(dims, min_size=2, max_size=3)
    ),
    "PartLayer": _unary_layer(_part),
    "TransposeLayer": _unary_layer(
        lambda d, s: L.TransposeLayer(list(d(st.permutations(range(1, len(s) + 1)))), input=s),
        st.lists(dims, min_size=2, max_size=4),
    ),
    "TransposeLayer swap": _unary_layer(
        lambda d, s: L.TransposeLayer((1, len(s)), input=s), st.lists(dims, min_size=2, max_size=4)
    ),
    "ReplicateLayer": _unary_layer(lambda d, s: L.ReplicateLayer(d(dims), d(st.sampled_from([1, -1])), input=s)),
    "ConstantTimesLayer": _unary_layer(lambda d, s: L.ConstantTimesLayer(input=s)),
    "ConstantPlusLayer": _unary_layer(lambda d, s: L.ConstantPlusLayer(input=s)),
    "SoftmaxLayer": _unary_layer(lambda d, s: L.SoftmaxLayer(input=s)),
    "DropoutLayer": _unary_layer(lambda d, s: L.DropoutLayer(0.3, input=s)),
    "ElementwiseLayer": _unary_layer(lambda d, s: L.ElementwiseLayer(lambda x: sym.tanh(x) * x - 0.5 * x**3, input=s)),
    "MeanSquaredLossLayer": _loss(L.MeanSquaredLossLayer),
    "MeanAbsoluteLossLayer": _loss(L.MeanAbsoluteLossLayer),
    "CrossEntropyLossLayer Binary": _loss("Binary"),
    "CrossEntropyLossLayer Probabilities": _loss("Probabilities"),
    "CrossEntropyLossLayer Index": _loss("Index"),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@given(data=st.data())
def test_layer_gradient(name, data, device):
    net, inputs = LAYERS[name](data.draw)
    mode = "Train" if name == "DropoutLayer" else "Test"
    net = NetInitialize(net, random_seeding=data.draw(st.integers(0, 99)))
    constant = ("Target",) if name.endswith("Index") else ()  # class numbers are data
    check_net(net, inputs, device=device, evaluation_mode=mode, constant_inputs=constant)


def test_affine_input_gradient_keeps_a_column_major_input_layout():
    rng = np.random.default_rng(0)
    x, w, g = np.asfortranarray(rng.standard_normal((5, 7))), rng.standard_normal((3, 7)), rng.standard_normal((5, 3))
    gx = ops.affine.raw(x, w)[1](g, (True, False))[0]
    assert gx.flags.f_contiguous and not gx.flags.c_contiguous
    np.testing.assert_allclose(gx, g @ w, rtol=1e-12)
    assert ops.affine.raw(np.ascontiguousarray(x), w)[1](g, (True, False))[0].flags.c_contiguous


def test_random_array_layer_has_no_gradient_but_runs_in_a_graph():
    net = NetInitialize(
        NetGraph(
            {"eps": L.RandomArrayLayer(NormalDistribution(0, 1), output=3), "mul": L.ThreadingLayer("Times")},
            [(NetPort("Input"), NetPort("mul", "Input1")), ("eps", NetPort("mul", "Input2"))],
            input=3,
        )
    )
    check_net(net, {"Input": np.ones((2, 3))})


def test_whole_graph_with_fan_out_gradient():
    """A value used by several layers gets the sum of their gradients."""
    net = NetInitialize(
        NetGraph(
            {
                "lin": L.LinearLayer(4),
                "a": L.ElementwiseLayer("Tanh"),
                "b": L.ElementwiseLayer(lambda x: x * x),
                "sum": L.TotalLayer(),
                "out": L.LinearLayer(2),
            },
            [(NetPort("Input"), "lin"), ("lin", "a"), ("lin", "b"), (["a", "b", "lin"], "sum", "out")],
            input=3,
        )
    )
    check_net(net, {"Input": np.random.default_rng(0).normal(size=(3, 3))})


def test_nested_chain_in_graph_gradient():
    inner = NetChain([L.LinearLayer(5), "SELU", L.LinearLayer(3)])
    net = NetInitialize(
        NetGraph(
            {"enc": inner, "sq": L.ElementwiseLayer(lambda x: x**2)}, [(NetPort("Input"), "enc", "sq")], input=(2, 2)
        )
    )
    check_net(net, {"Input": np.random.default_rng(1).normal(size=(4, 2, 2))})


def test_erf_matches_math_erf():
    xs = np.linspace(-4, 4, 81)
    assert np.max(np.abs(sym.erf(xs) - np.array([math.erf(x) for x in xs]))) < 2e-7
