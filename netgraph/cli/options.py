"""Command-line options: the standard ones, the schedule's, one-line options whose type follows their
default, argument types that refuse nonsense at once; and the training length in NetTrain's terms.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..datasets import (
    DatasetError,
)

# --- options -----------------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """An argument parser that runs the checks of options that depend on each other (:meth:`check`) as part of
    parsing, a failed one a usage error (exit status 2), and keeps the command line it parsed in the arguments:
    ``args.command_line``, the script as it was called and its arguments (a resume command repeats them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checks: list[Callable[[argparse.Namespace], None]] = []

    def check(self, check: Callable[[argparse.Namespace], None]) -> None:
        """Runs ``check`` on the parsed arguments; it calls :meth:`error` on a bad combination."""
        self.checks.append(check)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        words = list(sys.argv[1:] if args is None else args)
        parsed, extra = super().parse_known_args(words, namespace)
        for check in self.checks:
            check(parsed)
        called = sys.argv[0] if Path(sys.argv[0]).name == self.prog.split()[0] else self.prog.split()[0]
        parsed.command_line = (called, words)  # a sub-command's parser sets it first, the whole command line last
        return parsed, extra


def parser(prog: str, description: str | None) -> Parser:
    """An argument parser (:class:`Parser`) whose ``--help`` shows ``description`` (a script's docstring) as
    written.

    Example:
        >>> parser("demo.py", "Trains a net.").format_usage()
        'usage: demo.py [-h]\\n'
        >>> parser("demo.py", None).parse_args([]).command_line
        ('demo.py', [])
    """
    return Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def _at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def count(text: str) -> int:
    """An argument type: a whole number, at least 1.

    Example:
        >>> count("3")
        3
        >>> count("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be at least 1, got 0
    """
    return _at_least(text, 1)


def positive(text: str) -> float:
    """An argument type: a number above 0 (a learning rate, a temperature).

    Example:
        >>> positive("1e-3")
        0.001
        >>> positive("nan")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be positive, got nan
    """
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def weight(text: str) -> float:
    """An argument type: a finite number, at least 0 (the weight of a loss term).

    Example:
        >>> weight("0"), weight("1e-5")
        (0.0, 1e-05)
        >>> weight("-1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a finite number at least 0, got -1
    """
    value = _number(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number at least 0, got {text}")
    return value


def fraction(text: str) -> float:
    """An argument type: a number in [0, 1) (a momentum, a decay rate, a dropout probability).

    Example:
        >>> fraction("0.5")
        0.5
        >>> fraction("1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be in [0, 1), got 1
    """
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def folder(text: str) -> str:
    """An argument type: a folder to write to, there or not yet; a path that is there but is not a folder (a
    file, a pipe) is refused at once, before any work.

    Example:
        >>> import tempfile
        >>> file = tempfile.mkstemp()[1]
        >>> folder("out/demo")
        'out/demo'
        >>> folder(file)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        argparse.ArgumentTypeError: ...: there is a file of that name; give a folder
    """
    path = Path(text)
    if not text or (path.exists() and not path.is_dir()):
        raise argparse.ArgumentTypeError(f"{text!r}: there is a file of that name; give a folder" if text else
                                         "give a folder, got ''")  # fmt: skip
    return text


def file_prefix(text: str) -> str:
    """An argument type: the start of a file name, which keeps the files in their folder: no path separator (so
    no ``..`` step or absolute path either).

    Example:
        >>> file_prefix("synthetic_")
        'synthetic_'
        >>> file_prefix("../../x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be the start of a file name, without / or ... got '../../x'
    """
    if any(mark in text for mark in ("/", "\\", "\0")) or text in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"must be the start of a file name, without / or \\ (the files go in --out), got {text!r}"
        )
    return text


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def standard_options(
    parser: argparse.ArgumentParser,
    *,
    data: str | None = None,
    out: str | None = None,
    seed: str = "random seed",
) -> None:
    """Adds ``--data DIR`` (when ``data`` gives its help), ``--out DIR`` (when ``out`` gives its default),
    ``--device`` (CPU or GPU, default CPU) and ``--seed N`` (default 1; ``seed`` says what it seeds).

    Example:
        >>> p = parser("demo.py", None)
        >>> standard_options(p, data="a folder of pictures", out="out/demo")
        >>> args = p.parse_args(["--device", "GPU"])
        >>> args.data, args.out, args.device, args.seed
        (None, 'out/demo', 'GPU', 1)
    """
    if data is not None:
        parser.add_argument("--data", metavar="DIR", help=data)
    if out is not None:
        parser.add_argument("--out", default=out, type=folder, metavar="DIR", help=f"output folder (default {out})")
    parser.add_argument("--device", default="CPU", choices=["CPU", "GPU"], help="CPU (NumPy) or GPU (CuPy)")
    parser.add_argument("--seed", type=int, default=1, metavar="N", help=f"{seed} (default 1)")


def schedule_options(
    parser: argparse.ArgumentParser,
    *,
    default_epochs: int,
    batch_size: int,
    iterations: bool = True,
    epochs_help: str | None = None,
    iterations_help: str = "training batches in all, instead of --epochs",
    batch_help: str = "examples per batch",
    checkpoints: bool = True,
) -> None:
    """Adds ``--epochs N`` (training rounds, default ``default_epochs``), unless ``iterations`` is False
    ``--iterations N`` (training batches in all, instead of ``--epochs``), and ``--batch-size N``; the
    ``..._help`` arguments word their help. :func:`schedule` turns them into NetTrain's options. With
    ``checkpoints``, also ``--checkpoint DIR`` and ``--resume`` (:func:`checkpoint_options`).

    Example:
        >>> p = parser("demo.py", None)
        >>> schedule_options(p, default_epochs=2, batch_size=32)
        >>> args = p.parse_args(["--iterations", "100"])
        >>> args.epochs, args.iterations, args.batch_size
        (None, 100, 32)
    """
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs", type=count, metavar="N", help=epochs_help or f"training rounds (default {default_epochs})"
    )
    if iterations:
        length.add_argument("--iterations", type=count, metavar="N", help=iterations_help)
    parser.add_argument(
        "--batch-size", type=count, default=batch_size, metavar="N", help=f"{batch_help} (default {batch_size})"
    )
    if checkpoints:
        checkpoint_options(parser)


