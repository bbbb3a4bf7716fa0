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
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Tape, Tensor, backward
from ..backend import to_numpy
from ..layer import Context
from ..paths import iter_arrays
from .checkpoints import Checkpoints
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
            return "UserInterrupt"  # keep the checkpoints and return what was trained

    def _train_round(self) -> bool:
        """The round's remaining batches; False when the progress function stopped training."""
        run, state = self.run, self.run.state
        while state.batch < run.data.batches_per_round:
            self._train_batch()
            checkpoint = self.checkpoints.due("Batches", state.step)
            call = self.progress_function.due("Batches", state.step)
            if checkpoint or call:  # neither sees arrays that are not finite
                when = f"round {state.round}, batch {state.batch}"
                self._verify(f"after {when}")
                self._keep_good(f"the net after {when}")
            if checkpoint:
                self.checkpoints.write(run)
            if call:
                if self.progress_function.stops(state.progress(run.data.batch_size), run.user_net()):
                    return False
        return True

    def _train_batch(self) -> None:
        run, state = self.run, self.run.state
        examples = run.data.batch(state.order, state.round, state.batch + 1, state.step + 1)
        count = len(next(iter(examples.values())))
        try:
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
            run.rounds = max(1, min(10000, int(20.0 / max(per_round, 1e-6))))
        self._verify(f"at the end of round {state.round}")
        if run.data.validation is not None:
            value = validation_loss(run, run.data.validation)
            if not math.isfinite(value):
                raise TrainingError(
                    f"NetTrain: the validation loss is {value} after round {state.round} (loss ports "
                    f"{[p for p, _ in run.losses]}), although the arrays are finite: the net's outputs on the "
                    f"validation set overflow or leave the loss's domain; {self.good_when}, the last with finite "
                    "arrays and losses, is in .last_good_net",
                    self._good_net(),
                )
            state.validation_losses.append(value)
        self._keep_good(f"the net after round {state.round}")
        measured = state.validation_losses[-1] if run.data.validation is not None else state.round_losses[-1]
        if math.isfinite(measured):  # a NaN never counts as the best
            run.keep_if_best(measured)
        progress = state.progress(run.data.batch_size)
        self.reporter.round(progress, state.examples)
        stop = run.criterion.should_stop(progress, run.data.validation is not None)
        if self.checkpoints.due("Rounds", state.round):
            self.checkpoints.write(run)
        if self.progress_function.due("Rounds", state.round):
            if self.progress_function.stops(progress, run.user_net()):
                return "TrainingProgressFunction"
        if stop:
            return "TrainingStoppingCriterion"
        if self.time_goal is not None and time.perf_counter() - run.started >= self.time_goal:
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
        raise TrainingError(
            f"NetTrain: the arrays {names}{' and others' if len(bad) > 5 else ''} hold NaN or Inf {where}: the "
            f"updates diverged ({run.optimizer.name}, learning rate {rate:.3g}; a smaller learning rate or "
            f"gradient clipping may help); {self.good_when}, the last with finite arrays, is in .last_good_net",
            self._good_net(),
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
    return total / n
