"""The compiled bias-and-activation kernels against the shared NumPy path (netgraph.epilogue).

Every case runs :func:`netgraph.epilogue.bias_activation` twice on equal fresh arrays, once with
the compiled kernels and once without, and compares: the outputs and the activation's input
gradient exactly (NaN for NaN), the biases' gradient to the rounding of a sum. The arrays come in
the layouts the layers make (batch-last, cropped, row-major, column-major) and in some they do not
(then the shared path must run), with zeros, signed zeros, infinities, NaNs and values so small
that the leaky slope rounds them to -0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

pytest.importorskip("numba")

import netgraph.backend as backend  # noqa: E402
import netgraph.compiled.epilogue as kernels  # noqa: E402
import netgraph.epilogue as epilogue  # noqa: E402
from netgraph.compiled import set_compiled_kernels  # noqa: E402
from netgraph.epilogue import Activation, MemoryLayout, bias_activation, memory_layout  # noqa: E402

ACTIVATIONS = {
    "ramp": Activation("ramp"),
    "leaky 0.02": Activation("leaky_ramp", slope=0.02),
    "leaky -1.5": Activation("leaky_ramp", slope=-1.5),
    "biases only": Activation("identity"),
    "biases + 0.25": Activation("identity", shift=0.25),
    "ramp after - 3": Activation("ramp", shift=-3.0),
}


def _special(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` with some entries replaced by edge cases."""
    flat = values.reshape(-1)
    tiny = np.finfo(values.dtype).smallest_subnormal
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, -2 * tiny, 1e-30, -1e-30], values.dtype)
    where = rng.choice(flat.size, size=min(flat.size, 3 * len(specials)), replace=False)
    flat[where] = np.resize(specials, where.size)
    return values


