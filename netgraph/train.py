"""NetTrain: fit a net's arrays to data, as the Wolfram Language's NetTrain does.

One training step: a batch goes through the training net (the net with its
loss layers attached), the objective Σ_i r_i · mean_over_batch(loss_i) is
differentiated by the autograd engine, and the optimiser updates the arrays
in place on the device. Arrays live on the device for the whole run and come
back to NumPy in the returned net.

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

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .autograd import Tape, backward
from .backend import cpu_work, get_dtype, get_xp, seeded_rng, to_numpy
from .evaluate import _ensure_initialized
from .graph import NetGraph
from .images import loss_plot
from .initialize import initialize_in_place
from .io import load_with_extra, save
from .layer import Context, Layer, NetError, format_shape
from .optimizers import make_optimizer
from .paths import iter_arrays
from .ports import Automatic, NetPort, Scaled


class TrainingError(NetError):
    """Training stopped on bad numbers; ``last_good_net`` holds the net before the failing step."""

    def __init__(self, message: str, last_good_net: Layer | None = None):
        super().__init__(message)
        self.last_good_net = last_good_net


@dataclass
class NetTrainResults:
    """What ``NetTrain(..., prop="All")`` returns; index it with Wolfram's property names."""

    properties: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        aliases = {
            "LossEvolutionPlot": "LossPlot",
            "FinalRoundLoss": "RoundLoss",
            "FinalValidationLoss": "ValidationLoss",
            "TotalInputs": "ExamplesProcessed",
            "MeanInputsPerSecond": "MeanExamplesPerSecond",
        }
        name = aliases.get(name, name)
        if name not in self.properties:
            raise KeyError(f"NetTrain results have no property {name!r}; they have {sorted(self.properties)}")
        return self.properties[name]

    def keys(self) -> list[str]:
        return sorted(self.properties)


# --- losses ------------------------------------------------------------------------------


def _loss_specs(net: Layer, loss_function: Any) -> tuple[Layer, list[tuple[str, float]]]:
    """The training net and its (loss port, weight) pairs, following Wolfram's LossFunction."""
    import layers  # the automatic losses are layers of the library

    if loss_function is Automatic or loss_function is None:
        if "Loss" in net.output_ports:
            return net, [("Loss", 1.0)]
        last = _last_layer(net)
        loss = (
            layers.CrossEntropyLossLayer("Index")
            if isinstance(last, layers.SoftmaxLayer)
            else layers.CrossEntropyLossLayer("Binary")
            if _is_sigmoid(last)
            else layers.MeanSquaredLossLayer()
        )
        loss_function = loss
    if isinstance(loss_function, Layer):
        if len(net.output_ports) != 1:
            raise NetError(
                f"NetTrain: give loss_function=(output port, loss layer); the net has outputs {list(net.output_ports)}"
            )
        loss_function = [(net.output_ports[0], loss_function)]
    if isinstance(loss_function, str):
        loss_function = [loss_function]
    if isinstance(loss_function, dict):
        loss_function = list(loss_function.items())
    if isinstance(loss_function, tuple) and len(loss_function) == 2 and isinstance(loss_function[0], str):
        loss_function = [loss_function]
    ports: list[tuple[str, float]] = []
    attach: list[tuple[str, Layer]] = []
    for item in loss_function:
        port, weight = (item, 1.0) if isinstance(item, str) else item
        if isinstance(weight, Layer):
            attach.append((port, weight))
            ports.append((f"{port}Loss" if port != "Output" else "Loss", 1.0))
            continue
        if isinstance(weight, Scaled):
            weight = weight.ratio
        if port not in net.output_ports:
            raise NetError(
                f"NetTrain: loss port {port!r} is not an output of the net; its outputs are {list(net.output_ports)}"
            )
        ports.append((port, float(weight)))
    if not attach:
        return net, ports
    vertices: dict[str, Layer] = {"net": net}
    wires: list[tuple] = [(NetPort(p), NetPort("net", p)) for p in net.input_ports]
    for port in net.output_ports:
        if port not in [a for a, _ in attach]:
            wires.append((NetPort("net", port), NetPort(port)))
    for port, loss in attach:
        name = f"{port}Loss" if port != "Output" else "Loss"
        vertices[name] = loss
        wires += [
            (NetPort("net", port), NetPort(name, "Input")),
            (NetPort("Target" if port == "Output" else port), NetPort(name, "Target")),
            (NetPort(name, "Loss"), NetPort(name)),
        ]
    return NetGraph(vertices, wires), ports


def _last_layer(net: Layer) -> Layer:
    while isinstance(net, NetGraph) and len(net.outputs) == 1:
        key = next(iter(net.outputs.values()))[0]
        net = net.vertices[key]
    return net


def _is_sigmoid(layer: Layer) -> bool:
    return getattr(layer, "label", None) in ("LogisticSigmoid", "Sigmoid")


# --- data ------------------------------------------------------------------------------------


