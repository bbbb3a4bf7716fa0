"""Traced elementwise functions: printing, derivatives, storage, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import netgraph.symbolic as sym
from layers import ElementwiseLayer, ThreadingLayer
from netgraph import TracingError, exp


@pytest.mark.parametrize(
    "fn, text",
    [
        (lambda x: -0.5 * x, "-0.5*#&"),
        (lambda x: -(x**2), "-#^2&"),
        (lambda x: -exp(2 * x), "-Exp[2*#]&"),
        (lambda x: 1 + 2 * x, "1 + 2*#&"),
        (lambda x: (1 - x) / (2 * x), "(1 - #)/(2*#)&"),
    ],
)
def test_prints_like_wolfram(fn, text):
    assert str(sym.trace(fn)) == text


def test_threading_function_prints_numbered_slots():
    assert str(ThreadingLayer(lambda a, b: a * b)) == "#1*#2&"


def test_symbolic_derivative_values():
    f = sym.trace(lambda x: sym.tanh(x) * sym.exp(-x * x))
    x = np.linspace(-2, 2, 9)
    exact = (1 - np.tanh(x) ** 2) * np.exp(-x * x) - 2 * x * np.tanh(x) * np.exp(-x * x)
    np.testing.assert_allclose(f.derivative(0).evaluate([x]), exact, rtol=1e-12)


def test_json_round_trip_without_pickle():
    f = sym.trace(lambda a, b: sym.where(a > b, sym.softplus(a), sym.log1p(b * b)) ** 2)
    stored = json.dumps(f.to_json())
    g = sym.Function.from_json(json.loads(stored))
    x, y = np.linspace(-2, 2, 7), np.linspace(2, -2, 7)
    np.testing.assert_array_equal(f.evaluate([x, y]), g.evaluate([x, y]))
    assert f == g


@pytest.mark.parametrize(
    "bad",
    [
        {"arity": 1, "expr": ["system", ["var", 0]]},
        {"arity": 1, "expr": ["var", 3]},
        {"arity": 1, "expr": ["const", "import os"]},
        {"arity": 1, "expr": ["exp", ["var", 0], ["var", 0]]},
        {"arity": 0, "expr": ["const", 1]},
        "not a dict",
    ],
)
def test_hostile_stored_expressions_are_refused(bad):
    with pytest.raises(TracingError, match="invalid stored"):
        sym.Function.from_json(bad)


@pytest.mark.parametrize(
    "fn, hint",
    [
        (lambda x: math.exp(x), "math.exp"),
        (lambda x: x if x > 0 else 0, "where"),
        (lambda x: max(x, 0), "maximum"),
        (lambda x: np.sinc(x), "trace"),
        (lambda x: x.foo, "could not trace"),
    ],
)
def test_untraceable_functions_get_a_clear_error(fn, hint):
    with pytest.raises(TracingError, match=hint):
        ElementwiseLayer(fn)


def test_numpy_ufuncs_are_traced_too():
    assert str(sym.trace(lambda x: np.exp(x) + np.tanh(x))) == "Exp[#] + Tanh[#]&"


def test_float32_is_kept_through_comparisons_and_constants():
    f = sym.trace(lambda x: sym.where(x > 0, 1.0, 0.25) * x)
    x = np.array([-1.0, 2.0], dtype=np.float32)
    assert f.evaluate([x]).dtype == np.float32
    assert f.derivative(0).evaluate([x]).dtype == np.float32


def test_named_activations_match_their_formulas():
    x = np.linspace(-3, 3, 13)
    formulas = {
        "Ramp": np.maximum(x, 0),
        "LogisticSigmoid": 1 / (1 + np.exp(-x)),
        "Tanh": np.tanh(x),
        "SELU": np.where(x >= 0, 1.0507009873554805 * x, 1.0507009873554805 * 1.6732632423543772 * np.expm1(x)),
        "ELU": np.where(x >= 0, x, np.expm1(x)),
        "Softplus": np.log1p(np.exp(x)),
        "GELU": 0.5 * x * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x])),
        "Exp": np.exp(x),
        "Abs": np.abs(x),
        "Sin": np.sin(x),
        "Cos": np.cos(x),
        "LeakyRamp": np.where(x >= 0, x, 0.01 * x),
    }
    for name, expected in formulas.items():
        got = ElementwiseLayer(name)(x[None], working_precision="Real64")[0]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(
        ElementwiseLayer(("LeakyRamp", 0.2))(x[None])[0], np.where(x >= 0, x, 0.2 * x), rtol=1e-6
    )


def test_max_min_against_a_constant_keep_dtype_layout_and_nan():
    # the constant becomes an array laid out like the other operand (a speed path): same results
    base = np.array([[-2.0, np.nan], [np.inf, -np.inf], [0.5, -0.0]], dtype=np.float32)
    x = base.T  # not C-contiguous
    cases = {
        "ramp": (sym.trace(lambda a: sym.ramp(a)), np.maximum(x, 0)),
        "max(a, 0.25)": (sym.trace(lambda a: sym.maximum(a, 0.25)), np.maximum(x, np.float32(0.25))),
        "min(-1, a)": (sym.trace(lambda a: sym.minimum(-1.0, a)), np.minimum(np.float32(-1), x)),
    }
    for name, (f, expected) in cases.items():
        got = f.evaluate([x])
        assert got.dtype == np.float32 and got.strides == x.strides, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
    assert sym.trace(lambda a: sym.ramp(a)).evaluate([np.float64(-3.0)]) == 0.0  # a scalar input


def test_stable_sigmoid_and_softplus_at_extremes():
    x = np.array([-1000.0, 1000.0])
    assert ElementwiseLayer("LogisticSigmoid")(x[None])[0].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(ElementwiseLayer("Softplus")(x[None])[0], [0.0, 1000.0])


@pytest.mark.parametrize("name", sorted(sym.OPS))
def test_every_operation_is_stored_by_its_name_and_read_back(name):
    f = sym.operation_function(name)
    stored = json.loads(json.dumps(f.to_json()))
    assert stored["expr"][0] == name
    g = sym.Function.from_json(stored)
    assert g == f and str(g) == str(f)


@pytest.mark.parametrize("ufunc, name", sorted(sym._NUMPY_UFUNCS.items()))
def test_every_traced_numpy_ufunc_builds_its_operation(ufunc, name):
    if not hasattr(np, ufunc):
        pytest.skip(f"numpy.{ufunc} is not in this NumPy")
    f = sym.trace(getattr(np, ufunc), sym.OPS[name].n_args)
    assert f.expr.op == name and [a.op for a in f.expr.args] == ["var"] * sym.OPS[name].n_args
