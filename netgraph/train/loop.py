"""The training loop: rounds of batches, one training step per batch, and the end of each round
(validation, the best arrays, progress, checkpoints and the stopping rules).

One training step: a batch goes through the training net (the net with its loss layers attached), the
objective Σ_i r_i · mean_over_batch(loss_i) is differentiated by the autograd engine, the loss values and
gradients are checked (:func:`reduce_and_check`), and the optimiser updates the arrays in place on the
device.

No net with NaN or ±Inf in its arrays leaves the loop unannounced. The arrays are checked (one pass over
them, one transfer) at the end of every round, before every checkpoint and every call of the
progress function, and when training stops; when a batch's loss or gradient is not finite, the arrays are
checked too, to tell whether the update before it was the cause. A non-finite validation loss stops
training as well. Each time the arrays pass, a host copy of them is kept (:attr:`TrainingLoop.good`): a
TrainingError carries it as ``last_good_net`` when the arrays themselves go bad.

**Several processes** (``mpiexec -n N``, see :mod:`netgraph.distributed`): the loop is the same on every
rank. Each step (:func:`train_step_together`) cuts the global batch into N contiguous shares; each rank
takes the forward and backward pass of its own, and one allreduce of one buffer sums the gradients, the
loss values, the examples counted and a flag for a rank's exception, and averages the moving statistics.
The layout of that buffer (working precision; P numbers of gradients, k trainable arrays, L weighted
losses, S numbers of moving statistics)::

    [ gradients (P) | has a gradient (k) | losses (L) | examples | failed | ranks with examples | stats (S) ]

Every rank then checks the same numbers and takes the same decision, so the update, and the arrays, are
the same everywhere. What depends on time (the Automatic number of rounds, a checkpoint interval in
seconds, the time goal) and what only rank 0 does (checkpoints, the progress function, the stopping
criterion) are decided on rank 0 and sent to the others, with any exception it met (:meth:`_on_root`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Tape, Tensor, backward
from ..backend import to_numpy
from ..distributed import describe, mark_together
from ..layer import Context
from ..paths import iter_arrays
from .checkpoints import SECONDS, Checkpoints
from .data import Columns
from .progress import ProgressFunction, Reporter
from .results import TrainingError
from .state import ArrayKey, ArrayPath, TrainingRun

Gradients = list[tuple[ArrayPath, Any, Any]]  # (array path, the array, its gradient), on the device


@dataclass
class TrainingLoop:
    """Trains ``run`` round by round until one of Wolfram's reasons to stop, reporting as it goes."""

    run: TrainingRun
    reporter: Reporter
    checkpoints: Checkpoints
    progress_function: ProgressFunction
    time_goal: float | None  # seconds
    good: dict[ArrayKey, np.ndarray] = field(default_factory=dict)  # host copies of the arrays last found finite
    good_when: str = "the net before training"  # which net ``good`` holds, for messages

    def train(self) -> str:
        """Train until a stop; returns the ReasonTrainingStopped. Ctrl-C stops cleanly.

        Raises a TrainingError when a loss, a gradient, the arrays or the validation loss hold NaN or ±Inf.
        """
        state = self.run.state
        if self.run.world.size > 1:
            start_together(self.run)
        if state.step:  # resumed from a checkpoint
            self._verify("in the checkpoint resumed from")
        self._keep_good("the net before training" if not state.step else f"the net resumed at round {state.round}")
        try:
            reason = self._rounds()
        finally:
            self.reporter.close()
        self._verify(f"when training stopped ({reason}, round {state.round}, batch {state.batch})")
        return reason

    def _rounds(self) -> str:
        run, state = self.run, self.run.state
        try:
            while state.batch > 0 or run.rounds is None or state.round < run.rounds:
                if state.batch == 0:  # else a resumed round goes on
                    state.start_round(run.data.round_order())
                if not self._train_round():
                    return "TrainingProgressFunction"
                reason = self._end_round()
                if reason is not None:
                    return reason
            return "MaxTrainingRounds"
        except KeyboardInterrupt:
            if run.world.size > 1:  # the ranks stop at different points: the job ends (resume from a checkpoint)
                raise
            return "UserInterrupt"  # keep the checkpoints and return what was trained

    def _train_round(self) -> bool:
        """The round's remaining batches; False when the progress function stopped training."""
        run, state = self.run, self.run.state
        while state.batch < run.data.batches_per_round:
            self._train_batch()
            checkpoint = self._checkpoint_due("Batches", state.step)
            call = self.progress_function.due("Batches", state.step)
            if checkpoint or call:  # neither sees arrays that are not finite
                when = f"round {state.round}, batch {state.batch}"
                self._verify(f"after {when}")
                self._keep_good(f"the net after {when}")
            if checkpoint:
                self._on_root(lambda: self.checkpoints.write(run))
            if call:
                progress = state.progress(run.data.batch_size)
                if self._on_root(lambda: self.progress_function.stops(progress, run.user_net())):  # noqa: B023
                    return False
        return True

    def _checkpoint_due(self, unit: str, count: int) -> bool:
        """Whether a checkpoint falls due; rank 0 decides when that depends on time."""
        due = self.checkpoints.due(unit, count)
        timed = self.checkpoints.unit in SECONDS or self.checkpoints.minimum > 0
        if self.run.world.size > 1 and self.checkpoints.kind is not None and timed:
            return bool(self.run.world.broadcast_object(due))
        return due

    def _on_root(self, work: Callable[[], Any]) -> Any:
        """``work()`` (writing a checkpoint, calling the progress function, a decision): in one process just
        run; with several, run on rank 0 only, and its result, or the exception it raised, sent to every rank
        (rank 0 raises its own; the others a TrainingError naming it)."""
        world = self.run.world
        if world.size == 1:
            return work()
        result, error = None, None
        if world.is_root:
            try:
                result = work()
            except Exception as err:  # noqa: BLE001 - handed to every rank below
                error = err
        result, text = world.broadcast_object((result, None if error is None else describe(error)))
        if error is not None:
            raise mark_together(error)
        if text is not None:
            raise mark_together(TrainingError(f"NetTrain: rank 0 (of {world.size}) failed: {text}"))
        return result

    def _train_batch(self) -> None:
        run, state = self.run, self.run.state
        try:
            if run.world.size > 1:
                loss, count = train_step_together(
                    run,
                    lambda: run.data.batch(state.order, state.round, state.batch + 1, state.step + 1),
                    run.data.planned_count(state.batch + 1),
                )
            else:
                examples = run.data.batch(state.order, state.round, state.batch + 1, state.step + 1)
                count = len(next(iter(examples.values())))
                loss = train_step(run, examples)
        except TrainingError as err:  # the arrays are unchanged; were they already bad before this batch?
            where = f"round {state.round}, batch {state.batch}" if state.batch else f"batch {state.step}"
            self._verify(f"after the update of {where} (the next batch's loss or gradient was not finite)", err)
            err.last_good_net = run.user_net()
            raise
        state.finish_batch(loss, count)
        rate = state.examples / max(time.perf_counter() - run.started, 1e-9)
        batches = run.data.batches_per_round
        self.reporter.batch(state.round, state.batch, batches, loss, rate, state.step, run.total_batches)

    def _end_round(self) -> str | None:
        """Close the round: its loss, the validation loss, the best arrays, the report, a checkpoint,
        the progress function; returns the reason to stop, or None to go on."""
        run, state = self.run, self.run.state
        state.finish_round()
        if run.rounds is None and state.round == 1:  # Automatic: about 20 s of training
            per_round = time.perf_counter() - run.started
            run.rounds = self._on_root(lambda: max(1, min(10000, int(20.0 / max(per_round, 1e-6)))))
        self._verify(f"at the end of round {state.round}")
        if run.data.validation is not None:
            if run.world.size > 1:
                value = validation_loss_together(run)
            else:
                value = validation_loss(run, run.data.validation)
            if not math.isfinite(value):
                raise mark_together(
                    TrainingError(
                        f"NetTrain: the validation loss is {value} after round {state.round} (loss ports "
                        f"{[p for p, _ in run.losses]}), although the arrays are finite: the net's outputs on the "
                        f"validation set overflow or leave the loss's domain; {self.good_when}, the last with "
                        "finite arrays and losses, is in .last_good_net",
                        self._good_net(),
                    )
                )
            state.validation_losses.append(value)
        self._keep_good(f"the net after round {state.round}")
        measured = state.validation_losses[-1] if run.data.validation is not None else state.round_losses[-1]
        if math.isfinite(measured):  # a NaN never counts as the best
            run.keep_if_best(measured)
        progress = state.progress(run.data.batch_size)
        self.reporter.round(progress, state.examples)
        stop = self._on_root(lambda: run.criterion.should_stop(progress, run.data.validation is not None))
        if self._checkpoint_due("Rounds", state.round):
            self._on_root(lambda: self.checkpoints.write(run))
        if self.progress_function.due("Rounds", state.round):
            if self._on_root(lambda: self.progress_function.stops(progress, run.user_net())):
                return "TrainingProgressFunction"
        if stop:
            return "TrainingStoppingCriterion"
        if self.time_goal is not None and self._on_root(lambda: time.perf_counter() - run.started >= self.time_goal):
            return "TimeGoal"
        return None

    def _verify(self, where: str, cause: TrainingError | None = None) -> None:
        """Raise a TrainingError, with the last good net, when an array holds NaN or ±Inf ``where``."""
        bad = non_finite_arrays(self.run)
        if not bad:
            return
        run = self.run
        prefix = len(run.prefix)
        names = ", ".join("/".join(str(part) for part in path[prefix:]) for path in bad[:5])
        rate = run.optimizer.options["learning_rate"]
        raise mark_together(  # the arrays are the same on every rank, and so is this error
            TrainingError(
                f"NetTrain: the arrays {names}{' and others' if len(bad) > 5 else ''} hold NaN or Inf {where}: the "
                f"updates diverged ({run.optimizer.name}, learning rate {rate:.3g}; a smaller learning rate or "
                f"gradient clipping may help); {self.good_when}, the last with finite arrays, is in .last_good_net",
                self._good_net(),
            )
        ) from cause

    def _keep_good(self, when: str) -> None:
        """Keep a host copy of the arrays (just checked to be finite) as the last good net."""
        run = self.run
        on_host = run.xp is np  # to_numpy gives the array itself there, and the updates change it in place
        self.good = {  # the arrays not yet on the device are the net's own (updated in place on the CPU)
            (id(layer), name): layer.arrays[name].copy()
            for _, layer, name in iter_arrays(run.train_net)
            if layer.arrays[name] is not None and (id(layer), name) not in run.store
        }
        self.good.update(
            {key: to_numpy(t.data).copy() if on_host else to_numpy(t.data) for key, t in run.store.items()}
        )
        self.good_when = when

    def _good_net(self) -> Any:
        return self.run.user_net(self.good)


