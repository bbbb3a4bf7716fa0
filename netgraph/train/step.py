"""One training step in one process, and the validation loss.

One training step: a batch goes through the training net (the net with its loss layers attached), the
objective Σ_i r_i · mean_over_batch(loss_i) is differentiated by the autograd engine, the loss values and
gradients are checked (:func:`reduce_and_check`), and the optimiser updates the arrays in place on the
device.
"""

from __future__ import annotations

import math
from typing import Any

from ..autograd import Tape, Tensor, backward
from ..backend import to_numpy
from ..layer import Context
from .data import Columns
from .results import TrainingError
from .state import ArrayPath, TrainingRun

Gradients = list[tuple[ArrayPath, Any, Any]]  # (array path, the array, its gradient), on the device


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
