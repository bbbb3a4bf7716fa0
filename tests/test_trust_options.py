"""NetTrain's options are checked before any work starts, and NetTrain never hands back NaN or ±Inf arrays.

Every bad option gives one NetError naming the option, the value and what is accepted, before the data is
read (or, for what only the data can tell, before the first training step); the ``work`` fixture records
reading the data and training steps, to show that none happened. A run that diverges ends in a
TrainingError whose ``last_good_net`` has finite arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import layers as L
from netgraph import NetChain, NetError, NetGraph, NetInitialize, NetPort, NetTrain, Scaled, TrainingError
from netgraph.train import loop, nettrain
from netgraph.train.results import PROPERTIES


def line_data(n=20):
    x = np.linspace(-1, 1, n).reshape(-1, 1)
    return x, 2 * x + 1


def two_layers():
    return NetInitialize(NetChain({"a": L.LinearLayer(3), "b": L.LinearLayer(1)}, input=1), random_seeding=0)


def finite(net) -> bool:
    return all(np.isfinite(v).all() for v in net.array_association().values())


@pytest.fixture
def work(monkeypatch):
    """Records "read" when NetTrain reads its data and "step" for every training step."""
    calls = []
    read = nettrain.TrainingData.read.__func__

    def recording_read(cls, *args, **kwargs):
        calls.append("read")
        return read(cls, *args, **kwargs)

    step = loop.train_step

    def recording_step(*args):
        calls.append("step")
        return step(*args)

    monkeypatch.setattr(nettrain.TrainingData, "read", classmethod(recording_read))
    monkeypatch.setattr(loop, "train_step", recording_step)
    return calls


def train(net=None, data=None, prop=None, **options):
    options.setdefault("training_progress_reporting", None)
    options.setdefault("max_training_rounds", 2)
    return NetTrain(two_layers() if net is None else net, line_data() if data is None else data, prop, **options)


def noop(progress):
    return None


# -- options whose form is wrong: refused before the data is read --------------------------------------------
BAD_OPTIONS = [
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("batch_size", -3, "got -3"),
    ("batch_size", 2.7, "batch_size must be a positive integer or Automatic, got 2.7"),
    ("batch_size", "a", "batch_size must be a positive integer"),
    ("batch_size", True, "batch_size must be a positive integer"),
    ("max_training_rounds", 0, "max_training_rounds must be a positive integer"),
    ("max_training_rounds", -1, "max_training_rounds must be a positive integer"),
    ("max_training_rounds", 1.5, "got 1.5"),
    ("time_goal", 0, "time_goal must be a number of seconds > 0"),
    ("time_goal", "x", "time_goal must be"),
    ("time_goal", math.nan, "time_goal must be"),
    ("learning_rate", math.nan, "learning_rate must be a finite number > 0, got nan"),
    ("learning_rate", math.inf, "learning_rate must be a finite number > 0, got inf"),
    ("learning_rate", -0.1, "learning_rate must be a finite number > 0, got -0.1"),
    ("learning_rate", 0, "learning_rate must be a finite number > 0"),
    ("learning_rate", "fast", "learning_rate must be"),
    ("method", 42, 'method must be "ADAM", "SGD", "RMSProp" or (name, {sub-options}), got 42'),
    ("method", "Bogus", "there is no method 'Bogus'"),
    ("method", ("ADAM", 5), "sub-options must be a dict"),
    ("method", ("ADAM", {1: 2}), "sub-option names are strings"),
    ("method", ("ADAM", {"Bogus": 1}), "ADAM has no option 'bogus'"),
    ("method", ("ADAM", {"beta1": 2}), "ADAM's option 'beta1' must be a number in [0, 1), got 2"),
    ("method", ("ADAM", {"Beta2": 1.0}), "'beta2' must be a number in [0, 1)"),
    ("method", ("ADAM", {"Epsilon": 0}), "'epsilon' must be a finite number > 0"),
    ("method", ("ADAM", {"LearningRate": -1}), "'learning_rate' must be a finite number > 0"),
    ("method", ("SGD", {"Momentum": 1.5}), "SGD's option 'momentum' must be a number in [0, 1)"),
    ("method", ("SGD", {"momentum": "x"}), "'momentum' must be"),
    ("method", ("RMSProp", {"beta": 1}), "'beta' must be a number in [0, 1)"),
    ("method", ("ADAM", {"L2Regularization": -1}), "'l2_regularization' must be a finite number >= 0 or None"),
    ("method", ("ADAM", {"GradientClipping": 0}), "'gradient_clipping' must be a finite number > 0 or None"),
    ("method", ("ADAM", {"GradientClipping": "x"}), "'gradient_clipping' must be"),
    ("method", ("ADAM", {"WeightClipping": -1}), "'weight_clipping' must be"),
    ("method", ("SGD", {"LearningRateSchedule": "Bogus"}), 'must be None, "Polynomial" or a function'),
    ("learning_rate_multipliers", 42, "learning_rate_multipliers must be a dict"),
    ("learning_rate_multipliers", {"zz": 0}, "key 'zz' matches no array; the layers with arrays are 'a', 'b'"),
    ("learning_rate_multipliers", {"b2": 0}, "did you mean 'b'?"),
    ("learning_rate_multipliers", {("a", "Bogus"): 0}, "key ('a', 'Bogus') matches no array"),
    ("learning_rate_multipliers", {"a": "x"}, "learning_rate_multipliers['a'] must be a finite number"),
    ("learning_rate_multipliers", {"a": math.nan}, "learning_rate_multipliers['a'] must be a finite number"),
    ("training_stopping_criterion", "Bogus", 'training_stopping_criterion must be None, "Loss", Automatic'),
    ("training_stopping_criterion", 42, "training_stopping_criterion must be"),
    ("training_stopping_criterion", {"Bogus": 1}, "training_stopping_criterion has no key(s) ['Bogus']"),
    ("training_stopping_criterion", {"Criterion": "Bogus"}, '"Criterion" must be "Loss" or a function'),
    ("training_stopping_criterion", {"Patience": -1}, '"Patience" must be a whole number >= 0, got -1'),
    ("training_stopping_criterion", {"InitialPatience": 1.5}, '"InitialPatience" must be a whole number'),
    ("training_stopping_criterion", {"Improvement": ("Bogus", 1)}, '"Improvement" must be ("AbsoluteChange"'),
    ("training_stopping_criterion", {"Improvement": ("AbsoluteChange", -1)}, '"Improvement" must be'),
    ("validation_set", Scaled(-0.1), "with 0 < f < 1; got Scaled(-0.1)"),
    ("validation_set", Scaled(1.5), "with 0 < f < 1; got Scaled(1.5)"),
    ("validation_set", Scaled(0), "with 0 < f < 1"),
    ("validation_set", Scaled(math.nan), "with 0 < f < 1"),
    ("loss_function", 42, "loss_function must be Automatic, an output port"),
    ("loss_function", "Bogus", "loss port 'Bogus' is not an output of the net; its outputs are ['Output']"),
    ("loss_function", {"Bogus": 1.0}, "loss port 'Bogus' is not an output"),
    ("loss_function", ("Bogus", L.MeanSquaredLossLayer()), "loss port 'Bogus' is not an output"),
    ("loss_function", ("Output", "x"), "the weight of loss port 'Output' must be a finite number"),
    ("loss_function", [("Output", math.inf)], "the weight of loss port 'Output' must be a finite number"),
    ("loss_function", [42], "loss_function must be"),
    ("random_seeding", "abc", "random_seeding must be a whole number >= 0 or Automatic, got 'abc'"),
    ("random_seeding", -1, "random_seeding must be a whole number >= 0"),
    ("random_seeding", 1.5, "random_seeding must be"),
    ("target_device", "TPU", 'target_device must be "CPU", "GPU" or ("GPU", n), got \'TPU\''),
    ("target_device", ("GPU", "x"), "target_device must be"),
    ("working_precision", "Real16", 'working_precision must be "Real32" or "Real64"'),
    ("working_precision", np.int32, "working_precision must be"),
    ("working_precision", 42, "working_precision must be"),
    ("training_progress_reporting", "Bogus", "training_progress_reporting must be Automatic, None"),
    ("training_progress_reporting", 42, "training_progress_reporting must be"),
    ("training_progress_reporting", ("File", "log.txt"), "must end in .csv, .json or .jsonl"),
    ("training_progress_reporting", ("File", 42), "a progress log is"),
    ("training_progress_function", 42, "training_progress_function must be a function"),
    ("training_progress_function", (noop, {"Interval": ("Rounds", 0)}), '"Interval" must be ("Rounds"|"Batches", n)'),
    ("training_progress_function", (noop, {"Interval": ("Hours", 1)}), '"Interval" must be'),
    ("training_progress_function", (noop, {"Bogus": 1}), "training_progress_function's options are"),
    ("training_progress_function", (noop, 5), "training_progress_function's options are"),
    ("resume_from", 42, "resume_from must be a checkpoint file or a directory of checkpoints"),
]


@pytest.mark.parametrize(
    ("option", "value", "message"), BAD_OPTIONS, ids=[f"{o}={v!r}"[:60] for o, v, _ in BAD_OPTIONS]
)
def test_a_bad_option_is_refused_before_any_work(work, option, value, message):
    with pytest.raises(NetError) as err:
        train(**{option: value})
    assert message in str(err.value)
    assert str(err.value).startswith("NetTrain: ")
    assert work == []  # the data was not even read


def test_a_progress_log_that_is_a_directory_is_refused(work, tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(NetError, match=r"progress log .*d\.csv' is a directory"):
        train(training_progress_reporting=("File", tmp_path / "d.csv"))
    assert work == []


@pytest.mark.parametrize(
    ("prop", "message"),
    [
        ("Bogus", "there is no property 'Bogus'"),
        ("RoundLosList", "did you mean 'RoundLossList'"),
        (["RoundLossList", "Bogus"], "there is no property 'Bogus'"),
        (42, "there is no property 42"),
    ],
)
def test_an_unknown_property_is_refused_before_training(work, prop, message):
    with pytest.raises(NetError, match="prop must be None") as err:
        train(prop=prop)
    assert message in str(err.value)
    assert work == []


def test_the_properties_checked_are_those_given():
    results = train(prop="All", max_training_rounds=1)
    assert sorted(PROPERTIES) == results.keys()


def test_a_net_that_is_not_a_net_is_refused(work):
    with pytest.raises(NetError, match="the first argument must be a net or layer, got 42"):
        NetTrain(42, line_data())
    assert work == []


# -- what only the data tells: refused when the data is read, before the first step -----------------------------
def test_ports_with_different_numbers_of_examples_are_refused(work):
    x, y = line_data()
    with pytest.raises(NetError, match=r"different number of examples for each port \{'Input': 20, 'Target': 19\}"):
        train(data=(x, y[:-1]))
    assert "step" not in work


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.array(["a", "b"]), "must be an array of numbers with one example per row, got an array of <U1"),
        (3.0, "must be an array of numbers with one example per row, got a single value"),
        ([[1.0], [2.0, 3.0]], "is not a rectangular array of numbers"),
        (None, "must be an array of numbers"),
    ],
)
def test_data_that_is_not_an_array_of_numbers_is_refused(work, data, message):
    with pytest.raises(NetError, match="the training data for port 'Input'") as err:
        train(net=L.LinearLayer(1, input=1), data={"Input": data}, loss_function=L.MeanSquaredLossLayer())
    assert message in str(err.value)
    assert "step" not in work


def test_a_held_out_fraction_that_holds_out_nothing_is_refused(work):
    with pytest.raises(NetError, match=r"validation_set=Scaled\(0.01\) of 20 examples holds out 0 of them"):
        train(validation_set=Scaled(0.01))
    assert "step" not in work


def test_an_empty_validation_set_is_refused(work):
    with pytest.raises(NetError, match="the validation set has no examples"):
        train(validation_set=(np.zeros((0, 1)), np.zeros((0, 1))))
    assert "step" not in work


def classifier():
    return NetChain([L.LinearLayer(3), L.SoftmaxLayer()], input=2)


@pytest.mark.parametrize("label", [1.5, 0, 4, -1, math.nan])
def test_class_labels_must_be_class_numbers(work, label):
    targets = np.array([1, 2, 3, label, 1, 2])
    with pytest.raises(NetError) as err:
        train(net=classifier(), data=(np.zeros((6, 2)), targets))
    assert "port 'Target' takes class numbers 1..3" in str(err.value)
    assert f"the training data has {label!r} (example 4)" in str(err.value)
    assert "step" not in work


def test_class_labels_of_the_validation_set_and_of_a_generator_are_checked(work):
    good = (np.zeros((6, 2)), np.array([1, 2, 3, 1, 2, 3]))
    with pytest.raises(NetError, match=r"the validation set has 2.5 \(example 1\)"):
        train(net=classifier(), data=good, validation_set=(np.zeros((1, 2)), np.array([2.5])))
    assert "step" not in work

    def batches(info):
        labels = np.ones(info["BatchSize"]) * (1 if info["AbsoluteBatch"] < 3 else 7)
        return {"Input": np.zeros((info["BatchSize"], 2)), "Target": labels}

    with pytest.raises(NetError, match=r"class numbers 1..3 .* the generator's batch has 7.0"):
        train(net=classifier(), data=batches, batch_size=2, max_training_rounds=5)
    assert work.count("step") == 2  # batches 1 and 2 were trained; batch 3 was refused before its step


def test_a_net_with_nan_arrays_is_refused_before_training(work):
    net = two_layers()
    net["a"].arrays["Weights"][0, 0] = np.nan
    with pytest.raises(NetError, match="the net's arrays a/Weights hold NaN or Inf before training"):
        train(net=net)
    assert "step" not in work


def test_a_schedule_that_returns_nan_is_named():
    with pytest.raises(NetError, match=r"learning_rate_schedule returned nan for step 1"):
        train(method=("SGD", {"LearningRateSchedule": lambda step, total: math.nan}))


# -- good forms still work ----------------------------------------------------------------------------------------
def test_accepted_forms_train():
    calls = []
    res = train(
        prop=["RoundLossList", "FinalRoundLoss"],
        batch_size=np.int64(5),
        method=("Adam", {"Beta1": 0.5, "L2Regularization": None, "LearningRateSchedule": lambda s, t: 1.0}),
        learning_rate=0.01,
        learning_rate_multipliers=[("a", None), (["b", "Biases"], 0.5)],
        training_stopping_criterion={"Criterion": "Loss", "Improvement": {"RelativeChange": 0.01}},
        training_progress_function=(lambda p: calls.append(p["Batch"]), {"Interval": ["Batches", 2]}),
        target_device=("CPU", 0),
        working_precision=np.float64,
        random_seeding=np.int32(3),
        time_goal=math.inf,
    )
    assert len(res[0]) == 2 and res[1] == res[0][-1] and calls == [2, 4, 2, 4]


def test_a_criterion_function_in_a_dict_is_called():
    rounds = []
    res = train(
        prop="All",
        max_training_rounds=5,
        training_stopping_criterion={"Criterion": lambda p: rounds.append(p["Round"]) or p["Round"] == 2},
    )
    assert rounds == [1, 2] and res["ReasonTrainingStopped"] == "TrainingStoppingCriterion"


# -- no NaN or Inf arrays handed back -----------------------------------------------------------------------------
def diverging(**options):
    """Training with SGD at a learning rate of 1e38 on targets far from the start: the first update overflows."""
    x = np.linspace(-1, 1, 20).reshape(-1, 1)
    options.setdefault("net", NetInitialize(L.LinearLayer(1, input=1), random_seeding=0))
    options.setdefault("method", ("SGD", {"learning_rate": 1e38}))
    options.setdefault("data", (x, 2 * x + 50))
    with np.errstate(all="ignore"):
        return train(**options)


def same_arrays(a, b) -> bool:
    return all(np.array_equal(value, b.array_association()[path]) for path, value in a.array_association().items())


def test_a_diverging_update_stops_with_a_finite_last_good_net():
    net = NetInitialize(L.LinearLayer(1, input=1), random_seeding=0)
    with pytest.raises(TrainingError, match="hold NaN or Inf at the end of round 1") as err:
        diverging(net=net, max_training_rounds=1, validation_set=Scaled(0.2))
    assert "learning rate 1e+38" in str(err.value) and "the net before training" in str(err.value)
    assert finite(err.value.last_good_net) and same_arrays(err.value.last_good_net, net)


def test_a_validation_loss_that_overflows_stops_with_a_finite_last_good_net():
    """Here the arrays stay finite (if huge), but the validation loss overflows."""
    net = two_layers()
    with pytest.raises(
        TrainingError, match=r"the validation loss is inf after round 1 .*although the arrays are"
    ) as err:
        diverging(net=net, data=line_data(), max_training_rounds=1, validation_set=Scaled(0.2))
    assert finite(err.value.last_good_net) and same_arrays(err.value.last_good_net, net)


def test_arrays_that_went_bad_are_told_apart_from_a_bad_loss():
    """The update of batch 1 overflows; batch 2's loss is NaN, and the cause named is the update."""
    with pytest.raises(TrainingError, match=r"after the update of round 1, batch 1 \(the next batch's loss") as err:
        diverging(max_training_rounds=1, batch_size=10)
    assert finite(err.value.last_good_net)
    assert isinstance(err.value.__cause__, TrainingError)  # the loss error, kept as the cause


