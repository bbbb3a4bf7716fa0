"""The compiled CPU kernels of traced elementwise functions against the shared NumPy path.

Every operation of OPS is compiled with its scalar form in the loop (library calls not hoisted)
and compared with the shared Program, value and every partial derivative, in float32 and
float64, over values that include 0, -0, ±1, ±inf, NaN and huge and tiny numbers. Then traced
chains with the default settings (library calls as NumPy passes), memory layouts, the cases
that fall back to the shared path, the disk cache in a fresh process and the switch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

import netgraph.symbolic as sym  # noqa: E402
from netgraph import compiled  # noqa: E402
from netgraph.compiled import elementwise as ce  # noqa: E402
from netgraph.fused import apply_function  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 1e-30, -1e-30, 1e30, -1e30, np.inf, -np.inf, np.nan]
TOLERANCES = {np.float32: (2e-5, 1e-6), np.float64: (1e-9, 1e-12)}  # (rtol, atol)


def assert_same(compiled_values, shared_values, dtype, what=""):
    """Equal up to the math library's rounding, NaN where NaN, infinities of the same sign, same dtype."""
    compiled_values, shared_values = np.asarray(compiled_values), np.asarray(shared_values)
    assert compiled_values.dtype == dtype, what
    rtol, atol = TOLERANCES[dtype]
    np.testing.assert_allclose(compiled_values, shared_values, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def shared_backward(function, inputs, g):
    return [g * program.run(inputs) for program in function.partial_programs]


@pytest.fixture
def every_operation_in_the_loop(monkeypatch):
    """Each operation in the loop in its own scalar form, even alone."""
    monkeypatch.setattr(ce, "HOIST_LIBRARY_CALLS", False)
    monkeypatch.setattr(ce, "MINIMUM_FUSED", 1)


@pytest.fixture
def every_pass_compiled(monkeypatch):
    """Library calls hoisted (the default), and every pass compiled, even of one operation."""
    monkeypatch.setattr(ce, "MINIMUM_FUSED", 1)


def values(dtype):
    finite = st.floats(-50, 50, width=32 if dtype == np.float32 else 64)
    return st.lists(st.one_of(st.sampled_from(EDGES), finite), min_size=1, max_size=24)


# Operations whose NumPy form and scalar form are different algorithms: equal to the precision of
# the shared path's own approximation (see netgraph.symbolic: Lanczos, the erfc fit in float32).
LOOSE = {"gamma": (1e-5, 1e-12), "log_gamma": (1e-6, 1e-9), "erf": (1e-6, 3e-7), "erfc": (1e-6, 3e-7)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(sym.OPS))
@given(data=st.data())
def test_every_operation_and_its_partials_match_the_shared_path(every_operation_in_the_loop, name, dtype, data):
    function = sym.operation_function(name)
    inputs = [np.array(data.draw(values(dtype)), dtype) for _ in range(function.arity)]
    size = min(len(x) for x in inputs)
    inputs = [x[:size] for x in inputs]
    g = np.array(data.draw(st.lists(st.sampled_from([1.0, -2.0, 0.5, 0.0]), min_size=size, max_size=size)), dtype)
    value = ce.forward(function, inputs)
    gradients = ce.backward(function, inputs, g, [True] * function.arity)
    if not sym.OPS[name].scalar:  # PolyGamma: the shared path
        assert value is None
        return
    rtol, atol = LOOSE.get(name, TOLERANCES[dtype])
    tolerance = {dtype: (max(rtol, TOLERANCES[dtype][0]), max(atol, TOLERANCES[dtype][1]))}
    with np.errstate(all="ignore"):
        expected = function.program.run(inputs)
        expected_gradients = shared_backward(function, inputs, g)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(TOLERANCES, dtype, tolerance[dtype])
        assert_same(value, expected, dtype, f"{function} at {inputs}")
        for i, (got, want) in enumerate(zip(gradients, expected_gradients)):
            assert_same(got, want, dtype, f"∂{function}/∂#{i + 1} at {inputs}")


def test_every_operation_but_polygamma_has_a_scalar_form():
    assert [name for name, op in sym.OPS.items() if not op.scalar] == ["polygamma"]


# Traced chains, run with the default settings: library calls as NumPy passes, the rest fused.
CHAINS = {
    "kl": (lambda mu, logvar: -0.5 * (1 + logvar - mu**2 - sym.exp(logvar)), 2),
    "selu": (lambda x: 1.0507 * sym.where(x >= 0, x, 1.6733 * sym.expm1(sym.minimum(x, 0.0))), 1),
    "leaky": (lambda x: sym.leaky_ramp(x, 0.02), 1),
    "gelu-ish": (lambda x: 0.5 * x * (1 + sym.tanh(0.8 * x + 0.04 * x**3)), 1),
    "branches": (lambda x: sym.where(x > 0.5, x * x, -x) + sym.maximum(x, 0.3 * x) - sym.minimum(x, 1.0), 1),
    "binary": (lambda a, b: a * b - sym.exp(a - b) + sym.maximum(a, b) / (1 + b * b), 2),
    "bce": (lambda p, t: -(t * sym.log(p) + (1 - t) * sym.log(1 - p)), 2),
    "three": (lambda a, b, c: sym.where(a, b, c) * c + a, 3),
    "nested-library": (lambda x: sym.log1p(sym.exp(-abs(x))) * x + sym.polygamma(1, x * x + 1) - x / 3, 1),
    "division": (lambda a, b: a / b - sym.sqrt(a) + sym.floor(b) * sym.sign(a), 2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CHAINS))
@given(data=st.data())
def test_traced_chains_match_the_shared_path(every_pass_compiled, name, dtype, data):
    # (library calls hoisted, as by default; a backward pass of one product compiled too)
    fn, arity = CHAINS[name]
    function = sym.trace(fn, arity)
    size = data.draw(st.integers(1, 30))
    inputs = [
        np.array(
            data.draw(st.lists(st.one_of(st.sampled_from(EDGES), st.floats(-5, 5)), min_size=size, max_size=size)),
            dtype,
        )
        for _ in range(arity)
    ]
    g = np.array(data.draw(st.lists(st.floats(-2, 2), min_size=size, max_size=size)), dtype)
    assert ce.supported(function, inputs)
    with np.errstate(all="ignore"):
        assert_same(ce.forward(function, inputs), function.program.run(inputs), dtype, name)
        needs = data.draw(st.lists(st.booleans(), min_size=arity, max_size=arity).filter(any))
        got = ce.backward(function, inputs, g, needs)
        for i, want in enumerate(shared_backward(function, inputs, g)):
            if needs[i]:
                assert_same(got[i], want, dtype, f"{name} ∂#{i + 1}")
            else:
                assert got[i] is None


@pytest.mark.parametrize(
    "layout",
    ["C", "transposed", "batch-last", "sliced", "reversed", "mixed", "0-d and number"],
)
def test_inputs_in_any_layout(layout):
    rng = np.random.default_rng(3)
    function = sym.trace(lambda a, b: sym.where(a > b, a * b, a - 2 * b) + sym.exp(a), 2)
    base = [rng.normal(size=(6, 5, 4)).astype(np.float32) for _ in range(2)]
    if layout == "C":
        inputs = base
    elif layout == "transposed":
        inputs = [x.T for x in base]
    elif layout == "batch-last":
        inputs = [np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1, 0) for x in base]
    elif layout == "sliced":
        inputs = [x[:, ::2] for x in base]
    elif layout == "reversed":
        inputs = [x[::-1] for x in base]
    elif layout == "mixed":
        inputs = [base[0].T, np.ascontiguousarray(base[1].T)]
    else:
        inputs = [base[0], np.array(0.25, np.float32)]
    g = rng.normal(size=inputs[0].shape).astype(np.float32)
    out = ce.forward(function, inputs)
    assert_same(out, function.program.run(inputs), np.float32, layout)
    if layout in ("transposed", "batch-last", "C"):  # the first input's layout is kept
        assert out.strides == inputs[0].strides
    grads = ce.backward(function, inputs, np.asarray(g.T.copy().T), [True, True])
    for got, want in zip(grads, shared_backward(function, inputs, g)):
        assert_same(got, np.broadcast_to(want, got.shape), np.float32, layout)
    number = ce.forward(function, [inputs[0], 0.25])
    assert_same(number, function.program.run([inputs[0], 0.25]), np.float32, "a Python number")


