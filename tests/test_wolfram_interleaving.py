"""`Interleaving -> True`: ConvolutionLayer, DeconvolutionLayer and PoolingLayer with the channels last.

With ``interleaving=True`` the input and output ports are (*spatial, C) instead of (C, *spatial);
the weights keep their layout. Every result must be the channels-first layer's result with the
channel axis moved last, in 1, 2 and 3 spatial dimensions, values and gradients alike.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import layers as L
from gradcheck import check_net
from netgraph import NetChain, NetError, NetInitialize, NetPortGradient, NetSummary, ShapeError, load, ops


def _last(x):
    """A channels-first batch (N, C, *spatial) with its channels moved last."""
    return np.moveaxis(np.asarray(x), 1, -1)


def _pair(make, cf_input, **options):
    """The same layer twice, channels first and interleaved, sharing their arrays."""
    first = make(input=cf_input, **options)
    if first.arrays:
        first = NetInitialize(first)
        options = {**options, **{name.lower(): value for name, value in first.arrays.items()}}
    last = make(input=(*cf_input[1:], cf_input[0]), interleaving=True, **options)
    return first, last


CASES = [
    # (make, channels-first input shape, options)
    (lambda **o: L.ConvolutionLayer(3, 2, **o), (2, 7), {}),
    (lambda **o: L.ConvolutionLayer(4, (3, 2), **o), (2, 6, 5), {"stride": (2, 1), "padding_size": ((1, 0), (0, 2))}),
    (
        lambda **o: L.ConvolutionLayer(4, 3, **o),
        (4, 5, 6),
        {"padding_size": "Same", "dilation": 2, "channel_groups": 2},
    ),
    (lambda **o: L.ConvolutionLayer(2, 2, **o), (3, 3, 4, 5), {"stride": 2, "biases": None}),
    (lambda **o: L.DeconvolutionLayer(2, 3, **o), (3, 5), {"stride": 2, "padding_size": 1}),
    (lambda **o: L.DeconvolutionLayer(4, (2, 3), **o), (2, 3, 4), {"stride": 2, "channel_groups": 2}),
    (lambda **o: L.DeconvolutionLayer(2, 2, **o), (2, 2, 3, 2), {"stride": (1, 2, 2), "padding_size": "Same"}),
    (lambda **o: L.PoolingLayer(2, **o), (3, 6), {"function": "Mean"}),
    (lambda **o: L.PoolingLayer((2, 3), 2, **o), (3, 7, 8), {"padding_size": "Same"}),
    (lambda **o: L.PoolingLayer(2, 2, **o), (2, 4, 6, 5), {"function": "Total", "padding_size": (1, 0, 1)}),
]
IDS = [f"{make(input=shape, **options).describe()}-{len(shape) - 1}d" for make, shape, options in CASES]


@pytest.mark.parametrize(("make", "shape", "options"), CASES, ids=IDS)
def test_interleaved_result_is_the_channels_first_result_transposed(make, shape, options):
    first, last = _pair(make, shape, **options)
    assert last.port_shapes["Input"] == (*shape[1:], shape[0])
    out = first.port_shapes["Output"]
    assert last.port_shapes["Output"] == (*out[1:], out[0])
    assert last.array_shapes() == first.array_shapes()  # the weights keep their layout
    x = np.random.default_rng(0).normal(size=(3, *shape))
    np.testing.assert_allclose(last(_last(x)), _last(first(x)), rtol=1e-6, atol=1e-6)
    # one example (a port-shaped array, no batch axis) as well
    np.testing.assert_allclose(last(_last(x)[0]), _last(first(x))[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("make", "shape", "options"), CASES, ids=IDS)
def test_interleaved_gradients_are_the_channels_first_gradients_transposed(make, shape, options):
    first, last = _pair(make, shape, **options)
    x = np.random.default_rng(1).normal(size=(2, *shape))
    specs = [NetPortGradient("Input")] + [NetPortGradient((name,)) for name in first.arrays]
    g_first = first({"Input": x}, specs, working_precision="Real64")
    g_last = last({"Input": _last(x)}, specs, working_precision="Real64")
    np.testing.assert_allclose(g_last[specs[0]], _last(g_first[specs[0]]), rtol=1e-9, atol=1e-9)
    for spec in specs[1:]:
        np.testing.assert_allclose(g_last[spec], g_first[spec], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("make", "shape", "options"), CASES, ids=IDS)
def test_interleaved_gradients_by_central_differences(make, shape, options, device):
    _, last = _pair(make, shape, **options)
    rng = np.random.default_rng(2)
    x = rng.permutation(np.arange(2.0 * np.prod(shape))).reshape(2, *last.port_shapes["Input"]) * 0.1  # no Max ties
    check_net(last, {"Input": x}, device=device)


def test_a_chain_of_interleaved_layers_trains_its_gradients(device):
    net = NetInitialize(
        NetChain(
            [
                L.ConvolutionLayer(4, 3, padding_size="Same", interleaving=True),
                "Tanh",
                L.PoolingLayer(2, 2, function="Mean", interleaving=True),
                L.DeconvolutionLayer(2, 2, stride=2, interleaving=True),
            ],
            input=(6, 4, 3),
        )
    )
    assert net.port_shapes["Output"] == (6, 4, 2)
    check_net(net, {"Input": np.random.default_rng(3).normal(size=(2, 6, 4, 3))}, device=device)


# --- the documented shape rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "output"),
    [
        # {h, w, c} in, {h', w', n} out: the sizes follow the channels-first rules
        (L.ConvolutionLayer(16, 3, interleaving=True, input=(32, 32, 3)), (30, 30, 16)),
        (L.ConvolutionLayer(5, (2, 3), interleaving=True, input=(32, 32, 3)), (31, 30, 5)),
        (L.ConvolutionLayer(8, 3, stride=2, padding_size="Same", interleaving=True, input=(28, 28, 1)), (14, 14, 8)),
        (L.ConvolutionLayer(2, 3, interleaving=True, input=(10, 4)), (8, 2)),
        (L.ConvolutionLayer(2, (2, 2, 2), interleaving=True, input=(4, 5, 6, 3)), (3, 4, 5, 2)),
        (L.DeconvolutionLayer(3, 4, stride=2, padding_size=1, interleaving=True, input=(8, 8, 16)), (16, 16, 3)),
        (L.DeconvolutionLayer(1, 2, stride=2, interleaving=True, input=(5, 2)), (10, 1)),
        (L.PoolingLayer(2, 2, interleaving=True, input=(32, 32, 3)), (16, 16, 3)),
        (L.PoolingLayer((3, 3), 2, padding_size=1, interleaving=True, input=(7, 9, 4)), (4, 5, 4)),
        (L.PoolingLayer(2, interleaving=True, input=(6, 2)), (5, 2)),
        (L.PoolingLayer(2, 2, interleaving=True, input=(4, 4, 4, 3)), (2, 2, 2, 3)),
    ],
    ids=repr,
)
def test_shapes_are_channels_last(layer, output):
    assert layer.port_shapes["Output"] == output


def test_the_shape_rule_runs_through_a_chain_and_the_weights_keep_their_layout():
    net = NetChain([L.ConvolutionLayer(16, 3, interleaving=True), L.PoolingLayer(2, 2, interleaving=True)])
    net = NetChain([net], input=(32, 32, 3))
    assert net.port_shapes["Output"] == (15, 15, 16)
    conv = NetInitialize(L.ConvolutionLayer(16, (3, 5), channel_groups=1, interleaving=True, input=(32, 32, 3)))
    assert conv.arrays["Weights"].shape == (16, 3, 3, 5)
    deconv = NetInitialize(L.DeconvolutionLayer(6, 2, channel_groups=2, interleaving=True, input=(4, 4, 8)))
    assert deconv.arrays["Weights"].shape == (8, 3, 2, 2)


def test_initialization_reads_the_channels_from_the_last_axis():
    """Kaiming's fan-in is (C_in/groups)·∏kernel: the same numbers as the channels-first layer."""
    first = L.DeconvolutionLayer(6, (3, 2), channel_groups=2, input=(4, 9, 9))
    last = L.DeconvolutionLayer(6, (3, 2), channel_groups=2, interleaving=True, input=(9, 9, 4))
    assert last.fan("Weights") == first.fan("Weights") == (2 * 6, 3 * 6)
    np.testing.assert_array_equal(NetInitialize(last).arrays["Weights"], NetInitialize(first).arrays["Weights"])


