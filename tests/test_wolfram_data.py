"""Wolfram fidelity of the data a net is given: NetTrain's data forms and LossFunction's target keys
(transcribed from the NetTrain and LossFunction reference pages), and how evaluation reads an array
as one example or a batch when a port's shape is not fixed."""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from gradcheck import assert_close_dot
from netgraph import (
    Automatic,
    NetChain,
    NetError,
    NetGraph,
    NetPort,
    NetPortGradient,
    NetSummary,
    NetTrain,
    ShapeError,
)
from netgraph.evaluate import read_inputs
from netgraph.train.data import as_columns
from netgraph.train.losses import attach_losses, target_ports

QUIET = {"training_progress_reporting": None, "random_seeding": 1}


def training_columns(net, data, loss_function=Automatic):
    """The columns NetTrain reads from ``data`` for ``net`` (its ports, arrays as lists)."""
    train_net, _ = attach_losses(net, loss_function)
    columns = as_columns(train_net, data, "training data", target_ports(net, train_net))
    return {port: column.tolist() for port, column in columns.items()}


# --- NetTrain's data forms ------------------------------------------------------------------------------


def test_the_list_of_rules_of_the_nettrain_page_fits_its_line():
    # NetTrain[LinearLayer[], {1 -> 3, 2 -> 5, 3 -> 7}] gives a net with net[4] = 9.
    net = NetTrain(
        L.LinearLayer(), [(1, 3), (2, 5), (3, 7)], max_training_rounds=400, batch_size=3, learning_rate=0.1, **QUIET
    )
    assert float(net(4.0)) == pytest.approx(9.0, abs=1e-2)


@pytest.mark.parametrize(
    "data",
    [
        [(1, 3), (2, 5), (3, 7)],  # {1 -> 3, 2 -> 5, 3 -> 7}
        ([1, 2, 3], [3, 5, 7]),  # {1, 2, 3} -> {3, 5, 7}
        {"Input": [1, 2, 3], "Output": [3, 5, 7]},  # <|"Input" -> {1, 2, 3}, "Output" -> {3, 5, 7}|>
        {"Input": [1, 2, 3], "Target": [3, 5, 7]},
        [{"Input": 1, "Output": 3}, {"Input": 2, "Output": 5}, {"Input": 3, "Output": 7}],
    ],
    ids=["rules", "rule of lists", "keyed by Output", "keyed by Target", "list of associations"],
)
def test_every_data_form_of_the_pages_gives_the_same_columns(data):
    assert training_columns(L.LinearLayer(), data) == {"Input": [1, 2, 3], "Target": [3, 5, 7]}


def test_pairs_of_arrays_stack_into_columns():
    pairs = [(np.array([1.0, 2.0]), np.array([0.5])), (np.array([3.0, 4.0]), np.array([1.5]))]
    columns = training_columns(L.LinearLayer(1, input=2), pairs)
    assert columns == {"Input": [[1.0, 2.0], [3.0, 4.0]], "Target": [[0.5], [1.5]]}


def test_targets_keyed_by_output_train_with_an_explicit_loss_layer():
    # LossFunction -> MeanAbsoluteLossLayer[], the targets keyed by the net's output port, "Output"
    x = np.linspace(-1, 1, 16).reshape(-1, 1)
    result = NetTrain(
        L.LinearLayer(1, input=1),
        {"Input": x, "Output": 3 * x - 1},
        "All",
        loss_function=L.MeanAbsoluteLossLayer(),
        validation_set=[(np.array([0.5]), np.array([0.5]))],
        max_training_rounds=20,
        batch_size=8,
        learning_rate=0.05,
        **QUIET,
    )
    assert result["RoundLossList"][-1] < result["RoundLossList"][0]
    assert result["ValidationExamples"] == 1


