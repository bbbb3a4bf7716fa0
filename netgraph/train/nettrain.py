"""NetTrain itself: it checks and reads its options, sets up a training run, trains it with the training
loop and returns the trained net, or the results asked for.

Every option is checked before any work starts (before the data is read, an array made or a file
written): a wrong form or value raises one NetError naming the option, the value given and what is
accepted. What only the data can tell (shapes, lengths, class numbers) is checked when the data is read,
still before the first training step. What NetTrain's arguments and options take (each as in the
Wolfram Language, in Python's forms):

- data: ``{"Input": images}``, an array for a single-input net,
    ``(inputs, targets)`` or a list of ``(input, target)`` pairs for a net whose loss is attached
    (Wolfram's ``{in1, ...} -> {out1, ...}`` and ``{in1 -> out1, ...}``), a list of per-example dicts,
    or a generator function ``f`` (or ``(f, {"RoundLength": n})``, n examples per round;
    one batch per round without it). ``f`` is called once per batch with
    ``{"BatchSize", "Round", "Batch", "AbsoluteBatch", "BatchesPerRound"}`` (with several
    processes also ``"Rank"`` and ``"WorldSize"``, and "BatchSize" is the rank's share) and returns a
    batch in any of the other forms; resuming from a checkpoint repeats a run exactly
    when ``f`` depends only on its argument. Every port's examples are an array of numbers,
    the same number of examples for every port. The targets of an attached loss are keyed by its
    port ("Target") or by the output they are compared with (``{"Input": x, "Output": y}``, as the
    Wolfram Language keys them). Targets of an "Index" CrossEntropyLossLayer
    (the automatic loss of a net ending in a SoftmaxLayer) are class numbers 1..n.
- prop: None (the trained net), a property name such as
    "RoundLossList", a list of names, or "All" for a results object.
- loss_function: Automatic, an output port ("Loss"), a list of ports
    (summed), ``(port, Scaled(r))`` weights or a dict ``{port: r}`` (r a finite number), or a
    loss layer (attached to the output; its "Target", if it has one, comes from data), also as
    ``(port, layer)``, or ``(port, Automatic)`` (the automatic loss of that output). Automatic uses the
    output "Loss" if there is one, else attaches the automatic loss to every output.
- batch_size, max_training_rounds: Automatic or a positive integer.
- time_goal: None (or Automatic) or seconds > 0.
- method: "ADAM" (default), "SGD", "RMSProp", or ``(name, {sub-options})`` with, in snake_case or
    CamelCase: learning_rate (> 0), beta1, beta2 (ADAM), beta (RMSProp), momentum (SGD, RMSProp),
    each in [0, 1); epsilon (> 0); l2_regularization (>= 0 or None), gradient_clipping and
    weight_clipping (> 0 or None); learning_rate_schedule (None, "Polynomial" or
    ``f(step, total_steps)`` returning a finite multiplier >= 0).
- learning_rate: Automatic (the method's) or a finite number > 0.
- learning_rate_multipliers: ``{key: r}`` (or a list of pairs), a key being a layer path (``"enc"``,
    ``("enc", 2)``) or an array path (``("enc", "Weights")``) and r a finite number (negative reverses
    the gradient) or 0/None to freeze. A key that matches no array is an error listing the layers.
- validation_set: data in the same form, or ``Scaled(f)``, 0 < f < 1, to hold out a fraction (at
    least one example held out, at least one left).
- training_stopping_criterion: None, "Loss" or Automatic, ``{"Criterion": "Loss", "Patience": n,
    "InitialPatience": m, "Improvement": ("AbsoluteChange"|"RelativeChange", v)}`` (n, m whole
    numbers >= 0, v >= 0), or a callable of the progress dict returning True to stop (also as
    ``{"Criterion": f}``).
- training_progress_reporting: Automatic (in a notebook the live panel, in a terminal a tqdm bar per
    round, else lines every few seconds), "Panel", "ProgressIndicator" (the bar), "Print" (the lines),
    None, or ``("File", "log.csv")`` / ``("File", "log.jsonl")`` for one line per round. The panel
    (:mod:`netgraph.train.panel`; IPython needed, ``pip install netgraph[notebook]``) is a tqdm
    notebook bar over a loss plot of the batch, round and validation losses, updated in place after every
    round; ``("Panel", {"Picture": f, "Interval": ("Rounds"|"Batches", n), "MinimumInterval": s})``
    shows ``f(progress)`` beside the plot (``progress`` as the progress function's, with "Net"; ``f``
    returns a Pillow image, an array of pixels, PNG bytes or None), every n rounds or batches (default:
    every round), redrawing at most once per s seconds (default 0.5; the last state is always drawn).
- training_progress_function: ``f`` or ``(f, {"Interval": ("Rounds"|"Batches", n)})``, n >= 1;
    ``f(progress)`` may return "StopTraining".
- target_device: "CPU", "GPU", ("GPU", n) or ("GPU", All) (under mpiexec: one GPU per process, by its
    rank on its machine; in one process, one GPU); working_precision: "Real32" or "Real64".
- random_seeding: Automatic or a whole number >= 0, which makes initialisation, shuffling and random
    layers reproducible.
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
    Data of another length, another batch size, net, losses or precision are an error
    naming each difference; ``(path, {"Exact": False})`` continues with them instead. A changed
    learning rate, method options or multipliers apply from the resumed step on, with a warning
    (see :mod:`netgraph.train.resume`). Another number of processes than the checkpoint's
    ("WorldSize") is such a difference: refused, or continued with ``{"Exact": False}`` (the
    batches are then split over the processes there are, and random layers draw other numbers).
    Ctrl-C stops cleanly and returns the net trained so far (with several processes it ends the job:
    resume from a checkpoint).

**Several processes (data-parallel).** Under ``mpiexec -n N python script.py`` (``pip install
netgraph[mpi]``; see :mod:`netgraph.distributed` for launching, machines and GPUs) every process runs the
script, and NetTrain trains the N of them together with no change to the call (every rank must call it,
with the same arguments and data):

- ``batch_size`` stays the global batch: each step cuts it into N contiguous shares (the first
  ``B % N`` ranks take one more; a rank whose share is empty sits the step out), every rank computes the
  forward and backward pass of its share with the loss divided by the global batch's count, and one
  allreduce of one buffer sums the gradients, the loss values, the examples counted, a flag for an
  exception and the moving statistics (:mod:`netgraph.train.parallel`). The learning rate needs no rescaling,
  and an uneven last batch is weighted exactly by its global count.
- Every rank reads the whole data set; the same seed gives every rank the same validation split and the
  same order of examples each round (with random_seeding Automatic, rank 0 draws the seed and sends it).
  A generator is called on every rank, for the rank's share, with "Rank" and "WorldSize" in its
  argument: it should give each rank other examples (say by seeding with both "AbsoluteBatch" and
  "Rank").
- Before the first step (and after a resume) every rank takes rank 0's arrays, optimiser state,
  counters and random states; after each step all ranks hold the same arrays, bit for bit, and every rank
  returns the same trained net (and the same results, but for the times).
- Only rank 0 reports progress, writes the progress log and checkpoints, calls the progress function and
  the stopping criterion, and decides what depends on time (the Automatic number of rounds, a
  checkpoint interval in seconds, time_goal); its decisions are sent to the others, so that all stop
  together. The validation loss is computed on each rank's share of the validation set and summed.
- A non-finite loss or gradient on any rank, or an exception in a rank's step (its generator, its forward
  or backward pass), raises the same TrainingError on every rank, naming the rank; an uncaught one is
  shown once (by rank 0). A mistake that every rank meets alike before training (an option, the data)
  raises the usual error on every rank. An exception that escapes on one rank only (a failing disk on
  rank 0, a bug) is printed with its rank and ends the whole job (``MPI_Abort``): no rank is left
  waiting.

What is exact and what is not, against one process training on the same global batch:

- The same: the data order, the batches, the weighting of the loss, the optimiser's update rule, the
  checkpoints (a resumed N-process run equals an uninterrupted one, bit for bit, on the CPU).
- Equal to rounding: the gradients are sums of per-rank partial sums (another order of float
  additions), and the loss values travel in the working precision (float32 by default), so losses and
  arrays agree with one process to float32 rounding (about 1e-7 relative per step), not bit for bit;
  NCCL's sums may round differently again.
- Different by design: batch normalisation uses each rank's own batch statistics while training (as
  PyTorch's DistributedDataParallel does by default; its moving statistics are averaged over the ranks
  after every step, so all ranks keep the same net), and random layers (dropout, a VAE's sampling) draw
  from per-rank streams made from (seed, step, rank), so their numbers differ from one process's while
  staying reproducible and resumable. Any layer whose output depends on the whole batch sees its share.

NetTrain never hands back a net with NaN or ±Inf in its arrays without saying so. Training stops with a
TrainingError (a NetError) when a batch's loss or gradient is not finite (the arrays are then not
updated), when the arrays hold NaN or ±Inf after an update (checked whenever a loss or gradient goes
bad, at the end of every round, before every checkpoint and progress-function call, and when training
stops), or when the validation loss is not finite. The message names the round, the batch and the loss
ports or arrays; the error's ``last_good_net`` is the last net whose arrays (and losses) were all seen
finite: the net before the failing batch when the arrays are still finite, else the net at the last
check they passed (the end of the previous round, the last checkpoint or progress call, or the start).
A non-finite validation loss therefore never counts as the best ("TrainedNet").

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

import difflib
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import DEVICES, BackendError, cpu_work, get_dtype, get_xp
from ..distributed import World, guard_rank, world
from ..images import loss_plot
from ..initialize import initialize_in_place
from ..layer import Layer, NetError, brief, is_real, is_whole
from ..optimizers import make_optimizer
from ..paths import iter_arrays
from ..ports import All, Automatic
from .checkpoints import Checkpoints
from .data import TrainingData, check_data_options
from .loop import TrainingLoop
from .losses import attach_losses, index_targets, target_ports
from .progress import ProgressFunction, Reporter, StoppingCriterion
from .results import ALIASES, PROPERTIES, NetTrainResults
from .resume import read_checkpoint, resume
from .state import DeviceRandom, TrainingRun, array_rates


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
    this module's docstring (``help(netgraph.train.nettrain)``). Under ``mpiexec -n N`` the N processes
    train together, data-parallel (see the module docstring).
    """
    started = time.perf_counter()
    options = {
        "loss_function": loss_function,
        "batch_size": batch_size,
        "max_training_rounds": max_training_rounds,
        "time_goal": time_goal,
        "method": method,
        "learning_rate": learning_rate,
        "learning_rate_multipliers": learning_rate_multipliers,
        "validation_set": validation_set,
        "training_stopping_criterion": training_stopping_criterion,
        "training_progress_reporting": training_progress_reporting,
        "training_progress_function": training_progress_function,
        "target_device": target_device,
        "random_seeding": random_seeding,
        "working_precision": working_precision,
        "training_progress_checkpointing": training_progress_checkpointing,
        "resume_from": resume_from,
    }
    processes = world()
    if processes.size == 1:
        return _train(net, data, prop, started, processes, None, options)
    try:  # several processes: an exception not raised alike on every rank ends the job (distributed.guard_rank)
        seed = processes.broadcast_object(int(np.random.SeedSequence().entropy) % 2**63 if processes.is_root else None)
        with warnings.catch_warnings():
            if not processes.is_root:  # every rank would warn alike: rank 0 speaks for all
                warnings.simplefilter("ignore")
            return _train(net, data, prop, started, processes, seed, options)
    except BaseException as err:
        guard_rank(processes, err)
        raise


