"""What every training script's command line needs, so that a script shows its net and little else.

- the standard options: :func:`standard_options` (``--data``, ``--out``, ``--device``, ``--seed``) and
  :func:`schedule_options` (``--epochs``, ``--iterations``, ``--batch-size``), with argument types that
  refuse nonsense at once (:func:`count`, :func:`positive`, :func:`weight`);
- the training length in NetTrain's terms, one way for every script: :func:`schedule`;
- the data: the user's ``--data``, else Fashion-MNIST standing in, saying so (:func:`pictures`,
  :func:`stand_in`, :func:`data_folder`, :func:`list_skipped`), and a part held out (:func:`hold_out`);
- the reports: how training went and which net is kept (:func:`training_summary`), the loss plot
  (:func:`save_loss_plot`), the time taken and the files written (:class:`Run`);
- errors a user can act on turned into one line on stderr and exit status 1 (:func:`run_main`);
- a script loaded as a module, to reuse its nets (:func:`load_script`).

A script built from these pieces (``net`` and its data as the script defines them)::

    def main(argv=None):
        parser = cli.parser("my_vae.py", __doc__)
        cli.standard_options(parser, data="a folder of pictures", out="out/my_vae")
        cli.schedule_options(parser, default_epochs=2, batch_size=32)
        args = parser.parse_args(argv)
        run = cli.Run(args.out, args.device)
        found = cli.pictures(args.data, 28, stands_in_for="your pictures")
        plan = cli.schedule(len(found.images), args.batch_size, args.epochs, args.iterations, default_epochs=2)
        results = NetTrain(net, {"Input": to_float(found.images)}, "All", batch_size=plan.batch_size,
                           max_training_rounds=plan.rounds, training_progress_function=plan.stop)
        trained = cli.training_summary(results, keep="final" if args.iterations else "best")
        trained.save(run.out / "vae.npz")
        run.report([("vae.npz", "the trained net")], training=results["TotalTrainingTime"])

    if __name__ == "__main__":
        cli.run_main(main)

This module sits on top of the package: nothing in the library imports it.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from .backend import BackendError, get_xp
from .datasets import DatasetError, DatasetNotFoundError, ImageSet, SkippedFile, load_images, split
from .images import loss_plot, save_png
from .layer import NetError

# --- options -----------------------------------------------------------------------------------------------


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows ``description`` (a script's docstring) as written.

    Example:
        >>> parser("demo.py", "Trains a net.").format_usage()
        'usage: demo.py [-h]\\n'
    """
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def count(text: str) -> int:
    """An argument type: a whole number, at least 1.

    Example:
        >>> count("3")
        3
        >>> count("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be at least 1, got 0
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
        parser.add_argument("--out", default=out, metavar="DIR", help=f"output folder (default {out})")
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
) -> None:
    """Adds ``--epochs N`` (training rounds, default ``default_epochs``), unless ``iterations`` is False
    ``--iterations N`` (training batches in all, instead of ``--epochs``), and ``--batch-size N``; the
    ``..._help`` arguments word their help. :func:`schedule` turns them into NetTrain's options.

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


# --- the schedule ----------------------------------------------------------------------------------------


class Schedule(NamedTuple):
    """A training length chosen by rounds or by batches, in the form NetTrain takes it."""

    rounds: int  # max_training_rounds
    total: int  # batches in all
    batch_size: int
    per_round: int  # batches per round
    stop: tuple | None  # a training_progress_function that stops after ``total`` batches, or None
    description: str


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


# --- data --------------------------------------------------------------------------------------------------


def stand_in(for_what: str, how: str = "", why: str = "no --data") -> None:
    """Says that Fashion-MNIST stands in for the data the script was written for.

    Example:
        >>> stand_in("the paper's CIFAR-10", "its grey channel copied to red, green and blue")
        no --data: Fashion-MNIST stands in for the paper's CIFAR-10; its grey channel copied to red, green and blue
    """
    print(f"{why}: Fashion-MNIST stands in for {for_what}" + (f"; {how}" if how else ""))


def list_skipped(skipped: Sequence[SkippedFile], read: int | None = None, shown: int = 5) -> None:
    """Lists the files that could not be read (the first ``shown`` of them), and how many were read.

    Example:
        >>> list_skipped([SkippedFile(Path("a.jpg"), "truncated image")], read=12)
          skipped a.jpg: truncated image
          1 files skipped, 12 pictures read
    """
    for file in skipped[:shown]:
        print(f"  skipped {file.path}: {file.reason}")
    if len(skipped) > shown:
        print(f"  ... and {len(skipped) - shown} more files skipped")
    if skipped and read is not None:
        print(f"  {len(skipped)} files skipped, {read} pictures read")


