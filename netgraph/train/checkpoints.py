"""Checkpoints (Wolfram's TrainingProgressCheckpointing): the option, writing them, and what they record.

A checkpoint is a net file (``netgraph.load`` reads it) whose extra header and arrays hold the rest of a
:class:`~netgraph.train.state.TrainingRun`: the counters, the optimiser's state, the arrays of the best
round, the stopping criterion's patience, the random states and this round's order of the examples.

**Writing.** ``training_progress_checkpointing`` is ``("File", path)`` (one file, overwritten) or
``("Directory", dir)`` (a new file per checkpoint, named ``<start time>-<counter>-round<r>-batch<b>-loss<l>
[-val<v>].npz``), optionally with a dict of sub-options as a third element:

- ``"Interval"``: ``("Rounds", n)`` (default ``("Rounds", 1)``) or ``("Batches", n)``, n a whole number
  >= 1; or a time, ``("Seconds"|"Minutes"|"Hours", t)`` with t > 0, checked after every batch.
- ``"MinimumInterval"``: seconds; a checkpoint that falls due sooner than this after the previous one is
  skipped (default 0).
- ``"MaximumCheckpoints"``: n >= 1 keeps only the newest n checkpoints that this run wrote in the
  directory (default None: keep them all, as Wolfram does). Files of other runs, such as the one resumed
  from, are never removed. ``"CheckpointingFiles"`` lists the files kept. For ``("Directory", ...)`` only.

The option is checked before any work starts: the form, the sub-options, and that the target can be
written (a "File" that is a directory, a "Directory" that is a file, or a place without write permission
is refused). Nothing is created until the first checkpoint is written; then the directory is made, and
temporary files that killed writes left there are removed (:func:`netgraph.files.remove_stale_parts`).

**What a checkpoint records** (its header's ``"setup"``): what an exact continuation depends on:
``"TrainingExamples"``, ``"ValidationExamples"``, ``"BatchSize"``, ``"WorldSize"`` (the processes training together),
``"Method"`` and ``"MethodOptions"``, ``"Losses"`` (ports and weights), ``"LearningRateMultipliers"``,
``"WorkingPrecision"`` and ``"Architecture"`` (a fingerprint of the training net's layer types,
settings, port shapes and array shapes).

Resuming from a checkpoint is :mod:`netgraph.train.resume`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..files import remove_stale_parts
from ..io import encode_layer, save
from ..layer import Layer, NetError, is_real, is_whole, warn_user
from .state import TrainingRun, TrainingState

CHECKPOINT_KIND = "netgraph-training-checkpoint"
SUB_OPTIONS = ("Interval", "MinimumInterval", "MaximumCheckpoints")
COUNTED = ("Rounds", "Batches")
SECONDS = {"Seconds": 1.0, "Minutes": 60.0, "Hours": 3600.0}
#: a checkpoint's file name in a directory: start time, counter, round, ...
CHECKPOINT_NAME = re.compile(r"^(?P<stamp>\d{8}-\d{6})-(?P<counter>\d+)-round")


class Checkpoints:
    """Wolfram's TrainingProgressCheckpointing: ("File", path) or ("Directory", dir) [, {sub-options}].

    Constructing it checks the option and touches no file; the first :meth:`write` makes the directory.
    """

    def __init__(self, spec: Any):
        self.files: list[str] = []
        self.kind = None
        self.unit, self.every, self.minimum, self.maximum = "Rounds", 1, 0.0, None
        self.started = time.monotonic()
        self.last_written: float | None = None
        self.counter = 0
        self.opened = False
        self.setup: dict | None = None
        if spec is None:
            return
        forms = (
            '("File", path) or ("Directory", dir), optionally with a dict of sub-options '
            f"{', '.join(map(repr, SUB_OPTIONS))} as a third element"
        )
        if (
            not isinstance(spec, (tuple, list))
            or len(spec) not in (2, 3)
            or not isinstance(spec[0], str)
            or spec[0] not in ("File", "Directory")
        ):
            raise NetError(f"NetTrain: training_progress_checkpointing must be {forms}; got {spec!r:.200}")
        target = spec[1]
        if not isinstance(target, (str, os.PathLike)) or not str(target):
            raise NetError(
                f"NetTrain: training_progress_checkpointing=({spec[0]!r}, ...) needs a path (a str or Path), "
                f"got {target!r:.100}"
            )
        options = spec[2] if len(spec) == 3 else {}
        if not isinstance(options, dict):
            raise NetError(
                f"NetTrain: the third element of training_progress_checkpointing must be a dict of sub-options "
                f"({', '.join(map(repr, SUB_OPTIONS))}); got {options!r:.100}"
            )
        unknown = [key for key in options if key not in SUB_OPTIONS]
        if unknown:
            raise NetError(
                f"NetTrain: training_progress_checkpointing has no sub-option {', '.join(map(repr, unknown))}; "
                f"its sub-options are {', '.join(map(repr, SUB_OPTIONS))}"
            )
        self.kind, self.target = spec[0], Path(target)
        self.unit, self.every = _interval(options.get("Interval", ("Rounds", 1)))
        self.minimum = _minimum_interval(options.get("MinimumInterval", 0))
        self.maximum = _maximum_checkpoints(options.get("MaximumCheckpoints"), self.kind)
        _check_target(self.kind, self.target)
        self.stamp = time.strftime("%Y%m%d-%H%M%S")

    def due(self, unit: str, count: int) -> bool:
        """Whether a checkpoint is to be written after ``count`` rounds or batches (``unit``)."""
        if self.kind is None:
            return False
        now = time.monotonic()
        if self.unit in SECONDS:
            since = now - (self.started if self.last_written is None else self.last_written)
            due = unit == "Batches" and since >= self.every * SECONDS[self.unit]
        else:
            due = unit == self.unit and count % self.every == 0
        return due and (self.last_written is None or now - self.last_written >= self.minimum)

    def write(self, run: TrainingRun) -> None:
        """Write a checkpoint of ``run`` (atomically: a crash keeps the previous file), then drop the
        oldest of this run's checkpoints beyond "MaximumCheckpoints"."""
        if not self.opened:
            self._open()
        if self.setup is None:
            self.setup = setup_record(run)
        header, arrays = _contents(run, self.setup)
        state = run.state
        if self.kind == "File":
            path = self.target
        else:
            self.counter += 1
            loss = f"-loss{state.batch_losses[-1]:.5g}" if state.batch_losses else ""
            val = f"-val{state.validation_losses[-1]:.5g}" if state.validation_losses and state.batch == 0 else ""
            path = self.target / f"{self.stamp}-{self.counter:05d}-round{state.round}-batch{state.batch}{loss}{val}.npz"
        save(run.user_net(), path, extra=header, extra_arrays=arrays)
        self.last_written = time.monotonic()
        if str(path) not in self.files:
            self.files.append(str(path))
        while self.maximum is not None and len(self.files) > self.maximum:
            old = self.files.pop(0)
            try:
                Path(old).unlink(missing_ok=True)
            except OSError as err:  # training goes on; the file stays
                warn_user(f"NetTrain: could not remove the old checkpoint {old} ({err})")

    def _open(self) -> None:
        """Make the directory, remove stale temporary files there, and number this run's checkpoints
        after any that a run started in the same second wrote."""
        folder = self.target if self.kind == "Directory" else self.target.parent
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(folder)
        if self.kind == "Directory":
            for entry in os.scandir(folder):
                named = CHECKPOINT_NAME.match(entry.name)
                if named is not None and named["stamp"] == self.stamp:
                    self.counter = max(self.counter, int(named["counter"]))
        self.opened = True


