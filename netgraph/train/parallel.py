"""**Several processes** (``mpiexec -n N``, see :mod:`netgraph.distributed`): the loop is the same on every
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd import Tape, Tensor, backward
from ..backend import to_numpy
from ..distributed import mark_together
from ..paths import iter_arrays
from .data import Columns
from .results import TrainingError
from .state import ArrayKey, ArrayPath, TrainingRun
from .step import Gradients, validation_total


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
