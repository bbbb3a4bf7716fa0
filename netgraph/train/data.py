"""Training data: columns keyed by the training net's input ports, generator functions, the validation split.

The data forms (:func:`as_columns`) are Wolfram's, in Python: a dict of columns keyed by port, with the
targets keyed by their port ("Target") or by the output they are compared with ("Output"); ``(inputs,
targets)``; a list of ``(input, target)`` pairs; a list of per-example dicts; or one array.

Example:
    >>> import numpy as np
    >>> from layers import LinearLayer
    >>> from netgraph import Scaled
    >>> data = TrainingData.read(LinearLayer(1, input=1), np.zeros((10, 1)), Scaled(0.2), batch_size=4, seed=0)
    >>> list(data.columns), data.examples, data.validation_examples, data.batches_per_round
    (['Input'], 8, 2, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..layer import Layer, NetError, brief, format_shape
from ..ports import Automatic, Scaled

Columns = dict[str, np.ndarray]  # equally long arrays keyed by input port


def as_columns(net: Layer, data: Any, what: str, targets: dict[str, str] | None = None) -> Columns:
    """Data as a dict of equally long arrays keyed by the training net's input ports.

    ``what`` names the data in error messages ("training data", "validation set", ...); ``targets`` maps
    the training net's target ports to the outputs they score (:func:`~netgraph.train.losses.target_ports`),
    so that the data may key the targets by the output's name (``"Output"``) as well. The forms (Wolfram's in
    Python): ``{port: examples, ...}``; ``(inputs, targets)`` (``{in1, in2, ...} -> {out1, out2, ...}``); a list
    of ``(input, target)`` pairs (``{in1 -> out1, in2 -> out2, ...}``); a list of dicts, one per example
    (``{<|port -> ...|>, ...}``); an array, for a net with one input port.

    Example:
        >>> from layers import LinearLayer
        >>> from netgraph.train.losses import attach_losses, target_ports
        >>> net = LinearLayer(1, input=1)
        >>> train_net = attach_losses(net, None)[0]
        >>> columns = as_columns(train_net, [([1.0], [3.0]), ([2.0], [5.0])], "training data")
        >>> {port: column.tolist() for port, column in columns.items()}
        {'Input': [[1.0], [2.0]], 'Target': [[3.0], [5.0]]}
        >>> columns = as_columns(train_net, {"Input": [[1.0]], "Output": [[3.0]]}, "data", target_ports(net, train_net))
        >>> sorted(columns)
        ['Input', 'Target']
    """
    targets = targets or {}
    rule = _rule_ports(net, targets)
    if _is_examples(data):
        data = _from_examples(data, what)
    elif _is_pairs(data) and rule is not None:
        data = {rule[0]: [pair[0] for pair in data], rule[1]: [pair[1] for pair in data]}
    elif isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], str):
        if rule is None:
            raise NetError(
                "NetTrain: (inputs, targets) needs a net with one input and one target port; the training net has "
                f"inputs {list(net.input_ports)}{_no_target_note(net, targets)}: give the {what} as a dict keyed "
                "by port"
            )
        data = {rule[0]: data[0], rule[1]: data[1]}
    if not isinstance(data, dict):
        ports = list(net.input_ports)
        if len(ports) != 1:
            raise NetError(
                f"NetTrain: the net has inputs {ports}; give the {what} as a dict keyed by port"
                + (", (inputs, targets) or a list of (input, target) pairs" if rule is not None else "")
                + f", got {brief(data)}"
            )
        data = {ports[0]: data}
    data = _targets_by_port(net, data, targets, what)
    columns = {p: _column(v, p, what) for p, v in data.items() if p in net.input_ports}
    missing = [p for p in net.input_ports if p not in columns]
    if missing:
        named = [f"{p!r} (or {targets[p]!r}, the output it is compared with)" for p in missing if p in targets]
        raise NetError(
            f"NetTrain: the {what} gives no values for input port(s) {missing}"
            + (f"; key the targets {', '.join(named)}" if named else "")
            + f"; it has keys {list(data)}"
        )
    sizes = {p: len(v) for p, v in columns.items()}
    if len(set(sizes.values())) != 1:
        raise NetError(
            f"NetTrain: the {what} has a different number of examples for each port {sizes}; every port needs "
            "one example per row, the same number for all"
        )
    for port, column in columns.items():
        expected = net.port_shapes.get(port)
        if expected is not None and tuple(column.shape[1:]) != expected:
            raise NetError(
                f"NetTrain: port {port!r} expects examples of shape {format_shape(expected)}; the {what} "
                f"has {format_shape(tuple(column.shape[1:]))}"
            )
    return columns


def _rule_ports(net: Layer, targets: dict[str, str]) -> tuple[str, str] | None:
    """(input port, target port) of the rule forms, for a training net with one input and one target port."""
    given = [p for p in net.input_ports if p in targets] or [p for p in net.input_ports if p == "Target"]
    inputs = [p for p in net.input_ports if p not in given]
    return (inputs[0], given[0]) if len(given) == 1 and len(inputs) == 1 else None


def _no_target_note(net: Layer, targets: dict[str, str]) -> str:
    if not any(p in targets or p == "Target" for p in net.input_ports):
        return " and no target port (its loss takes no targets)"
    return ""


def _is_pairs(data: Any) -> bool:
    """A list of (input, target) tuples: Python's form of Wolfram's ``{in1 -> out1, in2 -> out2, ...}``."""
    return isinstance(data, list) and bool(data) and all(isinstance(d, tuple) and len(d) == 2 for d in data)


def _is_examples(data: Any) -> bool:
    """A list of dicts, one per example: Wolfram's ``{<|port1 -> ..., ...|>, ...}``."""
    return isinstance(data, list) and bool(data) and all(isinstance(d, dict) for d in data)