def test_each_output_of_a_two_output_net_gets_its_loss_and_its_targets_by_name():
    # Automatic attaches a loss to every output; the data keys the targets "Output1" and "Output2"
    net = NetGraph(
        {"a": L.LinearLayer(1), "b": L.LinearLayer(2)},
        [(NetPort("Input"), "a", NetPort("Output1")), (NetPort("Input"), "b", NetPort("Output2"))],
        input=3,
    )
    train_net, losses = attach_losses(net, Automatic)
    assert losses == [("Output1Loss", 1.0), ("Output2Loss", 1.0)]
    assert set(train_net.input_ports) == {"Input", "Output1", "Output2"}
    x = np.random.default_rng(0).normal(size=(6, 3))
    data = {"Input": x, "Output1": x[:, :1], "Output2": x[:, 1:]}
    trained = NetTrain(net, data, max_training_rounds=2, batch_size=3, **QUIET)
    assert trained.output_ports == ("Output1", "Output2")


def test_a_port_with_an_automatic_loss_takes_the_loss_of_its_layer():
    # LossFunction -> "Output" -> Automatic on a net ending in a SoftmaxLayer: CrossEntropyLossLayer["Index"]
    net = NetChain([L.LinearLayer(3), L.SoftmaxLayer()], input=2)
    train_net, losses = attach_losses(net, ("Output", Automatic))
    assert type(train_net.vertices["Loss"]).__name__ == "CrossEntropyLossLayer" and losses == [("Loss", 1.0)]
    columns = training_columns(net, [(np.array([0.0, 1.0]), 2), (np.array([1.0, 0.0]), 3)], ("Output", Automatic))
    assert columns["Target"] == [2, 3]


def test_a_loss_layer_without_a_target_scores_the_output_alone():
    # a one-input loss: the data gives only the net's inputs
    net = L.LinearLayer(1, input=1, weights=[[1.0]], biases=[0.0])
    square = L.ElementwiseLayer(lambda x: x**2)
    train_net, losses = attach_losses(net, square)
    assert train_net.input_ports == ("Input",) and losses == [("Loss", 1.0)]
    trained = NetTrain(net, {"Input": np.ones((4, 1))}, loss_function=square, max_training_rounds=30, **QUIET)
    assert abs(float(trained(np.array([1.0]))[0])) < 1.0


def test_a_loss_net_with_two_outputs_reports_each():
    loss = NetGraph(
        {"mse": L.MeanSquaredLossLayer(), "mae": L.MeanAbsoluteLossLayer()},
        [
            (NetPort("Input"), NetPort("mse", "Input")),
            (NetPort("Target"), NetPort("mse", "Target")),
            (NetPort("Input"), NetPort("mae", "Input")),
            (NetPort("Target"), NetPort("mae", "Target")),
            (NetPort("mse", "Loss"), NetPort("Squared")),
            (NetPort("mae", "Loss"), NetPort("Absolute")),
        ],
    )
    _, losses = attach_losses(L.LinearLayer(1, input=1), loss)
    assert losses == [("LossSquared", 1.0), ("LossAbsolute", 1.0)]


def test_a_generator_may_key_its_targets_by_output():
    def batch(info):
        x = np.full((info["BatchSize"], 1), 0.5)
        return {"Input": x, "Output": 2 * x}

    result = NetTrain(L.LinearLayer(1, input=1), batch, "All", max_training_rounds=3, batch_size=4, **QUIET)
    assert result["TotalBatches"] == 3


