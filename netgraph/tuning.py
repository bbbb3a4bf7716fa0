"""Choices of implementation timed on the machine that runs them, once, and kept (like cuDNN's benchmark mode).

How fast a convolution's lowering runs depends on the machine: how big a column block should be,
whether a product is computed as its transpose, how it is cut over the threads, whether the
window copies run compiled. Fixed rules fitted to one machine lose a third of the speed on the
next. So the first time a shape of work is met, :func:`choose` times its candidates on the very
arrays of that call (a warm-up run, then a few timed runs each, the median), keeps the fastest,
and from then on uses it without timing again: in memory for the process, and on disk for the
next ones, as JSON in :func:`cache_file` (one file per machine: its CPU model, thread count,
NumPy and Numba versions, :func:`machine_key`).

- Deterministic for a given cache: a key found in memory or on disk is never timed again, so the
  same cache file gives the same choices, and the same choices give the same bits.
- Switchable off: :func:`set_autotuning` (or ``NETGRAPH_AUTOTUNE=0`` in the environment). Then,
  and for work below :data:`TUNING_MINIMUM` (never worth timing; it keeps the tests' tiny shapes
  out of it), the caller's defaults, the fixed rules, are used.
- Reported: :func:`report` lists each choice made or loaded in this process, its candidates'
  times and how long the timing took.

A choice is a small dict of JSON values (a candidate for each of several settings). The candidates
are tried stage by stage, each setting in turn with the best of the ones before it fixed (a
coordinate search): a handful of timings instead of every combination. Within a stage the
candidates take turns run by run, and one replaces the current best only when it is faster by
:data:`MARGIN`, so that the noise of a busy machine leaves the fixed rules in place.

Example:
    >>> previous = set_autotuning(False)
    >>> choose(("example",), {"block": 4}, [("block", [4, 8])], lambda choice: None, work=1 << 40)
    {'block': 4}
    >>> _ = set_autotuning(previous)
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netgraph import compiled
from netgraph.backend import cpu_threads
from netgraph.files import atomic_file

__all__ = [
    "TUNING_MINIMUM",
    "Tuned",
    "autotuning_enabled",
    "cache_file",
    "choose",
    "forget",
    "machine_key",
    "report",
    "set_autotuning",
]

TUNING_MINIMUM = 1 << 25
"""Work (multiply-adds, for a convolution) below which a call keeps the defaults untimed: about
0.3 ms on one core, where the timing would cost more than any choice can save."""
REPEATS = 5  # timed runs per candidate, after one warm-up run
MARGIN = 0.03  # a candidate replaces the one before it only when this much faster (noise keeps the defaults)
FORMAT = 1  # the cache file's layout

_enabled = os.environ.get("NETGRAPH_AUTOTUNE", "1").lower() not in ("0", "false", "no", "off", "")
_lock = threading.RLock()
_choices: dict[str, dict[str, Any]] = {}  # key -> choice, this process's (made or loaded)
_known: dict[tuple, dict[str, Any]] = {}  # the same, by the callers' key tuples: the quick way in
_records: dict[str, Tuned] = {}
_loaded_from: Path | None = None  # the cache file read into _choices, if any


@dataclass
class Tuned:
    """One key's choice: made here by timing (``seconds`` it took, candidates' median times in
    ``times``), or read from the cache file (``from_disk``)."""

    key: str
    choice: dict[str, Any]
    from_disk: bool
    seconds: float = 0.0
    times: list[tuple[dict[str, Any], float]] = field(default_factory=list)

    def __str__(self) -> str:
        how = "from the cache file" if self.from_disk else f"timed in {self.seconds:.3f} s"
        return f"{self.key}: {self.choice} ({how})"


def set_autotuning(enabled: bool) -> bool:
    """Turn timing choices on or off (on unless ``NETGRAPH_AUTOTUNE=0``); returns the previous setting.
    Off, every caller uses its fixed rules.

    Example:
        >>> previous = set_autotuning(False)
        >>> autotuning_enabled()
        False
        >>> _ = set_autotuning(previous)
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def autotuning_enabled() -> bool:
    """Whether :func:`choose` times candidates (and uses the cache file)."""
    return _enabled


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_key() -> str:
    """What makes timings on this machine comparable: the CPU model, netgraph's thread count and
    the logical CPUs, NumPy's and Numba's versions; a file-name-safe string.

    Example:
        >>> "numpy" + np.__version__ in machine_key()
        True
    """
    numba = compiled._numba()
    parts = (
        _cpu_model(),
        f"{cpu_threads()}of{os.cpu_count() or 1}threads",
        f"numpy{np.__version__}",
        f"numba{numba.__version__}" if numba is not None else "nonumba",
    )
    return re.sub(r"[^A-Za-z0-9.]+", "-", "_".join(parts)).strip("-")[:160]


def cache_file() -> Path:
    """The JSON file keeping this machine's choices: ``cache_dir()/tuning-<machine key>.json``.

    Example:
        >>> cache_file().name.startswith("tuning-")
        True
    """
    return compiled.cache_dir() / f"tuning-{machine_key()}.json"


