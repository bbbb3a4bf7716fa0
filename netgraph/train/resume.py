"""Resuming training from a checkpoint (NetTrain's ``resume_from``): reading it, checking it against the
run, and loading it into the run.

``resume_from`` is a checkpoint file, a directory (its newest good checkpoint), or
``(file_or_dir, {"Exact": False})``. By default (``"Exact": True``) the run must be the one that wrote
the checkpoint: any difference from the setup the checkpoint recorded (see
:mod:`netgraph.train.checkpoints`) is a :class:`~netgraph.layer.NetError` naming each
difference (the checkpoint's value and the value now), raised before any training. Two settings are
exempt, because changing them between runs is a user's ordinary remedy (a lower learning rate after a
divergence, unfreezing a layer): the method options and the learning-rate multipliers given now apply from
the first resumed step, and a warning names what changed. With
``"Exact": False`` training continues with the data, batch size, method options, losses, multipliers,
precision and layer settings given now (a warning lists what differs), and a round that was interrupted
part-way starts again from its first batch when the data's length or the batch size changed. Either way
the net's arrays must have the same shapes and the method the same name (its state carries over), and
the loss layers must be attached alike. A checkpoint written before checkpoints recorded their setup is
read with a warning: only what it holds is checked (the arrays, and the length of an interrupted
round's data). The number of processes that trained together (``"WorldSize"``, under ``mpiexec``) is
part of the setup: another number is refused by default, because the shares of every batch and the
random layers' per-rank numbers would differ; ``{"Exact": False}`` continues with the processes there
are. Every rank reads the checkpoint (a shared file system), then takes rank 0's state.

In a directory, checkpoints are tried newest first (by their names' start time and counter; files not
named like checkpoints come last). A damaged one, or a net file that is not a checkpoint, is skipped with
a warning naming it and the checkpoint used; when none is usable the error lists every file tried.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..files import remove_stale_parts
from ..io import encode, load_with_extra
from ..layer import Layer, NetError, brief, iter_layers, warn_user
from ..paths import iter_arrays
from .checkpoints import CHECKPOINT_KIND, CHECKPOINT_NAME, path_name, setup_record
from .state import TrainingRun, TrainingState

RESUME_OPTIONS = ("Exact",)
#: the setup fields an exact continuation needs, with their names in messages
SETUP_FIELDS = {
    "TrainingExamples": "training examples",
    "ValidationExamples": "validation examples",
    "BatchSize": "batch size",
    "WorldSize": "processes (WorldSize)",
    "Losses": "loss ports and weights",
    "LearningRateMultipliers": "learning-rate multipliers",
    "WorkingPrecision": "working precision",
}
#: setup fields a user may change between runs (as one lowers the learning rate after a divergence): a resume
#: follows the new values from its first step and says so, without ``{"Exact": False}``
TUNABLE = ("MethodOptions", "LearningRateMultipliers")
#: the most differences one message lists
SHOWN = 6


# --- reading a checkpoint --------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A checkpoint read from disk, checked to hold what resuming needs."""

    path: Path
    net: Layer  # the user's net with the checkpoint's arrays
    header: dict
    arrays: dict[str, np.ndarray]
    exact: bool  # resume_from's "Exact": differences from the checkpoint's setup are errors


class _UnusableError(Exception):
    """A file that cannot be resumed from; the message says why."""


def read_checkpoint(resume_from: Any) -> Checkpoint | None:
    """The checkpoint that ``resume_from`` names (None for None), read and checked before any work.

    A directory gives its newest good checkpoint (see the module docstring); a damaged newest one is
    skipped with a warning.
    """
    if resume_from is None:
        return None
    where, exact = _resume_option(resume_from)
    label = f"resume_from={str(where)!r}"
    try:
        if where.is_dir():
            remove_stale_parts(where)
            return _newest_good(where, exact, label)
        if not where.exists():
            raise NetError(f"NetTrain: {label}: no such file or directory")
        if not where.is_file():
            raise NetError(f"NetTrain: {label} is not a regular file or a directory")
    except OSError as err:
        raise NetError(f"NetTrain: {label}: cannot be read ({err})") from None
    try:
        return _read(where, exact)
    except _UnusableError as err:
        raise NetError(f"NetTrain: {label}: {err}") from None