def non_finite_arrays(run: TrainingRun) -> list[ArrayPath]:
    """The paths of the arrays holding NaN or ±Inf (usually none): one ``isfinite(...).all()`` per array on
    the device, the flags brought to the host in one transfer."""
    xp, store = run.xp, run.store
    if not store:
        return []
    flags = to_numpy(xp.stack([xp.isfinite(t.data).all() for t in store.values()]))
    return [run.paths[key] for key, ok in zip(store, flags) if not ok]


def train_step(run: TrainingRun, examples: Columns) -> float:
    """One batch forward and backward, then the optimiser's update; returns the batch's objective."""
    xp, state = run.xp, run.state
    ctx = run.step_context(len(next(iter(examples.values()))))
    with Tape() as tape:
        outputs = run.train_net.forward({p: Tensor(xp.asarray(v, dtype=run.dtype)) for p, v in examples.items()}, ctx)
    n = ctx.batch_size
    seeds, values = {}, []
    for port, weight in run.losses:
        if weight == 0:  # a switched-off loss (say KL weight 0) adds nothing, not even 0 * inf
            continue
        out = outputs[port]
        values.append(weight * out.data.reshape(n, -1).sum(axis=1, dtype=xp.float64).mean())
        if out.requires_grad:
            seeds[out] = xp.full(out.shape, weight / n, dtype=ctx.dtype)
    grads = backward(tape, seeds)
    gradients: Gradients = []
    for path, layer, name in run.trainable:
        tensor = run.store.get((id(layer), name))
        g = None if tensor is None else grads.get(id(tensor))
        if g is not None:
            gradients.append((path, tensor.data, g))
    value = reduce_and_check(run, values, gradients)
    run.optimizer.update(gradients, state.step + 1, run.estimated_total, run.rates)
    return value