def _as_columns(net: Layer, data: Any, what: str) -> dict[str, np.ndarray]:
    """Data as a dict of equally long arrays keyed by the training net's input ports."""
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], str):
        inputs, targets = data
        data = {net.input_ports[0] if "Target" != net.input_ports[0] else "Input": inputs, "Target": targets}
        if not isinstance(inputs, dict) and "Input" not in net.input_ports:
            data = {[p for p in net.input_ports if p != "Target"][0]: inputs, "Target": targets}
    if not isinstance(data, dict):
        ports = [p for p in net.input_ports]
        if len(ports) != 1:
            raise NetError(f"NetTrain: the net has inputs {ports}; give the {what} as a dict keyed by port")
        data = {ports[0]: data}
    columns = {p: np.asarray(v) for p, v in data.items() if p in net.input_ports}
    missing = [p for p in net.input_ports if p not in columns]
    if missing:
        raise NetError(f"NetTrain: the {what} gives no values for input port(s) {missing}; it has keys {list(data)}")
    sizes = {p: len(v) for p, v in columns.items()}
    if len(set(sizes.values())) != 1:
        raise NetError(f"NetTrain: the {what} columns have different lengths {sizes}")
    for port, column in columns.items():
        expected = net.port_shapes.get(port)
        if expected is not None and tuple(column.shape[1:]) != expected:
            raise NetError(
                f"NetTrain: port {port!r} expects examples of shape {format_shape(expected)}; the {what} "
                f"has {format_shape(tuple(column.shape[1:]))}"
            )
    return columns


def _generator(data: Any) -> tuple[Callable | None, int | None]:
    """A generator function ``f`` or ``(f, {"RoundLength": n})``, else (None, None)."""
    if callable(data) and not isinstance(data, Layer):
        return data, None
    if isinstance(data, tuple) and len(data) == 2 and callable(data[0]) and isinstance(data[1], dict):
        unknown = set(data[1]) - {"RoundLength"}
        if unknown:
            raise NetError(f"NetTrain: a generator takes only the option 'RoundLength', got {sorted(unknown)}")
        length = data[1].get("RoundLength")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise NetError(f"NetTrain: 'RoundLength' must be a positive number of examples, got {length!r}")
        return data[0], length
    return None, None


def _generator_info(round_number: int, batch: int, absolute: int, size: int, round_length: int | None) -> dict:
    """What a generator function is called with (Wolfram's keys)."""
    per_round = math.ceil((round_length or size) / size)
    return {
        "BatchSize": size,
        "Round": round_number,
        "Batch": batch,
        "AbsoluteBatch": absolute,
        "BatchesPerRound": per_round,
    }


class Schedule(NamedTuple):
    """A training length chosen by rounds or by batches, in the form NetTrain takes it."""

    rounds: int  # max_training_rounds
    total: int  # batches in all
    batch_size: int
    per_round: int  # batches per round
    stop: tuple | None  # a training_progress_function that stops after ``total`` batches, or None
    description: str


def schedule(
    examples: int, batch_size: int, epochs: int | None, iterations: int | None, default_epochs: int
) -> Schedule:
    """Rounds (``epochs``, else ``default_epochs``) or a number of batches (``iterations``, which
    may end mid-round: NetTrain is stopped by a progress function), as command lines ask for them.

    Example:
        >>> s = schedule(100, 32, None, 10, default_epochs=2)
        >>> s.rounds, s.total, s.per_round, s.description
        (3, 10, 4, '10 batches of 32 (--iterations)')
        >>> schedule(100, 32, None, None, default_epochs=2).description
        '2 rounds of 4 batches of 32 (the default)'
    """
    batch_size = min(batch_size, examples)
    per_round = math.ceil(examples / batch_size)
    if iterations:
        stop = ((lambda progress: "StopTraining"), {"Interval": ("Batches", iterations)})
        text = f"{iterations} batches of {batch_size} (--iterations)"
        return Schedule(math.ceil(iterations / per_round), iterations, batch_size, per_round, stop, text)
    rounds = epochs or default_epochs
    text = f"{rounds} rounds of {per_round} batches of {batch_size}" + ("" if epochs else " (the default)")
    return Schedule(rounds, rounds * per_round, batch_size, per_round, None, text)