def _resume_option(resume_from: Any) -> tuple[Path, bool]:
    """``resume_from`` as (path, exact)."""
    options: Any = {}
    if isinstance(resume_from, tuple) and len(resume_from) == 2 and not isinstance(resume_from[1], (str, os.PathLike)):
        resume_from, options = resume_from
    if not isinstance(resume_from, (str, os.PathLike)) or not str(resume_from):
        raise NetError(
            "NetTrain: resume_from must be a checkpoint file or a directory of checkpoints (a str or Path), "
            f"optionally as (path, {{'Exact': False}}); got {resume_from!r:.100}"
        )
    if not isinstance(options, dict) or any(key not in RESUME_OPTIONS for key in options):
        raise NetError(f"NetTrain: resume_from's sub-options are {{'Exact': True|False}}; got {options!r:.100}")
    exact = options.get("Exact", True)
    if not isinstance(exact, (bool, np.bool_)):
        raise NetError(f"NetTrain: resume_from's 'Exact' must be True or False; got {exact!r:.100}")
    return Path(resume_from), bool(exact)


def _newest_good(folder: Path, exact: bool, label: str) -> Checkpoint:
    """The newest checkpoint in ``folder`` that can be read, warning about newer ones that cannot."""

    def order(path: Path) -> tuple:
        named = CHECKPOINT_NAME.match(path.name)
        return (1, named["stamp"], int(named["counter"]), path.name) if named else (0, "", 0, path.name)

    candidates = sorted((p for p in folder.iterdir() if p.suffix == ".npz"), key=order, reverse=True)
    if not candidates:
        raise NetError(f"NetTrain: {label} holds no checkpoint (*.npz) files")
    skipped: list[str] = []
    for path in candidates:
        try:
            if not path.is_file():
                raise _UnusableError("not a regular file")
            found = _read(path, exact)
        except (_UnusableError, OSError) as err:
            skipped.append(f"{path.name}: {err}")
            continue
        if skipped:
            warn_user(
                f"NetTrain: resuming from {found.path.name}, the newest usable checkpoint in {folder}; skipped "
                f"(newest first) {_listed(skipped)}"
            )
        return found
    raise NetError(f"NetTrain: {label} holds no usable checkpoint; tried (newest first): {_listed(skipped)}")


def _listed(items: list[str]) -> str:
    more = f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more


def _read(path: Path, exact: bool) -> Checkpoint:
    try:
        net, header, arrays = load_with_extra(path)
    except NetError as err:
        raise _UnusableError(f"cannot be read: {str(err).removeprefix(f'{path}: ')}") from None
    if not isinstance(header, dict) or header.get("kind") != CHECKPOINT_KIND:
        raise _UnusableError("is a net file but not a training checkpoint")
    problem = _header_problem(header, arrays)
    if problem is not None:
        raise _UnusableError(f"a damaged training checkpoint ({problem})")
    return Checkpoint(path, net, header, arrays, exact)


def _header_problem(header: dict, arrays: dict) -> str | None:
    """What a checkpoint's header or extra arrays lack, or None."""
    optimizer, counters, best = header.get("optimizer"), header.get("counters"), header.get("best")
    if not isinstance(counters, dict) or any(name not in counters for name in TrainingState.COUNTERS):
        return "counters missing"
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("name"), str):
        return "optimiser missing"
    keys = optimizer.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, list) and len(k) == 2 for k in keys):
        return "optimiser state missing"
    for i, (_, slots) in enumerate(keys):
        if not isinstance(slots, list) or any(f"opt{i}/{slot}" not in arrays for slot in slots):
            return f"optimiser state {i} missing"
    if not isinstance(best, list) or any(f"best{i}" not in arrays for i in range(len(best))):
        return "best arrays missing"
    if not isinstance(header.get("criterion"), dict) or not {"best", "waited"} <= set(header["criterion"]):
        return "stopping criterion missing"
    if not isinstance(header.get("rng"), dict) or not isinstance(header.get("prefix"), list) or "order" not in arrays:
        return "random state or data order missing"
    setup = header.get("setup")
    if setup is not None and not isinstance(setup, dict):
        return "setup damaged"
    return None


# --- resuming --------------------------------------------------------------------------------


