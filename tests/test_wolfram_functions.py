"""The Wolfram function catalogue in elementwise functions: values, derivatives (float64 central
differences), Wolfram printing, storage, NumPy ufuncs, the long activation names, and the fused
kernels' C++ compiled on the host (the same text a GPU compiles) against the shared path."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest

import layers as L
import netgraph
import netgraph.symbolic as sym
from gradcheck import check_function
from netgraph import NetChain, NetExtract, NetGraph, NetPort, NetPortGradient, TracingError
from netgraph.fused import PREAMBLE, apply_function, kernel_code

# name: (function of one or two arguments, its Wolfram form, the domain its gradient is checked on)
FUNCTIONS = {
    "Sinh": (sym.sinh, "Sinh[#]&", (-3, 3)),
    "Cosh": (sym.cosh, "Cosh[#]&", (-3, 3)),
    "ArcSin": (sym.arcsin, "ArcSin[#]&", (-0.9, 0.9)),
    "ArcCos": (sym.arccos, "ArcCos[#]&", (-0.9, 0.9)),
    "ArcSinh": (sym.arcsinh, "ArcSinh[#]&", (-3, 3)),
    "ArcCosh": (sym.arccosh, "ArcCosh[#]&", (1.1, 4)),
    "ArcTanh": (sym.arctanh, "ArcTanh[#]&", (-0.9, 0.9)),
    "ArcTan": (sym.arctan, "ArcTan[#]&", (-3, 3)),
    "ArcTan2": (lambda x, y: sym.arctan(x, y), "ArcTan[#1, #2]&", (-3, 3)),
    "CubeRoot": (sym.cube_root, "CubeRoot[#]&", (0.2, 3)),
    "CubeRootNegative": (sym.cube_root, "CubeRoot[#]&", (-3, -0.2)),
    "Surd": (lambda x: sym.surd(x, 3), "Surd[#, 3]&", (-3, -0.2)),
    "SurdEven": (lambda x: sym.surd(x, 4), "Surd[#, 4]&", (0.2, 3)),
    "SurdThreaded": (lambda x, n: sym.surd(x, n), "Surd[#1, #2]&", (1.1, 3)),
    "Gamma": (sym.gamma, "Gamma[#]&", (0.1, 5)),
    "GammaNegative": (sym.gamma, "Gamma[#]&", (-2.9, -2.1)),
    "LogGamma": (sym.log_gamma, "LogGamma[#]&", (0.1, 30)),
    "LogGammaNegative": (sym.log_gamma, "LogGamma[#]&", (-1.9, -1.1)),
    "PolyGamma0": (lambda x: sym.polygamma(0, x), "PolyGamma[0, #]&", (0.1, 20)),
    "PolyGamma3": (lambda x: sym.polygamma(3, x), "PolyGamma[3, #]&", (-3.9, -3.1)),
    "Erf": (sym.erf, "Erf[#]&", (-3, 3)),
    "Erfc": (sym.erfc, "Erfc[#]&", (-3, 6)),
    "Log2": (sym.log2, "Log2[#]&", (0.2, 3)),
    "Log10": (sym.log10, "Log10[#]&", (0.2, 3)),
    "Clip": (lambda x: sym.clip(x, -0.5, 0.7), "Clip[#, {-0.5, 0.7}]&", (-2, 2)),
    "Mod": (lambda x: sym.mod(x, 1.5), "Mod[#, 1.5]&", (-4, 4)),
    "ModThreaded": (lambda m, n: m % n, "Mod[#1, #2]&", (0.5, 4)),
    "FractionalPart": (sym.fractional_part, "FractionalPart[#]&", (-3, 3)),
    "Round": (round, "Round[#]&", (-3, 3)),
}
KINKS = {"Clip": [-0.5, 0.7], "Mod": [-3, -1.5, 0, 1.5, 3], "FractionalPart": [-2, -1, 0, 1, 2]}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_prints_in_wolfram_form(name):
    fn, text, _ = FUNCTIONS[name]
    assert str(sym.trace(fn)) == text


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_inside_the_domain(name, seed, device):
    fn, _, (low, high) = FUNCTIONS[name]
    function = sym.trace(fn)
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(low, high, size=(3, 4)) for _ in range(function.arity)]
    if name == "ModThreaded":  # away from the jumps of Mod[m, n] (m/n an integer)
        xs[0] = (np.floor(xs[0] / xs[1]) + rng.uniform(0.2, 0.8, size=(3, 4))) * xs[1]
    for p in KINKS.get(name, []):
        xs[0] = np.where(np.abs(xs[0] - p) < 0.05, p + 0.1, xs[0])
    check_function(lambda *t: apply_function(*t, function=function), xs, device=device)


def test_values_match_the_references():
    x = np.array([-2.5, -1.3, -0.5, 0.3, 0.5, 1.0, 1.5, 2.5, 7.25, 40.0])
    np.testing.assert_allclose(sym.gamma(x), [math.gamma(v) for v in x], rtol=2e-13)
    np.testing.assert_allclose(sym.log_gamma(x), [math.lgamma(v) for v in x], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(sym.erfc(x), [math.erfc(v) for v in x], rtol=1e-13)
    assert abs(float(sym.erfc(6.0)) / math.erfc(6.0) - 1) < 1e-13  # the tail, not 1 - erf
    euler = 0.5772156649015329
    np.testing.assert_allclose(sym.polygamma(0, np.array([1.0, 0.5])), [-euler, -euler - 2 * math.log(2)], rtol=1e-14)
    np.testing.assert_allclose(sym.polygamma(1, np.array([1.0, -0.5])), [math.pi**2 / 6, math.pi**2 / 2 + 4])
    np.testing.assert_allclose(float(sym.polygamma(3, 1.0)), math.pi**4 / 15, rtol=1e-14)
    assert np.isnan(sym.polygamma(0, np.array([0.0, -2.0]))).all()
    # the poles and infinities of C's tgamma and lgamma (what CUDA computes in the fused kernels)
    special = np.array([0.0, -0.0, -3.0, np.inf, -np.inf])
    np.testing.assert_array_equal(sym.gamma(special), [np.inf, -np.inf, np.nan, np.inf, np.nan])
    np.testing.assert_array_equal(sym.log_gamma(special), [np.inf] * 5)
    np.testing.assert_array_equal(sym.cube_root(np.array([-8.0, 27.0])), [-2.0, 3.0])
    np.testing.assert_array_equal(sym.surd(np.array([-32.0, 32.0]), 5), [-2.0, 2.0])
    assert np.isnan(sym.surd(-16.0, 4))
    y, xx = np.array([1.0, 1.0, -1.0]), np.array([1.0, -1.0, -1.0])
    np.testing.assert_allclose(sym.arctan(xx, y), np.arctan2(y, xx))  # ArcTan[x, y]: Wolfram's order
    np.testing.assert_array_equal(sym.mod(np.array([7.0, -7.0, 7.0]), np.array([3.0, 3.0, -3.0])), [1.0, 2.0, -2.0])
    assert float(sym.mod(3.0, 3.0, 1.0)) == 3.0  # Mod[3, 3, 1] lies in [1, 4)
    np.testing.assert_array_equal(sym.integer_part(np.array([-2.5, 2.5])), [-2.0, 2.0])
    np.testing.assert_array_equal(sym.fractional_part(np.array([-2.5, 2.25])), [-0.5, 0.25])
    np.testing.assert_array_equal(sym.unitize(np.array([0.0, -3.0])), [0.0, 1.0])
    np.testing.assert_array_equal(sym.kronecker_delta(np.array([0.0, -3.0])), [1.0, 0.0])


def test_round_takes_halves_to_even_and_has_no_gradient_as_in_wolfram_nets():
    layer = L.ElementwiseLayer("Round", input=6)
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert layer(x).tolist() == [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0]
    assert str(layer.function) == "Round[#]&" and str(layer.function.derivative(0)) == "0&"
    grad = NetChain([L.ElementwiseLayer(lambda v: 3 * round(v) + v)], input=6)(x, NetPortGradient("Input"))
    np.testing.assert_array_equal(grad, np.ones(6))  # only the + v term
    for name in ("Floor", "Ceiling", "Sign", "IntegerPart", "Unitize", "KroneckerDelta"):
        assert str(L.ElementwiseLayer(name).function.derivative(0)) == "0&", name


LONG_NAMES = {
    "RectifiedLinearUnit": "ReLU",
    "ExponentialLinearUnit": "ELU",
    "ScaledExponentialLinearUnit": "SELU",
    "GaussianErrorLinearUnit": "GELU",
}


@pytest.mark.parametrize("long, short", sorted(LONG_NAMES.items()))
def test_long_activation_names_are_their_short_forms(long, short):
    x = np.linspace(-3, 3, 13)[None]
    layer = L.ElementwiseLayer(long)
    assert layer.function == L.ElementwiseLayer(short).function and str(layer) == long
    np.testing.assert_array_equal(layer(x), L.ElementwiseLayer(short)(x))
    assert str(NetExtract(NetChain([long, 2], input=3), 1)) == long  # a name in a chain's layer list too


def test_hard_swish_is_the_reference_formula():
    x = np.linspace(-5, 5, 21)
    got = L.ElementwiseLayer("HardSwish")(x[None], working_precision="Real64")[0]
    np.testing.assert_allclose(got, x * np.minimum(np.maximum(x + 3, 0), 6) / 6, rtol=1e-15, atol=1e-15)
    assert str(L.ElementwiseLayer("HardSwish").function) == "#*Clip[# + 3, {0, 6}]/6&"


def test_wolfram_functions_by_name_match_numpy():
    x = np.linspace(-0.9, 0.9, 7)[None]
    for name, reference in {"Sinh": np.sinh, "Cosh": np.cosh, "ArcSin": np.arcsin, "ArcCos": np.arccos,
                            "ArcSinh": np.arcsinh, "ArcTanh": np.arctanh, "CubeRoot": np.cbrt,
                            "Floor": np.floor, "Ceiling": np.ceil, "Sign": np.sign,
                            "IntegerPart": np.trunc}.items():  # fmt: skip
        np.testing.assert_allclose(L.ElementwiseLayer(name)(x, working_precision="Real64"), reference(x), err_msg=name)
    np.testing.assert_allclose(L.ElementwiseLayer("ArcCosh")(x + 2), np.arccosh(x + 2), rtol=1e-6)


@pytest.mark.parametrize(
    "fn, text",
    [
        (lambda x: np.sinh(x) + np.cosh(x) + np.arcsinh(x), "Sinh[#] + Cosh[#] + ArcSinh[#]&"),
        (lambda x: np.arcsin(x) * np.arccos(x) + np.arctanh(x) + np.arccosh(x), None),
        (lambda x: np.cbrt(x) + np.log2(x) + np.log10(x), "CubeRoot[#] + Log2[#] + Log10[#]&"),
        (lambda x: np.rint(x) + np.round(x) + round(x), "Round[#] + Round[#] + Round[#]&"),
        (lambda x: np.trunc(x) + math.trunc(x) + math.floor(x) + math.ceil(x), None),
        (lambda x: np.arctan2(x, 2), "ArcTan[2, #]&"),
        (lambda y, x: np.arctan2(y, x), "ArcTan[#2, #1]&"),
        (lambda x: np.mod(x, 2) + np.remainder(x, 3) + x % 4, "Mod[#, 2] + Mod[#, 3] + Mod[#, 4]&"),
        (lambda x: np.floor_divide(x, 2) + x // 3, "Floor[#/2] + Floor[#/3]&"),
        (lambda x: np.square(x) + np.reciprocal(x) + np.exp2(x), "#^2 + 1/# + 2^#&"),
        (
            lambda x: np.clip(x, -1, 1) + np.clip(x, 0, None) + np.clip(x, None, 2),
            "Clip[#, {-1, 1}] + Max[#, 0] + Min[#, 2]&",
        ),
        (lambda a, b: 1.0 * np.less(a, b) + 1.0 * np.less_equal(a, b), "(#2 > #1) + (#2 >= #1)&"),
        (lambda a, b: 1.0 * np.equal(a, b) - 1.0 * np.not_equal(a, b), "(#1 == #2) - (#1 != #2)&"),
        (lambda x: np.fabs(x) + np.positive(x), "Abs[#] + #&"),
        (lambda a, b: np.hypot(a, b), "Sqrt[#1*#1 + #2*#2]&"),
    ],
)
def test_numpy_ufuncs_trace(fn, text):
    function = sym.trace(fn)
    if text is not None:
        assert str(function) == text
    x = [np.linspace(-2.2, 2.6, 9), np.linspace(1.5, -1.7, 9)][: function.arity]
    with np.errstate(all="ignore"):  # the same function on each number (round, math.floor work on numbers only)
        expected = [float(fn(*numbers)) for numbers in zip(*x)]
    np.testing.assert_allclose(function.evaluate(x), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "fn, error, message",
    [
        (lambda x: np.logaddexp(x, 1.0), TracingError, "numpy.logaddexp cannot be traced"),
        (lambda x: sym.polygamma(1.5, x), TracingError, "integer order n from 0 to 20 given as a number, not 1.5"),
        (lambda x: sym.polygamma(21, x), TracingError, "not 21"),
        (lambda x: sym.polygamma(x, x), TracingError, "given as a number, not an input of the function"),
        (lambda x: sym.surd(x, 0), TracingError, "non-zero integer n, not 0"),
        (lambda x: sym.surd(x, 2.5), TracingError, "not 2.5"),
    ],
)
def test_bad_uses_get_a_clear_error(fn, error, message):
    with pytest.raises(error, match=message):
        L.ElementwiseLayer(fn)


def test_threading_layers_take_the_two_argument_functions():
    a, b = np.array([[7.0, -7.0, -8.0]]), np.array([[3.0, 3.0, 3.0]])
    assert L.ThreadingLayer(netgraph.mod)([a, b]).tolist() == [[1.0, 2.0, 1.0]]
    assert L.ThreadingLayer(netgraph.surd)([a, b])[0, 2] == -2.0
    layer = L.ThreadingLayer(lambda x, y: netgraph.arctan(x, y))
    assert str(layer) == "ArcTan[#1, #2]&"
    np.testing.assert_allclose(layer([a, b]), np.arctan2(b, a), rtol=1e-6)
    with pytest.raises(TracingError, match="not an input of the function"):
        L.ThreadingLayer(netgraph.polygamma)


def test_numbers_give_value_errors_outside_tracing():
    with pytest.raises(ValueError, match="PolyGamma"):
        sym.polygamma(-1, 2.0)
    with pytest.raises(ValueError, match="Surd"):
        sym.surd(8.0, 1.5)


def test_a_stored_polygamma_order_must_be_a_constant_integer():
    good = sym.trace(lambda x: sym.polygamma(2, x)).to_json()
    assert sym.Function.from_json(json.loads(json.dumps(good))) == sym.trace(lambda x: sym.polygamma(2, x))
    for order in (["var", 0], ["const", 0.5], ["const", 99]):
        bad = {"arity": 1, "expr": ["polygamma", order, ["var", 0]]}
        with pytest.raises(TracingError, match="invalid stored.*order of PolyGamma"):
            sym.Function.from_json(bad)


def test_nets_with_every_new_function_save_load_and_print_the_same(tmp_path):
    unary = ["Sinh", "ArcSinh", "CubeRoot", "Gamma", "LogGamma", "Erfc", "Round", "HardSwish",
             "GaussianErrorLinearUnit", "ScaledExponentialLinearUnit", "FractionalPart"]  # fmt: skip
    functions = [
        lambda x: sym.arctan(x, 1 + x * x) + sym.surd(x, 3) + x % 1.5 + sym.clip(x, -1, 1),
        lambda x: sym.polygamma(1, 1 + x * x) + sym.log2(1 + x * x) - sym.integer_part(x) + sym.unitize(x),
        lambda x: sym.arcsin(x / 4) + sym.arccos(x / 4) + sym.arccosh(2 + x * x) + sym.arctanh(x / 4),
    ]
    net = NetGraph(
        {
            "names": NetChain(unary),
            "functions": NetChain([L.ElementwiseLayer(f) for f in functions]),
            "threading": L.ThreadingLayer(lambda a, b: sym.arctan(a, b) + sym.mod(a, 1 + b * b) + sym.surd(b, 5)),
        },
        [(NetPort("Input"), "names"), (NetPort("Input"), "functions"), (["names", "functions"], "threading")],
        input=5,
    )
    x = np.random.default_rng(0).uniform(0.3, 2.0, size=(4, 5))
    path = tmp_path / "catalogue.wlnet"
    net.save(path)
    loaded = netgraph.load(path)
    np.testing.assert_array_equal(loaded(x), net(x))
    assert str(loaded.vertices["threading"].function) == "ArcTan[#1, #2] + Mod[#1, 1 + #2*#2] + Surd[#2, 5]&"
    assert [str(layer) for layer in loaded.vertices["names"].vertices.values()] == unary
    for before, after in zip(
        net.vertices["functions"].vertices.values(), loaded.vertices["functions"].vertices.values()
    ):
        assert str(after.function) == str(before.function)
    assert "Clip[#, {-1, 1}]" in str(NetExtract(loaded, ("functions", 1)).function)


# --- the fused kernels' code, compiled for the host CPU ---------------------------------------


def _host_program(tmp_path) -> tuple[list[str], str]:
    """A C++ program running, for every operation alone, its forward and backward kernel lines with
    T = float and T = double: the same text (preamble, CUDA forms and helpers) the GPU compiles."""
    names = sorted(sym.OPS)
    blocks = []
    for index, name in enumerate(names):
        function = sym.operation_function(name)
        arity = function.arity
        forward, (value,) = kernel_code([function.expr], arity)
        backward, grads = kernel_code(sym.backward_roots(function, [True] * arity), arity + 1)
        inputs = "".join(f"T x{i} = T(in[{i}]);\n" for i in range(arity + 1))
        body = "{\n" + "".join(f"T {n} = {t};\n" for n, t in forward) + f"out[0] = (double)({value});\n}}\n"
        body += "{\n" + "".join(f"T {n} = {t};\n" for n, t in backward)
        body += "".join(f"out[{1 + i}] = (double)({g});\n" for i, g in enumerate(grads)) + "}\n"
        blocks.append(f"template <typename T> void op{index}(const double* in, double* out) {{\n{inputs}{body}}}\n")
    cases = "".join(
        f"case {i}: if (f) op{i}<float>(in, out); else op{i}<double>(in, out); break;\n" for i in range(len(names))
    )
    source = (
        "#include <cmath>\n#include <cstdio>\nusing namespace std;\n#define __device__\n"
        + PREAMBLE
        + "".join(blocks)
        + "int main() {\n int op, f, n; double in[8], out[8];\n"
        + " while (scanf(\"%d %d %d\", &op, &f, &n) == 3) {\n"
        + "  for (int i = 0; i < n; i++) scanf(\"%lf\", &in[i]);\n"
        + "  switch (op) {\n" + cases + "  }\n"
        + "  for (int i = 0; i < n; i++) printf(\"%.17g \", out[i]);\n  printf(\"\\n\");\n }\n}\n"
    )  # fmt: skip
    (tmp_path / "kernels.cpp").write_text(source)
    return names, str(tmp_path / "kernels.cpp")


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_the_kernel_code_compiled_for_the_host_agrees_with_the_shared_path(tmp_path):
    names, source = _host_program(tmp_path)
    binary = str(tmp_path / "kernels")
    subprocess.run(["g++", "-O0", "-w", "-o", binary, source], check=True, timeout=120)
    rng = np.random.default_rng(0)
    lines, expected = [], []
    for index, name in enumerate(names):
        function = sym.operation_function(name)
        for dtype, flag in ((np.float64, 0), (np.float32, 1)):
            # integers, halves (the poles and jumps) and values in between, negative and positive
            points = np.concatenate([np.arange(-3, 3.5, 0.5), rng.uniform(-4, 4, 14)]).astype(dtype)
            xs = [points, np.roll(points, 5), np.roll(points, 11)][: function.arity]
            g = rng.normal(size=points.shape).astype(dtype)
            out = [function.evaluate(xs)] + [g * p.run(xs) for p in function.partial_programs]
            for k in range(points.size):
                row = [x[k] for x in xs] + [g[k]]
                lines.append(f"{index} {flag} {len(row)} " + " ".join(repr(float(v)) for v in row))
                expected.append((name, dtype, [float(o[k]) for o in out]))
    run = subprocess.run([binary], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    results = run.stdout.splitlines()
    assert len(results) == len(expected), run.stderr
    for line, (name, dtype, want) in zip(results, expected):
        got = [float(v) for v in line.split()][: len(want)]
        tol = 2e-5 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{name} ({dtype.__name__}): {line}")
