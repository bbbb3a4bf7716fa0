"""NetTrain itself: it checks and reads its options, sets up a training run, trains it with the training
loop and returns the trained net, or the results asked for.

What NetTrain's arguments and options take (each as in the Wolfram Language, in Python's forms):

- data: ``{"Input": images}``, an array for a single-input net,
    ``(inputs, targets)`` for a net whose loss is attached automatically, or a
    generator function ``f`` (or ``(f, {"RoundLength": n})``, n examples per round;
    one batch per round without it). ``f`` is called once per batch with
    ``{"BatchSize", "Round", "Batch", "AbsoluteBatch", "BatchesPerRound"}`` and returns a
    batch in any of the other forms; resuming from a checkpoint repeats a run exactly
    when ``f`` depends only on its argument.
- prop: None (the trained net), a property name such as
    "RoundLossList", a list of names, or "All" for a results object.
- loss_function: Automatic, an output port ("Loss"), a list of ports
    (summed), ``(port, Scaled(r))`` weights or a dict ``{port: r}``, or a
    loss layer (attached to the output; its "Target" comes from data).
- method: "ADAM" (default), "SGD", "RMSProp", or ``(name, {sub-options})``.
- validation_set: data in the same form, or ``Scaled(f)`` to hold out a fraction.
- training_stopping_criterion: ``{"Criterion": "Loss", "Patience": n,
    "InitialPatience": m, "Improvement": ("AbsoluteChange", v)}`` or a
    callable of the progress dict returning True to stop.
- training_progress_reporting: Automatic (a tqdm bar per round in a terminal, else
    lines every few seconds), "ProgressIndicator" (the bar), "Print" (the lines), None,
    or ``("File", "log.csv")`` / ``("File", "log.jsonl")`` for one line per round.
    A NaN or infinite loss or gradient stops training with a TrainingError naming the
    round, the batch and the loss ports (or arrays); its ``last_good_net`` is the net
    before that batch.
- training_progress_function: ``f`` or ``(f, {"Interval": ("Rounds"|"Batches", n)})``;
    ``f(progress)`` may return "StopTraining".
- random_seeding: an int makes initialisation, shuffling and random layers reproducible.
- training_progress_checkpointing: ``("File", path)`` or ``("Directory", dir)``, optionally
    with a dict of sub-options as a third element: ``"Interval"``: ``("Rounds"|"Batches", n)``
    (default: every round) or ``("Seconds"|"Minutes"|"Hours", t)``; ``"MinimumInterval"``:
    seconds; ``"MaximumCheckpoints"``: n keeps this run's newest n files in the directory.
    Each checkpoint is a net file (``netgraph.load`` reads it) that also holds the
    optimiser state, the counters, the random states, the data position and the setup an
    exact continuation needs (data length, batch size, method, losses, the net's
    architecture); it is written atomically. The option is checked before training.
- resume_from: a checkpoint file, or a directory (its newest usable checkpoint; a damaged
    newer one is skipped with a warning): training continues where it stopped and, with
    the same seed and data, ends with the same arrays as an uninterrupted run (on the CPU).
    Data of another length, another batch size, net, losses or method options are an error
    naming each difference; ``(path, {"Exact": False})`` continues with them instead
    (see :mod:`netgraph.train.checkpoints`). Ctrl-C stops cleanly and returns the
    net trained so far.

Example:
    >>> import numpy as np
    >>> from netgraph import NetTrain
    >>> from layers import LinearLayer
    >>> x = np.array([[1.0], [2.0], [3.0]]); y = 2 * x + 1
    >>> net = NetTrain(LinearLayer(1, input=1), (x, y), max_training_rounds=800, batch_size=3,
    ...                learning_rate=0.05, training_progress_reporting=None, random_seeding=1)
    >>> round(float(net(np.array([4.0]))[0]), 2)
    9.0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backend import cpu_work, get_dtype, get_xp
from ..images import loss_plot
from ..initialize import initialize_in_place
from ..layer import Layer
from ..optimizers import make_optimizer
from ..ports import Automatic
from .checkpoints import Checkpoints, read_checkpoint, resume
from .data import TrainingData, check_data_options
from .loop import TrainingLoop
from .losses import attach_losses
from .progress import ProgressFunction, Reporter, StoppingCriterion
from .results import NetTrainResults
from .state import DeviceRandom, TrainingRun


@cpu_work(release=True)  # the CPU settings of netgraph's passes, for the whole run
def NetTrain(  # noqa: N802 - the Wolfram name
    net: Layer,
    data: Any,
    prop: Any = None,
    *,
    loss_function: Any = Automatic,
    batch_size: int | Any = Automatic,
    max_training_rounds: int | Any = Automatic,
    time_goal: float | None = None,
    method: Any = "ADAM",
    learning_rate: float | Any = Automatic,
    learning_rate_multipliers: dict | None = None,
    validation_set: Any = None,
    training_stopping_criterion: Any = None,
    training_progress_reporting: Any = Automatic,
    training_progress_function: Callable | tuple | None = None,
    target_device: str = "CPU",
    random_seeding: int | Any = Automatic,
    working_precision: str = "Real32",
    training_progress_checkpointing: Any = None,
    resume_from: str | Path | tuple | None = None,
) -> Any:
    """Train ``net`` on ``data`` and return the trained net (or ``prop`` of the results), as Wolfram's
    ``NetTrain[net, data, prop, opts]``: the options are Wolfram's in snake_case, listed with their forms in
    this module's docstring (``help(netgraph.train.nettrain)``).
    """
    started = time.perf_counter()
    _check_options(data, validation_set)
    checkpoints, checkpoint = Checkpoints(training_progress_checkpointing), read_checkpoint(resume_from)
    seed = None if random_seeding is Automatic else random_seeding
    net = net.copy()
    train_net, losses = attach_losses(net, loss_function)
    training_data = TrainingData.read(train_net, data, validation_set, batch_size, seed)
    _fit_to_data_and_initialize(train_net, training_data, seed)
    xp = get_xp(target_device)
    run = TrainingRun(
        net=net,
        train_net=train_net,
        losses=losses,
        data=training_data,
        xp=xp,
        dtype=get_dtype(working_precision),
        optimizer=make_optimizer(method, None if learning_rate is Automatic else learning_rate),
        learning_rate_multipliers=learning_rate_multipliers,
        device_rng=DeviceRandom(xp, seed),
        criterion=StoppingCriterion(training_stopping_criterion),
        rounds=None if max_training_rounds is Automatic else int(max_training_rounds),
        started=started,
    )
    loop = TrainingLoop(
        run,
        reporter=Reporter(training_progress_reporting),
        progress_function=ProgressFunction(training_progress_function),
        checkpoints=checkpoints,
        time_goal=time_goal,
    )
    if checkpoint is not None:
        resume(run, checkpoint)
    reason = loop.train()
    results = NetTrainResults(_properties(run, reason, loop.checkpoints.files))
    loop.reporter.done(results.properties)
    if prop is None:
        return results["TrainedNet"]
    if prop == "All":
        return results
    if isinstance(prop, list):
        return [results[p] for p in prop]
    return results[prop]


def _check_options(data: Any, validation_set: Any) -> None:
    """The options checked before any work starts (no data read, no array made, no file written).

    Today: what ``data`` and ``validation_set`` are, as far as their form tells. Checks of the other
    options' forms belong here too, so that a mistake is reported before anything is done.
    """
    check_data_options(data, validation_set)


def _fit_to_data_and_initialize(train_net: Layer, data: TrainingData, seed: int | None) -> None:
    """Open input shapes take their size from the data; arrays left uninitialised are filled
    as NetInitialize would (with the run's seed, else 1234)."""
    for port, column in data.columns.items():
        if train_net.port_shapes.get(port) is None:
            train_net.refine({port: tuple(column.shape[1:])})
    initialize_in_place(train_net, random_seeding=1234 if seed is None else seed)  # fills only missing arrays


def _properties(run: TrainingRun, reason: str, checkpoint_files: list[str]) -> dict[str, Any]:
    """NetTrain's result properties, by Wolfram's names."""
    state, data, optimizer = run.state, run.data, run.optimizer
    final_net = run.user_net()
    best_net = run.best_net()
    elapsed = time.perf_counter() - run.started
    return {
        "TrainedNet": final_net if best_net is None else best_net,
        "FinalNet": final_net,
        "RoundLossList": state.round_losses,
        "BatchLossList": state.batch_losses,
        "ValidationLossList": state.validation_losses,
        "RoundLoss": state.round_losses[-1] if state.round_losses else None,
        "ValidationLoss": state.validation_losses[-1] if state.validation_losses else None,
        "BestValidationRound": state.best_round if data.validation is not None else None,
        "TotalTrainingTime": elapsed,
        "MeanExamplesPerSecond": state.examples / max(elapsed, 1e-9),
        "ReasonTrainingStopped": reason,
        "TotalRounds": state.round,
        "TotalBatches": state.step,
        "BatchSize": data.batch_size,
        "BatchesPerRound": data.batches_per_round,
        "ExamplesProcessed": state.examples,
        "TrainingExamples": data.examples,
        "ValidationExamples": data.validation_examples,
        "OptimizationMethod": optimizer.name,
        "InitialLearningRate": optimizer.options["learning_rate"],
        "FinalLearningRate": optimizer.learning_rate(state.step, run.estimated_total),
        "CheckpointingFiles": list(checkpoint_files),
        "LossPlot": loss_plot(state.round_losses, state.validation_losses, state.batch_losses, data.batches_per_round),
    }