@pytest.mark.parametrize(
    "case",
    ["broadcasting", "two dtypes", "integers", "one operation", "polygamma alone", "all numbers", "a NaN constant"],
)
def test_what_falls_back_to_the_shared_path(case):
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    function = sym.trace(lambda a, b: a * b + a, 2)
    inputs = [x, x]
    if case == "broadcasting":
        inputs = [x, x[:1]]
    elif case == "two dtypes":
        inputs = [x, x.astype(np.float64)]
    elif case == "integers":
        inputs = [x.astype(np.int32), x.astype(np.int32)]
    elif case == "one operation":
        function, inputs = sym.trace(sym.ramp), [x]
    elif case == "polygamma alone":
        function, inputs = sym.trace(lambda x: sym.polygamma(1, x)), [x]
    elif case == "all numbers":
        inputs = [np.array(1.0, np.float32), 2.0]
    else:
        with_nan = sym.Expr("add", (sym.var(0), sym.const(float("nan"))))
        function, inputs = sym.Function(sym.Expr("mul", (with_nan, sym.var(0))), 1), [x]
    assert not ce.supported(function, inputs)
    assert ce.forward(function, inputs) is None
    out, vjp = apply_function.raw(*inputs, function=function)  # the shared path runs
    np.testing.assert_array_equal(out, function.program.run(inputs))