# --- the training loop ------------------------------------------------------------------------------


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
    resume_from: str | Path | None = None,
) -> Any:
    """Train ``net`` on ``data`` and return the trained net (or ``prop`` of the results).

    Args:
        data: ``{"Input": images}``, an array for a single-input net,
            ``(inputs, targets)`` for a net whose loss is attached automatically, or a
            generator function ``f`` (or ``(f, {"RoundLength": n})``, n examples per round;
            one batch per round without it). ``f`` is called once per batch with
            ``{"BatchSize", "Round", "Batch", "AbsoluteBatch", "BatchesPerRound"}`` and returns a
            batch in any of the other forms; resuming from a checkpoint repeats a run exactly
            when ``f`` depends only on its argument.
        prop: None (the trained net), a property name such as
            "RoundLossList", a list of names, or "All" for a results object.
        loss_function: Automatic, an output port ("Loss"), a list of ports
            (summed), ``(port, Scaled(r))`` weights or a dict ``{port: r}``, or a
            loss layer (attached to the output; its "Target" comes from data).
        method: "ADAM" (default), "SGD", "RMSProp", or ``(name, {sub-options})``.
        validation_set: data in the same form, or ``Scaled(f)`` to hold out a fraction.
        training_stopping_criterion: ``{"Criterion": "Loss", "Patience": n,
            "InitialPatience": m, "Improvement": ("AbsoluteChange", v)}`` or a
            callable of the progress dict returning True to stop.
        training_progress_reporting: Automatic (a tqdm bar per round in a terminal, else
            lines every few seconds), "ProgressIndicator" (the bar), "Print" (the lines), None,
            or ``("File", "log.csv")`` / ``("File", "log.jsonl")`` for one line per round.
            A NaN or infinite loss or gradient stops training with a TrainingError naming the
            round, the batch and the loss ports (or arrays); its ``last_good_net`` is the net
            before that batch.
        training_progress_function: ``f`` or ``(f, {"Interval": ("Rounds"|"Batches", n)})``;
            ``f(progress)`` may return "StopTraining".
        random_seeding: an int makes initialisation, shuffling and random layers reproducible.
        training_progress_checkpointing: ``("File", path)`` or ``("Directory", dir)``, optionally
            with ``{"Interval": ("Rounds"|"Batches", n)}`` as a third element (default: every
            round). Each checkpoint is a net file (``netgraph.load`` reads it) that also holds the
            optimiser state, the counters, the random states and the data position; it is
            written atomically.
        resume_from: a checkpoint file, or a directory (its newest checkpoint): training
            continues where it stopped and, with the same seed and data, ends with the same
            arrays as an uninterrupted run (on the CPU). Ctrl-C stops cleanly and returns the
            net trained so far.
    """
    started = time.perf_counter()
    seed = None if random_seeding is Automatic else random_seeding
    net = net.copy()
    train_net, losses = _loss_specs(net, loss_function)
    generator, round_length = _generator(data)
    size = 64 if batch_size is Automatic else int(batch_size)
    if generator is not None:  # one call now, to check the batch's ports and shapes before training
        if isinstance(validation_set, Scaled):
            raise NetError(
                "NetTrain: validation_set=Scaled(f) needs a fixed data set; give a generator's "
                "validation data explicitly"
            )
        pending = _as_columns(train_net, generator(_generator_info(1, 1, 1, size, round_length)), "generator's batch")
        columns = pending
        n_examples = round_length or size  # without "RoundLength", one batch makes a round
    else:
        pending = None
        columns = _as_columns(train_net, data, "training data")
        n_examples = len(next(iter(columns.values())))
    rng = np.random.default_rng(seed)
    if isinstance(validation_set, Scaled):
        order = rng.permutation(n_examples)
        held = int(round(validation_set.ratio * n_examples))
        validation = {p: v[order[:held]] for p, v in columns.items()}
        columns = {p: v[order[held:]] for p, v in columns.items()}
        n_examples -= held
    else:
        validation = None if validation_set is None else _as_columns(train_net, validation_set, "validation set")
    if n_examples < 1:
        raise NetError("NetTrain: no training examples")
    for port, column in columns.items():  # open shapes take their size from the data
        if train_net.port_shapes.get(port) is None:
            train_net.refine({port: tuple(column.shape[1:])})
    if any(layer.arrays[name] is None for _, layer, name in iter_arrays(train_net)):
        initialize_in_place(train_net, random_seeding=1234 if seed is None else seed)
    _ensure_initialized(train_net)

    size = size if generator is not None else max(1, min(size, n_examples))
    batches_per_round = math.ceil(n_examples / size)
    xp = get_xp(target_device)
    dtype = get_dtype(working_precision)
    optimizer = make_optimizer(method, None if learning_rate is Automatic else learning_rate)
    paths = {(id(layer), name): path for path, layer, name in iter_arrays(train_net)}
    rates = _rates(train_net, learning_rate_multipliers)
    trainable = [(path, layer, name) for path, layer, name in iter_arrays(train_net) if rates.get(path, 1.0) != 0]
    grad_keys = {(id(layer), name) for _, layer, name in trainable}
    store: dict[tuple[int, str], Any] = {}
    device_rng = _DeviceRandom(xp, seed)
    reporter = _Reporter(training_progress_reporting)
    callback, interval = _callback(training_progress_function)
    criterion = _StoppingCriterion(training_stopping_criterion)
    checkpoints = _Checkpoints(training_progress_checkpointing)
    state = _State()
    rounds = None if max_training_rounds is Automatic else int(max_training_rounds)
    prefix = () if train_net is net else ("net",)
    if resume_from is not None:
        pending = None  # the generator is asked again for the batch where training resumes
        rounds = _resume(
            resume_from,
            train_net,
            prefix,
            store,
            grad_keys,
            optimizer,
            state,
            criterion,
            rng,
            device_rng,
            xp,
            dtype,
            rounds,
        )
    estimated_total = (rounds or 10) * batches_per_round

    def user_net(snapshot: dict | None = None) -> Layer:
        return _strip_losses(_write_back(train_net, store, snapshot), net, train_net)

    def checkpoint() -> None:
        checkpoints.write(user_net(), state, optimizer, criterion, rng, device_rng, paths, prefix, rounds)

    reason = "MaxTrainingRounds"
    try:
        while True:
            if state.batch == 0:
                if rounds is not None and state.round >= rounds:
                    break
                state.start_round(rng.permutation(n_examples))
            while state.batch < batches_per_round:
                if generator is None:
                    index = state.order[state.batch * size : (state.batch + 1) * size]
                    chosen = {p: v[index] for p, v in columns.items()}
                else:
                    info = _generator_info(state.round, state.batch + 1, state.step + 1, size, round_length)
                    chosen = pending or _as_columns(train_net, generator(info), "generator's batch")
                    pending = None
                count = len(next(iter(chosen.values())))
                batch = {p: xp.asarray(v, dtype=dtype) for p, v in chosen.items()}
                ctx = Context(
                    xp=xp,
                    dtype=dtype,
                    batch_size=count,
                    training=True,
                    rng=device_rng.for_step(state.step + 1),
                    arrays=store,
                    grad_arrays=grad_keys,
                    arrays_persist=True,
                )
                try:
                    loss = _train_step(
                        train_net,
                        ctx,
                        batch,
                        losses,
                        optimizer,
                        trainable,
                        rates,
                        state.step + 1,
                        estimated_total,
                        state.round,
                        state.batch + 1,
                        len(prefix),
                    )
                except TrainingError as err:
                    err.last_good_net = user_net()
                    raise
                state.finish_batch(loss, count)
                rate = state.examples / max(time.perf_counter() - started, 1e-9)
                reporter.total_batches = rounds * batches_per_round if rounds else None
                reporter.batch(state.round, state.batch, batches_per_round, loss, rate, state.step)
                if checkpoints.due("Batches", state.step):
                    checkpoint()
                if callback and interval[0] == "Batches" and state.step % interval[1] == 0:
                    if _call(callback, state.progress(size), net, train_net, store) == "StopTraining":
                        reason = "TrainingProgressFunction"
                        break
            if reason == "TrainingProgressFunction":
                break
            state.finish_round()
            if rounds is None and state.round == 1:  # Automatic: about 20 s of training
                per_round = time.perf_counter() - started
                rounds = max(1, min(10000, int(20.0 / max(per_round, 1e-6))))
                estimated_total = rounds * batches_per_round
            if validation is not None:
                state.validation_losses.append(_evaluate_loss(train_net, validation, losses, store, xp, dtype, size))
            measured = state.validation_losses[-1] if validation is not None else state.round_losses[-1]
            if measured < state.best_value:
                state.best_value, state.best_round = measured, state.round
                state.best = {paths[k]: v for k, v in _snapshot(store).items()}
            progress = state.progress(size)
            reporter.round(progress, state.examples)
            stop = criterion.should_stop(progress, validation is not None)
            if checkpoints.due("Rounds", state.round):
                checkpoint()
            if callback and interval[0] == "Rounds" and state.round % interval[1] == 0:
                if _call(callback, progress, net, train_net, store) == "StopTraining":
                    reason = "TrainingProgressFunction"
                    break
            if stop:
                reason = "TrainingStoppingCriterion"
                break
            if time_goal is not None and time.perf_counter() - started >= time_goal:
                reason = "TimeGoal"
                break
    except KeyboardInterrupt:
        reason = "UserInterrupt"  # Ctrl-C: stop cleanly, keep the checkpoints, return what was trained
    finally:
        reporter.close()

    final_net = user_net()
    trained_net = final_net
    if validation is not None and state.best is not None:
        by_key = {key: state.best[path] for key, path in paths.items() if path in state.best}
        trained_net = user_net(by_key)
    elapsed = time.perf_counter() - started
    properties = {
        "TrainedNet": trained_net,
        "FinalNet": final_net,
        "RoundLossList": state.round_losses,
        "BatchLossList": state.batch_losses,
        "ValidationLossList": state.validation_losses,
        "RoundLoss": state.round_losses[-1] if state.round_losses else None,
        "ValidationLoss": state.validation_losses[-1] if state.validation_losses else None,
        "BestValidationRound": state.best_round if validation is not None else None,
        "TotalTrainingTime": elapsed,
        "MeanExamplesPerSecond": state.examples / max(elapsed, 1e-9),
        "ReasonTrainingStopped": reason,
        "TotalRounds": state.round,
        "TotalBatches": state.step,
        "BatchSize": size,
        "BatchesPerRound": batches_per_round,
        "ExamplesProcessed": state.examples,
        "TrainingExamples": n_examples,
        "ValidationExamples": 0 if validation is None else len(next(iter(validation.values()))),
        "OptimizationMethod": optimizer.name,
        "InitialLearningRate": optimizer.options["learning_rate"],
        "FinalLearningRate": optimizer.learning_rate(state.step, estimated_total),
        "CheckpointingFiles": list(checkpoints.files),
        "LossPlot": loss_plot(state.round_losses, state.validation_losses, state.batch_losses, batches_per_round),
    }
    reporter.done(properties)
    if prop is None:
        return trained_net
    if prop == "All":
        return NetTrainResults(properties)
    if isinstance(prop, list):
        return [NetTrainResults(properties)[p] for p in prop]
    return NetTrainResults(properties)[prop]