@pytest.mark.parametrize(
    ("net", "data", "loss_function", "message"),
    [
        (
            L.LinearLayer(1, input=1),
            {"Input": np.ones((2, 1)), "Output": np.ones((2, 1)), "Target": np.ones((2, 1))},
            Automatic,
            "gives the targets of output 'Output' twice, under 'Output' and under 'Target'",
        ),
        (
            L.LinearLayer(1, input=1),
            {"Input": np.ones((2, 1))},
            Automatic,
            "no values for input port(s) ['Target']; key the targets 'Target' (or 'Output', the output it is "
            "compared with)",
        ),
        (
            NetGraph({"f": L.LinearLayer(1)}, [(NetPort("Input"), "f", NetPort("Loss"))], input=1),
            (np.ones((2, 1)), np.ones((2, 1))),
            "Loss",
            "(inputs, targets) needs a net with one input and one target port; the training net has inputs "
            "['Input'] and no target port",
        ),
        (
            L.LinearLayer(1, input=1),
            [{"Input": [1.0], "Output": [2.0]}, {"Input": [1.0], "Target": [2.0]}],
            Automatic,
            "a list of examples with different keys: example 2 has ['Input', 'Target'], example 1 has",
        ),
        (
            L.LinearLayer(1, input=1),
            np.ones((2, 1)),
            Automatic,
            "the net has inputs ['Input', 'Target']; give the training data as a dict keyed by port, (inputs, "
            "targets) or a list of (input, target) pairs",
        ),
        (
            L.LinearLayer(1, input=1),
            [(np.ones(1), np.ones(1))],
            L.TotalLayer(),
            "the loss layer for output 'Output' must take the output at \"Input\" and, optionally, the targets at "
            '"Target"',
        ),
        (
            L.LinearLayer(1, input=1),
            [(np.ones(1), np.ones(1))],
            ("Output", "x"),
            "must be a finite number, Scaled(r), a loss layer or Automatic, got 'x'",
        ),
    ],
    ids=["targets twice", "no targets", "no target port", "keys differ", "no pairs", "bad loss layer", "bad weight"],
)
def test_bad_data_or_loss_forms_are_refused_before_training(net, data, loss_function, message):
    with pytest.raises(NetError) as err:
        NetTrain(net, data, loss_function=loss_function, max_training_rounds=1, **QUIET)
    assert message in str(err.value)


# --- one example or a batch -----------------------------------------------------------------------------


def test_an_open_port_reads_an_array_as_one_example_as_wolfram_does():
    # SummationLayer[][{{{1.5, 3.2, 4.9}}}] is 9.6
    assert float(L.SummationLayer()(np.array([[[1.5, 3.2, 4.9]]]))) == pytest.approx(9.6)
    assert np.shape(L.SummationLayer()(np.array([[[1.5, 3.2, 4.9]]]))) == ()
    # AggregationLayer[Max][{{1, 5}, {3, 2}}] is {5, 3}
    assert L.AggregationLayer("Max")(np.array([[1.0, 5], [3, 2]])).tolist() == [5.0, 3.0]
    # CatenateLayer[][{{{1, 2}, {3, 4}}, {{5, 6}}}]: two matrices, one example each
    both = L.CatenateLayer()([np.array([[1.0, 2], [3, 4]]), np.array([[5.0, 6]])])
    assert both.tolist() == [[1, 2], [3, 4], [5, 6]]


def test_one_image_through_an_open_convolution_chain_is_one_image():
    chain = NetChain([L.ConvolutionLayer(4, 3), "Ramp", L.FlattenLayer()])
    assert chain(np.ones((1, 8, 8))).shape == (4 * 6 * 6,)
    assert chain(np.ones((5, 1, 8, 8)), batch=True).shape == (5, 4 * 6 * 6)


def test_fixed_shapes_read_as_before():
    layer = L.LinearLayer(2, input=3)
    assert layer(np.ones(3)).shape == (2,)
    assert layer(np.ones((5, 3))).shape == (5, 2)
    assert layer(np.ones(3), batch=False).shape == (2,)
    assert layer(np.ones((5, 3)), batch=True).shape == (5, 2)


def test_batch_true_makes_the_first_axis_count_examples_at_an_open_port():
    x = np.arange(12.0).reshape(3, 2, 2)
    np.testing.assert_allclose(L.SummationLayer()(x, batch=True), x.sum(axis=(1, 2)))
    assert float(L.SummationLayer()(x)) == x.sum()
    assert float(L.SummationLayer()(x, batch=False)) == x.sum()


def test_ports_of_fixed_shape_decide_for_the_open_ones():
    net = NetGraph(
        {"s": L.SummationLayer(), "t": L.SummationLayer(), "p": L.TotalLayer()},
        [(NetPort("a"), "s"), (NetPort("b"), "t"), (["s", "t"], "p")],
        ports={"a": 2},
    )
    assert net.port_shapes["b"] is None
    out = net({"a": np.ones((3, 2)), "b": np.ones((3, 4, 4))})  # "a" is a batch of 3: so is "b"
    assert out.tolist() == [18.0, 18.0, 18.0]
    assert float(net({"a": np.ones(2), "b": np.ones((3, 4))})) == 14.0  # "a" is one example: so is "b"