def _read(path: Path) -> dict[str, dict[str, Any]]:
    """The choices kept in ``path`` ({} when there is none; a warning when it cannot be used)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        warnings.warn(f"netgraph: the tuning cache {path} cannot be read ({error}); timing again", stacklevel=3)
        return {}
    try:
        content = json.loads(text)
        if content.get("format") != FORMAT or not isinstance(content.get("choices"), dict):
            raise ValueError("not a tuning cache of this version")
        return {str(k): dict(v) for k, v in content["choices"].items()}
    except (ValueError, TypeError, AttributeError) as error:
        warnings.warn(f"netgraph: the tuning cache {path} is unusable ({error}); it will be rewritten", stacklevel=3)
        return {}


def _load() -> None:
    """Read the cache file once per process (and again after :func:`forget` or a change of machine key)."""
    global _loaded_from
    path = cache_file()
    if _loaded_from == path:
        return
    for key, choice in _read(path).items():
        if key not in _choices:
            _choices[key] = choice
            _records[key] = Tuned(key, choice, from_disk=True)
    _loaded_from = path


def _save() -> None:
    """Write this process's choices, merged with what other processes wrote meanwhile, atomically."""
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read_quietly(path), **_choices}
        content = {"format": FORMAT, "machine": machine_key(), "choices": dict(sorted(merged.items()))}
        with atomic_file(path) as stream:
            stream.write(json.dumps(content, indent=1).encode())
    except OSError as error:
        warnings.warn(f"netgraph: the tuning cache {path} cannot be written ({error})", stacklevel=3)


def _read_quietly(path: Path) -> dict[str, dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read(path)


def _stage_times(run: Callable[[dict[str, Any]], None], candidates: list[dict[str, Any]]) -> list[float]:
    """Median seconds of ``run`` with each candidate: one warm-up run each, then :data:`REPEATS`
    rounds taking the candidates in turn, so that a change of load on the machine (other
    programs) falls on all of them alike."""
    for candidate in candidates:
        run(candidate)  # warm-up: first-call compilation, allocations
    times: list[list[float]] = [[] for _ in candidates]
    for _ in range(REPEATS):
        for candidate, kept in zip(candidates, times):
            start = time.perf_counter()
            run(candidate)
            kept.append(time.perf_counter() - start)
    return [statistics.median(kept) for kept in times]


def choose(
    key: tuple,
    defaults: dict[str, Any],
    stages: Sequence[tuple[str, Sequence[Any]]],
    run: Callable[[dict[str, Any]], None],
    work: float,
) -> dict[str, Any]:
    """The choice for ``key``: from memory, else from the cache file, else by timing ``run``.

    ``key`` (a tuple of numbers, strings and tuples of them) must say everything the timing
    depends on besides the machine; ``defaults`` is the choice of the fixed rules (returned as
    it is when tuning is off or ``work`` is below :data:`TUNING_MINIMUM`); ``stages`` name a
    setting and its candidates, tried in turn from the defaults (see the module's docstring);
    ``run(choice)`` does the work with a choice (its result is not used).

    Example:
        >>> previous = set_autotuning(False)  # off: the defaults, untimed
        >>> choose(("doctest",), {"block": 4}, [("block", [4, 8])], lambda choice: None, work=float("inf"))
        {'block': 4}
        >>> _ = set_autotuning(previous)
    """
    if not _enabled or work < TUNING_MINIMUM:
        return dict(defaults)
    known = _known.get(key)
    if known is not None:
        return dict(known)
    with _lock:
        _load()
        text = " | ".join(map(str, key))
        known = _choices.get(text)
        if known is None or set(known) != set(defaults):
            known = _time(text, defaults, stages, run)
            _choices[text] = known
            _save()
        _known[key] = known
        return dict(known)


def _time(text: str, defaults: dict[str, Any], stages, run) -> dict[str, Any]:
    """The choice timed on this machine (recorded for :func:`report` under ``text``)."""
    start = time.perf_counter()
    best, times = dict(defaults), []
    for name, values in stages:
        candidates = [best] + [{**best, name: value} for value in values if value != best[name]]
        if len(candidates) == 1:
            continue
        seconds = _stage_times(run, candidates)
        times.extend(zip(candidates, seconds))
        fastest = min(range(len(candidates)), key=seconds.__getitem__)
        if seconds[fastest] < (1 - MARGIN) * seconds[0]:
            best = candidates[fastest]
    _records[text] = Tuned(text, best, from_disk=False, seconds=time.perf_counter() - start, times=times)
    return best


def report() -> list[Tuned]:
    """The choices this process has made or loaded, in order.

    Example:
        >>> all(isinstance(t, Tuned) for t in report())
        True
    """
    with _lock:
        return list(_records.values())


def forget(disk: bool = False) -> None:
    """Drop this process's choices (the next call reads the cache file again); ``disk=True`` deletes the file too.

    Example:
        >>> forget()
        >>> report()
        []
    """
    global _loaded_from
    with _lock:
        _choices.clear()
        _known.clear()
        _records.clear()
        _loaded_from = None
        if disk:
            cache_file().unlink(missing_ok=True)
