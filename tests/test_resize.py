"""ResizeLayer and PaddingLayer: the reference's worked examples, the resampling
convention, every padding method against numpy.pad, and gradient checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layers as L
from gradcheck import check_net
from netgraph import All, NetChain, NetError, NetInitialize, NetPortGradient, Scaled, ShapeError

dims = st.integers(1, 4)
batch = st.integers(1, 3)


def values(draw, shape):
    return np.random.default_rng(draw(st.integers(0, 2**31))).uniform(-2.0, 2.0, size=shape)


def linear_reference(x, n_out, axis):
    """Half-pixel linear resampling along one axis, written per output sample."""
    n_in = x.shape[axis]
    out = []
    for j in range(n_out):
        s = min(max((j + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(s))
        hi = min(lo + 1, n_in - 1)
        w = s - lo
        out.append((1 - w) * np.take(x, lo, axis=axis) + w * np.take(x, hi, axis=axis))
    return np.stack(out, axis=axis)


# --- ResizeLayer --------------------------------------------------------------------------------


def test_resize_nearest_example():
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    out = L.ResizeLayer([Scaled(2), Scaled(2)], resampling="Nearest", input=(1, 2, 2))(x)
    assert out.shape == (1, 4, 4)
    np.testing.assert_array_equal(out[0], np.repeat(np.repeat(x[0], 2, axis=0), 2, axis=1))


def test_resize_linear_uses_half_pixel_centres(device):
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    out = L.ResizeLayer([4, 4], input=(1, 2, 2))(x, target_device=device)[0]
    # PyTorch interpolate(mode="bilinear", align_corners=False) gives the same numbers
    expected = [[1.0, 1.25, 1.75, 2.0], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3.0, 3.25, 3.75, 4.0]]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    down = L.ResizeLayer([2], input=(1, 4))(np.array([[1.0, 2.0, 3.0, 4.0]]), target_device=device)
    np.testing.assert_allclose(down, [[1.5, 3.5]], rtol=1e-6)  # each output sits between two inputs


def test_resize_matches_the_reference_per_axis(device):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 7))
    layer = L.ResizeLayer([Scaled(1.5), 4], input=(3, 5, 7))
    assert layer.port_shapes["Output"] == (3, 7, 4)
    expected = linear_reference(linear_reference(x, 7, 2), 4, 3)
    np.testing.assert_allclose(layer(x, target_device=device), expected, rtol=1e-5, atol=1e-6)
    volume = L.ResizeLayer([3, All, Scaled(0.5)], input=(2, 4, 3, 6))
    assert volume.port_shapes["Output"] == (2, 3, 3, 3)
    v = np.random.default_rng(1).normal(size=(1, 2, 4, 3, 6))
    np.testing.assert_allclose(volume(v), linear_reference(linear_reference(v, 3, 2), 3, 4), rtol=1e-5, atol=1e-6)


def test_resize_nearest_general_ratios():
    x = np.arange(1.0, 7.0)[None]  # one channel, 6 values
    assert L.ResizeLayer([3], resampling="Nearest", input=(1, 6))(x).tolist() == [[2.0, 4.0, 6.0]]
    assert L.ResizeLayer([4], resampling="Nearest", input=(1, 6))(x).tolist() == [[1.0, 3.0, 4.0, 6.0]]
    up = L.ResizeLayer([Scaled(3)], resampling="Nearest", input=(1, 2))(np.array([[1.0, 2.0]]))
    assert up.tolist() == [[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]]


def test_resize_shapes_and_errors():
    assert L.ResizeLayer([Scaled(2), Scaled(2)], input=(3, 5, 6)).port_shapes["Output"] == (3, 10, 12)
    assert L.ResizeLayer([All, 8], input=(3, 5, 6)).port_shapes["Output"] == (3, 5, 8)
    assert L.ResizeLayer([Scaled(0.5)], input=(2, 5)).port_shapes["Output"] == (2, 2)  # rounded down
    assert L.ResizeLayer([Scaled(0.1)], input=(2, 5)).port_shapes["Output"] == (2, 1)  # at least 1
    chain = NetChain([L.ResizeLayer([Scaled(2), Scaled(2)]), L.FlattenLayer()], input=(1, 3, 3))
    assert chain.port_shapes["Output"] == (36,)
    with pytest.raises(ShapeError, match="rank 3"):
        L.ResizeLayer([4, 4], input=(4, 4))
    with pytest.raises(NetError, match="resampling"):
        L.ResizeLayer([4], resampling="Cubic")
    with pytest.raises(NetError, match="Scaled"):
        L.ResizeLayer([0])


# --- PaddingLayer -------------------------------------------------------------------------------


def test_padding_example():
    assert L.PaddingLayer([(1, 2)])(np.array([5.0, 6.0])).tolist() == [0.0, 5.0, 6.0, 0.0, 0.0]


@pytest.mark.parametrize("padding", [0, -1.5, "Fixed", "Reflected", "Periodic"])
def test_padding_matches_numpy_pad(padding, device):
    specs = [(0, 1), (2, 3), (7, 1)]  # 7 > 4: a reflected pad that bounces
    x = np.random.default_rng(2).normal(size=(2, 2, 3, 4))
    out = L.PaddingLayer(specs, padding=padding, input=(2, 3, 4))(x, target_device=device)
    if isinstance(padding, str):
        mode = {"Fixed": "edge", "Reflected": "reflect", "Periodic": "wrap"}[padding]
        expected = np.pad(x, [(0, 0), *specs], mode=mode)
    else:
        expected = np.pad(x, [(0, 0), *specs], constant_values=padding)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32


def test_padding_gradient_adds_back_what_was_copied():
    layer = L.PaddingLayer([(2, 1)], padding="Fixed", input=3)
    assert layer(np.array([1.0, 2, 3]), NetPortGradient("Input")).tolist() == [3.0, 1.0, 2.0]
    reflected = L.PaddingLayer([(2, 2)], padding="Reflected", input=3)
    assert reflected(np.array([1.0, 2, 3]), NetPortGradient("Input")).tolist() == [2.0, 3.0, 2.0]


def test_padding_shapes_and_errors():
    layer = L.PaddingLayer([(0, 0), (1, 1), (2, 0)], input=(3, 4, 4))
    assert layer.port_shapes["Output"] == (3, 6, 6)
    assert L.PaddingLayer([(0, 0), (1, 1)], output=(2, 5)).port_shapes["Input"] == (2, 3)
    chain = NetChain([L.PaddingLayer([(1, 1)]), L.LinearLayer(2)], input=3)
    assert NetInitialize(chain).vertices[2].arrays["Weights"].shape == (2, 5)
    with pytest.raises(ShapeError, match="one pair per level"):
        L.PaddingLayer([(1, 1), (1, 1)], input=(3, 4, 4))
    with pytest.raises(NetError, match="non-negative"):
        L.PaddingLayer([(-1, 0)])
    with pytest.raises(NetError, match="Fixed"):
        L.PaddingLayer([(1, 0)], padding="Mirror")


@pytest.mark.parametrize(
    "layer", [L.ResizeLayer([Scaled(2), All, 3], resampling="Nearest"), L.PaddingLayer([(1, 2)], padding="Fixed")]
)
def test_config_rebuilds_the_layer(layer):
    assert type(layer)(**layer.config()).config() == layer.config()


# --- gradient checks ----------------------------------------------------------------------------


@given(data=st.data())
def test_resize_gradient(data, device):
    k = data.draw(st.integers(1, 3))
    shape = (data.draw(dims), *(data.draw(st.integers(1, 5)) for _ in range(k)))
    entry = st.one_of(st.integers(1, 6), st.sampled_from([All, Scaled(0.5), Scaled(1.5), Scaled(2), Scaled(3)]))
    sizes = [data.draw(entry) for _ in range(k)]
    layer = L.ResizeLayer(sizes, resampling=data.draw(st.sampled_from(["Linear", "Nearest"])), input=shape)
    check_net(layer, {"Input": values(data.draw, (data.draw(batch), *shape))}, device=device)


@given(data=st.data())
def test_padding_gradient(data, device):
    shape = tuple(data.draw(st.lists(dims, min_size=1, max_size=3)))
    specs = [(data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5))) for _ in shape]
    padding = data.draw(st.sampled_from([0, 0.5, "Fixed", "Reflected", "Periodic"]))
    layer = L.PaddingLayer(specs, padding=padding, input=shape)
    check_net(layer, {"Input": values(data.draw, (data.draw(batch), *shape))}, device=device)