def reduce_and_check(run: TrainingRun, values: list, gradients: Gradients) -> float:
    """Between the gradients and the optimiser's update: the batch's objective, checked with the gradients.

    ``values`` are the weighted mean losses of the batch (device scalars). Today, in one process, they and
    a finiteness flag per gradient travel to the host in one transfer (the only synchronisation of a step
    on a GPU); NaN or Inf in either raises a TrainingError before any array is changed.

    Training across several processes belongs here: the gradients are reduced (averaged) across the
    processes in place, and the loss values and finiteness flags are packed into that same reduction, so
    that every process sees the same objective and stops on the same bad numbers.
    """
    xp = run.xp
    finite = [xp.isfinite(g).all().astype(xp.float64) for _, _, g in gradients]  # (one pass, cheaper than a sum)
    checks = to_numpy(xp.stack(values + finite))
    value = float(checks[: len(values)].sum())
    if not math.isfinite(value):
        raise TrainingError(
            f"NetTrain: the loss became {value} in round {run.state.round}, batch {run.state.batch + 1} "
            f"(loss ports {[p for p, _ in run.losses]}); the net before this batch is in .last_good_net"
        )
    if not checks[len(values) :].all():
        _raise_for_bad_gradients(run, gradients)
    return value


def _raise_for_bad_gradients(run: TrainingRun, gradients: Gradients) -> None:
    """Raise a TrainingError naming the arrays whose gradients hold NaN or ±Inf."""
    bad = [path for path, _, g in gradients if not bool(run.xp.isfinite(g).all())]
    if not bad:
        return
    names = ", ".join("/".join(str(part) for part in path[len(run.prefix) :]) for path in bad[:5])
    raise TrainingError(
        f"NetTrain: the gradient of {names}{' and others' if len(bad) > 5 else ''} holds NaN or Inf in round "
        f"{run.state.round}, batch {run.state.batch + 1} (loss ports {[p for p, _ in run.losses]}); the arrays "
        "were not updated and the net before this batch is in .last_good_net"
    )