def test_a_later_round_keeps_the_net_of_the_round_before():
    seen = []

    def schedule(step, total):  # gentle in round 1, explosive from round 2
        return 1e-38 if step <= 2 else 1.0

    with pytest.raises(TrainingError, match="round 2, batch 1 .*the net after round 1, the last with finite") as err:
        diverging(
            max_training_rounds=3,
            batch_size=10,
            method=("SGD", {"learning_rate": 1e38, "momentum": 0, "LearningRateSchedule": schedule}),
            training_progress_function=lambda p: seen.append(p["Net"]),
        )
    assert len(seen) == 1 and finite(err.value.last_good_net) and same_arrays(err.value.last_good_net, seen[0])


def test_nan_arrays_never_reach_a_progress_function_or_a_checkpoint(tmp_path):
    calls = []
    with pytest.raises(TrainingError, match=r"hold NaN or Inf after round 1, batch 1:"):
        diverging(
            max_training_rounds=1,
            training_progress_function=(calls.append, {"Interval": ("Batches", 1)}),
            training_progress_checkpointing=("Directory", str(tmp_path), {"Interval": ("Batches", 1)}),
        )
    assert calls == [] and list(tmp_path.glob("*.npz")) == []


def test_a_nan_validation_loss_stops_training_and_is_never_the_best():
    """The arrays stay finite, but the validation data leaves Log's domain."""
    net = NetGraph(
        {"lin": L.LinearLayer(1, input=1, weights=[[1.0]], biases=[0.0]), "log": L.ElementwiseLayer("Log")},
        [(NetPort("Input"), "lin", "log", NetPort("Loss"))],
    )
    with pytest.raises(
        TrainingError, match=r"the validation loss is nan after round 1 .*although the arrays are finite"
    ):
        with np.errstate(all="ignore"):
            train(
                net=net,
                data={"Input": np.full((4, 1), 2.0)},
                validation_set={"Input": -np.ones((2, 1))},
                loss_function="Loss",
                learning_rate=1e-4,
            )