def _batch_last(shape: tuple[int, ...], crop: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """How a convolution lays out (N, C, *spatial): memory (C, *spatial, N); ``crop`` cells cut from
    the front of each spatial dimension and one from the back, as a deconvolution crops."""
    n, c, *spatial = shape

    def make(values: np.ndarray) -> np.ndarray:
        if not crop:
            return np.moveaxis(np.ascontiguousarray(np.moveaxis(values, 0, -1)), -1, 0)
        full = np.zeros((c, *(s + crop + 1 for s in spatial), n), values.dtype)
        view = np.moveaxis(full, -1, 0)[(slice(None), slice(None), *(slice(crop, crop + s) for s in spatial))]
        view[...] = values
        return view

    return make


LAYOUTS: dict[str, tuple[tuple[int, ...], Callable[[np.ndarray], np.ndarray]]] = {
    "conv batch-last": ((5, 3, 4, 7), _batch_last((5, 3, 4, 7))),
    "conv batch-last, one channel": ((6, 1, 5, 5), _batch_last((6, 1, 5, 5))),
    "deconv cropped": ((3, 4, 6, 5), _batch_last((3, 4, 6, 5), crop=1)),
    "deconv cropped, 1-D": ((3, 2, 9), _batch_last((3, 2, 9), crop=2)),
    "3-D batch-last": ((2, 3, 3, 4, 5), _batch_last((2, 3, 3, 4, 5))),
    "3-D cropped (forward on the shared path)": ((2, 3, 3, 4, 5), _batch_last((2, 3, 3, 4, 5), crop=1)),
    "linear row-major": ((7, 13), np.ascontiguousarray),
    "linear, one example": ((1, 9), np.ascontiguousarray),
    "linear column-major": ((7, 13), np.asfortranarray),
    "C-ordered conv (shared path)": ((2, 3, 4, 5), np.ascontiguousarray),
}


def _run(y: np.ndarray, biases, activation: Activation, g: np.ndarray, compiled: bool):
    previous = set_compiled_kernels(compiled)
    try:
        out, vjp = bias_activation.raw(y, biases, activation=activation)
        grad, grad_biases = vjp(g, (True, biases is not None))
    finally:
        set_compiled_kernels(previous)
    return out, grad, grad_biases


class _Calls:
    """Counts the calls of the compiled kernels (wrapping the module's functions), forward ones apart."""

    def __init__(self, monkeypatch) -> None:
        self.count = self.forward = 0
        for name in ("runs_forward", "runs_backward", "rows_forward", "rows_backward"):
            original = getattr(kernels, name)
            monkeypatch.setattr(kernels, name, self._counting(original, name.endswith("forward")))

    def _counting(self, original, forward: bool):
        def call(*args):
            self.count += 1
            self.forward += forward
            return original(*args)

        return call


@pytest.fixture(autouse=True)
def _every_size(monkeypatch):
    monkeypatch.setattr(epilogue, "COMPILED_MINIMUM", 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("with_biases", [True, False])
def test_compiled_equals_shared(dtype, layout, name, with_biases, monkeypatch):
    shape, make = LAYOUTS[layout]
    activation = ACTIVATIONS[name]
    rng = np.random.default_rng(abs(hash((layout, name))) % 2**32)
    values = _special(rng.standard_normal(shape).astype(dtype), rng)
    biases = rng.standard_normal(shape[1]).astype(dtype) if with_biases else None
    if biases is not None:  # some inputs exactly -b, so that y + b is exactly 0
        values[0, :] = -biases.reshape(-1, *(1,) * (len(shape) - 2))
    g = _special(rng.standard_normal(shape).astype(dtype), rng)
    cotangent = _batch_last(shape)(g) if len(shape) > 2 else g
    calls = _Calls(monkeypatch)
    out, grad, grad_biases = _run(make(values.copy()), biases, activation, cotangent, True)
    used = calls.count
    expected = _run(make(values.copy()), biases, activation, cotangent, False)
    assert calls.count == used  # the shared run called no kernel
    assert (calls.forward > 0) == ("shared path" not in layout)
    np.testing.assert_array_equal(out, expected[0])
    np.testing.assert_array_equal(grad, expected[1])
    if with_biases:
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(grad_biases, expected[2], rtol=rtol, atol=rtol)
        assert grad_biases.dtype == dtype
    assert out.shape == grad.shape == shape and out.dtype == grad.dtype == dtype


@pytest.mark.parametrize("cotangent", ["batch-last", "C-ordered", "cropped"])
def test_any_cotangent_layout_gives_the_same_gradients(cotangent):
    shape = (4, 3, 5, 6)
    rng = np.random.default_rng(1)
    values, g, biases = rng.standard_normal(shape), rng.standard_normal(shape), rng.standard_normal(3)
    given = {
        "batch-last": _batch_last(shape)(g),
        "C-ordered": np.ascontiguousarray(g),
        "cropped": _batch_last(shape, crop=2)(g),
    }[cotangent]
    activation = Activation("leaky_ramp", slope=0.3)
    found = _run(_batch_last(shape)(values), biases, activation, given, True)  # a copy each time
    expected = _run(_batch_last(shape)(values), biases, activation, given, False)
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_array_equal(found[1], expected[1])
    np.testing.assert_allclose(found[2], expected[2], rtol=1e-12)


def test_split_over_threads_equals_one_pass(monkeypatch):
    """Channels shared among three parts (the pass split even when small) give what one part gives."""
    shape = (4, 7, 5, 5)
    rng = np.random.default_rng(2)
    values, g, biases = rng.standard_normal(shape), rng.standard_normal(shape), rng.standard_normal(7)
    activation = Activation("ramp", shift=0.5)
    single = _run(_batch_last(shape)(values), biases, activation, _batch_last(shape)(g), True)
    threads = backend.cpu_threads()
    monkeypatch.setattr(backend, "PARALLEL_MINIMUM", 0)
    backend.set_cpu_threads(3)
    try:
        split = _run(_batch_last(shape)(values), biases, activation, _batch_last(shape)(g), True)
        rows = _run(values[:, :, 0, 0].copy(), biases, activation, g[:, :, 0, 0].copy(), True)  # 7 channels
    finally:
        backend.set_cpu_threads(threads)
    expected_rows = _run(values[:, :, 0, 0].copy(), biases, activation, g[:, :, 0, 0].copy(), False)
    for a, b in zip(single, split):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(rows[:2], expected_rows[:2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(rows[2], expected_rows[2], rtol=1e-12)


def test_leaky_ramp_keeps_the_sign_that_the_output_loses():
    """-tiny · 0.02 rounds to -0, and so does -0 itself: only the mask tells them apart."""
    tiny = np.finfo(np.float32).smallest_subnormal
    y = np.array([[-tiny, -0.0, 0.0, tiny]], np.float32)
    for compiled in (True, False):
        out, grad, _ = _run(y.copy(), None, Activation("leaky_ramp", slope=0.02), np.ones_like(y), compiled)
        assert np.all(out[0, :3] == 0) and np.signbit(out[0, :2]).all()
        np.testing.assert_array_equal(grad, [[np.float32(0.02), 1, 1, 1]])


def test_a_ramp_at_exactly_zero_has_derivative_zero():
    y, b = np.array([[1.0, -2.0, 0.5]]), np.array([-1.0, 2.0, 0.0])
    for compiled in (True, False):
        out, grad, grad_biases = _run(y.copy(), b, Activation("ramp"), np.full((1, 3), 3.0), compiled)
        np.testing.assert_array_equal(out, [[0.0, 0.0, 0.5]])
        np.testing.assert_array_equal(grad, [[0.0, 0.0, 3.0]])
        np.testing.assert_array_equal(grad_biases, [0.0, 0.0, 3.0])


def test_the_gradient_comes_out_in_the_producers_layout():
    shape = (3, 4, 5, 6)
    rng = np.random.default_rng(4)
    for cotangent in (_batch_last(shape), _batch_last(shape, crop=1)):
        y = _batch_last(shape)(rng.standard_normal(shape))
        _, grad, _ = _run(y, None, Activation("ramp"), cotangent(rng.standard_normal(shape)), True)
        assert grad.strides[0] == grad.itemsize and grad.base.flags.c_contiguous  # compact batch-last
    _, grad, _ = _run(rng.standard_normal((5, 8)), None, Activation("ramp"), np.ones((5, 8)), True)
    assert grad.flags.c_contiguous


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.moveaxis(np.zeros((3, 4, 5, 2)), -1, 0), MemoryLayout(True, 1, 1, 40)),
        (np.moveaxis(np.zeros((3, 6, 7, 2)), -1, 0)[:, :, 1:5, 2:6], MemoryLayout(True, 2, 4, 8)),
        (np.zeros((4, 9)), MemoryLayout(False, 0, 4, 9)),
        (np.zeros((4, 9), order="F"), MemoryLayout(True, 1, 1, 4)),
        (np.zeros((2, 3, 4)), None),  # C-ordered: the examples are not the fastest axis
        (np.moveaxis(np.zeros((3, 4, 5, 2)), -1, 0)[:, :, :, ::2], None),  # a step: no contiguous run
        (np.zeros((0, 3)), None),
    ],
)
def test_memory_layouts(array, expected):
    assert memory_layout(array) == expected


def test_the_kernels_cover_only_their_channels():
    """Two calls over halves of the channels do what one call does (how the threads share a pass)."""
    rng = np.random.default_rng(5)
    y = rng.standard_normal((6, 2, 10)).astype(np.float32)  # channels, rows, run length
    biases, slope = rng.standard_normal(6).astype(np.float32), np.float32(0.1)
    g = rng.standard_normal(y.shape).astype(np.float32)
    results = []
    for parts in ([(0, 6)], [(0, 2), (2, 6)]):
        flat, mask = y.copy().reshape(-1), np.zeros(y.size, np.bool_)
        grad, grad_biases = np.zeros(y.size, np.float32), np.zeros(6, np.float32)
        for c0, c1 in parts:
            kernels.runs_forward(flat, 0, 20, 10, flat, 0, 20, 10, 2, 10, c0, c1, biases, True, np.float32(0), False,
                                 kernels.LEAKY, slope, mask, 0, 20, 10)  # fmt: skip
            kernels.runs_backward(mask, 0, 20, 10, g.reshape(-1), 0, 20, 10, grad, 2, 10, c0, c1, kernels.LEAKY,
                                  slope, grad_biases, True)  # fmt: skip
        results.append((flat, mask, grad, grad_biases))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    pre = y + biases[:, None, None]
    np.testing.assert_array_equal(results[0][0].reshape(y.shape), np.where(pre >= 0, pre, slope * pre))
