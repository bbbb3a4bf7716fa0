"""The state of one training run.

* :class:`TrainingRun`: everything a training step, a checkpoint and the loop work on (the nets, the
  data, the device arrays, the optimiser, the random generators, the counters), in one object.
* :class:`TrainingState`: the counters and loss lists; a checkpoint saves them with the arrays.
* :class:`DeviceRandom`: the random numbers of random layers, one generator per step.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..backend import seeded_rng, to_numpy
from ..distributed import ONE_PROCESS, World
from ..layer import Context, Layer, NetError
from ..optimizers import Optimizer
from ..paths import iter_arrays
from .data import TrainingData
from .losses import LossPorts, strip_losses
from .progress import StoppingCriterion

ArrayKey = tuple[int, str]  # (id(layer), array name): how a Context finds an array's tensor
ArrayPath = tuple  # an array's path in the training net, ending in the array's name


@dataclass
class TrainingState:
    """Where training stands: with the arrays, the optimiser and the random states, all a
    checkpoint needs to resume exactly."""

    round: int = 0
    batch: int = 0  # batches done in the current round
    step: int = 0
    examples: int = 0
    order: Any = None  # this round's permutation of the examples
    round_total: float = 0.0
    round_seen: int = 0
    round_losses: list = field(default_factory=list)
    validation_losses: list = field(default_factory=list)
    batch_losses: list = field(default_factory=list)
    best_value: float = math.inf
    best_round: int = 0
    best: dict | None = None  # array path -> values at the best round

    #: the fields a checkpoint's header holds (``order`` and ``best`` go with its arrays)
    COUNTERS = (
        "round",
        "batch",
        "step",
        "examples",
        "round_total",
        "round_seen",
        "round_losses",
        "validation_losses",
        "batch_losses",
        "best_value",
        "best_round",
    )

    def start_round(self, order: Any) -> None:
        self.round += 1
        self.order = order
        self.round_total, self.round_seen = 0.0, 0

    def finish_batch(self, loss: float, count: int) -> None:
        self.batch += 1
        self.step += 1
        self.examples += count
        self.batch_losses.append(loss)
        self.round_total += loss * count
        self.round_seen += count

    def finish_round(self) -> None:
        self.batch = 0
        self.round_losses.append(self.round_total / max(self.round_seen, 1))

    def progress(self, size: int) -> dict[str, Any]:
        """The keys Wolfram's progress functions receive (the net is added by the caller)."""
        return {
            "Round": self.round,
            "Batch": self.batch,
            "AbsoluteBatch": self.step,
            "BatchSize": size,
            "BatchLoss": self.batch_losses[-1] if self.batch_losses else None,
            "RoundLoss": self.round_losses[-1] if self.round_losses else None,
            "ValidationLoss": self.validation_losses[-1] if self.validation_losses else None,
            "RoundLossList": list(self.round_losses),
            "ValidationLossList": list(self.validation_losses),
            "BatchLossList": list(self.batch_losses),
        }


class DeviceRandom:
    """The random numbers of random layers while training: each step's generator is made from
    (base seed, step), so a checkpoint only needs the base seed (CuPy's states cannot be saved).

    With several processes training together (``rank`` given), each rank's generator is made from
    (base seed, step, rank): every rank draws its own numbers for its share of the batch, and a resumed run
    still draws what an uninterrupted one would.
    """

    def __init__(self, xp: Any, seed: int | None, rank: int | None = None):
        self.xp = xp
        self.base_seed = int(np.random.SeedSequence(seed).entropy) % 2**63
        self.rank = rank

    def for_step(self, step: int) -> Any:
        key = [self.base_seed, step] if self.rank is None else [self.base_seed, step, self.rank]
        return seeded_rng(self.xp, key)