def _train(
    net: Any, data: Any, prop: Any, started: float, processes: World, shared_seed: int | None, options: dict
) -> Any:
    """NetTrain's work; ``shared_seed`` is rank 0's random seed, for the data order and random layers of an
    Automatic random_seeding when several processes train together."""
    try:
        run, loop = _set_up(net, data, prop, started, processes, shared_seed, **options)
    except Exception as err:
        if processes.size == 1:
            raise
        processes.raise_together(err, lambda summary: NetError(f"NetTrain: {summary} (before training)"))
        raise  # (raise_together has raised)
    processes.raise_together(None, NetError)  # (a collective: every rank is ready)
    reason = loop.train()
    files = processes.broadcast_object(loop.checkpoints.files)
    results = NetTrainResults(_properties(run, reason, files))
    loop.reporter.done(results.properties)
    if prop is None:
        return results["TrainedNet"]
    if prop == "All":
        return results
    if isinstance(prop, list):
        return [results[p] for p in prop]
    return results[prop]


def _set_up(
    net: Any,
    data: Any,
    prop: Any,
    started: float,
    processes: World,
    shared_seed: int | None,
    *,
    loss_function: Any,
    batch_size: Any,
    max_training_rounds: Any,
    time_goal: Any,
    method: Any,
    learning_rate: Any,
    learning_rate_multipliers: Any,
    validation_set: Any,
    training_stopping_criterion: Any,
    training_progress_reporting: Any,
    training_progress_function: Any,
    target_device: Any,
    random_seeding: Any,
    working_precision: Any,
    training_progress_checkpointing: Any,
    resume_from: Any,
) -> tuple[TrainingRun, TrainingLoop]:
    """Check the options, read the data, make the training run and its loop (resumed from a checkpoint when
    asked): everything before the first step."""
    _check_options(
        net,
        data,
        prop,
        batch_size=batch_size,
        max_training_rounds=max_training_rounds,
        time_goal=time_goal,
        validation_set=validation_set,
        training_progress_reporting=training_progress_reporting,
        target_device=target_device,
        random_seeding=random_seeding,
        working_precision=working_precision,
        resume_from=resume_from,
    )
    # the options that make objects, each checked as it is made; nothing is read, trained or written yet
    seed = None if random_seeding is Automatic or random_seeding is None else int(random_seeding)
    shuffling = seed if seed is not None or processes.size == 1 else shared_seed  # the same order on every rank
    optimizer = make_optimizer(method, None if learning_rate is Automatic else learning_rate)
    criterion = StoppingCriterion(training_stopping_criterion)
    progress_function = ProgressFunction(training_progress_function)
    xp = get_xp(target_device)  # a BackendError here when the GPU asked for cannot be used
    if xp is not np and processes.size > 1:
        processes.use_gpu()  # one GPU per rank, by its rank on its machine
    checkpoints, checkpoint = Checkpoints(training_progress_checkpointing), read_checkpoint(resume_from)
    net = net.copy()
    train_net, losses = attach_losses(net, loss_function)
    array_rates(train_net, learning_rate_multipliers, () if train_net is net else ("net",))  # checks the keys
    # the data: read, checked against the ports, and the class numbers of classification targets
    training_data = TrainingData.read(
        train_net,
        data,
        validation_set,
        batch_size,
        shuffling,
        processes.rank,
        processes.size,
        targets=target_ports(net, train_net),
    )
    _fit_to_data_and_initialize(train_net, training_data, seed)
    if resume_from is None:
        _check_arrays_finite(train_net, () if train_net is net else ("net",))
    training_data.check_class_labels(index_targets(train_net))
    run = TrainingRun(
        net=net,
        train_net=train_net,
        losses=losses,
        data=training_data,
        xp=xp,
        dtype=get_dtype(working_precision),
        optimizer=optimizer,
        learning_rate_multipliers=learning_rate_multipliers,
        device_rng=DeviceRandom(xp, shuffling, processes.rank if processes.size > 1 else None),
        criterion=criterion,
        rounds=None if max_training_rounds is Automatic else int(max_training_rounds),
        started=started,
        world=processes,
    )
    loop = TrainingLoop(
        run,
        reporter=Reporter(
            training_progress_reporting if processes.is_root else None,
            progress=lambda: run.state.progress(run.data.batch_size),
            net=run.user_net,
        ),
        progress_function=progress_function,
        checkpoints=checkpoints,
        time_goal=None if time_goal is Automatic else time_goal,
    )
    if checkpoint is not None:
        resume(run, checkpoint)
    return run, loop