def _train_step(
    net, ctx, batch, losses, optimizer, trainable, rates, step, total, round_number, batch_number, strip=0
) -> float:
    """One batch forward and backward, then the optimiser's update; returns the batch's objective.

    The loss values and whether each gradient is finite travel to the host in one transfer (the
    only synchronisation of a step on a GPU); NaN or Inf in either stops training before any
    array is changed.
    """
    xp = ctx.xp
    with Tape() as tape:
        outputs = net.forward({p: _tensor(v) for p, v in batch.items()}, ctx)
    n = ctx.batch_size
    seeds, values = {}, []
    for port, weight in losses:
        if weight == 0:  # a switched-off loss (say KL weight 0) adds nothing, not even 0 * inf
            continue
        out = outputs[port]
        values.append(weight * out.data.reshape(n, -1).sum(axis=1, dtype=xp.float64).mean())
        if out.requires_grad:
            seeds[out] = xp.full(out.shape, weight / n, dtype=ctx.dtype)
    grads = backward(tape, seeds)
    items = []
    for path, layer, name in trainable:
        tensor = ctx.arrays.get((id(layer), name))
        g = None if tensor is None else grads.get(id(tensor))
        if g is not None:
            items.append((path, tensor.data, g))
    finite = [xp.isfinite(g).all().astype(xp.float64) for _, _, g in items]  # (one pass, cheaper than a sum)
    checks = to_numpy(xp.stack(values + finite))
    value = float(checks[: len(values)].sum())
    if not math.isfinite(value):
        raise TrainingError(
            f"NetTrain: the loss became {value} in round {round_number}, batch {batch_number} "
            f"(loss ports {[p for p, _ in losses]}); the net before this batch is in .last_good_net"
        )
    if not checks[len(values) :].all():
        _check_gradients(items, xp, round_number, batch_number, losses, strip)
    optimizer.update(items, step, total, rates)
    return value


