"""NetTrain: losses by port, optimisers, validation, early stopping, callbacks, failures."""

from __future__ import annotations

import numpy as np
import pytest

import layers as L
from netgraph import NetChain, NetError, NetGraph, NetInitialize, NetPort, NetTrain, Scaled, TrainingError


def line_data(n=64, seed=0):
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, 1))
    return x, 2 * x + 1


def test_fits_a_line_with_an_automatic_mean_squared_loss():
    x, y = line_data()
    net = NetTrain(
        L.LinearLayer(1, input=1),
        (x, y),
        max_training_rounds=300,
        batch_size=16,
        learning_rate=0.05,
        training_progress_reporting=None,
        random_seeding=0,
    )
    np.testing.assert_allclose(net.arrays["Weights"], [[2.0]], atol=1e-2)
    np.testing.assert_allclose(net.arrays["Biases"], [1.0], atol=1e-2)


def test_one_adam_step_follows_the_wolfram_formula():
    w0, x, y = 0.5, np.array([[1.0]]), np.array([[3.0]])
    layer = L.LinearLayer(1, input=1, weights=[[w0]], biases=None)
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-5
    net = NetTrain(
        layer,
        (x, y),
        max_training_rounds=1,
        batch_size=1,
        method=("ADAM", {"learning_rate": lr}),
        training_progress_reporting=None,
        working_precision="Real64",
    )
    g = 2 * (w0 * 1.0 - 3.0) * 1.0  # d/dw (w x - y)^2
    m, v = (1 - b1) * g, (1 - b2) * g * g
    expected = w0 - lr * np.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(v) + eps)
    assert float(net.arrays["Weights"][0, 0]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("method", ["ADAM", ("SGD", {"momentum": 0.5, "learning_rate_schedule": None}), "RMSProp"])
def test_every_method_reduces_the_loss(method):
    x, y = line_data()
    res = NetTrain(
        NetChain([L.LinearLayer(8), "Tanh", L.LinearLayer(1)], input=1),
        (x, y),
        "All",
        max_training_rounds=30,
        batch_size=8,
        method=method,
        training_progress_reporting=None,
        random_seeding=3,
    )
    losses = res["RoundLossList"]
    assert losses[-1] < 0.5 * losses[0]


def test_loss_ports_and_weights():
    graph = NetGraph(
        {
            "a": L.ConstantTimesLayer(scaling=[3.0]),
            "sq": L.ElementwiseLayer(lambda x: x**2),
            "ab": L.ElementwiseLayer(lambda x: abs(x - 1)),
        },
        [(NetPort("Input"), "a"), ("a", "sq", NetPort("Loss")), ("a", "ab", NetPort("Other"))],
        input=1,
    )
    ones = {"Input": np.ones((4, 1))}
    for spec in ({"Loss": 1, "Other": 0.5}, ["Loss", ("Other", Scaled(0.5))]):
        res = NetTrain(
            graph,
            ones,
            "All",
            loss_function=spec,
            max_training_rounds=1,
            batch_size=4,
            training_progress_reporting=None,
        )
        assert res["BatchLossList"][0] == pytest.approx(9 + 0.5 * 2)
    with pytest.raises(NetError, match="not an output"):
        NetTrain(graph, ones, loss_function="KL", training_progress_reporting=None)


def test_early_stopping_and_best_validation_net():
    x, y = line_data(200)
    y_noisy = y + np.random.default_rng(1).normal(scale=0.3, size=y.shape)
    res = NetTrain(
        NetChain([L.LinearLayer(32), "Tanh", L.LinearLayer(1)], input=1),
        (x, y_noisy),
        "All",
        validation_set=Scaled(0.25),
        max_training_rounds=200,
        batch_size=16,
        learning_rate=0.01,
        training_stopping_criterion={"Criterion": "Loss", "Patience": 3},
        training_progress_reporting=None,
        random_seeding=0,
    )
    val = res["ValidationLossList"]
    best = int(np.argmin(val))
    assert res["ReasonTrainingStopped"] == "TrainingStoppingCriterion"
    assert len(val) == best + 1 + 4  # stopped after 3 rounds of patience were exhausted
    assert res["BestValidationRound"] == best + 1
    trained, final = res["TrainedNet"], res["FinalNet"]
    assert not np.array_equal(trained[1].arrays["Weights"], final[1].arrays["Weights"])


def test_seeded_runs_are_reproducible():
    x, y = line_data()
    net = NetChain([L.LinearLayer(4), L.DropoutLayer(0.2), L.LinearLayer(1)], input=1)
    a = NetTrain(net, (x, y), max_training_rounds=3, batch_size=8, training_progress_reporting=None, random_seeding=9)
    b = NetTrain(net, (x, y), max_training_rounds=3, batch_size=8, training_progress_reporting=None, random_seeding=9)
    np.testing.assert_array_equal(a[1].arrays["Weights"], b[1].arrays["Weights"])
    assert net[1].arrays["Weights"] is None  # the argument is unchanged


def test_progress_function_can_stop_training():
    x, y = line_data()
    seen = []

    def progress(p):
        seen.append(p["Round"])
        return "StopTraining" if p["Round"] == 2 else None

    res = NetTrain(
        L.LinearLayer(1, input=1),
        (x, y),
        "All",
        max_training_rounds=10,
        batch_size=8,
        training_progress_function=progress,
        training_progress_reporting=None,
    )
    assert seen == [1, 2] and res["ReasonTrainingStopped"] == "TrainingProgressFunction"


def test_frozen_layer_keeps_its_weights():
    x, y = line_data()
    net = NetInitialize(NetChain({"a": L.LinearLayer(3), "b": L.LinearLayer(1)}, input=1))
    out = NetTrain(
        net,
        (x, y),
        max_training_rounds=2,
        batch_size=8,
        learning_rate_multipliers={"a": 0},
        training_progress_reporting=None,
    )
    np.testing.assert_array_equal(out["a"].arrays["Weights"], net["a"].arrays["Weights"])
    assert not np.array_equal(out["b"].arrays["Weights"], net["b"].arrays["Weights"])


def test_bad_data_fails_before_training_naming_the_port():
    with pytest.raises(NetError, match=r"port 'Input' expects examples of shape 3.*has 2"):
        NetTrain(L.LinearLayer(1, input=3), (np.ones((5, 2)), np.ones((5, 1))), training_progress_reporting=None)
    with pytest.raises(NetError, match="no values for input port"):
        NetTrain(
            NetGraph([L.TotalLayer()], [([NetPort("a"), NetPort("b")], 1)], ports={"a": 1, "b": 1}),
            {"a": np.ones((3, 1))},
            loss_function="Output",
            training_progress_reporting=None,
        )


def test_non_finite_loss_stops_with_the_last_good_net():
    net = NetGraph(
        {"lin": L.LinearLayer(1, input=1, weights=[[1.0]], biases=[0.0]), "log": L.ElementwiseLayer("Log")},
        [(NetPort("Input"), "lin", "log", NetPort("Loss"))],
    )
    with pytest.raises(TrainingError, match=r"round 1, batch 1.*'Loss'") as err:  # log of a negative number
        NetTrain(
            net,
            {"Input": -np.ones((4, 1))},
            loss_function="Loss",
            max_training_rounds=1,
            batch_size=4,
            training_progress_reporting=None,
        )
    assert err.value.last_good_net["lin"].arrays["Weights"].tolist() == [[1.0]]


def test_progress_function_at_a_batch_interval_sees_the_current_net():
    x, y = line_data(32)
    calls = []

    def progress(p):
        calls.append((p["Round"], p["Batch"], p["Net"](np.array([0.5])).shape))

    NetTrain(
        L.LinearLayer(1, input=1),
        (x, y),
        max_training_rounds=2,
        batch_size=8,
        training_progress_reporting=None,
        training_progress_function=(progress, {"Interval": ("Batches", 2)}),
    )
    assert calls == [(1, 2, (1,)), (1, 4, (1,)), (2, 2, (1,)), (2, 4, (1,))]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_progress_log_file_has_a_line_per_round(tmp_path, suffix):
    import csv
    import json

    x, y = line_data(32)
    log = tmp_path / f"log{suffix}"
    res = NetTrain(
        L.LinearLayer(1, input=1),
        (x, y),
        "All",
        max_training_rounds=3,
        batch_size=8,
        training_progress_reporting=("File", log),
    )
    if suffix == ".csv":
        rows = list(csv.DictReader(log.open()))
        losses = [float(r["RoundLoss"]) for r in rows]
    else:
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        losses = [r["RoundLoss"] for r in rows]
    assert [int(r["Round"]) for r in rows] == [1, 2, 3]
    assert losses == pytest.approx(res["RoundLossList"])


def test_loss_plot_is_a_picture_of_the_losses():
    x, y = line_data(32)
    res = NetTrain(
        L.LinearLayer(1, input=1),
        (x, y),
        "All",
        max_training_rounds=3,
        batch_size=8,
        validation_set=Scaled(0.25),
        training_progress_reporting=None,
    )
    plot = res["LossPlot"]
    assert plot.size == (720, 440) and plot.getextrema() != ((255, 255), (255, 255), (255, 255))
    assert res["LossEvolutionPlot"] is plot  # the pre-12 name