def _check_options(net: Any, data: Any, prop: Any, **options: Any) -> None:
    """The options whose form alone tells whether they are valid, checked before any work starts (no data
    read, no array made, no file written): each mistake is a NetError naming the option, the value given
    and what is accepted.

    The options that make objects are checked as NetTrain makes them, still before any work: method and
    learning_rate (:func:`~netgraph.optimizers.make_optimizer`), training_stopping_criterion and
    training_progress_function (:mod:`~netgraph.train.progress`), loss_function (its ports, in
    :func:`~netgraph.train.losses.attach_losses`), learning_rate_multipliers (its keys against the net's
    arrays, :func:`~netgraph.train.state.array_rates`) and training_progress_checkpointing.
    """
    if not isinstance(net, Layer):
        raise NetError(f"NetTrain: the first argument must be a net or layer, got {brief(net, 80)}")
    check_data_options(data, options["validation_set"])
    _check_prop(prop)
    for option in ("batch_size", "max_training_rounds"):
        value = options[option]
        if value is not Automatic and not (is_whole(value) and value >= 1):
            raise NetError(f"NetTrain: {option} must be a positive integer or Automatic, got {brief(value, 80)}")
    time_goal = options["time_goal"]
    if time_goal is not None and time_goal is not Automatic and not (is_real(time_goal) and time_goal > 0):
        raise NetError(f"NetTrain: time_goal must be a number of seconds > 0 (or None), got {brief(time_goal, 80)}")
    seed = options["random_seeding"]
    if seed is not Automatic and seed is not None and not (is_whole(seed) and seed >= 0):
        raise NetError(f"NetTrain: random_seeding must be a whole number >= 0 or Automatic, got {brief(seed, 80)}")
    device = options["target_device"]
    if isinstance(device, (tuple, list)) and len(device) == 2 and (is_whole(device[1]) and device[1] >= 0):
        device = device[0]
    elif isinstance(device, (tuple, list)) and len(device) == 2 and device[1] is All:
        device = device[0]
    if not (isinstance(device, str) and device in DEVICES):
        raise NetError(
            f'NetTrain: target_device must be "CPU", "GPU" or ("GPU", n), got {brief(options["target_device"], 80)} '
            '(or ("GPU", All): one process per GPU under mpiexec)'
        )
    precision = options["working_precision"]
    try:
        get_dtype(precision)
    except (BackendError, TypeError, ValueError):
        raise NetError(
            f'NetTrain: working_precision must be "Real32" or "Real64" (or numpy.float32/float64), got '
            f"{brief(precision, 80)}"
        ) from None
    Reporter.check(options["training_progress_reporting"])
    # resume_from (a path, or (path, {"Exact": ...})) is checked by read_checkpoint, right after these


