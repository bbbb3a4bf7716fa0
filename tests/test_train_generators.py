"""NetTrain on generator functions, non-finite gradients, and the progress bar."""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from netgraph import NetChain, NetError, NetGraph, NetPort, NetTrain, TrainingError, exp, sqrt


def line_batch(info: dict) -> tuple[np.ndarray, np.ndarray]:
    """A fresh batch of y = 2x + 1, drawn from a generator seeded by the batch number."""
    x = np.random.default_rng(info["AbsoluteBatch"]).uniform(-1, 1, size=(info["BatchSize"], 1))
    return x, 2 * x + 1


def test_a_generator_function_trains_and_is_called_with_wolframs_keys():
    calls: list[dict] = []

    def generator(info: dict):
        calls.append(dict(info))
        return line_batch(info)

    results = NetTrain(
        L.LinearLayer(1, input=1),
        (generator, {"RoundLength": 40}),
        "All",
        batch_size=8,
        max_training_rounds=60,
        learning_rate=0.05,
        training_progress_reporting=None,
        random_seeding=0,
    )
    net = results["TrainedNet"]
    np.testing.assert_allclose(net.arrays["Weights"], [[2.0]], atol=0.02)
    np.testing.assert_allclose(net.arrays["Biases"], [1.0], atol=0.02)
    assert results["BatchesPerRound"] == 5 and results["TotalBatches"] == 300
    assert len(results["RoundLossList"]) == 60
    # the first batch is asked for once, before training, to check the ports; then once per batch
    assert len(calls) == 300
    assert calls[0] == {"BatchSize": 8, "Round": 1, "Batch": 1, "AbsoluteBatch": 1, "BatchesPerRound": 5}
    assert calls[6] == {"BatchSize": 8, "Round": 2, "Batch": 2, "AbsoluteBatch": 7, "BatchesPerRound": 5}


def test_without_a_round_length_a_round_is_one_batch():
    results = NetTrain(
        L.LinearLayer(1, input=1),
        line_batch,
        "All",
        batch_size=4,
        max_training_rounds=3,
        training_progress_reporting=None,
    )
    assert results["BatchesPerRound"] == 1 and results["TotalBatches"] == 3


def test_a_generator_for_a_dict_port_net_with_a_validation_set():
    net = NetChain([L.LinearLayer(3), "Ramp", L.LinearLayer(1)], input=2)

    def generator(info):
        x = np.random.default_rng(info["AbsoluteBatch"]).normal(size=(info["BatchSize"], 2))
        return {"Input": x, "Target": x[:, :1] * x[:, 1:]}

    xv = np.random.default_rng(99).normal(size=(16, 2))
    results = NetTrain(
        net,
        (generator, {"RoundLength": 32}),
        "All",
        batch_size=16,
        max_training_rounds=3,
        validation_set={"Input": xv, "Target": xv[:, :1] * xv[:, 1:]},
        training_progress_reporting=None,
        random_seeding=3,
    )
    assert len(results["ValidationLossList"]) == 3 and all(np.isfinite(results["ValidationLossList"]))


def test_a_generator_batch_of_the_wrong_shape_fails_before_training_and_names_the_port():
    def generator(info):
        return np.zeros((info["BatchSize"], 3)), np.zeros((info["BatchSize"], 1))

    with pytest.raises(NetError, match=r"port 'Input' expects examples of shape .*1.*generator's batch has .*3"):
        NetTrain(L.LinearLayer(1, input=1), generator, batch_size=4, training_progress_reporting=None)


def test_generator_options_are_checked():
    with pytest.raises(NetError, match="RoundLength"):
        NetTrain(L.LinearLayer(1, input=1), (line_batch, {"RoundLength": 0}), training_progress_reporting=None)
    with pytest.raises(NetError, match="only the option 'RoundLength'"):
        NetTrain(L.LinearLayer(1, input=1), (line_batch, {"Rounds": 3}), training_progress_reporting=None)
    with pytest.raises(NetError, match="Scaled"):
        NetTrain(L.LinearLayer(1, input=1), line_batch, validation_set=__import__("netgraph").Scaled(0.1))


def test_a_non_finite_gradient_stops_training_before_the_arrays_change():
    # sqrt is finite at 0 but its derivative is not: the loss stays finite, the gradient does not
    net = NetChain(
        [L.LinearLayer(1, weights=[[0.0]], biases=[0.0]), L.ElementwiseLayer(lambda x: sqrt(x * x))], input=1
    )
    x = np.ones((4, 1))
    with pytest.raises(TrainingError, match=r"gradient of 1/(Weights|Biases).* NaN or Inf in round 1, batch 1") as err:
        NetTrain(net, (x, x), batch_size=4, max_training_rounds=2, training_progress_reporting=None)
    last = err.value.last_good_net
    assert last.vertices[1].arrays["Weights"].tolist() == [[0.0]]


def test_the_progress_bar_shows_the_round_loss_and_speed(capsys):
    x = np.linspace(-1, 1, 32)[:, None]
    NetTrain(
        L.LinearLayer(1, input=1),
        (x, 2 * x),
        batch_size=8,
        max_training_rounds=2,
        validation_set=(x[:8], 2 * x[:8]),
        training_progress_reporting="ProgressIndicator",
    )
    shown = capsys.readouterr().err
    assert "round 1" in shown and "round 2" in shown
    assert "4/4" in shown and "loss=" in shown and "validation=" in shown and "examples/s=" in shown
    assert "training stopped (MaxTrainingRounds) after 2 rounds" in shown


def test_an_unknown_progress_reporting_is_refused():
    with pytest.raises(NetError, match="training_progress_reporting"):
        NetTrain(L.LinearLayer(1, input=1), (np.ones((2, 1)), np.ones((2, 1))), training_progress_reporting="Bars")


def test_a_loss_port_weighted_zero_is_left_out_even_when_it_overflows():
    net = NetChain([L.LinearLayer(1, weights=[[1.0]], biases=[0.0])], input=1)
    graph = NetGraph(
        {"net": net, "huge": L.ElementwiseLayer(lambda x: exp(1000 * x)), "loss": L.MeanSquaredLossLayer()},
        [
            ("net", "huge", NetPort("Huge")),
            ("net", NetPort("loss", "Input")),
            (NetPort("Target"), NetPort("loss", "Target")),
        ],
        input=1,
    )
    x = np.ones((4, 1))
    results = NetTrain(
        graph,
        {"Input": x, "Target": x},
        "All",
        loss_function={"Loss": 1, "Huge": 0},
        max_training_rounds=2,
        batch_size=4,
        training_progress_reporting=None,
    )
    assert all(np.isfinite(results["RoundLossList"]))