def _check_gradients(items: list, xp: Any, round_number: int, batch_number: int, losses: list, strip: int = 0) -> None:
    """Raise a TrainingError naming the arrays whose gradients hold NaN or ±Inf."""
    bad = [path for path, _, g in items if not bool(xp.isfinite(g).all())]
    if not bad:
        return
    names = ", ".join("/".join(str(part) for part in path[strip:]) for path in bad[:5])
    raise TrainingError(
        f"NetTrain: the gradient of {names}{' and others' if len(bad) > 5 else ''} holds NaN or Inf in round "
        f"{round_number}, batch {batch_number} (loss ports {[p for p, _ in losses]}); the arrays were not "
        "updated and the net before this batch is in .last_good_net"
    )


def _tensor(value):
    from .autograd import Tensor

    return Tensor(value)


def _evaluate_loss(net, columns, losses, store, xp, dtype, size) -> float:
    n = len(next(iter(columns.values())))
    total = 0.0
    for start in range(0, n, size):
        batch = {p: _tensor(xp.asarray(v[start : start + size], dtype=dtype)) for p, v in columns.items()}
        count = len(next(iter(batch.values())).data)
        ctx = Context(
            xp=xp, dtype=dtype, batch_size=count, training=False, rng=xp.random.default_rng(0), arrays=dict(store)
        )
        outputs = net.forward(batch, ctx)
        for port, weight in losses:
            if weight != 0:
                total += weight * float(outputs[port].data.reshape(count, -1).sum(axis=1).sum())
    return total / n


def _rates(net: Layer, multipliers: dict | None) -> dict[tuple, float]:
    """Learning-rate multiplier per array path; 0 freezes (moving statistics are always frozen).

    Keys of ``multipliers`` are layer paths (``"enc"`` or ``("enc", 2)``) or array paths
    (``("enc", "Weights")``); a wrapped training net's leading "net" is implied.
    """
    rates: dict[tuple, float] = {}
    for path, layer, name in iter_arrays(net):
        if name in getattr(layer, "state_arrays", ("MovingMean", "MovingVariance")):
            rates[path] = 0.0
    for spec, rate in (multipliers or {}).items():
        target = spec if isinstance(spec, tuple) else (spec,)
        for path, _, _ in iter_arrays(net):
            if path[: len(target)] == target or path[1 : 1 + len(target)] == target:
                rates[path] = 0.0 if rate is None else float(rate)
    return rates


class _DeviceRandom:
    """The random numbers of random layers while training: each step's generator is made from
    (base seed, step), so a checkpoint only needs the base seed (CuPy's states cannot be saved)."""

    def __init__(self, xp: Any, seed: int | None):
        self.xp = xp
        self.base_seed = int(np.random.SeedSequence(seed).entropy) % 2**63

    def for_step(self, step: int) -> Any:
        return seeded_rng(self.xp, [self.base_seed, step])


