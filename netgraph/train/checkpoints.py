"""Checkpoints (Wolfram's TrainingProgressCheckpointing) and resuming from them.

A checkpoint is a net file (``netgraph.load`` reads it) whose extra header and arrays hold the rest of a
:class:`~netgraph.train.state.TrainingRun`: the counters, the optimiser's state, the arrays of the best
round, the stopping criterion's patience, the random states and this round's order of the examples.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..backend import to_numpy
from ..io import load_with_extra, save
from ..layer import NetError
from ..paths import iter_arrays
from .state import TrainingRun, TrainingState

CHECKPOINT_KIND = "netgraph-training-checkpoint"


class Checkpoints:
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
        """Whether a checkpoint is to be written after ``count`` rounds or batches (``unit``)."""
        return self.kind is not None and unit == self.unit and count % self.every == 0

    def write(self, run: TrainingRun) -> None:
        """Write a checkpoint of ``run`` (atomically: a crash keeps the previous file)."""
        header, arrays = _contents(run)
        state = run.state
        if self.kind == "File":
            path = self.target
        else:
            loss = f"-loss{state.batch_losses[-1]:.5g}" if state.batch_losses else ""
            val = f"-val{state.validation_losses[-1]:.5g}" if state.validation_losses and state.batch == 0 else ""
            path = self.target / (
                f"{self.stamp}-{len(self.files) + 1:05d}-round{state.round}-batch{state.batch}{loss}{val}.npz"
            )
        save(run.user_net(), path, extra=header, extra_arrays=arrays)
        if str(path) not in self.files:
            self.files.append(str(path))


def _contents(run: TrainingRun) -> tuple[dict, dict]:
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


def latest_checkpoint(where: Path) -> Path:
    """``where`` itself, or the newest checkpoint in the directory ``where``."""
    if where.is_dir():
        found = sorted(where.glob("*.npz"))
        if not found:
            raise NetError(f"NetTrain: resume_from={str(where)!r} holds no checkpoint (*.npz) files")
        return found[-1]
    return where


def resume(run: TrainingRun, where: str | Path) -> None:
    """Load the checkpoint ``where`` (a file, or a directory's newest) into ``run``, to continue it.

    The number of rounds comes from the checkpoint unless ``run`` has one; a generator is asked again
    for the batch where training resumes.
    """
    path = latest_checkpoint(Path(where))
    saved, header, arrays = load_with_extra(path)
    if not isinstance(header, dict) or header.get("kind") != CHECKPOINT_KIND:
        raise NetError(f"NetTrain: {path} is a net file but not a training checkpoint")
    prefix, optimizer, state = run.prefix, run.optimizer, run.state
    if list(prefix) != header.get("prefix") or header["optimizer"]["name"] != optimizer.name:
        raise NetError(
            f"NetTrain: checkpoint {path} was written by a different training setup "
            f"(losses or method {header['optimizer']['name']!r} differ)"
        )
    saved_arrays = {path_: layer.arrays[name] for path_, layer, name in iter_arrays(saved)}
    for array_path, layer, name in iter_arrays(run.train_net):
        value = saved_arrays.get(array_path[len(prefix) :])
        if value is None or value.shape != layer.array_shapes().get(name, value.shape):
            raise NetError(f"NetTrain: checkpoint {path} does not fit this net (array {array_path})")
        key = (id(layer), name)
        run.store[key] = Tensor(run.xp.asarray(value, dtype=run.dtype), key in run.grad_keys)
    for i, (key, slots) in enumerate(header["optimizer"]["keys"]):
        optimizer.state[tuple(key)] = {
            slot: run.xp.asarray(arrays[f"opt{i}/{slot}"], dtype=run.dtype) for slot in slots
        }
    for name, value in header["counters"].items():
        setattr(state, name, value)
    state.best_value = float(state.best_value)
    state.order = arrays["order"] if state.batch else None
    state.best = {tuple(p): arrays[f"best{i}"] for i, p in enumerate(header["best"])} or None
    run.criterion.best, run.criterion.waited = header["criterion"]["best"], header["criterion"]["waited"]
    run.data.rng.bit_generator.state = header["rng"]
    if header.get("device_seed") is not None:
        run.device_rng.base_seed = int(header["device_seed"])
    run.data.pending = None
    if run.rounds is None:
        run.rounds = header.get("rounds")