def _interval(value: Any) -> tuple[str, float]:
    """The "Interval" sub-option as (unit, n)."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str)
    ok = ok and value[0] in COUNTED + tuple(SECONDS)
    if ok and value[0] in COUNTED:
        ok = is_whole(value[1]) and value[1] >= 1
    elif ok:
        ok = is_real(value[1]) and math.isfinite(value[1]) and value[1] > 0
    if not ok:
        raise NetError(
            "NetTrain: training_progress_checkpointing's 'Interval' must be ('Rounds'|'Batches', n) with a whole "
            f"n >= 1, or ('Seconds'|'Minutes'|'Hours', t) with t > 0; got {value!r:.100}"
        )
    return value[0], (int(value[1]) if value[0] in COUNTED else float(value[1]))


def _minimum_interval(value: Any) -> float:
    if not is_real(value) or not math.isfinite(value) or value < 0:
        raise NetError(
            "NetTrain: training_progress_checkpointing's 'MinimumInterval' must be a number of seconds >= 0; "
            f"got {value!r:.100}"
        )
    return float(value)


def _maximum_checkpoints(value: Any, kind: str) -> int | None:
    if value is None:
        return None
    if not is_whole(value) or value < 1:
        raise NetError(
            "NetTrain: training_progress_checkpointing's 'MaximumCheckpoints' must be a whole number >= 1 (or None "
            f"for all); got {value!r:.100}"
        )
    if kind != "Directory":
        raise NetError(
            "NetTrain: training_progress_checkpointing's 'MaximumCheckpoints' applies to ('Directory', dir) "
            "checkpointing; ('File', path) keeps one file"
        )
    return int(value)


def _check_target(kind: str, target: Path) -> None:
    """Refuse a checkpoint target that cannot be written, before any training."""
    where = f"training_progress_checkpointing=({kind!r}, {str(target)!r})"
    try:
        if kind == "File":
            if target.is_dir():
                raise NetError(
                    f"NetTrain: {where}: {target} is a directory; give a file path, or ('Directory', dir) "
                    "for a new file per checkpoint"
                )
            if target.exists() and not target.is_file():
                raise NetError(f"NetTrain: {where}: {target} exists and is not a regular file")
            folder = target.parent
        else:
            if target.exists() and not target.is_dir():
                raise NetError(
                    f"NetTrain: {where}: {target} is a file, not a directory; give a directory, or ('File', path) "
                    "for one file overwritten at each checkpoint"
                )
            folder = target
        existing = folder.absolute()
        while not existing.exists():
            existing = existing.parent
    except OSError as err:
        raise NetError(f"NetTrain: {where}: cannot reach the target ({err})") from None
    if not existing.is_dir():
        raise NetError(f"NetTrain: {where}: {existing} is not a directory, so {folder} cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NetError(f"NetTrain: {where}: no permission to write in {existing}")


# --- what a checkpoint holds -----------------------------------------------------------------


def setup_record(run: TrainingRun) -> dict[str, Any]:
    """What an exact continuation of ``run`` depends on (a checkpoint header's ``"setup"``)."""
    data, optimizer = run.data, run.optimizer
    return {
        "TrainingExamples": data.examples,
        "ValidationExamples": data.validation_examples,
        "BatchSize": data.batch_size,
        "WorldSize": getattr(run, "world_size", 1),
        "Method": optimizer.name,
        "MethodOptions": {key: _plain(value) for key, value in optimizer.options.items()},
        "Losses": [[port, float(weight)] for port, weight in run.losses],
        "LearningRateMultipliers": sorted([path_name(path), float(rate)] for path, rate in run.rates.items()),
        "WorkingPrecision": np.dtype(run.dtype).name,
        "Architecture": fingerprint(run.train_net),
    }


def fingerprint(net: Layer) -> str:
    """A digest of ``net``'s layer types, settings, port shapes and array shapes (not array values)."""
    arrays: list[np.ndarray] = []
    try:
        spec = encode_layer(net, arrays)
    except NetError as err:  # a setting that cannot be saved: the digest falls back on its message
        spec = str(err)

    def shapes(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("$") == "layer" and isinstance(value.get("arrays"), dict):
                value = {
                    **value,
                    "arrays": {k: None if i is None else list(arrays[i].shape) for k, i in value["arrays"].items()},
                }
            return {k: shapes(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shapes(v) for v in value]
        return value

    text = json.dumps(shapes(spec), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """An optimiser option as JSON: numbers and names as they are, a function by its name."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Real):
        return float(value) if not isinstance(value, numbers.Integral) else int(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if callable(value):
        return f"<function {getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}>"
    return repr(value)


def path_name(path: tuple) -> str:
    """An array path as it is written in checkpoints and messages: ``enc/1/Weights``."""
    return "/".join(str(part) for part in path)


def _contents(run: TrainingRun, setup: dict) -> tuple[dict, dict]:
    """A checkpoint's header (JSON) and arrays, besides the net's own arrays."""
    state, optimizer = run.state, run.optimizer
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
        "setup": setup,
        "counters": {name: getattr(state, name) for name in TrainingState.COUNTERS},
        "rounds": run.rounds,
        "prefix": list(run.prefix),
        "optimizer": {"name": optimizer.name, "keys": optimizer_keys},
        "best": best_keys,
        "criterion": {"best": run.criterion.best, "waited": run.criterion.waited},
        "rng": run.data.rng.bit_generator.state,
        "device_seed": run.device_rng.base_seed,
    }
    return header, arrays