def checkpoint_options(parser: argparse.ArgumentParser, phases: Sequence[str] = ()) -> None:
    """Adds ``--checkpoint DIR`` (a checkpoint every round, to resume from; with ``phases``, a sub-folder for each)
    and ``--resume`` (continue from the newest checkpoint there), the options :func:`netgraph.cli.train` reads.
    ``--resume`` without ``--checkpoint`` is a usage error (exit status 2) when ``parser`` is a :class:`Parser`.
    :func:`schedule_options` and :func:`phase_options` add them.

    Example:
        >>> p = parser("demo.py", None)
        >>> checkpoint_options(p)
        >>> args = p.parse_args(["--checkpoint", "runs/demo", "--resume"])
        >>> args.checkpoint, args.resume
        ('runs/demo', True)
    """
    each = f", in a sub-folder for each phase ({', '.join(phases)})" if phases else ""
    finished = "a phase that had finished" if phases else "a training that had finished"
    parser.add_argument(
        "--checkpoint", type=folder, metavar="DIR",
        help=f"write a training checkpoint to DIR every round (or every round's worth of batches){each}, to "
             "resume from with --resume",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true",
        help="continue from the newest checkpoint in --checkpoint DIR (which it needs) with the same options (a lower "
             f"--learning-rate may be given); {finished} is read back, not trained again; a DIR without checkpoints "
             "starts from the beginning",
    )  # fmt: skip

    parser.set_defaults(phases=list(phases))  # netgraph.cli.train: the last phase is where other ranks stop

    def resume_needs_a_folder(args: argparse.Namespace) -> None:
        if args.resume and not args.checkpoint:
            parser.error("--resume continues from the checkpoints in --checkpoint DIR: give the folder they are in")

    if isinstance(parser, Parser):
        parser.check(resume_needs_a_folder)