def _check_prop(prop: Any) -> None:
    """``prop``: None, "All", a property name or a list of them."""
    names = [*PROPERTIES, *ALIASES]
    given = prop if isinstance(prop, list) else [prop]
    if prop is None or (isinstance(prop, str) and prop == "All"):
        return
    for name in given:
        if not isinstance(name, str) or name not in names:
            close = difflib.get_close_matches(name, names, n=3) if isinstance(name, str) else []
            guess = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise NetError(
                f"NetTrain: there is no property {brief(name, 80)}; {guess}prop must be None (the trained net), "
                f'"All" (a results object), or one or a list of {sorted(names)}'
            )


def _fit_to_data_and_initialize(train_net: Layer, data: TrainingData, seed: int | None) -> None:
    """Open input shapes take their size from the data; arrays left uninitialised are filled
    as NetInitialize would (with the run's seed, else 1234)."""
    for port, column in data.columns.items():
        if train_net.port_shapes.get(port) is None:
            train_net.refine({port: tuple(column.shape[1:])})
    initialize_in_place(train_net, random_seeding=1234 if seed is None else seed)  # fills only missing arrays


def _check_arrays_finite(train_net: Layer, prefix: tuple) -> None:
    """The net's arrays, given or initialised, hold no NaN or ±Inf (training could not recover from them)."""
    bad = [
        "/".join(map(str, path[len(prefix) :]))
        for path, layer, name in iter_arrays(train_net)
        if layer.arrays[name] is not None and not np.isfinite(layer.arrays[name]).all()
    ]
    if bad:
        raise NetError(
            f"NetTrain: the net's arrays {', '.join(bad[:5])}{' and others' if len(bad) > 5 else ''} hold NaN or "
            "Inf before training; give finite arrays (or reinitialise them with NetInitialize)"
        )


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