def resume(run: TrainingRun, checkpoint: Checkpoint | str | Path) -> None:
    """Load ``checkpoint`` (as :func:`read_checkpoint` gives it, or a path) into ``run``, to continue it.

    Everything is checked before ``run`` is changed. The number of rounds comes from the checkpoint
    unless ``run`` has one; a generator is asked again for the batch where training resumes.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint)
    path, header, arrays = checkpoint.path, checkpoint.header, checkpoint.arrays
    prefix, optimizer, state = run.prefix, run.optimizer, run.state
    fatal, soft = _differences(run, checkpoint)
    if fatal:
        raise NetError(
            f"NetTrain: checkpoint {path} does not fit this net or training setup: "
            f"{_listed(fatal + [text for _, text in soft])}"
        )
    counters = header["counters"]
    order = arrays["order"] if counters["batch"] else None
    restart = False
    if order is not None and (len(order) != run.data.examples or "BatchSize" in [d for d, _ in soft]):
        restart = True
        if len(order) != run.data.examples and "TrainingExamples" not in [d for d, _ in soft]:
            soft.append(
                (
                    "TrainingExamples",
                    f"the checkpoint was taken part-way through a round of {len(order)} examples; the data now has "
                    f"{run.data.examples}",
                )
            )
    setup = header.get("setup")
    tuned = [text for key, text in soft if key in TUNABLE]
    soft = [(key, text) for key, text in soft if key not in TUNABLE]
    if tuned:
        warn_user(
            f"NetTrain: resuming from {path} with changed training settings, which apply from here on: {_listed(tuned)}"
        )
    if soft and checkpoint.exact:
        raise NetError(
            f"NetTrain: checkpoint {path} does not fit this run: {_listed([text for _, text in soft])}. An exact "
            "continuation needs the same data, batch size, net, losses and precision; resume_from=(path, "
            "{'Exact': False}) continues with what is given now"
        )
    if soft:
        restarted = "; the interrupted round starts again from its first batch" if restart else ""
        warn_user(
            f"NetTrain: resuming from {path}, not an exact continuation: {_listed([text for _, text in soft])}"
            f"{restarted}"
        )
    elif setup is None:
        warn_user(
            f"NetTrain: checkpoint {path} records no training setup (it was written before checkpoints did); "
            "its data length, batch size, method options and layer settings cannot be checked against this run"
        )
    saved_arrays = {path_: layer.arrays[name] for path_, layer, name in iter_arrays(checkpoint.net)}
    for array_path, layer, name in iter_arrays(run.train_net):
        value = saved_arrays.get(array_path[len(prefix) :])
        if value is None or value.shape != layer.array_shapes().get(name, value.shape):
            raise NetError(f"NetTrain: checkpoint {path} does not fit this net (array {path_name(array_path)})")
    for array_path, layer, name in iter_arrays(run.train_net):
        key = (id(layer), name)
        value = saved_arrays[array_path[len(prefix) :]]
        run.store[key] = Tensor(run.xp.asarray(value, dtype=run.dtype), key in run.grad_keys)
    for i, (key, slots) in enumerate(header["optimizer"]["keys"]):
        optimizer.state[tuple(key)] = {
            slot: run.xp.asarray(arrays[f"opt{i}/{slot}"], dtype=run.dtype) for slot in slots
        }
    for name in TrainingState.COUNTERS:
        setattr(state, name, counters[name])
    state.best_value = float(state.best_value)
    state.order = order
    if restart:  # the interrupted round again, from its first batch, in a new order
        state.round, state.batch, state.order = state.round - 1, 0, None
        state.round_total, state.round_seen = 0.0, 0
    state.best = {tuple(p): arrays[f"best{i}"] for i, p in enumerate(header["best"])} or None
    run.criterion.best, run.criterion.waited = header["criterion"]["best"], header["criterion"]["waited"]
    try:
        run.data.rng.bit_generator.state = header["rng"]
    except (TypeError, ValueError, KeyError) as err:
        raise NetError(f"NetTrain: checkpoint {path} is damaged (random state: {err})") from None
    if header.get("device_seed") is not None:
        run.device_rng.base_seed = int(header["device_seed"])
    run.data.pending = None
    if run.rounds is None:
        run.rounds = header.get("rounds")


def _differences(run: TrainingRun, checkpoint: Checkpoint) -> tuple[list[str], list[tuple[str, str]]]:
    """What differs between ``run`` and the run that wrote ``checkpoint``: (differences no resume can
    bridge, [(setup field, difference)] that only an exact continuation refuses)."""
    header, setup = checkpoint.header, checkpoint.header.get("setup") or {}
    fatal: list[str] = []
    if list(run.prefix) != header["prefix"]:
        fatal.append(
            f"loss layers were {'' if header['prefix'] else 'not '}attached to the net in the checkpoint's run, "
            f"and are {'' if run.prefix else 'not '}now"
        )
    if header["optimizer"]["name"] != run.optimizer.name:
        fatal.append(
            f"method {header['optimizer']['name']!r} in the checkpoint, {run.optimizer.name!r} now (its state "
            "cannot carry over to another method)"
        )
    fatal += _array_differences(checkpoint.net, run.net)
    soft: list[tuple[str, str]] = []
    if not setup:
        return fatal, soft
    now = setup_record(run)
    for key, what in SETUP_FIELDS.items():
        if key in setup and _json(setup[key]) != _json(now[key]):
            soft.append(
                (
                    key,
                    f"{what} {_then_and_now(setup[key], now[key])}",
                )
            )
    saved_options = setup.get("MethodOptions")
    if isinstance(saved_options, dict) and header["optimizer"]["name"] == run.optimizer.name:
        for key in sorted(set(saved_options) | set(now["MethodOptions"])):
            before, after = saved_options.get(key), now["MethodOptions"].get(key)
            if _json(before) != _json(after):
                soft.append(
                    (
                        "MethodOptions",
                        f"method option {key} {_then_and_now(before, after)}",
                    )
                )
    if "Architecture" in setup and setup["Architecture"] != now["Architecture"]:
        layers = _layer_differences(checkpoint.net, run.net)
        soft += [("Architecture", text) for text in layers] or [
            (
                "Architecture",
                f"the training net's layers, connections or loss layers (architecture {setup['Architecture']} in the "
                f"checkpoint, {now['Architecture']} now)",
            )
        ]
    return fatal, soft


def _array_differences(saved: Layer, net: Layer) -> list[str]:
    """The arrays that differ in name or shape between the checkpoint's net and the net now."""
    before = {
        path_name(p): tuple(layer.arrays[n].shape) for p, layer, n in iter_arrays(saved) if layer.arrays[n] is not None
    }
    after = {}
    for p, layer, n in iter_arrays(net):
        value = layer.arrays[n]
        shape = tuple(value.shape) if value is not None else layer.array_shapes().get(n)
        after[path_name(p)] = None if shape is None else tuple(shape)
    found = []
    for name in list(before) + [n for n in after if n not in before]:
        if name not in after:
            found.append(f"array {name} only in the checkpoint")
        elif name not in before:
            found.append(f"array {name} only in the net now")
        elif before[name] != after[name]:
            found.append(f"array {name} has shape {before[name]} in the checkpoint, {after[name]} now")
    return found


