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
import numbers
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..layer import Layer, NetError, is_real, is_whole
from ..ports import Automatic
from .panel import PanelOptions, TrainingPanel, has_ipython, in_notebook


class Reporter:
    """Progress a person can read (Wolfram's TrainingProgressReporting).

    * Automatic: in a notebook (an IPython kernel), the live panel of :mod:`netgraph.train.panel`;
      elsewhere a live tqdm bar per round when stderr is a terminal (batch, loss, validation
      loss, examples/s, the round's ETA and the whole run's), plain lines every few seconds
      otherwise (CI, logs); "Panel", "ProgressIndicator" and "Print" choose one of the three.
    * ``("Panel", {"Picture": f, "Interval": ("Rounds"|"Batches", n), "MinimumInterval": s})``: the
      panel with the picture ``f(progress)`` beside the loss plot (``progress`` holds the progress
      function's keys, "Net" included), made every n rounds or batches (default every round), and at
      least s seconds (default 0.5) between two redraws of the panel; every key is optional.
    * None: nothing.
    * ``("File", "log.csv" | "log.jsonl")``: one line per round in a file (and nothing on screen).

    Args:
        spec: the option's value.
        progress: gives the current progress dict, for a panel redrawn within a round.
        net: gives the net being trained, for the panel's picture function.
    """

    FIELDS = ("Round", "RoundLoss", "ValidationLoss", "AbsoluteBatch", "ExamplesPerSecond", "Seconds")
    MODES = (Automatic, None, "Print", "ProgressIndicator", "Panel")
    PANEL_KEYS = ("Picture", "Interval", "MinimumInterval")
    FORMS = (
        'Automatic, None, "Print", "ProgressIndicator", "Panel", ("Panel", {"Picture": f, "Interval": '
        '("Rounds"|"Batches", n), "MinimumInterval": seconds}) or ("File", "log.csv"|"log.jsonl")'
    )

    def __init__(self, spec: Any, progress: Callable[[], dict] | None = None, net: Callable[[], Layer] | None = None):
        self.log: Path | None = self.check(spec)
        self.bar: Any = None
        self.panel: TrainingPanel | None = None
        self.mode = "lines"
        panel = self.panel_options(spec)
        if panel is not None or (spec is Automatic and in_notebook()):
            self.mode = "panel"
            self.panel = TrainingPanel(panel or PanelOptions(), progress, net)
        elif self.log is not None:
            self.mode = "silent"
            self.log.parent.mkdir(parents=True, exist_ok=True)
            if self.log.suffix == ".csv":
                self.log.write_text(",".join(self.FIELDS) + "\n")
            else:
                self.log.write_text("")
        elif spec is None:
            self.mode = "silent"
        elif spec == "ProgressIndicator" or (spec is Automatic and _is_terminal(sys.stderr)):
            self.mode = "bar" if _tqdm() is not None else "lines"
        self.started = self.last = time.perf_counter()
        self.every = 2.0  # seconds between plain lines

    @classmethod
    def check(cls, spec: Any) -> Path | None:
        """Check a TrainingProgressReporting spec without writing anything; the log file's path, if any."""
        if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str) and spec[0] == "File":
            if not isinstance(spec[1], (str, os.PathLike)):
                raise NetError(f'NetTrain: a progress log is ("File", path), with a path; got {spec!r}')
            log = Path(spec[1])
            if log.suffix not in (".csv", ".json", ".jsonl"):
                raise NetError(f"NetTrain: a progress log must end in .csv, .json or .jsonl, got {str(log)!r}")
            if log.is_dir():
                raise NetError(f"NetTrain: the progress log {str(log)!r} is a directory; give a file name")
            return log
        if cls.panel_options(spec) is None and not any(
            spec is mode or (isinstance(spec, str) and spec == mode) for mode in cls.MODES
        ):
            raise NetError(f"NetTrain: training_progress_reporting must be {cls.FORMS}, got {spec!r}")
        return None

    @classmethod
    def panel_options(cls, spec: Any) -> PanelOptions | None:
        """The checked options of "Panel" or ``("Panel", {...})``; None for the other forms."""
        if isinstance(spec, str) and spec == "Panel":
            options: Any = {}
        elif isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str) and spec[0] == "Panel":
            options = spec[1]
        else:
            return None
        if not isinstance(options, dict) or not all(isinstance(k, str) and k in cls.PANEL_KEYS for k in options):
            raise NetError(
                f"NetTrain: training_progress_reporting's panel options are a dict with keys among "
                f'{list(cls.PANEL_KEYS)}, as in ("Panel", {{"Picture": f}}), got {options!r}'
            )
        picture = options.get("Picture")
        if picture is not None and not callable(picture):
            raise NetError(
                'NetTrain: training_progress_reporting\'s "Picture" must be a function f(progress) returning an '
                f"image, got {picture!r}"
            )
        unit, every = interval(options.get("Interval", ("Rounds", 1)), "training_progress_reporting")
        minimum = options.get("MinimumInterval", PanelOptions.minimum)
        if not (is_real(minimum) and 0 <= minimum < math.inf):
            raise NetError(
                'NetTrain: training_progress_reporting\'s "MinimumInterval" must be a number of seconds >= 0, '
                f"got {minimum!r}"
            )
        if not has_ipython():
            raise NetError(
                'NetTrain: training_progress_reporting "Panel" shows its panel with IPython, which is not '
                'installed: pip install "netgraph[notebook]" (or use Automatic, "Print" or "ProgressIndicator")'
            )
        return PanelOptions(picture, unit, every, float(minimum))

    def batch(
        self, round_number: int, batch: int, batches: int, loss: float, rate: float, step: int, total: int | None
    ) -> None:
        """After batch ``batch`` of ``batches`` in a round, step ``step`` of ``total`` (None: not known yet)."""
        if self.panel is not None:
            self.panel.batch(round_number, batch, batches, loss, rate, step, total)
            return
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
        if self.panel is not None:
            self.panel.round(progress, examples / max(seconds, 1e-9))
        elif self.mode == "bar" and self.bar is not None:
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
        if self.panel is not None:
            self.panel.close()
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def done(self, properties: dict) -> None:
        """After training, with NetTrain's result properties."""
        self.close()
        if self.panel is not None:
            self.panel.done(properties)
        elif self.mode != "silent":
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
        function, options = spec if isinstance(spec, (tuple, list)) and len(spec) == 2 else (spec, {})
        if function is not None and not callable(function):
            raise NetError(
                "NetTrain: training_progress_function must be a function f(progress) or "
                f"(f, {{'Interval': ('Rounds'|'Batches', n)}}), got {spec!r}"
            )
        if not isinstance(options, dict) or set(options) - {"Interval"}:
            raise NetError(
                f"NetTrain: training_progress_function's options are {{'Interval': ('Rounds'|'Batches', n)}}, "
                f"got {options!r}"
            )
        self.function: Callable | None = function
        self.unit, self.every = interval(options.get("Interval", ("Rounds", 1)), "training_progress_function")

    def due(self, unit: str, count: int) -> bool:
        """Whether the function is to be called after ``count`` rounds or batches (``unit``)."""
        return self.function is not None and unit == self.unit and count % self.every == 0

    def stops(self, progress: dict, net: Layer) -> bool:
        """Call the function with Wolfram's keys and the current net; True when it says "StopTraining"."""
        return self.function({**progress, "Net": net}) == "StopTraining"