def validation_loss(run: TrainingRun, columns: Columns) -> float:
    """The objective over ``columns`` (the validation set), in batches, with the arrays as they are."""
    return validation_total(run, columns) / len(next(iter(columns.values())))


def validation_total(run: TrainingRun, columns: Columns) -> float:
    """The objective summed (not averaged) over the examples of ``columns``, in batches."""
    xp, dtype, size = run.xp, run.dtype, run.data.batch_size
    n = len(next(iter(columns.values())))
    total = 0.0
    for start in range(0, n, size):
        batch = {p: Tensor(xp.asarray(v[start : start + size], dtype=dtype)) for p, v in columns.items()}
        count = len(next(iter(batch.values())).data)
        ctx = Context(
            xp=xp, dtype=dtype, batch_size=count, training=False, rng=xp.random.default_rng(0), arrays=dict(run.store)
        )
        outputs = run.train_net.forward(batch, ctx)
        for port, weight in run.losses:
            if weight != 0:
                total += weight * float(outputs[port].data.reshape(count, -1).sum(axis=1).sum())
    return total


# --- several processes ----------------------------------------------------------------------------------


def start_together(run: TrainingRun) -> None:
    """Before the first step (of a run or of a resumed one): every rank takes rank 0's arrays, optimiser
    state, counters, order of examples and random states, so that all start from the same point."""
    world, xp = run.world, run.xp
    run.fill_store()
    keys = [(id(layer), name) for _, layer, name in iter_arrays(run.train_net) if (id(layer), name) in run.store]
    slots = world.broadcast_object(
        [(key, slot, tuple(value.shape)) for key, kept in run.optimizer.state.items() for slot, value in kept.items()]
    )
    if not world.is_root:
        run.optimizer.state = {}
        for key, slot, shape in slots:
            run.optimizer.state.setdefault(key, {})[slot] = xp.zeros(shape, dtype=run.dtype)
    parts = [run.store[key].data for key in keys] + [run.optimizer.state[key][slot] for key, slot, _ in slots]
    buffer = xp.concatenate([xp.asarray(part, dtype=run.dtype).reshape(-1) for part in parts])
    world.broadcast(buffer)
    offset = 0
    for part in parts:
        part[...] = buffer[offset : offset + part.size].reshape(part.shape)
        offset += part.size
    shared = world.broadcast_object(
        (
            run.state,
            run.data.rng.bit_generator.state,
            run.device_rng.base_seed,
            run.rounds,
            run.criterion.best,
            run.criterion.waited,
        )
    )
    if not world.is_root:
        run.state, run.data.rng.bit_generator.state, run.device_rng.base_seed, run.rounds = shared[:4]
        run.criterion.best, run.criterion.waited = shared[4:]