def _from_examples(data: list[dict], what: str) -> dict[str, list]:
    """A list of per-example dicts as a dict of per-port lists; every example must have the same keys."""
    keys = list(data[0])
    for number, example in enumerate(data, 1):
        if set(example) != set(keys):
            raise NetError(
                f"NetTrain: the {what} is a list of examples with different keys: example {number} has "
                f"{list(example)}, example 1 has {keys}"
            )
    return {key: [example[key] for example in data] for key in keys}


def _targets_by_port(net: Layer, data: dict, targets: dict[str, str], what: str) -> dict:
    """``data`` with targets keyed by the output they score (``"Output"``) keyed by their port (``"Target"``)."""
    data = dict(data)
    for port, output in targets.items():
        if output == port or output not in data or output in net.input_ports:
            continue
        if port in data:
            raise NetError(
                f"NetTrain: the {what} gives the targets of output {output!r} twice, under {output!r} and under "
                f"{port!r}; give them once"
            )
        data[port] = data.pop(output)
    return data


def _column(values: Any, port: str, what: str) -> np.ndarray:
    """One port's examples as a numeric array with a leading example axis."""
    try:
        column = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise NetError(
            f"NetTrain: the {what} for port {port!r} is not a rectangular array of numbers ({err})"
        ) from None
    if column.ndim == 0 or column.dtype.kind not in "biuf":
        raise NetError(
            f"NetTrain: the {what} for port {port!r} must be an array of numbers with one example per row, got "
            f"{'a single value' if column.ndim == 0 else f'an array of {column.dtype}'} ({brief(values)})"
        )
    return column


def check_class_labels(columns: Columns, classes: dict[str, int | None], what: str) -> None:
    """Class numbers for the ports in ``classes`` (those feeding an "Index" cross-entropy loss's "Target",
    with the number of classes or None): whole numbers from 1 to n, else a NetError naming the first bad one.

    Example:
        >>> try:
        ...     check_class_labels({"Target": np.array([1, 2, 1.5])}, {"Target": 3}, "training data")
        ... except NetError as err:
        ...     print(str(err).split("; ")[1])
        the training data has 1.5 (example 3)
    """
    for port, count in classes.items():
        column = columns.get(port)
        if column is None:
            continue
        high = count if count is not None else np.inf
        bad = (column < 1) | (column > high)
        if column.dtype.kind == "f":
            bad |= ~np.isfinite(column) | (column != np.floor(column))
        if bad.any():
            where = np.argwhere(bad)[0]
            value = column[tuple(where)]
            allowed = f"1..{count}" if count is not None else "1, 2, ..."
            raise NetError(
                f'NetTrain: port {port!r} takes class numbers {allowed} (an "Index" CrossEntropyLossLayer\'s '
                f"Target); the {what} has {value.item()!r} (example {int(where[0]) + 1})"
            )