@dataclass
class _State:
    """Where training stands: with the arrays, the optimiser and the random states, all a
    checkpoint needs to resume exactly."""

    round: int = 0
    batch: int = 0  # batches done in the current round
    step: int = 0
    examples: int = 0
    order: Any = None  # this round's permutation of the examples
    round_total: float = 0.0
    round_seen: int = 0
    round_losses: list = field(default_factory=list)
    validation_losses: list = field(default_factory=list)
    batch_losses: list = field(default_factory=list)
    best_value: float = math.inf
    best_round: int = 0
    best: dict | None = None  # array path -> values at the best round

    COUNTERS = (
        "round",
        "batch",
        "step",
        "examples",
        "round_total",
        "round_seen",
        "round_losses",
        "validation_losses",
        "batch_losses",
        "best_value",
        "best_round",
    )

    def start_round(self, order: Any) -> None:
        self.round += 1
        self.order = order
        self.round_total, self.round_seen = 0.0, 0

    def finish_batch(self, loss: float, count: int) -> None:
        self.batch += 1
        self.step += 1
        self.examples += count
        self.batch_losses.append(loss)
        self.round_total += loss * count
        self.round_seen += count

    def finish_round(self) -> None:
        self.batch = 0
        self.round_losses.append(self.round_total / max(self.round_seen, 1))

    def progress(self, size: int) -> dict[str, Any]:
        """The keys Wolfram's progress functions receive (the net is added by the caller)."""
        return {
            "Round": self.round,
            "Batch": self.batch,
            "AbsoluteBatch": self.step,
            "BatchSize": size,
            "BatchLoss": self.batch_losses[-1] if self.batch_losses else None,
            "RoundLoss": self.round_losses[-1] if self.round_losses else None,
            "ValidationLoss": self.validation_losses[-1] if self.validation_losses else None,
            "RoundLossList": list(self.round_losses),
            "ValidationLossList": list(self.validation_losses),
            "BatchLossList": list(self.batch_losses),
        }


CHECKPOINT_KIND = "netgraph-training-checkpoint"


class _Checkpoints:
    """Wolfram's TrainingProgressCheckpointing: ("File", path) or ("Directory", dir) [, {"Interval": ...}]."""

    def __init__(self, spec: Any):
        self.files: list[str] = []
        self.kind = None
        if spec is None:
            return
        if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3) or spec[0] not in ("File", "Directory"):
            raise NetError(
                f'NetTrain: training_progress_checkpointing must be ("File", path) or ("Directory", dir), '
                f"optionally with {{'Interval': ('Rounds'|'Batches', n)}}; got {spec!r}"
            )
        self.kind, self.target = spec[0], Path(spec[1])
        unit, every = (spec[2] if len(spec) == 3 else {}).get("Interval", ("Rounds", 1))
        if unit not in ("Rounds", "Batches") or int(every) < 1:
            raise NetError(f"NetTrain: checkpoint interval must be ('Rounds'|'Batches', n >= 1), got {(unit, every)!r}")
        self.unit, self.every = unit, int(every)
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        if self.kind == "Directory":
            self.target.mkdir(parents=True, exist_ok=True)

    def due(self, unit: str, count: int) -> bool:
        return self.kind is not None and unit == self.unit and count % self.every == 0

    def write(
        self,
        net: Layer,
        state: _State,
        optimizer: Any,
        criterion: Any,
        rng: Any,
        device_rng: Any,
        paths: dict,
        prefix: tuple,
        rounds: int | None,
    ) -> None:
        header, arrays = _checkpoint_contents(state, optimizer, criterion, rng, device_rng, prefix, rounds)
        if self.kind == "File":
            path = self.target
        else:
            loss = f"-loss{state.batch_losses[-1]:.5g}" if state.batch_losses else ""
            val = f"-val{state.validation_losses[-1]:.5g}" if state.validation_losses and state.batch == 0 else ""
            path = self.target / (
                f"{self.stamp}-{len(self.files) + 1:05d}-round{state.round}-batch{state.batch}{loss}{val}.npz"
            )
        save(net, path, extra=header, extra_arrays=arrays)
        if str(path) not in self.files:
            self.files.append(str(path))


def _checkpoint_contents(state, optimizer, criterion, rng, device_rng, prefix, rounds) -> tuple[dict, dict]:
    arrays: dict[str, Any] = {"order": np.asarray(state.order if state.order is not None else [], dtype=np.int64)}
    optimizer_keys = []
    for i, (key, slots) in enumerate(optimizer.state.items()):
        optimizer_keys.append([list(key), sorted(slots)])
        for slot, value in slots.items():
            arrays[f"opt{i}/{slot}"] = to_numpy(value)
    best_keys = []
    for i, (path, value) in enumerate((state.best or {}).items()):
        best_keys.append(list(path))
        arrays[f"best{i}"] = value
    header = {
        "kind": CHECKPOINT_KIND,
        "counters": {name: getattr(state, name) for name in _State.COUNTERS},
        "rounds": rounds,
        "prefix": list(prefix),
        "optimizer": {"name": optimizer.name, "keys": optimizer_keys},
        "best": best_keys,
        "criterion": {"best": criterion.best, "waited": criterion.waited},
        "rng": rng.bit_generator.state,
        "device_seed": device_rng.base_seed,
    }
    return header, arrays