class StoppingCriterion:
    """Wolfram's TrainingStoppingCriterion: patience on the (validation) loss, or a function."""

    KEYS = ("Criterion", "Patience", "InitialPatience", "Improvement")
    FORMS = (
        'None, "Loss", Automatic, a function of the progress dict, or {"Criterion": "Loss" or a function, '
        '"Patience": n, "InitialPatience": m, "Improvement": ("AbsoluteChange"|"RelativeChange", v)}'
    )

    def __init__(self, spec: Any):
        self.best = math.inf
        self.waited = 0
        self.patience, self.initial, self.kind, self.amount = 0, 0, "AbsoluteChange", 0.0
        if spec is Automatic or (isinstance(spec, str) and spec == "Loss"):
            spec = {"Criterion": "Loss"}
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in self.KEYS]
            if unknown:
                raise NetError(f"NetTrain: training_stopping_criterion has no key(s) {unknown}; it takes {self.FORMS}")
            criterion = spec.get("Criterion", "Loss")
            if callable(criterion):
                spec = criterion
            elif not (isinstance(criterion, str) and criterion == "Loss"):
                raise NetError(
                    f'NetTrain: training_stopping_criterion\'s "Criterion" must be "Loss" or a function of the '
                    f"progress dict, got {criterion!r}"
                )
            else:
                self.patience = _count(spec.get("Patience", 0), "Patience")
                self.initial = _count(spec.get("InitialPatience", 0), "InitialPatience")
                self.kind, self.amount = _improvement(spec.get("Improvement", ("AbsoluteChange", 0)))
        elif spec is not None and not callable(spec):
            raise NetError(f"NetTrain: training_stopping_criterion must be {self.FORMS}; got {spec!r}")
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


def interval(spec: Any, option: str) -> tuple[str, int]:
    """An "Interval" ``("Rounds"|"Batches", n)`` with n a positive integer, checked; ``option`` names its owner.

    Example:
        >>> interval(("Batches", 10), "training_progress_function")
        ('Batches', 10)
    """
    if (
        isinstance(spec, (tuple, list))
        and len(spec) == 2
        and isinstance(spec[0], str)
        and spec[0] in ("Rounds", "Batches")
        and is_whole(spec[1])
        and spec[1] >= 1
    ):
        return spec[0], int(spec[1])
    raise NetError(f'NetTrain: {option}\'s "Interval" must be ("Rounds"|"Batches", n) with n >= 1, got {spec!r}')


def _count(value: Any, key: str) -> int:
    if is_whole(value) and value >= 0:
        return int(value)
    raise NetError(f'NetTrain: training_stopping_criterion\'s "{key}" must be a whole number >= 0, got {value!r}')


def _improvement(value: Any) -> tuple[str, float]:
    """("AbsoluteChange"|"RelativeChange", v >= 0), also as a one-key dict."""
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.items()))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        kind, amount = value
        if (
            isinstance(kind, str)
            and kind in ("AbsoluteChange", "RelativeChange")
            and isinstance(amount, numbers.Real)
            and not isinstance(amount, bool)
            and math.isfinite(amount)
            and amount >= 0
        ):
            return kind, float(amount)
    raise NetError(
        'NetTrain: training_stopping_criterion\'s "Improvement" must be ("AbsoluteChange"|"RelativeChange", v) '
        f"with v a finite number >= 0, got {value!r}"
    )