def test_a_pooling_example_by_hand():
    # PoolingLayer[2, 2] on a 4×4 image with one channel, written channels last
    pool = L.PoolingLayer(2, 2, interleaving=True, input=(4, 4, 1))
    assert pool(np.arange(1.0, 17).reshape(4, 4, 1)).tolist() == [[[6.0], [8.0]], [[14.0], [16.0]]]
    # two channels are pooled separately: the second is the first negated
    x = np.stack([np.arange(1.0, 17).reshape(4, 4), -np.arange(1.0, 17).reshape(4, 4)], axis=-1)
    y = L.PoolingLayer(2, 2, interleaving=True, input=(4, 4, 2))(x)
    assert y[..., 0].tolist() == [[6.0, 8.0], [14.0, 16.0]]
    assert y[..., 1].tolist() == [[-1.0, -3.0], [-9.0, -11.0]]


def test_a_convolution_example_by_hand():
    # one output channel that adds the two input channels' 2×2 windows with weights 1 and 10
    w = np.stack([np.ones((2, 2)), 10 * np.ones((2, 2))])[None]  # (1, 2, 2, 2)
    conv = L.ConvolutionLayer(1, 2, weights=w, biases=[0.5], interleaving=True, input=(3, 3, 2))
    x = np.zeros((3, 3, 2))
    x[..., 0], x[..., 1] = 1.0, np.arange(9.0).reshape(3, 3)
    expected = 4 + 10 * np.array([[8.0, 12.0], [20.0, 24.0]]) + 0.5
    np.testing.assert_array_equal(conv(x)[..., 0], expected)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 0, "True", None, "Automatic"])