def read_generator(data: Any) -> tuple[Callable | None, int | None]:
    """A generator function ``f`` or ``(f, {"RoundLength": n})`` as (f, n), else (None, None)."""
    if callable(data) and not isinstance(data, Layer):
        return data, None
    if isinstance(data, tuple) and len(data) == 2 and callable(data[0]) and isinstance(data[1], dict):
        unknown = set(data[1]) - {"RoundLength"}
        if unknown:
            raise NetError(f"NetTrain: a generator takes only the option 'RoundLength', got {sorted(unknown)}")
        length = data[1].get("RoundLength")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise NetError(f"NetTrain: 'RoundLength' must be a positive number of examples, got {length!r}")
        return data[0], length
    return None, None


def generator_info(round_number: int, batch: int, absolute: int, size: int, round_length: int | None) -> dict:
    """What a generator function is called with (Wolfram's keys).

    Example:
        >>> generator_info(2, 1, 5, size=32, round_length=100)["BatchesPerRound"]
        4
    """
    per_round = math.ceil((round_length or size) / size)
    return {
        "BatchSize": size,
        "Round": round_number,
        "Batch": batch,
        "AbsoluteBatch": absolute,
        "BatchesPerRound": per_round,
    }


def share(count: int, rank: int, size: int) -> slice:
    """The contiguous part of ``count`` items that rank ``rank`` of ``size`` takes (``np.array_split``'s
    parts: the first ``count % size`` ranks take one more).

    Example:
        >>> [share(10, r, 4) for r in range(4)]
        [slice(0, 3, None), slice(3, 6, None), slice(6, 8, None), slice(8, 10, None)]
    """
    base, extra = divmod(count, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def check_data_options(data: Any, validation_set: Any) -> None:
    """Check what can be checked of ``data`` and ``validation_set`` before reading any example."""
    generator, _ = read_generator(data)
    if isinstance(validation_set, Scaled) and not 0 < validation_set.ratio < 1:
        raise NetError(
            f"NetTrain: validation_set=Scaled(f) holds out a fraction f of the training data, with 0 < f < 1; "
            f"got {validation_set!r}"
        )
    if generator is not None and isinstance(validation_set, Scaled):
        raise NetError(
            "NetTrain: validation_set=Scaled(f) needs a fixed data set; give a generator's validation data explicitly"
        )


@dataclass
class TrainingData:
    """The examples of one training run, its validation set, and how rounds are cut into batches."""

    net: Layer  # the training net, whose input ports key the columns
    columns: Columns  # the training examples (for a generator: its first batch)
    validation: Columns | None
    examples: int  # examples in a round
    batch_size: int
    rng: np.random.Generator  # splits off a validation fraction, then orders each round's examples
    generator: Callable | None = None
    round_length: int | None = None  # a generator's "RoundLength"
    pending: Columns | None = None  # a generator's first batch, read before training to check it
    classes: dict[str, int | None] = field(default_factory=dict)  # ports of class numbers (check_class_labels)
    rank: int = 0  # this process's rank among ``size`` training together: it takes its share of every batch
    size: int = 1
    targets: dict[str, str] = field(default_factory=dict)  # target port -> the output it scores (as_columns)

    @classmethod
    def read(
        cls,
        net: Layer,
        data: Any,
        validation_set: Any,
        batch_size: Any,
        seed: int | None,
        rank: int = 0,
        processes: int = 1,
        targets: dict[str, str] | None = None,
    ) -> TrainingData:
        """Read NetTrain's ``data`` and ``validation_set`` for the training net ``net``; ``rank`` of
        ``processes`` training together (every rank reads all the data, and the same ``seed`` gives every
        rank the same validation split and order of examples). ``targets`` (target port -> the output it
        scores) lets the data key the targets by the output's name too (see :func:`as_columns`).

        A generator is called once here, so that its ports and shapes are checked before training;
        that batch is the first one trained on (with several processes, each asks for its share).
        """
        generator, round_length = read_generator(data)
        targets = dict(targets or {})
        size = 64 if batch_size is Automatic else int(batch_size)
        if generator is not None:
            if size < processes:
                raise NetError(
                    f"NetTrain: batch_size {size} is smaller than the {processes} processes training together; "
                    "each asks the generator for its share of every batch, so give a batch_size of at least "
                    f"{processes}"
                )
            info = generator_info(1, 1, 1, size, round_length)
            info = info if processes == 1 else _share_info(info, rank, processes)
            columns = as_columns(net, generator(info), "generator's batch", targets)
            examples = round_length or size  # without "RoundLength", one batch makes a round
        else:
            columns = as_columns(net, data, "training data", targets)
            examples = len(next(iter(columns.values())))
        rng = np.random.default_rng(seed)
        if isinstance(validation_set, Scaled):
            order = rng.permutation(examples)
            held = int(round(validation_set.ratio * examples))
            if not 0 < held < examples:
                raise NetError(
                    f"NetTrain: validation_set={validation_set!r} of {examples} examples holds out {held} of them; "
                    "at least one must be held out and one left to train on"
                )
            validation = {p: v[order[:held]] for p, v in columns.items()}
            columns = {p: v[order[held:]] for p, v in columns.items()}
            examples -= held
        else:
            validation = None if validation_set is None else as_columns(net, validation_set, "validation set", targets)
            if validation is not None and not len(next(iter(validation.values()))):
                raise NetError("NetTrain: the validation set has no examples")
        if examples < 1:
            raise NetError("NetTrain: no training examples")
        if generator is None:
            size = max(1, min(size, examples))
        pending = columns if generator is not None else None
        return cls(
            net,
            columns,
            validation,
            examples,
            size,
            rng,
            generator,
            round_length,
            pending,
            rank=rank,
            size=processes,
            targets=targets,
        )

    def check_class_labels(self, classes: dict[str, int | None]) -> None:
        """Check the class numbers of the ports in ``classes`` now (the training data and the validation set),
        and in every batch a generator gives later."""
        self.classes = classes
        check_class_labels(self.columns, classes, "generator's batch" if self.generator else "training data")
        if self.validation is not None:
            check_class_labels(self.validation, classes, "validation set")

    @property
    def batches_per_round(self) -> int:
        return math.ceil(self.examples / self.batch_size)

    @property
    def validation_examples(self) -> int:
        return 0 if self.validation is None else len(next(iter(self.validation.values())))

    def round_order(self) -> np.ndarray:
        """A new permutation of the examples, drawn at the start of each round."""
        return self.rng.permutation(self.examples)

    def batch(self, order: np.ndarray, round_number: int, batch: int, absolute_batch: int) -> Columns:
        """The examples of batch ``batch`` (counted from 1) of a round whose examples come in ``order``;
        a generator is asked for them with Wolfram's keys."""
        if self.generator is None:
            index = order[(batch - 1) * self.batch_size : batch * self.batch_size]
            if self.size > 1:
                index = index[share(len(index), self.rank, self.size)]
            return {p: v[index] for p, v in self.columns.items()}
        if self.pending is not None:
            chosen, self.pending = self.pending, None
            return chosen
        info = generator_info(round_number, batch, absolute_batch, self.batch_size, self.round_length)
        if self.size > 1:
            info = _share_info(info, self.rank, self.size)
        columns = as_columns(self.net, self.generator(info), "generator's batch", self.targets)
        check_class_labels(columns, self.classes, "generator's batch")
        return columns

    def planned_count(self, batch: int) -> int:
        """The examples in batch ``batch`` (counted from 1) of a round, over all ranks: the batch size, or
        what is left of the round for its last batch (a generator's batch counts as the batch size)."""
        if self.generator is not None:
            return self.batch_size
        return min(self.batch_size, self.examples - (batch - 1) * self.batch_size)

    def validation_share(self) -> Columns | None:
        """This rank's contiguous share of the validation set (all of it in one process)."""
        if self.validation is None or self.size == 1:
            return self.validation
        part = share(self.validation_examples, self.rank, self.size)
        return {p: v[part] for p, v in self.validation.items()}


def _share_info(info: dict, rank: int, size: int) -> dict:
    """A generator's info dict for rank ``rank`` of ``size``: "BatchSize" is the rank's share of the batch."""
    part = share(info["BatchSize"], rank, size)
    return {**info, "BatchSize": part.stop - part.start, "Rank": rank, "WorldSize": size}
