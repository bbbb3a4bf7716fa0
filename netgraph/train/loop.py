"""The training loop: rounds of batches, one training step per batch, and the end of each round
(validation, the best arrays, progress, checkpoints and the stopping rules).

No net with NaN or ±Inf in its arrays leaves the loop unannounced. The arrays are checked (one pass over
them, one transfer) at the end of every round, before every checkpoint and every call of the
progress function, and when training stops; when a batch's loss or gradient is not finite, the arrays are
checked too, to tell whether the update before it was the cause. A non-finite validation loss stops
training as well. Each time the arrays pass, a host copy of them is kept (:attr:`TrainingLoop.good`): a
TrainingError carries it as ``last_good_net`` when the arrays themselves go bad.

The steps themselves are :mod:`netgraph.train.step`'s (one process) and :mod:`netgraph.train.parallel`'s
(several processes, ``mpiexec -n N``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..distributed import describe, mark_together
from ..paths import iter_arrays
from .checkpoints import SECONDS, Checkpoints
from .parallel import start_together, train_step_together, validation_loss_together
from .progress import ProgressFunction, Reporter
from .results import TrainingError
from .state import ArrayKey, TrainingRun
from .step import non_finite_arrays, train_step, validation_loss


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