def test_interleaving_must_be_true_or_false(value):
    for make in (lambda: L.ConvolutionLayer(2, 3, interleaving=value), lambda: L.PoolingLayer(2, interleaving=value)):
        with pytest.raises(NetError, match=r"interleaving must be True \(channels last\) or False .* got"):
            make()
    with pytest.raises(NetError, match=f"DeconvolutionLayer: interleaving .* got {value!r}"):
        L.DeconvolutionLayer(2, 3, interleaving=value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: L.ConvolutionLayer(2, (3, 3), interleaving=True, input=(8, 3)),
            r"ConvolutionLayer: needs a channels-last \(interleaving=True\) input of rank 2, 3 or 4 matching its "
            r"2-dimensional options, got 8×3",
        ),
        (
            lambda: L.PoolingLayer(2, interleaving=True, input=(5,)),
            r"PoolingLayer: needs a channels-last \(interleaving=True\) input .* got 5",
        ),
        (  # the channels are read from the last axis: 3 of them
            lambda: L.ConvolutionLayer(4, 3, channel_groups=2, interleaving=True, input=(8, 8, 3)),
            r"3 input channels and 4 output channels must both be divisible by channel_groups=2",
        ),
        (  # weights for 3 channels, channels-first, given to an 8×8×3 interleaved input: fine ...
            # ... but for a 3×8×8 interleaved input the channels are 8
            lambda: L.ConvolutionLayer(4, 3, weights=np.ones((4, 3, 3, 3)), interleaving=True, input=(3, 8, 8)),
            r"weights have shape 4×3×3×3, expected 4×8×3×3",
        ),
        (
            lambda: L.PoolingLayer(2, 2, interleaving=True, input=(1, 8, 3)),
            r"PoolingLayer: input 1×8 padded to 1×8 is smaller than the window 2×2",
        ),
    ],
)
def test_shape_errors_speak_of_the_channels_last_layout(make, message):
    with pytest.raises(ShapeError, match=message):
        make()