def _latest_checkpoint(where: Path) -> Path:
    if where.is_dir():
        found = sorted(where.glob("*.npz"))
        if not found:
            raise NetError(f"NetTrain: resume_from={str(where)!r} holds no checkpoint (*.npz) files")
        return found[-1]
    return where


def _resume(
    where, train_net, prefix, store, grad_keys, optimizer, state, criterion, rng, device_rng, xp, dtype, rounds
):
    """Load a checkpoint into the training run; returns the number of rounds to train."""
    from .autograd import Tensor

    path = _latest_checkpoint(Path(where))
    saved, header, arrays = load_with_extra(path)
    if not isinstance(header, dict) or header.get("kind") != CHECKPOINT_KIND:
        raise NetError(f"NetTrain: {path} is a net file but not a training checkpoint")
    if list(prefix) != header.get("prefix") or header["optimizer"]["name"] != optimizer.name:
        raise NetError(
            f"NetTrain: checkpoint {path} was written by a different training setup "
            f"(losses or method {header['optimizer']['name']!r} differ)"
        )
    saved_arrays = {path_: layer.arrays[name] for path_, layer, name in iter_arrays(saved)}
    for array_path, layer, name in iter_arrays(train_net):
        value = saved_arrays.get(array_path[len(prefix) :])
        if value is None or value.shape != layer.array_shapes().get(name, value.shape):
            raise NetError(f"NetTrain: checkpoint {path} does not fit this net (array {array_path})")
        key = (id(layer), name)
        store[key] = Tensor(xp.asarray(value, dtype=dtype), key in grad_keys)
    for i, (key, slots) in enumerate(header["optimizer"]["keys"]):
        optimizer.state[tuple(key)] = {slot: xp.asarray(arrays[f"opt{i}/{slot}"], dtype=dtype) for slot in slots}
    for name, value in header["counters"].items():
        setattr(state, name, value)
    state.best_value = float(state.best_value)
    state.order = arrays["order"] if state.batch else None
    state.best = {tuple(p): arrays[f"best{i}"] for i, p in enumerate(header["best"])} or None
    criterion.best, criterion.waited = header["criterion"]["best"], header["criterion"]["waited"]
    rng.bit_generator.state = header["rng"]
    if header.get("device_seed") is not None:
        device_rng.base_seed = int(header["device_seed"])
    return rounds if rounds is not None else header.get("rounds")


def _snapshot(store: dict) -> dict:
    return {key: to_numpy(tensor.data).copy() for key, tensor in store.items()}


def _write_back(net: Layer, store: dict, snapshot: dict | None = None) -> Layer:
    values = snapshot if snapshot is not None else {k: to_numpy(t.data) for k, t in store.items()}
    copies = {}
    for _, layer, name in iter_arrays(net):
        if (id(layer), name) in values:
            copies[(id(layer), name)] = np.array(values[(id(layer), name)], dtype=np.float32)
    result = net.copy()
    originals = [(layer, name) for _, layer, name in iter_arrays(net)]
    for (layer, name), (_, clone, clone_name) in zip(originals, iter_arrays(result)):
        if (id(layer), name) in copies:
            clone.arrays[clone_name] = copies[(id(layer), name)]
    return result


def _strip_losses(trained: Layer, original: Layer, train_net: Layer) -> Layer:
    """The user's net (without attached loss layers) carrying the trained arrays."""
    if train_net is original:
        return trained
    return trained.vertices["net"]


# --- progress, callbacks, stopping ----------------------------------------------------------------