def phase_options(
    parser: argparse.ArgumentParser, phases: Mapping[str, tuple[str, str]], checkpoints: bool = True
) -> Callable[[argparse.Namespace], None]:
    """Schedule options for a training in phases (pre-training, then fine-tuning, ...): for each phase name
    ``--<name>-epochs N`` and ``--<name>-iterations N``, one or the other, with ``phases[name]`` their help
    texts; ``--iterations N``, batches in every phase, for quick runs; with ``checkpoints``, ``--checkpoint DIR``
    and ``--resume`` (:func:`checkpoint_options`, a sub-folder for each phase). Returns the check to call on the
    parsed arguments: ``--iterations`` cannot go with a phase's own option (a usage error, exit status 2).
    :func:`phase_schedule` turns them into each phase's :class:`Schedule`.

    Example:
        >>> p = parser("demo.py", None)
        >>> check = phase_options(p, {"pretrain": ("pre-training rounds", "pre-training batches (default 300)")})
        >>> args = p.parse_args(["--pretrain-epochs", "2"])
        >>> check(args)
        >>> args.pretrain_epochs, args.pretrain_iterations, args.iterations
        (2, None, None)
    """
    for name, (rounds, batches) in phases.items():
        group = parser.add_mutually_exclusive_group()
        group.add_argument(f"--{name}-epochs", type=count, metavar="N", help=rounds)
        group.add_argument(f"--{name}-iterations", type=count, metavar="N", help=batches)
    parser.add_argument("--iterations", type=count, metavar="N", help="batches in each phase, for quick runs")
    if checkpoints:
        checkpoint_options(parser, list(phases))

    def check(args: argparse.Namespace) -> None:
        for name in phases:
            given = [f"--{name}-{kind}" for kind in ("epochs", "iterations") if getattr(args, f"{name}_{kind}")]
            if args.iterations and given:
                parser.error(f"--iterations sets every phase; it cannot go with {given[0]}")

    return check


def phase_schedule(args: argparse.Namespace, name: str, examples: int, default_iterations: int) -> Schedule:
    """The :class:`Schedule` of the phase ``name`` from the options of :func:`phase_options`: its own rounds or
    batches, else ``--iterations``, else ``default_iterations`` batches.

    Example:
        >>> import argparse
        >>> args = argparse.Namespace(pretrain_epochs=None, pretrain_iterations=None, iterations=5, batch_size=32)
        >>> phase_schedule(args, "pretrain", 100, 300).description
        '5 batches of 32 (--iterations)'
    """
    epochs, batches = getattr(args, f"{name}_epochs"), getattr(args, f"{name}_iterations")
    flag = f"--{name}-iterations" if batches else "--iterations"
    return schedule(
        examples, args.batch_size, epochs, batches or args.iterations, default_iterations=default_iterations, flag=flag
    )


