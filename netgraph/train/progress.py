"""Progress while training: the reporter a person reads (Wolfram's TrainingProgressReporting), the
user's progress function (TrainingProgressFunction) and the stopping rules (TrainingStoppingCriterion).

Example:
    >>> criterion = StoppingCriterion({"Criterion": "Loss", "Patience": 1})
    >>> [criterion.should_stop({"Round": r, "RoundLoss": loss}, has_validation=False) for r, loss in
    ...  enumerate([3.0, 2.0, 2.5, 2.4, 1.0], start=1)]
    [False, False, False, True, False]
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..layer import Layer, NetError
from ..ports import Automatic


class Reporter:
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
        self.every = 2.0  # seconds between plain lines

    def batch(
        self, round_number: int, batch: int, batches: int, loss: float, rate: float, step: int, total: int | None
    ) -> None:
        """After batch ``batch`` of ``batches`` in a round, step ``step`` of ``total`` (None: not known yet)."""
        if self.mode == "bar":
            if self.bar is None:
                self.bar = _tqdm()(
                    total=batches, desc=f"round {round_number}", unit="batch", file=sys.stderr, dynamic_ncols=True
                )
                self.bar.update(batch - 1)  # a resumed round starts part-way
            self.bar.update(1)
            postfix = {"loss": f"{loss:.4g}", "examples/s": f"{rate:.0f}"}
            if total:
                left = (total - step) * (time.perf_counter() - self.started) / max(step, 1)
                postfix["run ETA"] = _clock(left)
            self.bar.set_postfix(postfix, refresh=False)
            return
        now = time.perf_counter()
        if self.mode != "lines" or now - self.last < self.every:
            return
        self.last = now
        print(f"round {round_number} batch {batch}/{batches}  loss {loss:.5g}  {rate:.0f} examples/s", file=sys.stderr)

    def round(self, progress: dict, examples: int) -> None:
        """After a round: ``progress`` has Wolfram's keys; ``examples`` have been trained on so far."""
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
        """After training, with NetTrain's result properties."""
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
    try:  # imported here: only a bar needs it, and it may be missing
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressFunction:
    """Wolfram's TrainingProgressFunction: ``f`` or ``(f, {"Interval": ("Rounds"|"Batches", n)})``, called
    every n rounds (default: every round) or batches; ``f`` may return "StopTraining"."""

    def __init__(self, spec: Callable | tuple | None):
        function, options = spec if isinstance(spec, tuple) else (spec, {})
        unit, every = options.get("Interval", ("Rounds", 1))
        self.function: Callable | None = function
        self.unit, self.every = unit, int(every)

    def due(self, unit: str, count: int) -> bool:
        """Whether the function is to be called after ``count`` rounds or batches (``unit``)."""
        return self.function is not None and unit == self.unit and count % self.every == 0

    def stops(self, progress: dict, net: Layer) -> bool:
        """Call the function with Wolfram's keys and the current net; True when it says "StopTraining"."""
        return self.function({**progress, "Net": net}) == "StopTraining"


class StoppingCriterion:
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
        """After a round: whether training stops (the patience counts rounds without improvement)."""
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