def test_given_weights_fit_the_channels_last_input():
    conv = L.ConvolutionLayer(4, 3, weights=np.ones((4, 3, 3, 3)), biases=None, interleaving=True, input=(8, 8, 3))
    assert conv.port_shapes["Output"] == (6, 6, 4)


# --- saving, printing, the channels-first path ---------------------------------------------------


def test_save_and_load_keep_the_option(tmp_path):
    net = NetInitialize(
        NetChain(
            [
                L.ConvolutionLayer(4, (3, 2), stride=2, padding_size=((1, 0), (0, 1)), interleaving=True),
                L.PoolingLayer(2, function="Mean", padding_size="Same", interleaving=True),
                L.DeconvolutionLayer(2, 3, stride=(2, 1), biases=None, interleaving=True),
                L.ConvolutionLayer(3, 2),  # channels first again: reads the 2-channel output as 2 rows
            ],
            input=(9, 8, 2),
        )
    )
    net.save(tmp_path / "net.npz")
    again = load(tmp_path / "net.npz")
    assert [getattr(layer, "interleaving", None) for _, layer in again.children()] == [True, True, True, False]
    x = np.random.default_rng(0).normal(size=(3, 9, 8, 2))
    np.testing.assert_array_equal(again(x), net(x))


def test_config_rebuilds_the_layer():
    for layer in (
        L.ConvolutionLayer(8, 3, stride=2, channel_groups=2, interleaving=True, input=(9, 9, 4)),
        L.DeconvolutionLayer(6, 3, padding_size="Same", interleaving=True, input=(9, 9, 4)),
        L.PoolingLayer((2, 3), 2, function="Mean", interleaving=True, input=(9, 9, 4)),
    ):
        assert layer.config()["interleaving"] is True
        again = type(layer)(**layer.config(), input=layer.port_shapes["Input"])
        assert again.port_shapes == layer.port_shapes and again.config() == layer.config()
    assert L.PoolingLayer(2).config()["interleaving"] is False


def test_printing_and_the_summary_show_the_option():
    conv = L.ConvolutionLayer(16, 3, interleaving=True, input=(32, 32, 3))
    assert repr(conv) == "ConvolutionLayer(32×32×3 → 30×30×16, interleaving=True)"
    assert repr(L.PoolingLayer(2, interleaving=True)) == "PoolingLayer((unknown) → (unknown), interleaving=True)"
    assert repr(L.ConvolutionLayer(16, 3, input=(3, 32, 32))) == "ConvolutionLayer(3×32×32 → 16×30×30)"
    summary = str(NetSummary(NetChain([conv, "Ramp"], input=(32, 32, 3))))
    assert re.search(r"\n1 +ConvolutionLayer interleaving=True +32×32×3 +30×30×16 ", summary), summary
    assert "interleaving" not in str(NetSummary(NetChain([L.ConvolutionLayer(2, 3)], input=(3, 8, 8))))


def test_the_channels_first_path_moves_nothing(monkeypatch):
    """Without interleaving the layers hand their input to the kernels untouched: no transpose, no copy."""

    def refuse(*args, **kwargs):
        raise AssertionError("a channels-first layer transposed its input or output")

    monkeypatch.setattr(ops, "transpose", refuse)
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 6))
    for layer in (
        NetInitialize(L.ConvolutionLayer(2, 3, input=(3, 6, 6))),
        NetInitialize(L.DeconvolutionLayer(2, 3, input=(3, 6, 6))),
        L.PoolingLayer(2, input=(3, 6, 6)),
    ):
        layer({"Input": x}, [NetPortGradient("Input")])
    with pytest.raises(AssertionError, match="transposed"):
        L.PoolingLayer(2, interleaving=True, input=(6, 6, 3))(x[0].transpose(1, 2, 0))