def option(
    parser: argparse.ArgumentParser,
    flag: str,
    default: Any = None,
    help: str = "",
    *,
    minimum: int | None = None,
    **settings: Any,
) -> None:
    """Adds one option, its type read from ``default``: ``False`` makes a switch, an int a whole number of at
    least 1 (:func:`count`), a float a positive number (:func:`positive`), a string text. ``default`` may also
    be the type itself (``int``, ``float``, ``str``) for an option with no default; ``minimum`` makes it a whole
    number of at least that. The help ends with the default unless it names one already; ``settings`` go to
    ``add_argument`` as they are (another ``type``, ``metavar``, ``choices``, ...). Ints have the metavar N.

    Example:
        >>> p = parser("demo.py", None)
        >>> option(p, "--learning-rate", 5e-4, "ADAM's learning rate")
        >>> option(p, "--train-images", int, "train on the first N images (default all)")
        >>> option(p, "--overfit", False, "no validation, no early stopping")
        >>> option(p, "--patience", 25, "rounds without improvement", minimum=0)
        >>> args = p.parse_args(["--train-images", "100", "--patience", "0"])
        >>> args.learning_rate, args.train_images, args.overfit, args.patience
        (0.0005, 100, False, 0)
        >>> print(p.format_help().split("options:")[1].strip())  # doctest: +NORMALIZE_WHITESPACE
        -h, --help            show this help message and exit
        --learning-rate LEARNING_RATE
                              ADAM's learning rate (default 0.0005)
        --train-images N      train on the first N images (default all)
        --overfit             no validation, no early stopping
        --patience N          rounds without improvement (default 25)
    """
    if default is False:
        parser.add_argument(flag, action="store_true", help=help, **settings)
        return
    kind, value = (default, None) if isinstance(default, type) else (type(default), default)
    if minimum is not None:
        settings.setdefault("type", lambda text: _at_least(text, minimum))
    settings.setdefault("type", {int: count, float: positive}.get(kind, str))
    if kind is int:
        settings.setdefault("metavar", "N")
    said = help if value is None or "default" in help else f"{help} (default {value})"
    parser.add_argument(flag, default=value, help=said, **settings)


# --- the schedule ----------------------------------------------------------------------------------------


class Schedule(NamedTuple):
    """A training length chosen by rounds or by batches, in the form NetTrain takes it."""

    rounds: int  # max_training_rounds
    total: int  # batches in all
    batch_size: int
    per_round: int  # batches per round
    stop: tuple | None  # a training_progress_function that stops after ``total`` batches, or None
    description: str

    @property
    def checkpoint_interval(self) -> tuple[str, int]:
        """How often a checkpoint is written, as NetTrain's "Interval": every round; a run counted in batches, which
        may stop part-way through a round, every round's worth of batches (or at its end, when it is shorter)."""
        return ("Batches", min(self.per_round, self.total)) if self.stop else ("Rounds", 1)


def _stop_after(batches: int) -> tuple:
    return (lambda progress: "StopTraining"), {"Interval": ("Batches", batches)}


def schedule(
    examples: int,
    batch_size: int,
    epochs: int | None = None,
    iterations: int | None = None,
    default_epochs: int | None = None,
    *,
    default_iterations: int | None = None,
    flag: str = "--iterations",
) -> Schedule:
    """Rounds (``epochs``, else ``default_epochs``) or a number of batches (``iterations``, else
    ``default_iterations``), as command lines ask for them. A number of batches may end mid-round:
    NetTrain runs enough rounds and ``stop``, a progress function, ends it after the last batch.
    ``flag`` names the option that gave ``iterations`` in the description.

    Example:
        >>> s = schedule(100, 32, None, 10, default_epochs=2)
        >>> s.rounds, s.total, s.per_round, s.description
        (3, 10, 4, '10 batches of 32 (--iterations)')
        >>> schedule(100, 32, None, None, default_epochs=2).description
        '2 rounds of 4 batches of 32 (the default)'
        >>> schedule(100, 32, 5).description
        '5 rounds of 4 batches of 32'
        >>> s = schedule(100, 200, default_iterations=3)
        >>> s.rounds, s.total, s.batch_size, s.description
        (3, 3, 100, '3 batches of 100 (the default)')
    """
    if examples < 1:
        raise DatasetError("no training examples: training needs at least one")
    batch_size = min(batch_size, examples)
    per_round = math.ceil(examples / batch_size)
    if iterations or (not epochs and default_iterations):
        batches = iterations or default_iterations
        text = f"{batches} batches of {batch_size} ({flag if iterations else 'the default'})"
        return Schedule(math.ceil(batches / per_round), batches, batch_size, per_round, _stop_after(batches), text)
    rounds = epochs or default_epochs
    if not rounds:
        raise ValueError("schedule: give epochs or iterations, or a default for one of them")
    text = f"{rounds} rounds of {per_round} batches of {batch_size}" + ("" if epochs else " (the default)")
    return Schedule(rounds, rounds * per_round, batch_size, per_round, None, text)
