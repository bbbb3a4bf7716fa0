"""The fused elementwise kernels: the generated code (run with NumPy on any machine) and, on a
GPU, the compiled CuPy kernels against the shared xp path."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layers as L
import netgraph.symbolic as sym
from netgraph import fused, gpu_available
from netgraph.fused import PREAMBLE, TEMPLATES, kernel_code, run_on_numpy

FUNCTIONS = {
    "gelu-ish": (lambda x: 0.5 * x * (1 + sym.tanh(0.8 * x + 0.04 * x**3)), 1),
    "latent-kl": (lambda x: -sym.exp(2 * x) + 1 + 2 * x, 1),
    "every-unary": (
        lambda x: (
            sym.log1p(sym.exp(x))
            + sym.expm1(0.1 * x)
            + sym.sin(x) * sym.cos(x)
            + sym.tan(0.2 * x)
            + sym.arctan(x)
            + sym.erf(x)
            + abs(x)
            + sym.sign(x)
            + sym.floor(x)
            + sym.ceiling(x)
            + sym.ramp(x)
            + sym.logistic_sigmoid(x)
            + sym.softplus(x)
            + sym.sqrt(x * x + 1)
            + sym.log(x * x + 1)
            - x / (1 + x * x)
        ),
        1,
    ),
    "branches": (lambda x: sym.where(x > 0.5, x * x, -x) + sym.maximum(x, 0.3 * x) - sym.minimum(x, 1.0), 1),
    "leaky": (lambda x: sym.leaky_ramp(x, 0.02), 1),
    "powers": (lambda x: (x * x + 1) ** 1.7 + 1.5**x, 1),
    "binary": (lambda a, b: a * b - sym.exp(a - b) + sym.maximum(a, b) / (1 + b * b), 2),
    "bce": (lambda p, t: -(t * sym.log(p) + (1 - t) * sym.log(1 - p)), 2),
    "three": (lambda a, b, c: sym.where(a, b, c) * c + a, 3),
}


def inputs_for(name: str, arity: int, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
    if name == "bce":
        return [rng.uniform(0.05, 0.95, (4, 5)).astype(dtype), rng.uniform(0, 1, (5,)).astype(dtype)]
    if name == "three":
        return [
            (rng.random((3, 4)) > 0.5).astype(dtype),
            rng.normal(size=(3, 4)).astype(dtype),
            rng.normal(size=(1, 4)).astype(dtype),
        ]
    return [rng.normal(scale=1.5, size=(4, 5)).astype(dtype) for _ in range(arity)]


def test_every_operation_has_a_kernel_template_and_its_helpers_exist():
    assert set(TEMPLATES) == set(sym.OPS) - {"var", "const"}
    helpers = {h for t in TEMPLATES.values() for h in re.findall(r"\b(\w+_)\(", t)}
    names = fused._numpy_names(np.dtype(np.float32))
    for helper in helpers:
        assert f"__device__ T {helper}(" in PREAMBLE, helper
        assert helper in names, helper


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@given(seed=st.integers(0, 2**31 - 1))
def test_the_generated_code_computes_the_function_and_its_gradients(name, seed):
    fn, arity = FUNCTIONS[name]
    function = sym.trace(fn, arity)
    xs = inputs_for(name, arity, np.random.default_rng(seed))
    lines, results = kernel_code([function.expr], arity)
    np.testing.assert_allclose(run_on_numpy(lines, results, xs)[0], function.evaluate(xs), rtol=1e-6, atol=1e-6)
    shape = np.broadcast_shapes(*[x.shape for x in xs])
    g = np.random.default_rng(seed + 1).normal(size=shape)
    needs = [True] * arity
    lines, results = kernel_code(fused._backward_roots(function, needs), arity + 1)
    got = run_on_numpy(lines, results, [*xs, g])
    for i, program in enumerate(function.partial_programs):
        np.testing.assert_allclose(got[i], g * program.run(xs), rtol=1e-6, atol=1e-6)


def test_equal_subexpressions_are_computed_once():
    lines, _ = kernel_code([sym.trace(lambda x: sym.exp(2 * x) * sym.exp(2 * x) + sym.exp(2 * x), 1).expr], 1)
    assert [text for _, text in lines].count("exp(v1)") == 1


def test_the_switch_never_fuses_on_numpy():
    previous = fused.set_fused_kernels(True)
    try:
        assert not fused.fused_kernels_enabled(np)
    finally:
        fused.set_fused_kernels(previous)


def test_constants_that_a_kernel_cannot_hold_are_refused():
    with pytest.raises(ValueError, match="constant"):
        kernel_code([sym.trace(lambda x: x * float("inf"), 1).expr], 1)


gpu = pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU/CuPy")


@gpu
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_kernels_match_the_shared_path_on_the_gpu(name, dtype):
    import cupy

    fn, arity = FUNCTIONS[name]
    function = sym.trace(fn, arity)
    xs = [cupy.asarray(x) for x in inputs_for(name, arity, np.random.default_rng(0), dtype)]
    shape = np.broadcast_shapes(*[x.shape for x in xs])
    g = cupy.asarray(np.random.default_rng(1).normal(size=shape).astype(dtype))
    out, vjp = fused.apply_function.raw(*xs, function=function)
    grads = vjp(g, (True,) * arity)
    previous = fused.set_fused_kernels(False)
    try:
        ref_out, ref_vjp = fused.apply_function.raw(*xs, function=function)
        ref_grads = ref_vjp(g, (True,) * arity)
    finally:
        fused.set_fused_kernels(previous)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    assert isinstance(out, cupy.ndarray) and out.dtype == dtype
    np.testing.assert_allclose(cupy.asnumpy(out), cupy.asnumpy(ref_out), rtol=tol, atol=tol)
    for a, b in zip(grads, ref_grads):
        assert a.dtype == dtype and a.shape == shape
        np.testing.assert_allclose(cupy.asnumpy(a), cupy.asnumpy(b), rtol=tol, atol=tol)
    only_second = vjp(g, (False,) + (True,) * (arity - 1))
    assert only_second[0] is None


@gpu
def test_an_elementwise_layer_runs_fused_on_the_gpu_and_agrees_with_the_cpu():
    layer = L.ElementwiseLayer(lambda x: -sym.exp(2 * x) + 1 + 2 * x, input=(3, 4))
    x = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    fused._kernels.clear()
    on_gpu = layer(x, target_device="GPU")
    assert len(fused._kernels) == 1  # the forward kernel was compiled and used
    np.testing.assert_allclose(on_gpu, layer(x), rtol=1e-5, atol=1e-5)