def _layer_differences(saved: Layer, net: Layer) -> list[str]:
    """The layers whose type or settings differ between the checkpoint's net and the net now."""
    before, after = _layer_table(saved), _layer_table(net)
    found = []
    for name in list(before) + [n for n in after if n not in before]:
        if name not in after or name not in before:
            found.append(f"layer {name or 'the net'} only {'in the checkpoint' if name in before else 'now'}")
            continue
        (kind, settings), (kind_now, settings_now) = before[name], after[name]
        if kind != kind_now:
            found.append(f"layer {name or 'the net'} is a {kind} in the checkpoint, a {kind_now} now")
            continue
        keys = dict.fromkeys(list(settings) + list(settings_now))
        for key in [k for k in keys if settings.get(k) != settings_now.get(k)][:2]:
            change = _then_and_now(settings.get(key), settings_now.get(key))
            found.append(f"layer {name or 'the net'} ({kind}) has {key} {change}")
    return found


def _layer_table(net: Layer) -> dict[str, tuple[str, dict[str, str]]]:
    """Each layer's path: its type and, for a layer without sub-layers, its settings and port shapes as JSON."""
    table = {}
    for path, layer in iter_layers(net):
        settings: dict[str, str] = {}
        if not any(True for _ in layer.children()):
            for key, value in layer.config().items():
                try:
                    settings[key] = _json(encode(value, []))
                except NetError:
                    settings[key] = repr(value)
            for port, shape in layer.port_shapes.items():
                settings[f"port {port}"] = _json(None if shape is None else list(shape))
        table[path_name(path)] = (type(layer).__name__, settings)
    return table


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _then_and_now(before: Any, after: Any) -> str:
    """A setting that differs, as messages show it: ``8 in the checkpoint, 16 now``."""
    return f"{brief(before, text_as_is=True)} in the checkpoint, {brief(after, text_as_is=True)} now"