@dataclass
class TrainingRun:
    """One training run: what NetTrain sets up from its options, and what training changes.

    The arrays live on the device in ``store`` for the whole run; :meth:`user_net` brings them back
    to NumPy in a copy of the user's net.
    """

    net: Layer  # the user's net (a copy), whose arrays are trained
    train_net: Layer  # ``net``, with loss layers attached where the loss specification asks for them
    losses: LossPorts
    data: TrainingData
    xp: Any
    dtype: Any
    optimizer: Optimizer
    learning_rate_multipliers: dict | None
    device_rng: DeviceRandom
    criterion: StoppingCriterion  # its best value and patience are saved in checkpoints
    rounds: int | None  # max_training_rounds; None (Automatic) until the first round has been timed
    started: float  # time.perf_counter() when NetTrain was called
    state: TrainingState = field(default_factory=TrainingState)
    store: dict[ArrayKey, Tensor] = field(default_factory=dict)  # the device arrays, filled by the first step
    world: World = ONE_PROCESS  # the processes training together (netgraph.distributed)
    step_buffer: Any = None  # with several processes: the buffer their steps sum (loop.StepBuffer), made once
    rates: dict[ArrayPath, float] = field(init=False)  # learning-rate multiplier per array path (default 1)
    paths: dict[ArrayKey, ArrayPath] = field(init=False)
    trainable: list[tuple[ArrayPath, Layer, str]] = field(init=False)  # arrays with a nonzero rate
    grad_keys: set[ArrayKey] = field(init=False)

    def __post_init__(self) -> None:
        arrays = list(iter_arrays(self.train_net))
        self.paths = {(id(layer), name): path for path, layer, name in arrays}
        self.rates = array_rates(self.train_net, self.learning_rate_multipliers, self.prefix)
        self.trainable = [(path, layer, name) for path, layer, name in arrays if self.rates.get(path, 1.0) != 0]
        self.grad_keys = {(id(layer), name) for _, layer, name in self.trainable}

    @property
    def prefix(self) -> tuple:
        """The path of the user's net inside the training net."""
        return () if self.train_net is self.net else ("net",)

    @property
    def world_size(self) -> int:
        """The number of processes training together (checkpoints record it)."""
        return self.world.size

    def fill_store(self) -> None:
        """Put every array of the training net on the device now (the first step would, array by array, as
        the forward pass meets them); with several processes every rank then holds the same arrays in the
        same order, whether or not its share of a batch is empty."""
        for _, layer, name in iter_arrays(self.train_net):
            key = (id(layer), name)
            if key not in self.store and layer.arrays[name] is not None:
                self.store[key] = Tensor(self.xp.asarray(layer.arrays[name], dtype=self.dtype), key in self.grad_keys)

    @property
    def total_batches(self) -> int | None:
        """Batches in the whole run, None while the number of rounds is not known."""
        return self.rounds * self.data.batches_per_round if self.rounds else None

    @property
    def estimated_total(self) -> int:
        """Batches in the whole run as learning-rate schedules count them (10 rounds while not known)."""
        return (self.rounds or 10) * self.data.batches_per_round

    def step_context(self, batch_size: int) -> Context:
        """The Context of the next training step, on a batch of ``batch_size`` examples."""
        return Context(
            xp=self.xp,
            dtype=self.dtype,
            batch_size=batch_size,
            training=True,
            rng=self.device_rng.for_step(self.state.step + 1),
            arrays=self.store,
            grad_arrays=self.grad_keys,
            arrays_persist=True,
        )

    def user_net(self, arrays: dict[ArrayKey, np.ndarray] | None = None) -> Layer:
        """A copy of the user's net with the trained arrays (or with ``arrays``, kept by :meth:`snapshot`)."""
        return strip_losses(_write_back(self.train_net, self.store, arrays), self.net, self.train_net)

    def snapshot(self) -> dict[ArrayPath, np.ndarray]:
        """The arrays now, on the host, by path."""
        return {self.paths[key]: to_numpy(tensor.data).copy() for key, tensor in self.store.items()}

    def best_net(self) -> Layer | None:
        """The user's net with the arrays of the round with the best validation loss (None without)."""
        if self.data.validation is None or self.state.best is None:
            return None
        best = self.state.best
        return self.user_net({key: best[path] for key, path in self.paths.items() if path in best})

    def keep_if_best(self, measured: float) -> None:
        """Keep the arrays when ``measured`` (this round's validation or training loss) is the lowest yet."""
        if measured < self.state.best_value:
            self.state.best_value, self.state.best_round = measured, self.state.round
            self.state.best = self.snapshot()


