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
from netgraph.fused import PREAMBLE, kernel_code, run_on_numpy

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


# The device functions of CUDA's math library that the CUDA forms may call (for float and double).
CUDA_MATH = set(
    "pow exp log log2 log10 sqrt cbrt log1p expm1 sin cos tan sinh cosh tanh asin acos atan atan2 asinh acosh "
    "atanh erf erfc tgamma lgamma fabs floor ceil rint trunc fmod copysign nan".split()
)


@pytest.mark.parametrize("name", sorted(sym.OPS))
def test_every_operation_has_a_cuda_form_whose_functions_exist(name):
    op = sym.OPS[name]
    if "{" in op.cuda:  # a template: arithmetic on the arguments, no call
        assert not op.helper
        assert not re.search(r"\w\(", op.cuda), op.cuda
    elif op.helper:  # a device function of ours, defined in the preamble; "_" keeps it off CUDA's names
        assert op.cuda.endswith("_") and op.cuda not in CUDA_MATH and op.cuda in fused._NUMPY_FORMS
        assert PREAMBLE.count(f"__device__ T {op.cuda}(") == 1
        if "return " not in op.helper:  # an expression of the parameters (not a function body)
            assert set(re.findall(r"\b[a-z]\b", op.helper)) <= set(op.parameters), op.helper
    else:
        assert op.cuda in CUDA_MATH and op.cuda in fused._NUMPY_FORMS, op.cuda
    called = re.findall(r"\b(\w+)\(", op.helper)  # a helper may call CUDA's functions, T(...) casts
    assert set(called) <= CUDA_MATH | {"T"}, called
    assert [o.cuda for o in sym.OPS.values()].count(op.cuda) == 1  # one NumPy form per function name


def operation_inputs(arity: int, rng: np.random.Generator, dtype) -> list[np.ndarray]:
    """Values for each argument: some negative, zeros, ties between arguments and halves (the kinks of
    Floor, Sign, Max, If, ...); broadcasting across the arguments."""
    shapes = [(4, 5), (5,), (4, 1)][:arity]
    xs = [np.round(rng.normal(scale=1.5, size=shape) * 2) / 2 for shape in shapes]
    xs = [np.where(rng.random(x.shape) < 0.5, rng.normal(scale=1.5, size=x.shape), x) for x in xs]
    return [x.astype(dtype) for x in xs]


@pytest.mark.parametrize("name", sorted(sym.OPS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(seed=st.integers(0, 2**31 - 1))
def test_every_operation_in_generated_code_agrees_with_the_shared_path(name, dtype, seed):
    """Each entry of the table alone, value and every partial derivative: the generated code
    (its CUDA form, run with NumPy) against the shared path (its NumPy form, derivative)."""
    function = sym.operation_function(name)
    arity = function.arity
    rng = np.random.default_rng(seed)
    xs = operation_inputs(arity, rng, dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    lines, results = kernel_code([function.expr], arity)
    np.testing.assert_allclose(run_on_numpy(lines, results, xs)[0], function.evaluate(xs), rtol=tol, atol=tol)
    g = rng.normal(size=np.broadcast_shapes(*[x.shape for x in xs])).astype(dtype)
    lines, results = kernel_code(sym.backward_roots(function, [True] * arity), arity + 1)
    got = run_on_numpy(lines, results, [*xs, g])
    for i, program in enumerate(function.partial_programs):
        np.testing.assert_allclose(got[i], g * program.run(xs), rtol=tol, atol=tol, err_msg=f"d/d argument {i}")


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
    lines, results = kernel_code(sym.backward_roots(function, needs), arity + 1)
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


def assert_fused_kernels_match_the_shared_path(function: sym.Function, inputs: list[np.ndarray], dtype) -> None:
    """On the GPU: the fused kernels (value, every partial, a partial left out) against the shared xp path."""
    import cupy

    arity = function.arity
    xs = [cupy.asarray(x) for x in inputs]
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
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_kernels_match_the_shared_path_on_the_gpu(name, dtype):
    fn, arity = FUNCTIONS[name]
    inputs = inputs_for(name, arity, np.random.default_rng(0), dtype)
    assert_fused_kernels_match_the_shared_path(sym.trace(fn, arity), inputs, dtype)


@gpu
@pytest.mark.parametrize("name", sorted(sym.OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_operation_runs_fused_on_the_gpu_as_on_the_shared_path(name, dtype):
    """Each entry alone: its CUDA form (and helper) compiled, against its NumPy form and derivative."""
    function = sym.operation_function(name)
    inputs = operation_inputs(function.arity, np.random.default_rng(0), dtype)
    assert_fused_kernels_match_the_shared_path(function, inputs, dtype)


@gpu
def test_an_elementwise_layer_runs_fused_on_the_gpu_and_agrees_with_the_cpu():
    layer = L.ElementwiseLayer(lambda x: -sym.exp(2 * x) + 1 + 2 * x, input=(3, 4))
    x = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    fused._kernels.clear()
    on_gpu = layer(x, target_device="GPU")
    assert len(fused._kernels) == 1  # the forward kernel was compiled and used
    np.testing.assert_allclose(on_gpu, layer(x), rtol=1e-5, atol=1e-5)