@pytest.mark.parametrize(
    ("layer", "data", "batch", "error", "message"),
    [
        (
            L.ConvolutionLayer(4, 3),
            np.ones((2, 1, 1, 8, 8)),
            None,
            ShapeError,
            "port 'Input' has no fixed shape, so its 2×1×1×8×8 array was read as one example of shape 2×1×1×8×8 "
            "(for a batch of 2 examples of shape 1×1×8×8, pass batch=True or fix the shape)",
        ),
        (
            L.ConvolutionLayer(4, 3),
            np.ones((2, 8)),
            True,
            ShapeError,
            "its 2×8 array was read as a batch of 2 examples of shape 8 (batch=True)",
        ),
        (L.LinearLayer(2, input=3), np.ones(3), True, NetError, "expects a batch N×3 (batch=True); got 3"),
        (
            L.LinearLayer(2, input=3),
            np.ones((4, 3)),
            False,
            NetError,
            "expects one example of shape 3 (batch=False: one example); got 4×3",
        ),
        (
            L.LinearLayer(2, input=3),
            np.ones((2, 2)),
            None,
            NetError,
            "expects an array of shape 3 (one example) or N×3",
        ),
        (L.SummationLayer(), 3.0, True, NetError, "a single number cannot be a batch (batch=True)"),
        (L.SummationLayer(), np.ones(3), "yes", NetError, "batch must be None (one example or a batch by each port"),
    ],
    ids=["open, one example", "open, batch", "batch of nothing", "not one example", "fixed", "scalar", "bad batch"],
)
def test_a_mismatch_says_how_the_array_was_read(layer, data, batch, error, message):
    with pytest.raises(error) as err:
        layer(data, batch=batch)
    assert message in str(err.value)


def test_a_mix_of_one_example_and_a_batch_is_refused():
    net = NetGraph(
        {"s": L.SummationLayer(), "t": L.SummationLayer(), "p": L.TotalLayer()},
        [(NetPort("a"), "s"), (NetPort("b"), "t"), (["s", "t"], "p")],
        ports={"a": 2, "b": 3},
    )
    with pytest.raises(NetError, match=r"mix of single examples and batches .*'a': 'one example', 'b': 'a batch'"):
        net({"a": np.ones(2), "b": np.ones((4, 3))})


def test_read_inputs_and_net_summary_show_the_reading():
    chain = NetChain([L.ConvolutionLayer(4, 3), "Ramp", L.FlattenLayer()])
    reading = read_inputs(chain, np.ones((1, 8, 8)))
    assert reading.single and reading.net.port_shapes["Output"] == (144,)
    assert chain.port_shapes["Input"] is None  # the net itself stays open
    summary = NetSummary(chain, np.ones((5, 1, 8, 8)), batch=True)
    assert [row.outputs for row in summary.rows] == ["4×6×6", "4×6×6", "144"]
    assert summary.total_parameters == 40
    assert "input 'Input': 5×1×8×8 array: a batch of 5 examples of shape 1×8×8" in str(summary)
    assert "input 'Input': shape not fixed: an array given here is read as one example" in str(NetSummary(chain))
    assert "input" not in str(NetSummary(NetChain([L.LinearLayer(2)], input=3))).split("\n")[-1]


def test_the_gradient_of_one_example_at_an_open_port_is_its_central_difference():
    rng = np.random.default_rng(3)
    weights, biases = rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2)
    open_chain = NetChain([L.ConvolutionLayer(2, 2, weights=weights, biases=biases), "Tanh", L.SummationLayer()])
    assert open_chain.port_shapes["Input"] is None
    x, v = rng.normal(size=(1, 3, 3)), rng.normal(size=(1, 3, 3))
    options = {"working_precision": "Real64"}
    gradient = open_chain(x, NetPortGradient("Input"), **options)
    assert gradient.shape == (1, 3, 3)
    h = 1e-6
    numeric = (float(open_chain(x + h * v, **options)) - float(open_chain(x - h * v, **options))) / (2 * h)
    assert_close_dot(float(np.sum(gradient * v)), numeric, "open convolution chain, one example")