def array_rates(net: Layer, multipliers: Any, prefix: tuple = ()) -> dict[ArrayPath, float]:
    """Learning-rate multiplier per array path; 0 or None freezes (moving statistics are always frozen).

    ``multipliers`` is a dict (or a list of pairs) whose keys are layer paths (``"enc"`` or ``("enc", 2)``)
    or array paths (``("enc", "Weights")``), and whose values are finite numbers or None; ``prefix`` is
    the user's net's path in the training net (``("net",)`` when loss layers were attached), implied
    before every key. A key that matches no array is an error naming the layers that have arrays.
    """
    rates: dict[ArrayPath, float] = {}
    paths = [path for path, _, _ in iter_arrays(net)]
    for path, layer, name in iter_arrays(net):
        if name in getattr(layer, "state_arrays", ("MovingMean", "MovingVariance")):
            rates[path] = 0.0
    if isinstance(multipliers, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in multipliers
    ):
        multipliers = dict((k if not isinstance(k, list) else tuple(k), v) for k, v in multipliers)
    if multipliers is not None and not isinstance(multipliers, dict):
        raise NetError(
            "NetTrain: learning_rate_multipliers must be a dict {layer or (layer, ..., array): rate} (or a list "
            f"of such pairs), with rates finite numbers or None; got {multipliers!r}"
        )
    for spec, rate in (multipliers or {}).items():
        if rate is not None and (
            not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not math.isfinite(rate)
        ):
            raise NetError(
                f"NetTrain: learning_rate_multipliers[{spec!r}] must be a finite number (0 or None freezes), "
                f"got {rate!r}"
            )
        target = spec if isinstance(spec, tuple) else (spec,)
        matched = [p for p in paths if p[: len(target)] == target or p[: len(prefix) + len(target)] == prefix + target]
        if not matched:
            raise NetError(
                f"NetTrain: learning_rate_multipliers key {spec!r} matches no array; {_hint(spec, paths, prefix)}"
            )
        for path in matched:
            rates[path] = 0.0 if rate is None else float(rate)
    return rates


def _hint(spec: Any, paths: list[ArrayPath], prefix: tuple) -> str:
    """The layers that have arrays, the closest to ``spec`` first, for a multiplier key that matches none."""
    owners = dict.fromkeys(p[len(prefix) : -1] if p[: len(prefix)] == prefix else p[:-1] for p in paths)
    keys = {"/".join(map(str, owner)): owner[0] if len(owner) == 1 else owner for owner in owners if owner}
    if not keys:
        names = list(dict.fromkeys(p[-1] for p in paths))
        return f"the net's arrays are {names} (keys are array names here)" if names else "the net has no arrays"
    wanted = "/".join(map(str, spec if isinstance(spec, tuple) else (spec,)))
    close = difflib.get_close_matches(wanted, list(keys), n=3, cutoff=0.5)
    listed = [keys[n] for n in close] + [key for n, key in keys.items() if n not in close]
    guess = f"did you mean {' or '.join(repr(keys[n]) for n in close)}? " if close else ""
    more = f" and {len(listed) - 12} more" if len(listed) > 12 else ""
    return (
        f"{guess}the layers with arrays are {', '.join(map(repr, listed[:12]))}{more} (a key is a layer path such as "
        "'enc' or ('enc', 2), or an array path such as ('enc', 'Weights'))"
    )


def _write_back(net: Layer, store: dict, values: dict | None = None) -> Layer:
    """A copy of ``net`` with the arrays of ``store`` (or ``values``, keyed alike) as float32 NumPy arrays."""
    values = values if values is not None else {k: to_numpy(t.data) for k, t in store.items()}
    copies = {}
    for _, layer, name in iter_arrays(net):
        if (id(layer), name) in values:
            copies[(id(layer), name)] = np.array(values[(id(layer), name)], dtype=np.float32)
    result = net.copy()
    originals = [(layer, name) for _, layer, name in iter_arrays(net)]
    for (layer, name), (_, clone, clone_name) in zip(originals, iter_arrays(result)):
        if (id(layer), name) in copies:
            clone.arrays[clone_name] = copies[(id(layer), name)]
    return result