def data_folder(data: str, takes: str = "a folder of pictures, CIFAR-10 batches or MNIST-format files") -> Path:
    """The ``--data`` folder (or file), which must exist; the error says what ``--data`` takes."""
    folder = Path(data).expanduser()
    if not folder.exists():
        raise DatasetNotFoundError(f"{folder}: no such folder (--data takes {takes})")
    return folder


def pictures(
    data: str | None,
    size: int | tuple[int, int],
    *,
    stands_in_for: str,
    how: str = "",
    color_space: str = "Grayscale",
    kind: str = "train",
    limit: int | None = None,
) -> ImageSet:
    """The pictures of ``--data`` (a folder of pictures, CIFAR-10 batches or MNIST-format files, read by
    :func:`netgraph.datasets.load_images`; files that cannot be read are listed), else Fashion-MNIST,
    saying what it stands in for (:func:`stand_in`). ``size`` is a side or (width, height).

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.zeros((30, 40), np.uint8)).save(folder / "a.png")
        >>> _ = (folder / "notes.txt").write_text("not a picture")
        >>> found = pictures(str(folder), 28, stands_in_for="your pictures")  # doctest: +ELLIPSIS
          skipped .../notes.txt: ...
          1 files skipped, 1 pictures read
        >>> found.images.shape
        (1, 1, 28, 28)
    """
    if data is None:
        found = load_images(None, size, color_space=color_space, kind=kind, limit=limit)
        stand_in(stands_in_for, how)
        return found
    found = load_images(data_folder(data), size, color_space=color_space, kind=kind, limit=limit)
    list_skipped(found.skipped, read=len(found.images))
    return found


def hold_out(examples: Any, fraction: float, seed: int | None, most: int | None = None) -> tuple[Any, Any]:
    """``examples`` shuffled with ``seed`` and cut into (kept, held out): ``fraction`` of them held out
    (rounded), at least one and at most ``most``; none when there is only one example.

    Example:
        >>> import numpy as np
        >>> kept, held = hold_out(np.arange(10), 0.2, seed=0)
        >>> len(kept), len(held), sorted([*kept, *held]) == list(range(10))
        (8, 2, True)
        >>> [len(part) for part in hold_out(np.arange(50), 0.2, seed=0, most=3)]
        [47, 3]
        >>> [len(part) for part in hold_out(np.arange(1), 0.2, seed=0)]
        [1, 0]
    """
    n = len(examples)
    held = min(most or n - 1, max(1, round(fraction * n))) if n > 1 else 0
    kept, out = split(examples, fractions=(1 - held / n, held / n), seed=seed)
    return kept, out


# --- reports -----------------------------------------------------------------------------------------------


def training_summary(
    results: Any, *, keep: str = "best", unit: str = "images", digits: int = 2, losses: str = ""
) -> Any:
    """Prints how NetTrain's training went (its "All" results) and returns the net to keep: with
    ``keep="final"`` the net after the last batch (a run counted in batches), with ``keep="best"`` NetTrain's
    choice, the round with the lowest validation loss when there was validation data. Losses are printed
    with ``digits`` decimals; ``losses`` says what they measure.

    Example:
        >>> results = {"TotalTrainingTime": 1.25, "TotalRounds": 2, "TotalBatches": 8, "MeanExamplesPerSecond": 200,
        ...            "ReasonTrainingStopped": "MaxTrainingRounds", "RoundLossList": [3.5, 2.25],
        ...            "ValidationLossList": [3.0, 3.125], "BestValidationRound": 1, "TrainedNet": "net of round 1"}
        >>> training_summary(results, digits=1, losses="nats per image")
        training took 1.2 s: 2 rounds, 8 batches, 200.0 images/s; stopped by MaxTrainingRounds
          round losses (nats per image) 3.5, 2.2
          validation losses 3.0, 3.1
          kept the net of round 1, the lowest validation loss
        'net of round 1'
    """
    if keep not in ("best", "final"):
        raise ValueError(f'keep must be "best" or "final", got {keep!r}')
    print(
        f"training took {results['TotalTrainingTime']:.1f} s: {results['TotalRounds']} rounds, "
        f"{results['TotalBatches']} batches, {results['MeanExamplesPerSecond']:.1f} {unit}/s; "
        f"stopped by {results['ReasonTrainingStopped']}"
    )
    for name, values in (
        ("round losses" + (f" ({losses})" if losses else ""), results["RoundLossList"]),
        ("validation losses", results["ValidationLossList"]),
    ):
        if values:
            print(f"  {name} {', '.join(f'{v:.{digits}f}' for v in values)}")
    if keep == "final":
        batches = results["BatchLossList"]
        last = f"last batch loss {batches[-1]:.{digits}f}; " if len(batches) else ""
        print(f"  {last}kept the net after batch {results['TotalBatches']}")
        return results["FinalNet"]
    if results["ValidationLossList"]:
        print(f"  kept the net of round {results['BestValidationRound']}, the lowest validation loss")
    return results["TrainedNet"]