class _Reporter:
    """Progress a person can read (Wolfram's TrainingProgressReporting).

    * Automatic: a live tqdm bar per round when stderr is a terminal (batch, loss, validation
      loss, examples/s, the round's ETA and the whole run's), plain lines every few seconds
      otherwise (CI, logs); "ProgressIndicator" and "Print" choose one of the two.
    * None: nothing.
    * ``("File", "log.csv" | "log.jsonl")``: one line per round in a file (and nothing on screen).
    """

    FIELDS = ("Round", "RoundLoss", "ValidationLoss", "AbsoluteBatch", "ExamplesPerSecond", "Seconds")
    MODES = (Automatic, None, "Print", "ProgressIndicator")

    def __init__(self, spec: Any):
        self.log: Path | None = None
        self.bar: Any = None
        self.mode = "lines"
        if isinstance(spec, tuple) and len(spec) == 2 and spec[0] == "File":
            self.log, self.mode = Path(spec[1]), "silent"
            if self.log.suffix not in (".csv", ".json", ".jsonl"):
                raise NetError(f"NetTrain: a progress log must end in .csv, .json or .jsonl, got {self.log}")
            self.log.parent.mkdir(parents=True, exist_ok=True)
            if self.log.suffix == ".csv":
                self.log.write_text(",".join(self.FIELDS) + "\n")
            else:
                self.log.write_text("")
        elif spec is None:
            self.mode = "silent"
        elif not any(spec is mode or spec == mode for mode in self.MODES):
            raise NetError(
                'NetTrain: training_progress_reporting must be Automatic, None, "Print", "ProgressIndicator" '
                f'or ("File", "log.csv"|"log.jsonl"), got {spec!r}'
            )
        elif spec == "ProgressIndicator" or (spec is Automatic and _is_terminal(sys.stderr)):
            self.mode = "bar" if _tqdm() is not None else "lines"
        self.started = self.last = time.perf_counter()
        self.every = 2.0
        self.total_batches: int | None = None

    def batch(self, round_number: int, batch: int, batches: int, loss: float, rate: float, step: int) -> None:
        if self.mode == "bar":
            if self.bar is None:
                self.bar = _tqdm()(
                    total=batches, desc=f"round {round_number}", unit="batch", file=sys.stderr, dynamic_ncols=True
                )
                self.bar.update(batch - 1)  # a resumed round starts part-way
            self.bar.update(1)
            postfix = {"loss": f"{loss:.4g}", "examples/s": f"{rate:.0f}"}
            if self.total_batches:
                left = (self.total_batches - step) * (time.perf_counter() - self.started) / max(step, 1)
                postfix["run ETA"] = _clock(left)
            self.bar.set_postfix(postfix, refresh=False)
            return
        now = time.perf_counter()
        if self.mode != "lines" or now - self.last < self.every:
            return
        self.last = now
        print(f"round {round_number} batch {batch}/{batches}  loss {loss:.5g}  {rate:.0f} examples/s", file=sys.stderr)

    def round(self, progress: dict, examples: int) -> None:
        seconds = time.perf_counter() - self.started
        if self.log is not None:
            row = {
                "Round": progress["Round"],
                "RoundLoss": progress["RoundLoss"],
                "ValidationLoss": progress["ValidationLoss"],
                "AbsoluteBatch": progress["AbsoluteBatch"],
                "ExamplesPerSecond": examples / max(seconds, 1e-9),
                "Seconds": seconds,
            }
            with self.log.open("a") as stream:
                if self.log.suffix == ".csv":
                    stream.write(",".join("" if row[k] is None else repr(row[k]) for k in self.FIELDS) + "\n")
                else:
                    stream.write(json.dumps(row) + "\n")
        val = progress["ValidationLoss"]
        if self.mode == "bar" and self.bar is not None:
            postfix = {"loss": f"{progress['RoundLoss']:.4g}"}
            if val is not None:
                postfix["validation"] = f"{val:.4g}"
            postfix["examples/s"] = f"{examples / max(seconds, 1e-9):.0f}"
            self.bar.set_postfix(postfix)
            self.close()
        elif self.mode == "lines":
            extra = f"  validation loss {val:.5g}" if val is not None else ""
            print(f"round {progress['Round']}: loss {progress['RoundLoss']:.5g}{extra}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def done(self, properties: dict) -> None:
        self.close()
        if self.mode != "silent":
            print(
                f"training stopped ({properties['ReasonTrainingStopped']}) after {properties['TotalRounds']} rounds, "
                f"{properties['TotalTrainingTime']:.1f} s",
                file=sys.stderr,
            )


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _tqdm() -> Any:
    """tqdm's progress bar class, or None where tqdm is not installed (plain lines are printed then)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _callback(spec: Any) -> tuple[Callable | None, tuple[str, int]]:
    if spec is None:
        return None, ("Rounds", 1)
    if isinstance(spec, tuple):
        fn, options = spec
        unit, every = options.get("Interval", ("Rounds", 1))
        return fn, (unit, int(every))
    return spec, ("Rounds", 1)


def _call(callback: Callable, progress: dict, net: Layer, train_net: Layer, store: dict) -> Any:
    """Call the user's progress function with Wolfram's keys and the current net."""
    return callback({**progress, "Net": _strip_losses(_write_back(train_net, store), net, train_net)})


class _StoppingCriterion:
    """Wolfram's TrainingStoppingCriterion: patience on the (validation) loss, or a function."""

    def __init__(self, spec: Any):
        self.spec = spec
        self.best = math.inf
        self.waited = 0
        if spec in ("Loss", Automatic):
            spec = {"Criterion": "Loss"}
        if isinstance(spec, dict):
            self.patience = int(spec.get("Patience", 0))
            self.initial = int(spec.get("InitialPatience", 0))
            kind, amount = spec.get("Improvement", ("AbsoluteChange", 0))
            self.kind, self.amount = kind, float(amount)
        self.spec = spec

    def should_stop(self, progress: dict, has_validation: bool) -> bool:
        if self.spec is None:
            return False
        if callable(self.spec):
            return bool(self.spec(progress))
        if progress["Round"] <= self.initial:
            return False
        value = progress["ValidationLoss"] if has_validation else progress["RoundLoss"]
        needed = self.amount if self.kind == "AbsoluteChange" else self.amount * abs(self.best)
        if value < self.best - needed or (self.best == math.inf):
            self.best = min(self.best, value)
            self.waited = 0
            return False
        self.best = min(self.best, value)
        self.waited += 1
        return self.waited > self.patience