def test_apply_function_runs_the_compiled_pass_and_keeps_gradients_exact(monkeypatch):
    """Through the primitive, in float64, compiled and shared agree to rounding (the gradient checks' precision)."""
    monkeypatch.setattr(ce, "MINIMUM_SIZE", 1)
    rng = np.random.default_rng(0)
    function = sym.trace(CHAINS["kl"][0], 2)
    mu, logvar = rng.normal(size=(2, 7, 9))
    g = rng.normal(size=(7, 9))
    function.kernels.clear()
    out, vjp = apply_function.raw(mu, logvar, function=function)
    assert function.kernels, "the compiled pass ran"
    gradients = vjp(g, (True, True))
    previous = compiled.set_compiled_kernels(False)
    try:
        shared_out, shared_vjp = apply_function.raw(mu, logvar, function=function)
        shared_gradients = shared_vjp(g, (True, True))
    finally:
        compiled.set_compiled_kernels(previous)
    np.testing.assert_allclose(out, shared_out, rtol=1e-14)
    for got, want in zip(gradients, shared_gradients):
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_the_switch_turns_the_compiled_pass_off(monkeypatch):
    monkeypatch.setattr(ce, "MINIMUM_SIZE", 1)
    function = sym.trace(lambda x: sym.leaky_ramp(x, 0.3))
    x = np.linspace(-1, 1, 10)
    previous = compiled.set_compiled_kernels(False)
    try:
        apply_function.raw(x, function=function)
        assert not function.kernels
    finally:
        compiled.set_compiled_kernels(previous)
    apply_function.raw(x, function=function)
    assert function.kernels


def run_python(code: str, cache: Path, **environment: str) -> dict:
    env = {**os.environ, "NETGRAPH_CACHE": str(cache), "PYTHONPATH": str(ROOT), **environment}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


KERNELS_IN_A_PROCESS = """
import json, numpy as np
import netgraph.symbolic as sym
from netgraph import compiled
from netgraph.compiled import elementwise as ce
from netgraph.fused import apply_function
function = sym.trace(lambda x: sym.leaky_ramp(x, 0.05) * 3 - 1)
x = np.linspace(-1, 1, 1 << 15, dtype=np.float32)
out, vjp = apply_function.raw(x, function=function)
vjp(np.ones_like(x), (True,))
print(json.dumps({"enabled": compiled.compiled_kernels_enabled(np), "kernels": len(function.kernels),
                  "records": [[r.name, r.from_disk] for r in compiled.report()],
                  "sources": len(ce.cached_sources())}))
"""


def test_a_second_process_loads_the_kernels_from_the_disk_cache(tmp_path):
    first = run_python(KERNELS_IN_A_PROCESS, tmp_path)
    assert first["enabled"] and first["sources"] == 2
    assert [from_disk for _, from_disk in first["records"]] == [False, False]
    second = run_python(KERNELS_IN_A_PROCESS, tmp_path)
    assert [name for name, _ in second["records"]] == [name for name, _ in first["records"]]
    assert [from_disk for _, from_disk in second["records"]] == [True, True]


def test_netgraph_compiled_0_in_the_environment_keeps_the_shared_path(tmp_path):
    result = run_python(KERNELS_IN_A_PROCESS, tmp_path, NETGRAPH_COMPILED="0")
    assert result == {"enabled": False, "kernels": 0, "records": [], "sources": 0}
