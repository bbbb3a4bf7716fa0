"""The evaluation API: single examples and batches, ports, gradients, options, errors."""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from netgraph import (
    All,
    BackendError,
    NetChain,
    NetError,
    NetGraph,
    NetInitialize,
    NetPort,
    NetPortGradient,
    NormalDistribution,
    gpu_available,
)


def small_net():
    return NetInitialize(
        NetGraph(
            {"enc": L.LinearLayer(3, input=2), "act": L.ElementwiseLayer("Tanh"), "dec": L.LinearLayer(2)},
            [(NetPort("Input"), "enc", "act", "dec")],
        )
    )


def test_single_example_and_batch_agree():
    net = small_net()
    x = np.random.default_rng(0).normal(size=(5, 2))
    batch = net(x)
    assert batch.shape == (5, 2)
    np.testing.assert_allclose(net(x[1]), batch[1], rtol=1e-6)


def test_outputs_are_numpy_float32_by_default_and_float64_on_request():
    net = small_net()
    assert net(np.ones(2)).dtype == np.float32
    assert net(np.ones(2), working_precision="Real64").dtype == np.float64


def test_internal_ports_and_lists_of_specs():
    net = small_net()
    x = np.array([0.2, -0.4])
    hidden = net(x, NetPort("enc", "Output"))
    np.testing.assert_allclose(hidden, net["enc"](x), rtol=1e-6)
    both = net(x, [NetPort("act", "Output"), "Output"])
    np.testing.assert_allclose(both[NetPort("act", "Output")], np.tanh(hidden), rtol=1e-6)


def test_input_and_array_gradients_match_the_linear_algebra():
    layer = L.LinearLayer(2, weights=[[1.0, 2.0], [3.0, 4.0]], biases=[0.5, -1.0])
    x = np.array([[1.0, 1.0], [2.0, 0.0]])
    assert layer(x[0], NetPortGradient("Input")).tolist() == [4.0, 6.0]
    gw = layer(x, NetPortGradient("Weights"))  # summed over the batch
    np.testing.assert_allclose(gw, np.ones((2, 1)) @ x.sum(0, keepdims=True))
    np.testing.assert_allclose(layer(x, NetPortGradient("Biases")), [2.0, 2.0])


def test_forced_output_gradient():
    net = small_net()
    x = np.array([0.3, 0.1])
    g = np.array([1.0, -2.0])
    forced = net({"Input": x, NetPortGradient("Output"): g}, NetPortGradient("Input"), working_precision="Real64")
    w1, w2 = net["enc"].arrays["Weights"].astype(float), net["dec"].arrays["Weights"].astype(float)
    h = w1 @ x + net["enc"].arrays["Biases"]
    np.testing.assert_allclose(forced, w1.T @ ((1 - np.tanh(h) ** 2) * (w2.T @ g)), rtol=1e-5)


def test_gradient_of_nested_arrays_and_all():
    net = small_net()
    grads = net(np.ones((3, 2)), NetPortGradient(All))
    assert NetPortGradient("Input") in grads and NetPortGradient(("dec", "Biases")) in grads
    np.testing.assert_allclose(grads[NetPortGradient(("dec", "Biases"))], [3.0, 3.0])
    np.testing.assert_allclose(net(np.ones((3, 2)), NetPortGradient(("dec", "Biases"))), [3.0, 3.0])


def test_wrong_shapes_and_ports_are_named():
    net = small_net()
    with pytest.raises(NetError, match=r"port 'Input' expects an array of shape 2"):
        net(np.ones(3))
    with pytest.raises(NetError, match="missing"):
        net({"Inptu": np.ones(2)})
    with pytest.raises(NetError, match="no array 'Kernel'"):
        net(np.ones(2), NetPortGradient(("enc", "Kernel")))


def test_random_array_layer_draws_per_example_and_is_seedable():
    net = NetGraph(
        {"eps": L.RandomArrayLayer(NormalDistribution(0, 1), output=4), "add": L.TotalLayer()},
        [(NetPort("Input"), NetPort("add", "Input1")), ("eps", NetPort("add", "Input2"))],
        input=4,
    )
    x = np.zeros((3, 4))
    a, b = net(x, random_seeding=7), net(x, random_seeding=7)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])  # a fresh draw for every example
    assert not np.allclose(net(x), net(x))  # and at every evaluation
    big = net(np.zeros((4000, 4)), random_seeding=1)
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05


def test_uniform_distribution_range():
    from netgraph import UniformDistribution

    out = L.RandomArrayLayer(UniformDistribution(2, 3), output=(50, 50))(random_seeding=0)
    assert out.shape == (50, 50) and out.min() >= 2 and out.max() <= 3


def test_dropout_only_in_train_mode():
    layer = L.DropoutLayer(0.5, input=1000)
    x = np.ones(1000)
    assert np.array_equal(layer(x), x)
    y = layer(x, evaluation_mode="Train", random_seeding=0)
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6


def test_uninitialized_net_is_filled_like_netinitialize():
    chain = NetChain([L.LinearLayer(3), "Ramp"], input=2)
    np.testing.assert_array_equal(chain(np.ones(2)), NetInitialize(chain)(np.ones(2)))


def test_batch_size_option_chunks_the_same():
    net = small_net()
    x = np.random.default_rng(1).normal(size=(10, 2))
    np.testing.assert_allclose(net(x, batch_size=3), net(x), rtol=1e-6)


def test_gpu_request_without_gpu_is_a_clear_error():
    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="GPU"):
        small_net()(np.ones(2), target_device="GPU")


def test_results_are_numpy_on_every_device(device):
    out = small_net()(np.ones((2, 2)), target_device=device)
    assert isinstance(out, np.ndarray)