@dataclass
class StepBuffer:
    """Where each number of a step sits in the one buffer that the ranks sum (see the module docstring)."""

    buffer: Any
    gradients: list[tuple[ArrayPath, ArrayKey, int, int, tuple]]  # (path, key, start, stop, shape)
    losses: list[tuple[str, float]]  # the loss ports with a nonzero weight
    stats: list[tuple[ArrayKey, int, int]]  # moving statistics: (key, start, stop)
    has: int  # where the "has a gradient" flags start; the loss values, the counts and the stats follow

    @classmethod
    def of(cls, run: TrainingRun) -> StepBuffer:
        offset, gradients = 0, []
        for path, layer, name in run.trainable:
            key = (id(layer), name)
            if key in run.store:
                size = run.store[key].data.size
                gradients.append((path, key, offset, offset + size, tuple(run.store[key].data.shape)))
                offset += size
        losses = [(port, weight) for port, weight in run.losses if weight != 0]
        has = offset
        offset += len(gradients) + len(losses) + 3
        stats = []
        for _, layer, name in iter_arrays(run.train_net):
            key = (id(layer), name)
            if name in getattr(layer, "state_arrays", ()) and key in run.store and key not in run.grad_keys:
                stats.append((key, offset, offset + run.store[key].data.size))
                offset += run.store[key].data.size
        return cls(run.xp.zeros(offset, dtype=run.dtype), gradients, losses, stats, has)


def train_step_together(run: TrainingRun, fetch: Callable[[], Columns], planned: int) -> tuple[float, int]:
    """One step of several processes: this rank's share of the batch (``fetch()``) forward and backward, one
    allreduce, the same checks and the same update on every rank; returns (the batch's objective, its examples).

    ``planned`` is the batch's number of examples over all ranks; each rank's loss values and gradients are
    already divided by it, so that the sum is the batch's mean, weighted exactly by global counts (a
    generator's batch of another size is scaled to its true count after the sum).
    """
    world, xp, state = run.world, run.xp, run.state
    if run.step_buffer is None:
        run.step_buffer = StepBuffer.of(run)
    layout = run.step_buffer
    buffer, has, n_losses = layout.buffer, layout.has, len(layout.losses)
    error: BaseException | None = None
    values: list = []
    grads: dict = {}
    count = 0
    try:
        examples = fetch()
        count = len(next(iter(examples.values())))
        if count:
            values, grads = _forward_backward(run, examples, planned, layout.losses)
    except Exception as err:  # noqa: BLE001 - every rank raises it after the sum (raise_together)
        error, values, grads, count = err, [], {}, 0
    flags = np.zeros(len(layout.gradients) + n_losses + 3, dtype=run.dtype)
    for i, (_, key, start, stop, _) in enumerate(layout.gradients):
        g = grads.get(key)
        if g is None:
            buffer[start:stop] = 0
        else:
            buffer[start:stop] = g.reshape(-1)
            flags[i] = 1
    contributing = 1 if count and error is None else 0
    flags[-3:] = (count, 1 if error is not None else 0, contributing)
    tail = has + len(layout.gradients)
    buffer[has : tail + n_losses + 3] = xp.asarray(flags)
    if values:
        buffer[tail : tail + n_losses] = xp.stack(values).astype(run.dtype)
    for key, start, stop in layout.stats:
        if contributing:
            buffer[start:stop] = run.store[key].data.reshape(-1)
        else:
            buffer[start:stop] = 0
    world.allreduce_sum(buffer)
    finite = xp.isfinite(buffer[:has]).all().reshape(1).astype(run.dtype)
    checks = to_numpy(xp.concatenate([finite, buffer[has : tail + n_losses + 3]]))  # one transfer
    summed = checks[1:].astype(np.float64)
    present, losses = summed[: len(layout.gradients)], summed[len(layout.gradients) : len(layout.gradients) + n_losses]
    examples_seen, failed, ranks_with_examples = summed[-3:]
    where = f"round {state.round}, batch {state.batch + 1}"
    if failed:
        world.raise_together(error, lambda summary: TrainingError(f"NetTrain: {summary} (in {where})"))
    scale = planned / examples_seen if examples_seen and examples_seen != planned else 1.0
    value = float(losses.sum()) * scale
    if not math.isfinite(value) or not checks[0]:
        _raise_together_for_bad_numbers(run, values, grads, layout, where)
    if scale != 1.0:
        buffer[:has] *= scale
    for key, start, stop in layout.stats:
        tensor = run.store[key]
        tensor.data[...] = (buffer[start:stop] / ranks_with_examples).reshape(tensor.data.shape)
    gradients: Gradients = [
        (path, run.store[key].data, buffer[start:stop].reshape(shape))
        for (path, key, start, stop, shape), has_one in zip(layout.gradients, present)
        if has_one
    ]
    run.optimizer.update(gradients, state.step + 1, run.estimated_total, run.rates)
    return value, int(examples_seen)


