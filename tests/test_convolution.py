"""ConvolutionLayer, DeconvolutionLayer and PoolingLayer: gradients, values against direct loops,
shape rules, the seed-001 VAE encoder and decoder, and error messages."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layers as L
from gradcheck import check_net
from layers.convolution import Window, convolution, deconvolution, max_pooling, total_pooling
from netgraph import NetChain, NetInitialize, NetPortGradient, ShapeError, load
from netgraph.autograd import Tape, Tensor, backward
from netgraph.backend import get_xp

# --- drawing configurations ---------------------------------------------------------------------


def _spec(draw, values, d):
    """An int or a per-dimension tuple."""
    return draw(st.sampled_from([draw(values), tuple(draw(values) for _ in range(d))]))


def _padding(draw, d, high=2):
    """Every padding form: p, (p_1, ..., p_d), ((b_1, e_1), ...), "Same"."""
    p = st.integers(0, high)
    pairs = tuple((draw(p), draw(p)) for _ in range(d))
    return draw(st.sampled_from([draw(p), tuple(draw(p) for _ in range(d)), pairs, "Same"]))


def _per_dim(spec, d):
    return spec if isinstance(spec, tuple) else (spec,) * d


def _pairs(spec, d):
    return tuple(p if isinstance(p, tuple) else (p, p) for p in _per_dim(spec, d))


@st.composite
def conv_cases(draw, kind="Convolution", max_dims=2):
    """(layer, batch input) for a random convolution or deconvolution small enough to check quickly."""
    d = draw(st.integers(1, max_dims))
    groups = draw(st.integers(1, 2))
    c_in, n = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = _spec(draw, st.integers(1, 3), d)
    stride, dilation = _spec(draw, st.integers(1, 2), d), _spec(draw, st.integers(1, 2), d)
    padding = _padding(draw, d)
    ks, ss, ds = _per_dim(kernel, d), _per_dim(stride, d), _per_dim(dilation, d)
    if kind == "Deconvolution" and padding == "Same" and any(s > di * (k - 1) + 1 for k, s, di in zip(ks, ss, ds)):
        padding = 0  # "Same" cropping needs stride <= the window
    spatial = []
    for i in range(d):
        span = ds[i] * (ks[i] - 1) + 1
        pb, pe = (0, 0) if padding == "Same" else _pairs(padding, d)[i]
        if kind == "Convolution":
            low = 1 if padding == "Same" else max(1, span - pb - pe)
        else:
            low = 1 + max(0, -(-(pb + pe - span + 1) // ss[i]))
        spatial.append(draw(st.integers(low, low + 3)))
    cls = L.ConvolutionLayer if kind == "Convolution" else L.DeconvolutionLayer
    layer = cls(n, kernel, stride, padding, dilation, groups, input=(c_in, *spatial))
    x = np.random.default_rng(draw(st.integers(0, 2**31))).uniform(
        -2, 2, size=(draw(st.integers(1, 2)), c_in, *spatial)
    )
    return layer, x


@st.composite
def pooling_cases(draw, max_dims=2):
    d = draw(st.integers(1, max_dims))
    kernel, stride = _spec(draw, st.integers(1, 3), d), _spec(draw, st.integers(1, 2), d)
    ks = _per_dim(kernel, d)
    padding = _padding(draw, d, high=min(ks) - 1)
    pads = [(0, 0)] * d if padding == "Same" else _pairs(padding, d)
    spatial = tuple(draw(st.integers(max(1, k - b - e), max(1, k - b - e) + 3)) for k, (b, e) in zip(ks, pads))
    function = draw(st.sampled_from(["Max", "Mean", "Total"]))
    layer = L.PoolingLayer(
        kernel, stride, function=function, padding_size=padding, input=(draw(st.integers(1, 2)), *spatial)
    )
    shape = (draw(st.integers(1, 2)), *layer.port_shapes["Input"])
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = (rng.permutation(math.prod(shape)).reshape(shape) - math.prod(shape) / 2) * 0.1  # no near-ties for Max
    return layer, x


# --- gradients -----------------------------------------------------------------------------


@given(case=conv_cases())
def test_convolution_gradient(case, device):
    layer, x = case
    check_net(NetInitialize(layer), {"Input": x}, device=device)


@given(case=conv_cases("Deconvolution"))
def test_deconvolution_gradient(case, device):
    layer, x = case
    check_net(NetInitialize(layer), {"Input": x}, device=device)


@given(case=pooling_cases())
def test_pooling_gradient(case, device):
    layer, x = case
    check_net(layer, {"Input": x}, device=device)


def test_gradient_without_biases_and_in_3d(device):
    rng = np.random.default_rng(3)
    layer = NetInitialize(L.ConvolutionLayer(2, 2, padding_size="Same", biases=None, input=(2, 3, 2, 3)))
    check_net(layer, {"Input": rng.normal(size=(2, 2, 3, 2, 3))}, device=device)
    layer = NetInitialize(L.DeconvolutionLayer(2, (2, 1, 2), stride=2, channel_groups=2, input=(2, 2, 2, 2)))
    check_net(layer, {"Input": rng.normal(size=(1, 2, 2, 2, 2))}, device=device)


# --- values against direct loops over output positions ---------------------------------------


def conv_reference(x, w, b, stride, dilation, pads, groups):
    """y[n, o, p] = b[o] + Σ_{c in o's group, k} w[o, c, k] · xpad[n, c, p·stride + k·dilation]."""
    xpad = np.pad(x, ((0, 0), (0, 0), *pads))
    d, (n_out, cg) = x.ndim - 2, w.shape[:2]
    span = [di * (k - 1) + 1 for k, di in zip(w.shape[2:], dilation)]
    out = [(n - s) // st + 1 for n, s, st in zip(xpad.shape[2:], span, stride)]
    og = n_out // groups
    y = np.zeros((x.shape[0], n_out, *out))
    for p in itertools.product(*map(range, out)):
        cells = tuple(slice(q * s, q * s + sp, di) for q, s, sp, di in zip(p, stride, span, dilation))
        window = xpad[(slice(None), slice(None), *cells)]
        for g in range(groups):
            part = window[:, g * cg : (g + 1) * cg].reshape(x.shape[0], -1)
            y[(slice(None), slice(g * og, (g + 1) * og), *p)] = part @ w[g * og : (g + 1) * og].reshape(og, -1).T
    return y + b.reshape(-1, *(1,) * d)


def deconv_reference(x, w, b, stride, dilation, crops, groups):
    """The definition: scatter-add x[n, c, p] · w[c, o, k] at p·stride + k·dilation, then crop."""
    d, (c_in, og) = x.ndim - 2, w.shape[:2]
    span = [di * (k - 1) + 1 for k, di in zip(w.shape[2:], dilation)]
    full = [s * (n - 1) + sp for s, n, sp in zip(stride, x.shape[2:], span)]
    z = np.zeros((x.shape[0], og * groups, *full))
    cg = c_in // groups
    for p in itertools.product(*map(range, x.shape[2:])):
        cells = tuple(slice(q * s, q * s + sp, di) for q, s, sp, di in zip(p, stride, span, dilation))
        for g in range(groups):
            part = x[(slice(None), slice(g * cg, (g + 1) * cg), *p)]
            z[(slice(None), slice(g * og, (g + 1) * og), *cells)] += np.einsum(
                "nc,co...->no...", part, w[g * cg : (g + 1) * cg]
            )
    z = z[(slice(None), slice(None), *(slice(bb, n - e) for (bb, e), n in zip(crops, full)))]
    return z + b.reshape(-1, *(1,) * d)


def pool_reference(x, kernel, stride, pads, function):
    xpad = np.pad(x, ((0, 0), (0, 0), *pads), constant_values=-np.inf if function == "Max" else 0.0)
    out = [(n - k) // s + 1 for n, k, s in zip(xpad.shape[2:], kernel, stride)]
    y = np.zeros((*x.shape[:2], *out))
    for p in itertools.product(*map(range, out)):
        window = xpad[(slice(None), slice(None), *(slice(q * s, q * s + k) for q, s, k in zip(p, stride, kernel)))]
        flat = window.reshape(*x.shape[:2], -1)
        value = {"Max": flat.max(-1), "Total": flat.sum(-1), "Mean": flat.sum(-1) / math.prod(kernel)}[function]
        y[(slice(None), slice(None), *p)] = value
    return y


def _window_of(layer):
    return layer._window(layer.port_shapes["Input"][1:])


@given(case=conv_cases(max_dims=3), seed=st.integers(0, 99))
def test_convolution_matches_direct_loops(case, seed, device):
    layer, x = case
    net = NetInitialize(layer, random_seeding=seed)
    w, b, win = net.arrays["Weights"], np.random.default_rng(seed).normal(size=layer.n), _window_of(layer)
    net.arrays["Biases"] = b
    expected = conv_reference(x, w.astype(float), b, win.stride, win.dilation, win.pads, layer.channel_groups)
    got = net(x, target_device=device, working_precision="Real64")
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@given(case=conv_cases("Deconvolution", max_dims=3), seed=st.integers(0, 99))
def test_deconvolution_matches_definition(case, seed, device):
    layer, x = case
    net = NetInitialize(layer, random_seeding=seed)
    w, b, win = net.arrays["Weights"], np.random.default_rng(seed).normal(size=layer.n), _window_of(layer)
    net.arrays["Biases"] = b
    expected = deconv_reference(x, w.astype(float), b, win.stride, win.dilation, win.pads, layer.channel_groups)
    got = net(x, target_device=device, working_precision="Real64")
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@given(case=pooling_cases(max_dims=3))
def test_pooling_matches_direct_loops(case, device):
    layer, x = case
    win = _window_of(layer)
    expected = pool_reference(x, win.kernel, win.stride, win.pads, layer.function)
    np.testing.assert_allclose(
        layer(x, target_device=device, working_precision="Real64"), expected, rtol=1e-12, atol=1e-12
    )


@given(case=conv_cases(max_dims=3), seed=st.integers(0, 99))
def test_deconvolution_is_the_adjoint_of_convolution(case, seed):
    """⟨conv(x), y⟩ = ⟨x, deconv(y)⟩ for the same weights, window and groups (padding = cropping)."""
    layer, _ = case
    win, groups = _window_of(layer), layer.channel_groups
    rng = np.random.default_rng(seed)
    spatial = layer.port_shapes["Input"][1:]
    out = layer.port_shapes["Output"][1:]
    # the deconvolution of an `out` image has exactly the input's size when no cell is left over
    spatial = tuple(s * (o - 1) + sp - b - e for s, o, sp, (b, e) in zip(win.stride, out, win.span, win.pads))
    if min(spatial) < 1:
        return
    x = rng.normal(size=(2, layer.port_shapes["Input"][0], *spatial))
    w = rng.normal(size=(layer.n, x.shape[1] // groups, *win.kernel))
    y = rng.normal(size=(2, layer.n, *out))
    conv_x = convolution.raw(x, w, window=win, groups=groups)[0]
    deconv_y = deconvolution.raw(y, w, window=win, groups=groups)[0]
    assert conv_x.shape == y.shape and deconv_y.shape == x.shape
    assert np.sum(conv_x * y) == pytest.approx(np.sum(x * deconv_y), rel=1e-10, abs=1e-10)


def test_reference_examples():
    conv = L.ConvolutionLayer(1, (2, 2), weights=[[[[1, 2], [0, 0]]]], biases=[0], input=(1, 3, 3))
    assert conv(np.array([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]])).tolist() == [[[5, 8], [14, 17]]]
    pool = L.PoolingLayer(2, 2, input=(1, 4, 4))
    assert pool(np.arange(1.0, 17).reshape(1, 4, 4)).tolist() == [[[6, 8], [14, 16]]]


def test_max_pooling_ignores_padding_and_mean_counts_it():
    x = -np.ones((1, 2))  # one example
    assert L.PoolingLayer(2, padding_size=1, input=(1, 2))(x).tolist() == [[-1, -1, -1]]
    assert L.PoolingLayer(2, padding_size=1, function="Mean", input=(1, 2))(x).tolist() == [[-0.5, -1, -0.5]]
    assert L.PoolingLayer(2, padding_size=1, function="Total", input=(1, 2))(x).tolist() == [[-1, -2, -1]]


def test_max_pooling_gradient_goes_to_the_first_maximum():
    layer = L.PoolingLayer(3, input=(1, 4))
    assert layer(np.array([[2.0, 5.0, 5.0, 1.0]]), NetPortGradient("Input")).tolist() == [[0, 2, 0, 0]]


@pytest.mark.parametrize("prim", ["convolution", "deconvolution", "max", "total"])
def test_float32_is_kept(prim, device):
    xp = get_xp(device)
    win = Window((3, 2), (2, 1), (1, 2), ((1, 0), (2, 1)))
    f = {
        "convolution": lambda x, w, b: convolution(x, w, b, window=win, groups=2),
        "deconvolution": lambda x, w, b: deconvolution(x, w, b, window=win, groups=2),
        "max": lambda x, w, b: max_pooling(x, window=win),
        "total": lambda x, w, b: total_pooling(x, window=win, scale=0.25),
    }[prim]
    rng = np.random.default_rng(0)
    x, w, b = (
        Tensor(xp.asarray(rng.normal(size=s), dtype=xp.float32), True) for s in ((2, 4, 7, 6), (4, 2, 3, 2), (4,))
    )
    with Tape() as tape:
        y = f(x, w, b)
    grads = backward(tape, {y: xp.ones(y.shape, xp.float32)})
    assert y.dtype == xp.float32 and all(g.dtype == xp.float32 for g in grads.values())


# --- shape rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, output",
    [
        (L.ConvolutionLayer(3, 2, input=(2, 3, 4), padding_size=((1, 2), (2, 1))), (3, 5, 6)),
        (
            L.ConvolutionLayer(3, (3, 2), input=(3, 7, 5), stride=(2, 1), padding_size=(2, 1), dilation=(2, 1)),
            (3, 4, 6),
        ),
        (L.ConvolutionLayer(2, 2, stride=2, input=(2, 8, 8)), (2, 4, 4)),
        (L.ConvolutionLayer(4, 3, input=(2, 10)), (4, 8)),
        (L.ConvolutionLayer(4, (3,), padding_size="Same", stride=2, input=(2, 9)), (4, 5)),
        (L.ConvolutionLayer(4, 3, input=(1, 5, 6, 7)), (4, 3, 4, 5)),
        (L.DeconvolutionLayer(1, 2, stride=2, input=(3, 4, 4)), (1, 8, 8)),
        (L.DeconvolutionLayer(1, 4, stride=2, padding_size=1, input=(3, 4, 4)), (1, 8, 8)),
        (L.DeconvolutionLayer(2, 3, stride=2, padding_size="Same", input=(3, 5, 7)), (2, 10, 14)),
        (L.PoolingLayer(2, 2, input=(1, 4, 4)), (1, 2, 2)),
        (L.PoolingLayer(3, input=(5, 4, 6)), (5, 2, 4)),
        (L.PoolingLayer((2, 3), (2, 3), padding_size="Same", input=(2, 5, 7)), (2, 3, 3)),
    ],
)
def test_reference_shapes(layer, output):
    assert layer.port_shapes["Output"] == output


@given(case=conv_cases(max_dims=3))
def test_convolution_output_size_formula(case):
    layer, x = case
    win, spatial = _window_of(layer), x.shape[2:]
    if layer.padding_size == "Same":
        expected = tuple(-(-n // s) for n, s in zip(spatial, win.stride))
    else:
        expected = tuple(
            (n + b + e - (d * (k - 1) + 1)) // s + 1
            for n, (b, e), k, s, d in zip(spatial, win.pads, win.kernel, win.stride, win.dilation)
        )
    assert layer.port_shapes["Output"] == (layer.n, *expected)
    g = layer.channel_groups
    assert layer.array_shapes() == {"Weights": (layer.n, x.shape[1] // g, *win.kernel), "Biases": (layer.n,)}
    assert layer.fan("Weights") == (x.shape[1] // g * math.prod(win.kernel), layer.n // g * math.prod(win.kernel))


@given(case=conv_cases("Deconvolution", max_dims=3))
def test_deconvolution_output_size_formula(case):
    layer, x = case
    win, spatial = _window_of(layer), x.shape[2:]
    if layer.padding_size == "Same":
        expected = tuple(n * s for n, s in zip(spatial, win.stride))
    else:
        expected = tuple(
            s * (n - 1) + d * (k - 1) + 1 - b - e
            for n, (b, e), k, s, d in zip(spatial, win.pads, win.kernel, win.stride, win.dilation)
        )
    assert layer.port_shapes["Output"] == (layer.n, *expected)
    g = layer.channel_groups
    assert layer.array_shapes()["Weights"] == (x.shape[1], layer.n // g, *win.kernel)
    assert layer.fan("Weights") == (x.shape[1] // g * math.prod(win.kernel), layer.n // g * math.prod(win.kernel))


@given(case=pooling_cases(max_dims=3))
def test_pooling_output_size_formula(case):
    layer, x = case
    win, spatial = _window_of(layer), x.shape[2:]
    if layer.padding_size == "Same":
        expected = tuple(-(-n // s) for n, s in zip(spatial, win.stride))
    else:
        expected = tuple((n + b + e - k) // s + 1 for n, (b, e), k, s in zip(spatial, win.pads, win.kernel, win.stride))
    assert layer.port_shapes["Output"] == (x.shape[1], *expected)


def test_same_padding_puts_the_odd_cell_at_the_end():
    assert _window_of(L.ConvolutionLayer(1, 4, padding_size="Same", input=(1, 6))).pads == ((1, 2),)
    assert _window_of(L.ConvolutionLayer(1, 3, 2, padding_size="Same", input=(1, 6))).pads == ((0, 1),)
    assert _window_of(L.DeconvolutionLayer(1, 4, 1, padding_size="Same", input=(1, 6))).pads == ((1, 2),)


def test_unknown_input_leaves_output_unknown_and_config_round_trips():
    layer = L.ConvolutionLayer(8, (3, 3), stride=2, padding_size=((1, 0), (0, 1)))
    assert layer.port_shapes == {"Input": None, "Output": None}
    for layer in (
        L.ConvolutionLayer(8, (3, 3), stride=2, padding_size=((1, 0), (0, 1)), channel_groups=2, input=(4, 9, 9)),
        L.DeconvolutionLayer(6, 3, stride=(1, 2), padding_size="Same", dilation=2, input=(4, 9, 9)),
        L.PoolingLayer((2, 3), 2, function="Mean", padding_size=(1, 0), input=(4, 9, 9)),
    ):
        again = type(layer)(**layer.config(), input=layer.port_shapes["Input"])
        assert again.port_shapes == layer.port_shapes and again.config() == layer.config()


def test_save_and_load(tmp_path):
    net = NetInitialize(
        NetChain(
            [
                L.ConvolutionLayer(4, (3, 2), stride=2, padding_size=((1, 0), (0, 1)), channel_groups=2),
                L.PoolingLayer(2, function="Mean", padding_size="Same"),
                L.DeconvolutionLayer(2, 3, stride=(2, 1), dilation=2, biases=None),
            ],
            input=(2, 9, 8),
        )
    )
    net.save(tmp_path / "net.npz")
    x = np.random.default_rng(0).normal(size=(3, 2, 9, 8))
    np.testing.assert_array_equal(load(tmp_path / "net.npz")(x), net(x))


# --- the seed-001 VAE encoder and decoder ------------------------------------------------------


def test_vae_encoder_and_decoder_shapes_and_gradients():
    encoder = NetChain(
        [
            L.ConvolutionLayer(32, 3),
            "Ramp",
            L.ConvolutionLayer(64, 3, stride=2),
            "Ramp",
            L.ConvolutionLayer(64, 4),
            "Ramp",
            L.FlattenLayer(),
        ],
        input=(1, 28, 28),
    )
    assert [encoder.vertices[k].port_shapes["Output"] for k in (1, 3, 5, 7)] == [
        (32, 26, 26),
        (64, 12, 12),
        (64, 9, 9),
        (5184,),
    ]
    decoder = NetChain(
        [
            L.LinearLayer(5184),
            "Ramp",
            L.ReshapeLayer((64, 9, 9)),
            L.DeconvolutionLayer(64, 4),
            "Ramp",
            L.DeconvolutionLayer(32, 3, stride=2),
            "Ramp",
            L.DeconvolutionLayer(1, 4),
            "LogisticSigmoid",
        ],
        input=8,
    )
    assert [decoder.vertices[k].port_shapes["Output"] for k in (4, 6, 8)] == [
        (64, 12, 12),
        (32, 25, 25),
        (1, 28, 28),
    ]
    images = np.random.default_rng(0).uniform(size=(2, 1, 28, 28))
    codes = encoder(images)
    assert codes.shape == (2, 5184) and codes.dtype == np.float32
    assert decoder(np.ones((2, 8))).shape == (2, 1, 28, 28)
    grads = encoder(images, [NetPortGradient("Input"), NetPortGradient((1, "Weights"))])
    assert grads[NetPortGradient("Input")].shape == images.shape
    assert grads[NetPortGradient((1, "Weights"))].shape == (32, 1, 3, 3)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: NetChain([L.ConvolutionLayer(4, 3), L.ConvolutionLayer(3, 3, channel_groups=2)], input=(2, 8, 8)),
            r"ConvolutionLayer '2': 4 input channels and 3 output channels must both be divisible by channel_groups=2",
        ),
        (
            lambda: L.DeconvolutionLayer(4, 3, channel_groups=2, input=(3, 8, 8)),
            r"DeconvolutionLayer: 3 input channels .* channel_groups=2",
        ),
        (
            lambda: NetChain([L.ConvolutionLayer(4, 3), L.ConvolutionLayer(3, 7)], input=(2, 8, 8)),
            r"ConvolutionLayer '2': input 6×6 padded to 6×6 is smaller than the window 7×7",
        ),
        (
            lambda: L.ConvolutionLayer(1, 3, dilation=2, padding_size=(1, 0), input=(1, 9, 3)),
            r"ConvolutionLayer: input 9×3 padded to 11×3 is smaller than the window 5×5",
        ),
        (lambda: L.DeconvolutionLayer(1, 2, padding_size=1, input=(1, 1, 1)), r"DeconvolutionLayer: cropping"),
        (lambda: L.DeconvolutionLayer(1, 2, stride=3, padding_size="Same", input=(1, 4, 4)), r"stride 3"),
        (
            lambda: L.PoolingLayer(2, padding_size=2, input=(1, 4, 4)),
            r"PoolingLayer: padding .* smaller than the kernel",
        ),
        (lambda: L.ConvolutionLayer(1, (3, 3), input=(1, 5)), r"ConvolutionLayer: needs a channels-first input"),
        (lambda: L.ConvolutionLayer(1, 3, stride=(1, 2, 1), input=(1, 5, 5)), r"ConvolutionLayer: needs"),
        (
            lambda: L.ConvolutionLayer(1, 2, weights=np.ones((1, 2, 2, 2)), input=(1, 3, 3)),
            r"weights have shape 1×2×2×2",
        ),
    ],
)
def test_errors_name_the_layer_and_the_numbers(make, message):
    with pytest.raises(ShapeError, match=message):
        make()


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="kernel_size must be at least 1"):
        L.ConvolutionLayer(1, 0)
    with pytest.raises(ValueError, match="padding_size"):
        L.ConvolutionLayer(1, 2, padding_size="Valid")
    with pytest.raises(ValueError, match="function"):
        L.PoolingLayer(2, function="Min")