def save_loss_plot(results: Any, path: str | Path, title: str) -> Path:
    """NetTrain's loss plot (round, validation and smoothed batch losses) with a title, written as a PNG."""
    plot = loss_plot(
        results["RoundLossList"],
        results["ValidationLossList"],
        results["BatchLossList"],
        results["BatchesPerRound"],
        title=title,
    )
    return save_png(plot, path)


class Run:
    """One run of a script: its output folder, made at once; the device, checked at once (without a
    usable GPU the run stops before any work, saying what to install); the clock for :meth:`report`."""

    def __init__(self, out: str | Path, device: str = "CPU") -> None:
        self.started = time.perf_counter()
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        get_xp(device)
        self.device = device

    def seconds(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def report(
        self, files: Iterable[tuple[str, str]], *, training: float | str, what: str = "pictures and the trained net"
    ) -> float:
        """Prints the time taken (``training``: the seconds spent training, or a sentence on them) and the
        files of ``files`` (name in the output folder, what it holds) that were written; returns the seconds.

        Example:
            >>> import tempfile
            >>> run = Run(tempfile.mkdtemp())
            >>> _ = (run.out / "vae.npz").write_bytes(b"")
            >>> files = [("vae.npz", "the trained net"), ("none.png", "never written")]
            >>> seconds = run.report(files, training=1.0)  # doctest: +ELLIPSIS
            <BLANKLINE>
            time taken: ... s in all, 1.0 s of it training
            pictures and the trained net are in .../:
              .../vae.npz: the trained net
        """
        total = self.seconds()
        spent = f"{training:.1f} s of it training" if isinstance(training, (int, float)) else training
        print(f"\ntime taken: {total:.1f} s in all, {spent}")
        print(f"{what} are in {self.out}/:")
        for name, text in files:
            if (self.out / name).exists():
                print(f"  {self.out / name}: {text}")
        return total


# --- running -----------------------------------------------------------------------------------------------


def run_main(
    main: Callable[[], Any], hints: Mapping[type[BaseException], str] | None = None, prog: str | None = None
) -> None:
    """Runs a script's ``main()``. Errors a user can act on - bad data, a bad net file, training that
    failed (:class:`NetError`), no usable GPU (:class:`BackendError`), a file that cannot be read or
    written (:class:`OSError`) - end it with one line, ``<script>: <message>``, on stderr and exit status 1;
    ``hints`` adds a line in parentheses for errors of a given type. Other errors show their traceback.

    Example:
        >>> def main():
        ...     raise DatasetError("photos/: no usable images")
        >>> try:
        ...     run_main(main, prog="demo.py")
        ... except SystemExit as exit:
        ...     print("exit status", exit.code)
        exit status 1
    """
    prog = prog or Path(sys.argv[0]).name
    try:
        main()
    except (NetError, BackendError, OSError) as err:
        hint = next((text for kind, text in (hints or {}).items() if isinstance(err, kind)), None)
        print(f"{prog}: {err}" + (f"\n  ({hint})" if hint else ""), file=sys.stderr)
        raise SystemExit(1) from None


def load_script(path: str | Path, name: str | None = None) -> ModuleType:
    """The Python file ``path`` run as a fresh module (its ``if __name__ == "__main__":`` block does not
    run), registered in ``sys.modules`` under ``name`` (default ``script_<file name>``): how tests,
    benchmarks and other scripts reuse a script's nets when its folder is not a package.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "tiny.py"
        >>> _ = path.write_text("SIZE = 28\\nif __name__ == '__main__':\\n    raise SystemExit('not run')\\n")
        >>> load_script(path).SIZE
        28
    """
    path = Path(path)
    name = name or f"script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
