"""A command-line helper: a training length given as rounds or as batches, in the form NetTrain takes it."""

from __future__ import annotations

import math
from typing import NamedTuple


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
