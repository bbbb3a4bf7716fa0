"""BatchNormalizationLayer, NormalizationLayer and ParametricRampLayer: the reference's
worked examples, batch-norm training and moving statistics, and gradient checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layers as L
from gradcheck import check_net
from netgraph import All, NetChain, NetError, NetExtract, NetInitialize, NetPort, NetPortGradient, NetTrain, ShapeError
from netgraph.paths import iter_arrays

dims = st.integers(1, 4)
batch = st.integers(1, 3)


def values(draw, shape, low=-2.0, high=2.0):
    return np.random.default_rng(draw(st.integers(0, 2**31))).uniform(low, high, size=shape)


def randomized(net, seed):
    """An initialized copy of ``net`` with every array random (variances positive)."""
    net = NetInitialize(net)
    rng = np.random.default_rng(seed)
    for _, layer, name in iter_arrays(net):
        shape = layer.arrays[name].shape
        low, high = (0.2, 2.0) if name in ("MovingVariance", "Scaling") else (-1.0, 1.0)
        layer.arrays[name] = rng.uniform(low, high, size=shape).astype(np.float32)
    return net


def batch_norm_reference(x, scaling, biases, mean, var, epsilon, shape):
    return scaling.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon) + biases.reshape(
        shape
    )


# --- worked examples of the reference (7.22-7.24) -------------------------------------------

EXAMPLE_BATCH = np.array([[0.90044, 0.177369, 0.356773], [0.784026, 0.446095, 0.664769]])


def test_batch_norm_test_mode_example():
    bn = NetInitialize(L.BatchNormalizationLayer(input=3))
    x = np.array([0.90044, 0.177369, 0.356773])
    np.testing.assert_allclose(bn(x), x / np.sqrt(1.001), rtol=1e-6)
    assert round(float(bn(x)[0]), 5) == 0.89999


def test_batch_norm_train_mode_example():
    bn = NetInitialize(L.BatchNormalizationLayer(input=3))
    expected = [[0.878696, -0.973404, -0.979561], [-0.878696, 0.973404, 0.979561]]
    np.testing.assert_allclose(bn(EXAMPLE_BATCH, evaluation_mode="Train"), expected, atol=2e-6)


def test_normalization_example():
    out = L.NormalizationLayer(input=(1, 3))(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(out, [[-1.2238, 0.0, 1.2238]], atol=1e-4)
    np.testing.assert_allclose(out, (np.array([[1.0, 2, 3]]) - 2) / np.sqrt(2 / 3 + 0.001), rtol=1e-6)


def test_parametric_ramp_example():
    layer = L.ParametricRampLayer((), slope=0.25)
    assert layer(np.array([[10.0, 10, 10], [-10, -10, -10]])).tolist() == [[10, 10, 10], [-2.5, -2.5, -2.5]]


# --- BatchNormalizationLayer: training, evaluation and the moving statistics ----------------


def test_moving_statistics_after_one_and_two_training_evaluations():
    momentum, eps = 0.8, 0.01
    bn = randomized(L.BatchNormalizationLayer(momentum=momentum, epsilon=eps, input=(2, 3, 4)), 0)
    mm0, mv0 = NetExtract(bn, "MovingMean").astype(np.float64), NetExtract(bn, "MovingVariance").astype(np.float64)
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(1.0, 2.0, size=(5, 2, 3, 4)), rng.normal(-1.0, 0.5, size=(3, 2, 3, 4))
    bn(x1, evaluation_mode="Train")
    mm1 = momentum * mm0 + (1 - momentum) * x1.mean(axis=(0, 2, 3))
    mv1 = momentum * mv0 + (1 - momentum) * x1.var(axis=(0, 2, 3))  # biased batch variance
    np.testing.assert_allclose(NetExtract(bn, "MovingMean"), mm1, rtol=1e-5)
    np.testing.assert_allclose(NetExtract(bn, "MovingVariance"), mv1, rtol=1e-5)
    bn(x2, evaluation_mode="Train")
    mm2 = momentum * mm1 + (1 - momentum) * x2.mean(axis=(0, 2, 3))
    mv2 = momentum * mv1 + (1 - momentum) * x2.var(axis=(0, 2, 3))
    np.testing.assert_allclose(NetExtract(bn, "MovingMean"), mm2, rtol=1e-5)
    np.testing.assert_allclose(NetExtract(bn, "MovingVariance"), mv2, rtol=1e-5)
    assert bn.arrays["MovingMean"].dtype == np.float32
    # evaluation now uses the moving statistics
    scaling, biases = NetExtract(bn, "Scaling"), NetExtract(bn, "Biases")
    shape = (1, 2, 1, 1)
    np.testing.assert_allclose(bn(x1), batch_norm_reference(x1, scaling, biases, mm2, mv2, eps, shape), rtol=1e-4)


def test_evaluation_and_frozen_momentum_leave_the_moving_statistics_alone():
    x = np.random.default_rng(2).normal(size=(4, 3))
    bn = randomized(L.BatchNormalizationLayer(input=3), 3)
    before = {k: v.copy() for k, v in bn.arrays.items()}
    bn(x)
    bn(x, NetPortGradient("Input"))
    assert all(np.array_equal(bn.arrays[k], before[k]) for k in before)
    frozen = randomized(L.BatchNormalizationLayer(momentum=1, input=3), 3)
    frozen(x, evaluation_mode="Train")
    assert all(np.array_equal(frozen.arrays[k], before[k]) for k in before)


@pytest.mark.parametrize("precision", ["Real32", "Real64"])
def test_training_evaluation_persists_on_every_device(device, precision):
    """The update reaches the layer's arrays once, whether or not the evaluation's
    tensors share memory with them (CPU float32 does, GPU and Real64 do not)."""
    x = np.random.default_rng(4).normal(2.0, 1.0, size=(6, 3))
    bn = NetInitialize(L.BatchNormalizationLayer(momentum=0.5, input=3))
    out = bn(x, evaluation_mode="Train", target_device=device, working_precision=precision)
    assert out.dtype == (np.float32 if precision == "Real32" else np.float64)
    np.testing.assert_allclose(bn.arrays["MovingMean"], 0.5 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.arrays["MovingVariance"], 0.5 + 0.5 * x.var(axis=0), rtol=1e-5)
    assert bn.arrays["MovingMean"].dtype == np.float32


def test_after_a_linear_layer_normalizes_each_unit():
    net = NetInitialize(NetChain([L.LinearLayer(4), L.BatchNormalizationLayer()], input=3))
    assert NetExtract(net, (2, "MovingMean")).shape == (4,)
    x = np.random.default_rng(5).normal(size=(8, 3))
    hidden = net(x, NetPort(1, "Output"))
    out = net(x, evaluation_mode="Train")
    expected = (hidden - hidden.mean(axis=0)) / np.sqrt(hidden.var(axis=0) + 0.001)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(NetExtract(net, (2, "MovingMean")), 0.1 * hidden.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(NetExtract(net, (2, "MovingVariance")), 0.9 + 0.1 * hidden.var(axis=0), atol=1e-6)


def test_images_are_normalized_per_channel(device):
    bn = randomized(L.BatchNormalizationLayer(input=(3, 4, 5)), 6)
    x = np.random.default_rng(7).normal(size=(2, 3, 4, 5))
    a = {k: v.astype(np.float64) for k, v in bn.arrays.items()}
    shape = (1, 3, 1, 1)
    test = batch_norm_reference(x, a["Scaling"], a["Biases"], a["MovingMean"], a["MovingVariance"], 0.001, shape)
    np.testing.assert_allclose(bn(x, target_device=device), test, rtol=1e-4, atol=1e-5)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    train = batch_norm_reference(x, a["Scaling"], a["Biases"], mean, var, 0.001, shape)
    np.testing.assert_allclose(bn(x, evaluation_mode="Train", target_device=device), train, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["Test", "Train"])
def test_moving_statistics_get_no_gradient(mode, device):
    bn = randomized(L.BatchNormalizationLayer(input=(2, 3)), 8)
    x = np.random.default_rng(9).normal(size=(4, 2, 3))
    specs = [NetPortGradient(n) for n in ("MovingMean", "MovingVariance", "Scaling", "Biases")]
    grads = bn(x, specs, evaluation_mode=mode, target_device=device)
    assert not grads[specs[0]].any() and not grads[specs[1]].any()
    assert grads[specs[3]].tolist() == [12.0, 12.0]  # d(sum)/dBiases: 4 examples × 3 values per channel
    assert grads[specs[2]].dtype == np.float32


def test_batch_norm_forms_and_errors():
    assert L.BatchNormalizationLayer(input=(3, 8, 8)).array_shapes() == {
        "Scaling": (3,),
        "Biases": (3,),
        "MovingMean": (3,),
        "MovingVariance": (3,),
    }
    assert "Biases" not in L.BatchNormalizationLayer(biases=None).arrays
    with pytest.raises(ShapeError, match="rank 1"):
        L.BatchNormalizationLayer(input="Real")
    with pytest.raises(NetError, match="momentum"):
        L.BatchNormalizationLayer(momentum=1.5)
    with pytest.raises(NetError, match="cannot be removed"):
        L.BatchNormalizationLayer(moving_mean=None)
    given = L.BatchNormalizationLayer(moving_mean=[1, 2], moving_variance=[4, 9], input=2)
    np.testing.assert_allclose(given(np.array([3.0, 8.0])), [2 / np.sqrt(4.001), 6 / np.sqrt(9.001)], rtol=1e-6)


# --- NormalizationLayer and ParametricRampLayer ----------------------------------------------


def test_instance_and_layer_normalization(device):
    x = np.random.default_rng(10).normal(size=(2, 3, 4, 5))
    inst = randomized(L.NormalizationLayer(input=(3, 4, 5)), 11)
    s, b = inst.arrays["Scaling"].reshape(1, 3, 1, 1), inst.arrays["Biases"].reshape(1, 3, 1, 1)
    mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(inst(x, target_device=device), s * (x - mean) / np.sqrt(var + 0.001) + b, rtol=1e-4)
    ln = randomized(L.NormalizationLayer(All, "Same", epsilon=0.01, input=(3, 4, 5)), 12)
    assert ln.arrays["Scaling"].shape == (3, 4, 5)
    mean, var = x.mean(axis=(1, 2, 3), keepdims=True), x.var(axis=(1, 2, 3), keepdims=True)
    expected = ln.arrays["Scaling"] * (x - mean) / np.sqrt(var + 0.01) + ln.arrays["Biases"]
    np.testing.assert_allclose(ln(x, target_device=device), expected, rtol=1e-4, atol=1e-5)


def test_normalization_forms_and_errors():
    assert L.NormalizationLayer(input=(3, 4, 5)).array_shapes() == {"Scaling": (3,), "Biases": (3,)}
    assert L.NormalizationLayer(All, input=(3, 4)).array_shapes() == {"Scaling": (), "Biases": ()}
    assert L.NormalizationLayer([3], [1, 2], input=(3, 4, 5)).array_shapes() == {"Scaling": (3, 4), "Biases": (3, 4)}
    assert L.NormalizationLayer(slice(2, 3), "Same", input=(3, 4, 5)).array_shapes()["Scaling"] == (4, 5)
    plain = L.NormalizationLayer(scaling=None, biases=None, input=(2, 3))
    assert plain.arrays == {} and plain.array_shapes() == {}
    x = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
    np.testing.assert_allclose(plain(x), (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-3))
    with pytest.raises(ShapeError, match="no levels"):
        L.NormalizationLayer(input=4)
    with pytest.raises(NetError, match="Complement"):
        L.NormalizationLayer(All, "Other", input=4)


def test_parametric_ramp_forms(device):
    layer = L.ParametricRampLayer(slope=[0.1, 0.5], input=(2, 3))
    x = np.array([[-1.0, 2.0, -3.0], [-1.0, 0.0, 1.0]])
    np.testing.assert_allclose(layer(x, target_device=device), [[-0.1, 2.0, -0.3], [-0.5, 0.0, 1.0]], rtol=1e-6)
    assert L.ParametricRampLayer(input=(2, 3)).array_shapes() == {"Slope": (2,)}
    assert L.ParametricRampLayer(All, input=(2, 3)).array_shapes() == {"Slope": (2, 3)}
    assert L.ParametricRampLayer([2], input=(2, 3)).array_shapes() == {"Slope": (3,)}
    assert L.ParametricRampLayer([], input=(2, 3)).array_shapes() == {"Slope": ()}
    leaky = L.ParametricRampLayer(slope=0.2)  # one number: a single slope
    assert leaky.levels == () and leaky(np.array([-1.0, 1.0])).tolist() == pytest.approx([-0.2, 1.0])
    assert float(NetInitialize(L.ParametricRampLayer(input=3)).arrays["Slope"][0]) == pytest.approx(0.1)
    with pytest.raises(ShapeError, match="scalar"):
        L.ParametricRampLayer(input="Real")


@pytest.mark.parametrize(
    "layer",
    [
        L.BatchNormalizationLayer(epsilon=0.01, momentum=0.5, biases=None),
        L.NormalizationLayer(All, "Same", scaling=None),
        L.ParametricRampLayer([2, 3]),
    ],
    ids=type,
)
def test_config_rebuilds_the_layer(layer):
    clone = type(layer)(**layer.config())
    assert clone.config() == layer.config() and list(clone.arrays) == list(layer.arrays)


def test_float32_is_kept():
    x = np.random.default_rng(13).normal(size=(2, 3, 4)).astype(np.float32)
    for layer in (L.BatchNormalizationLayer(), L.NormalizationLayer(), L.ParametricRampLayer()):
        net = NetInitialize(NetChain([layer], input=(3, 4)))
        for mode in ("Test", "Train"):
            data = {"Input": x, NetPortGradient("Output"): np.ones_like(x)}
            out = net(data, [NetPortGradient("Input"), "Output"], evaluation_mode=mode)
            assert out["Output"].dtype == out[NetPortGradient("Input")].dtype == np.float32, (layer, mode)


# --- gradient checks ----------------------------------------------------------------------------


def _batch_norm_case(draw):
    shape = tuple(draw(st.lists(dims, min_size=1, max_size=3)))
    options = {k: None for k in ("scaling", "biases") if draw(st.integers(0, 3)) == 0}
    layer = L.BatchNormalizationLayer(epsilon=draw(st.sampled_from([1e-3, 0.1])), input=shape, **options)
    net = randomized(layer, draw(st.integers(0, 99)))
    return net, {"Input": values(draw, (draw(batch), *shape))}


@given(data=st.data())
def test_batch_norm_gradient_train(data, device):
    """Batch statistics: the full batch-norm backward. The moving statistics change
    at each of the checker's evaluations but the output does not read them, so the
    check is valid as it is: their gradient is zero, and so is the central difference."""
    net, inputs = _batch_norm_case(data.draw)
    check_net(net, inputs, device=device, evaluation_mode="Train")


@given(data=st.data())
def test_batch_norm_gradient_test(data, device):
    """In "Test" mode the output reads MovingMean and MovingVariance, which by design
    get no gradient (they are state, not parameters): the check holds them fixed."""
    net, inputs = _batch_norm_case(data.draw)
    check_net(net, inputs, device=device, evaluation_mode="Test", constant_arrays=("MovingMean", "MovingVariance"))


@given(data=st.data())
def test_normalization_gradient(data, device):
    shape = tuple(data.draw(st.lists(dims, min_size=2, max_size=3)))
    rank = len(shape)
    aggregation = data.draw(st.sampled_from([None, All, [rank], slice(1, rank - 1), [1, rank]]))
    scaling_levels = data.draw(st.sampled_from(["Complement", "Same", [1]]))
    options = {k: None for k in ("scaling", "biases") if data.draw(st.integers(0, 3)) == 0}
    layer = L.NormalizationLayer(aggregation, scaling_levels, input=shape, epsilon=0.01, **options)
    net = randomized(layer, data.draw(st.integers(0, 99)))
    check_net(net, {"Input": values(data.draw, (data.draw(batch), *shape))}, device=device)


@given(data=st.data())
def test_parametric_ramp_gradient(data, device):
    shape = tuple(data.draw(st.lists(dims, min_size=1, max_size=3)))
    levels = data.draw(st.sampled_from([None, (), All, [len(shape)], [1, len(shape)]]))
    net = randomized(L.ParametricRampLayer(levels, input=shape), data.draw(st.integers(0, 99)))
    x = values(data.draw, (data.draw(batch), *shape))
    x = np.where(np.abs(x) < 0.05, 0.1, x)  # away from the kink at 0
    check_net(net, {"Input": x}, device=device, evaluation_mode=data.draw(st.sampled_from(["Test", "Train"])))


def test_nettrain_returns_the_moving_statistics_it_kept_on_the_device(device):
    x = np.random.default_rng(5).normal(3.0, 2.0, size=(8, 3))
    net = NetInitialize(NetChain([L.BatchNormalizationLayer(momentum=0.5), L.LinearLayer(1)], input=3))
    trained = NetTrain(
        net,
        (x, x[:, :1]),
        batch_size=8,
        max_training_rounds=2,
        training_progress_reporting=None,
        target_device=device,
    )
    # two steps on the same batch: moving = 0.25 * initial + 0.75 * batch statistic
    np.testing.assert_allclose(NetExtract(trained, (1, "MovingMean")), 0.75 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(NetExtract(trained, (1, "MovingVariance")), 0.25 + 0.75 * x.var(axis=0), rtol=1e-5)
    assert np.array_equal(NetExtract(net, (1, "MovingMean")), np.zeros(3))  # the given net is unchanged