def _forward_backward(run: TrainingRun, examples: Columns, planned: int, losses: list) -> tuple[list, dict]:
    """This rank's share forward and backward: the weighted loss sums divided by ``planned`` (device scalars),
    and the gradients by array key."""
    xp = run.xp
    n = len(next(iter(examples.values())))
    ctx = run.step_context(n)
    with Tape() as tape:
        outputs = run.train_net.forward({p: Tensor(xp.asarray(v, dtype=run.dtype)) for p, v in examples.items()}, ctx)
    seeds, values = {}, []
    for port, weight in losses:
        out = outputs[port]
        values.append(weight * out.data.reshape(n, -1).sum(axis=1, dtype=xp.float64).sum() / planned)
        if out.requires_grad:
            seeds[out] = xp.full(out.shape, weight / planned, dtype=ctx.dtype)
    grads = backward(tape, seeds)
    found = {}
    for _, layer, name in run.trainable:
        tensor = run.store.get((id(layer), name))
        g = None if tensor is None else grads.get(id(tensor))
        if g is not None:
            found[(id(layer), name)] = g
    return values, found


def _raise_together_for_bad_numbers(run: TrainingRun, values: list, grads: dict, layout: StepBuffer, where: str):
    """The summed loss or gradients are not finite: every rank tells which of its own numbers were, and every
    rank raises the same TrainingError naming the ranks."""
    world, xp = run.world, run.xp
    local_values = to_numpy(xp.stack(values)) if values else np.zeros(0)
    loss_bad = bool(len(local_values)) and not np.isfinite(local_values).all()
    bad = [path for path, key, *_ in layout.gradients if key in grads and not bool(xp.isfinite(grads[key]).all())]
    names = ", ".join("/".join(str(part) for part in path[len(run.prefix) :]) for path in bad[:5])
    reports = world.allgather_object((float(local_values.sum()) if loss_bad else None, names or None))
    ports = [p for p, _ in layout.losses]
    of = f"(of {world.size})"
    losing = [(rank, value) for rank, (value, _) in enumerate(reports) if value is not None]
    grading = [(rank, text) for rank, (_, text) in enumerate(reports) if text is not None]
    if losing:
        ranks = ", ".join(str(rank) for rank, _ in losing)
        message = (
            f"NetTrain: the loss became {losing[0][1]} in {where} on rank{'s' if len(losing) > 1 else ''} {ranks} "
            f"{of} (loss ports {ports}); the net before this batch is in .last_good_net"
        )
    elif grading:
        ranks = ", ".join(str(rank) for rank, _ in grading)
        message = (
            f"NetTrain: the gradient of {grading[0][1]} holds NaN or Inf in {where} on rank"
            f"{'s' if len(grading) > 1 else ''} {ranks} {of} (loss ports {ports}); the arrays were not updated and "
            "the net before this batch is in .last_good_net"
        )
    else:
        message = (
            f"NetTrain: the loss or the gradients summed over the {world.size} ranks overflowed in {where} (loss "
            f"ports {ports}); the arrays were not updated and the net before this batch is in .last_good_net"
        )
    raise mark_together(TrainingError(message))


def validation_loss_together(run: TrainingRun) -> float:
    """The validation loss, each rank taking its contiguous share of the validation set; the sums (and a
    flag for a rank's exception) are added over the ranks."""
    world, error, total = run.world, None, 0.0
    part = run.data.validation_share()
    try:
        if part is not None and len(next(iter(part.values()))):
            total = validation_total(run, part)
    except Exception as err:  # noqa: BLE001 - every rank raises it (raise_together)
        error = err
    sums = world.allreduce_sum(np.array([total, 0.0 if error is None else 1.0]))
    if sums[1]:
        world.raise_together(error, lambda summary: TrainingError(f"NetTrain: {summary} (in the validation loss)"))
    return float(sums[0]) / run.data.validation_examples
