"""The compiled window copies and scatter-adds (netgraph.compiled.windows) against the NumPy path of
layers.convolution, bit for bit: 1 to 3 spatial dimensions, any kernel, stride, dilation, padding and
groups, blocks of output rows, parts of channels and examples, batch-last and C-ordered inputs,
float32 and float64; and the convolution primitives with the compiled path on and off."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from layers.convolution import (  # noqa: E402
    Window,
    _batch_last,
    _col2im_add,
    _im2col,
    _pad,
    convolution,
    deconvolution,
)
from netgraph.autograd import Tape, Tensor, backward  # noqa: E402
from netgraph.compiled import set_compiled_kernels, windows  # noqa: E402
from netgraph.compiled.layout import memory_span  # noqa: E402

DTYPES = [np.float32, np.float64]


@st.composite
def geometries(draw):
    """(window, padded input shape (N, C, *padded), groups, output positions) of a random convolution."""
    d = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(d))
    window = Window(kernel, stride, dilation, pads)
    spatial = tuple(s + draw(st.integers(0, 4)) for s in window.span)
    groups = draw(st.integers(1, 3))
    channels, n = groups * draw(st.integers(1, 3)), draw(st.integers(1, 5))
    return window, (n, channels, *spatial), groups


def _input(rng, shape, dtype, batch_last: bool):
    if batch_last:
        x = _batch_last(np, shape, None, dtype)
        x[...] = rng.standard_normal(shape)
        return x
    return rng.standard_normal(shape).astype(dtype)


@given(geometries(), st.sampled_from(DTYPES), st.booleans(), st.data())
def test_im2col_matches_numpy(geometry, dtype, batch_last, data):
    window, shape, groups = geometry
    rng = np.random.default_rng(0)
    x = _pad(_input(rng, shape, dtype, batch_last), window.pads)  # padded, batch-last
    out = window.positions(x.shape[2:])
    a = data.draw(st.integers(0, out[0] - 1))
    rows = (a, data.draw(st.integers(a + 1, out[0])))
    expected = _im2col(x, window, out, groups, rows)
    got = _im2col(x, window, out, groups, rows, compiled=True)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@given(geometries(), st.sampled_from(DTYPES), st.data())
def test_col2im_add_matches_numpy(geometry, dtype, data):
    window, shape, groups = geometry
    rng = np.random.default_rng(1)
    n, c, *padded = shape
    out = window.positions(tuple(padded))
    a = data.draw(st.integers(0, out[0] - 1))
    rows = (a, data.draw(st.integers(a + 1, out[0])))
    block = (rows[1] - rows[0], *out[1:])
    cols = rng.standard_normal((groups, c // groups * math.prod(window.kernel), math.prod(block) * n)).astype(dtype)
    start = rng.standard_normal((c, *padded, n)).astype(dtype)  # adds into what is there
    expected, got = start.copy(), start.copy()
    _col2im_add(expected, cols, window, out, rows)
    _col2im_add(got, cols, window, out, rows, compiled=True)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_parts_touch_only_their_channels_and_examples(dtype):
    """A call over a part writes exactly that part: what in_parallel's threads rely on."""
    rng = np.random.default_rng(2)
    window = Window((3, 2), (2, 1), (1, 2), ((0, 0), (0, 0)))
    x = rng.standard_normal((4, 9, 7, 5)).astype(dtype)  # (C, H, W, N) as in memory
    out = window.positions((9, 7))
    full = np.empty((4, 3, 2, *out, 5), dtype)
    windows.im2col(x, full, window.stride, window.dilation, 0, (0, 4, 0, 5))
    part = np.full_like(full, np.nan)
    windows.im2col(x, part, window.stride, window.dilation, 0, (1, 3, 2, 4))
    inside = (slice(1, 3), ..., slice(2, 4))
    np.testing.assert_array_equal(part[inside], full[inside])
    assert np.isnan(part[0]).all() and np.isnan(part[3]).all() and np.isnan(part[..., :2]).all()
    result = np.zeros_like(x)
    windows.col2im_add(result, full, window.stride, window.dilation, 0, (1, 3, 2, 4))
    assert not result[0].any() and not result[3].any() and not result[..., 4].any()


def test_strided_and_edge_values():
    """A sliced (non-contiguous) input, infinities and NaNs are copied as they are."""
    sliced = np.zeros((2, 10, 3))[:, ::2, 1:]  # (C, L, N) as in memory, strided
    sliced[...] = np.arange(sliced.size, dtype=np.float64).reshape(sliced.shape)
    sliced[0, 0, 0], sliced[1, 2, 1] = np.inf, np.nan
    cols = np.empty((2, 2, 4, 2))
    windows.im2col(sliced, cols, (1,), (1,), 0, (0, 2, 0, 2))
    expected = np.stack([sliced[:, k : k + 4] for k in range(2)], axis=1)
    np.testing.assert_array_equal(cols, expected)
    with pytest.raises(ValueError, match="non-negative strides"):
        memory_span(np.zeros((3, 4))[::-1])


@pytest.mark.parametrize("layer", ["convolution", "deconvolution"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_last", [True, False])
def test_primitives_same_bits_with_compiled_path_on_and_off(layer, dtype, batch_last):
    rng = np.random.default_rng(3)
    window = Window((3, 2), (2, 1), (1, 2), ((1, 0), (2, 1)))
    groups, n, c, o = 2, 3, 4, 6
    x = _input(rng, (n, c, 7, 6), dtype, batch_last)
    if layer == "convolution":
        primitive, w_shape = convolution, (o, c // groups, *window.kernel)
    else:
        primitive, w_shape = deconvolution, (c, o // groups, *window.kernel)
    w, b = rng.standard_normal(w_shape).astype(dtype), rng.standard_normal(o).astype(dtype)
    results = []
    for compiled in (False, True):
        previous = set_compiled_kernels(compiled)
        try:
            tensors = [Tensor(v.copy(), requires_grad=True) for v in (x, w, b)]
            with Tape() as tape:
                y = primitive(*tensors, window=window, groups=groups)
            seed = np.random.default_rng(4).standard_normal(y.data.shape).astype(dtype)
            grads = backward(tape, {y: seed})
            results.append([np.asarray(y.data), *(np.asarray(grads[id(t)]) for t in tensors)])
        finally:
            set_compiled_kernels(previous)
    for numpy_value, compiled_value in zip(*results):
        np.testing.assert_array_equal(compiled_value, numpy_value)
