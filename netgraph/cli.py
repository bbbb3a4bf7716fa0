"""What every training script's command line needs, so that a script shows its net and little else.

- the standard options: :func:`standard_options` (``--data``, ``--out``, ``--device``, ``--seed``) and
  :func:`schedule_options` (``--epochs``, ``--iterations``, ``--batch-size``), or :func:`phase_options` for a
  training in phases; one-line options whose type follows their default (:func:`option`); argument types
  that refuse nonsense at once (:func:`count`, :func:`positive`, :func:`weight`, :func:`fraction`);
- the training length in NetTrain's terms, one way for every script: :func:`schedule`, :func:`phase_schedule`;
- the data: the user's ``--data``, else Fashion-MNIST standing in, saying so (:func:`pictures`, with class
  labels; :func:`picture_sets`, with a test set; :func:`stand_in`, :func:`data_folder`, :func:`list_skipped`),
  and a part held out (:func:`hold_out`);
- the reports: the data and the schedule (:func:`report_data`, :func:`report_schedule`), how training went and
  which net is kept (:func:`training_summary`), the loss plot (:func:`save_loss_plot`), the pictures of a
  trained VAE (:func:`vae_pictures`) and of one in training (:class:`RoundPictures`), the time taken and the
  files written (:class:`Run`);
- new pictures from a trained net's decoder, as a command (:func:`sample_options`, :func:`write_samples`,
  :func:`save_samples`);
- errors a user can act on turned into one line on stderr and exit status 1 (:func:`run_main`);
- a script loaded as a module, to reuse its nets (:func:`load_script`).

A script built from these pieces (``net`` and its data as the script defines them)::

    def main(argv=None):
        parser = cli.parser("my_vae.py", __doc__)
        cli.standard_options(parser, data="a folder of pictures", out="out/my_vae")
        cli.schedule_options(parser, default_epochs=2, batch_size=32)
        cli.option(parser, "--learning-rate", 1e-3, "ADAM's learning rate")
        args = parser.parse_args(argv)
        run = cli.Run(args.out, args.device)
        found = cli.pictures(args.data, 28, stands_in_for="your pictures")
        plan = cli.schedule(len(found.images), args.batch_size, args.epochs, args.iterations, default_epochs=2)
        results = NetTrain(net, {"Input": to_float(found.images)}, "All", batch_size=plan.batch_size,
                           max_training_rounds=plan.rounds, training_progress_function=plan.stop)
        trained = cli.training_summary(results, keep="final" if args.iterations else "best")
        trained.save(run.path("vae.npz", "the trained net"))
        run.report(training=results["TotalTrainingTime"])

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

import numpy as np

from . import load  # the package's: it registers the layer classes a file may name
from .backend import BackendError, get_xp
from .datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    DatasetError,
    DatasetNotFoundError,
    SkippedFile,
    _has_mnist_files,
    _resize_batch,
    fashion_mnist,
    image_folder,
    load_images,
    split,
)
from .generate import Decode, Encode, interpolate, sample_prior, vae_parts
from .images import image_grid, interpolation_strip, loss_plot, save_png
from .io import NetFileError
from .layer import NetError
from .surgery import NetExtract

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


def phase_options(
    parser: argparse.ArgumentParser, phases: Mapping[str, tuple[str, str]]
) -> Callable[[argparse.Namespace], None]:
    """Schedule options for a training in phases (pre-training, then fine-tuning, ...): for each phase name
    ``--<name>-epochs N`` and ``--<name>-iterations N``, one or the other, with ``phases[name]`` their help
    texts; and ``--iterations N``, batches in every phase, for quick runs. Returns the check to call on the
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


class Pictures(NamedTuple):
    """Pictures found by :func:`pictures`: ``uint8 (N, C, height, width)``, their class numbers ``(N,)``, the
    class names, a short name for titles and a description."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str
    description: str


def holds_a_data_set(folder: Path) -> bool:
    """True for a CIFAR-10 archive, or a folder with MNIST-format files or CIFAR-10 batches (there or where
    the CIFAR-10 archives unpack to), which :func:`netgraph.datasets.load_images` reads with their labels;
    False for a folder of pictures.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> holds_a_data_set(folder)
        False
        >>> _ = (folder / "data_batch_1.bin").write_bytes(b"")
        >>> holds_a_data_set(folder)
        True
    """
    if folder.is_file() or _has_mnist_files(folder, "train"):
        return True
    places = (folder, folder / "cifar-10-batches-bin", folder / "cifar-10-batches-py")
    return any((place / name).is_file() for place in places for name in _CIFAR_FILES)


_CIFAR_FILES = (
    *("data_batch_1.bin", "data_batch_1", "test_batch.bin", "test_batch"),
    *("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"),
)


def pictures(
    data: str | None,
    size: int | tuple[int, int],
    *,
    stands_in_for: str,
    how: str = "",
    why: str = "no --data",
    color_space: str = "Grayscale",
    kind: str = "train",
    limit: int | None = None,
    resampling: str = "Bilinear",
    label: int | None = None,
) -> Pictures:
    """The pictures of ``--data``, else Fashion-MNIST, saying what it stands in for (:func:`stand_in`).
    ``--data`` may hold MNIST-format files or CIFAR-10 batches (:func:`holds_a_data_set`), read with their
    labels by :func:`netgraph.datasets.load_images`; else it is a folder of pictures, read by
    :func:`netgraph.datasets.image_folder` with ``resampling`` (the files that cannot be read are listed),
    each picture's class the name of the folder it is in. ``size`` is a side or (width, height); ``limit``
    keeps the first N pictures (for a folder of pictures, the description says so). ``label`` picks the
    Fashion-MNIST pictures of one class (before ``limit``): one kind of object, as a seed's pictures may be.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("cat", "dog"):
        ...     (folder / name).mkdir()
        ...     Image.fromarray(np.zeros((30, 40), np.uint8)).save(folder / name / "a.png")
        >>> _ = (folder / "notes.txt").write_text("not a picture")
        >>> found = pictures(str(folder), 28, stands_in_for="your pictures")  # doctest: +ELLIPSIS
          skipped .../notes.txt: ...
          1 files skipped, 2 pictures read
        >>> found.images.shape, found.labels.tolist(), found.class_names
        ((2, 1, 28, 28), [0, 1], ('cat', 'dog'))
        >>> found.description.endswith("(grey, 28×28; by folder: cat 1, dog 1)")
        True
    """
    width, height = (size, size) if isinstance(size, int) else size
    look = f"{'grey' if color_space == 'Grayscale' else 'colour'}, {width}×{height}"
    if data is None:
        if label is None:
            found = load_images(None, size, color_space=color_space, kind=kind, limit=limit)
            images, labels, of = found.images, found.labels.astype(np.int64), ""
        else:  # one class, chosen before any picture is resized
            raw, all_labels = fashion_mnist(kind=kind)
            chosen = np.flatnonzero(all_labels == label)[:limit]
            mode = "L" if color_space == "Grayscale" else "RGB"
            images, labels = _resize_batch(raw[chosen], (width, height), mode), all_labels[chosen].astype(np.int64)
            of = f" of {FASHION_MNIST_CLASSES[label]!r}"
        stand_in(stands_in_for, how, why)
        text = f"{len(images):,} Fashion-MNIST pictures{of} ({kind}; {look.replace('colour', 'grey as RGB')})"
        return Pictures(images, labels, FASHION_MNIST_CLASSES, "Fashion-MNIST", text)
    folder = data_folder(data)
    if holds_a_data_set(folder):
        found = load_images(folder, size, color_space=color_space, kind=kind, limit=limit)
        labels, cifar = found.labels.astype(np.int64), found.description.startswith("CIFAR-10")
        names = CIFAR10_CLASSES if cifar else tuple(str(k) for k in range(int(labels.max(initial=0)) + 1))
        return Pictures(found.images, labels, names, "CIFAR-10" if cifar else folder.name, found.description)
    images, paths, skipped = image_folder(folder, size, color_space=color_space, resampling=resampling)
    list_skipped(skipped, read=len(images))
    parents = [path.parent.name for path in paths]
    names = tuple(sorted(set(parents)))
    labels = np.array([names.index(parent) for parent in parents], dtype=np.int64)
    counts = ", ".join(f"{name} {int(np.sum(labels == k))}" for k, name in enumerate(names))
    text = f"{len(images)} pictures from {folder} ({look}" + (f"; by folder: {counts})" if len(names) > 1 else ")")
    used = f", the first {len(labels[:limit])} used" if len(labels[:limit]) < len(labels) else ""
    return Pictures(images[:limit], labels[:limit], names, folder.name, text + used)


def _with_channels(images: np.ndarray) -> np.ndarray:
    return images[:, None] if images.ndim == 3 else images


class PictureSets(NamedTuple):
    """Training and test pictures from :func:`picture_sets`, ``uint8 (N, C, height, width)``, a short name for
    titles and a description."""

    train: np.ndarray
    test: np.ndarray
    name: str
    description: str


def picture_sets(
    data: str | None,
    size: int | tuple[int, int],
    *,
    stands_in_for: str,
    how: str = "",
    why: str = "no --data",
    color_space: str = "Grayscale",
    train: int | None = None,
    test: int | None = None,
    fraction: float = 0.1,
    most: int | None = None,
    seed: int | None = None,
    own_test: bool = False,
    own: tuple[str, Callable[[str], tuple[np.ndarray, Any]]] | None = None,
) -> PictureSets:
    """Training pictures and a test set: the pictures of ``--data`` (:func:`pictures`) with ``fraction`` of
    them held out (:func:`hold_out`, at most ``most``), or with ``own_test`` the t10k files of MNIST-format
    files when there are some; else Fashion-MNIST's training and test pictures. ``train`` and ``test`` keep
    the first N of each. ``own`` is the data set the script was written for, ``(name, load)``, tried first
    without ``--data``: ``load("train")`` and ``load("test")`` give (pictures, labels) at the asked size, the
    pictures ``(N, C, height, width)`` or grey ``(N, height, width)``; when it fails (:class:`DatasetError`,
    :class:`OSError`) Fashion-MNIST stands in, saying why.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> for i in range(10):
        ...     Image.fromarray(np.full((8, 8), 25 * i, np.uint8)).save(folder / f"{i}.png")
        >>> sets = picture_sets(str(folder), 8, stands_in_for="your pictures", fraction=0.2, seed=0, train=5)
        >>> len(sets.train), len(sets.test), sets.description  # doctest: +ELLIPSIS
        (5, 2, '10 pictures from ... (grey, 8×8); 2 held out as the test set')
    """
    if data is None and own is not None:
        name, load = own
        try:
            images, held = (_with_channels(load(kind)[0])[:n] for kind, n in (("train", train), ("test", test)))
            return PictureSets(images, held, name, f"{name} ({len(images):,} training and {len(held):,} test pictures)")
        except (DatasetError, OSError) as err:
            why = f"{name} is not available ({str(err).splitlines()[0].rstrip(':')})"
    options: dict[str, Any] = {"stands_in_for": stands_in_for, "how": how, "why": why, "color_space": color_space}
    if data is None:
        found = pictures(None, size, limit=train, **options)
        held = load_images(None, size, color_space=color_space, kind="test", limit=test).images
        return PictureSets(found.images, held, found.name, f"{found.description} and {len(held):,} test pictures")
    found = pictures(data, size, **options)
    folder = Path(data).expanduser()
    if own_test and found.description.startswith("MNIST-format") and _has_mnist_files(folder, "test"):
        held = load_images(folder, size, color_space=color_space, kind="test").images
        text = f"{found.description}; its t10k files are the test set"
        return PictureSets(found.images[:train], held[:test], found.name, text)
    if len(found.images) < 2:
        raise DatasetError(f"{data}: {len(found.images)} usable picture(s); at least 2 are needed (training, test)")
    kept, held = hold_out(found.images, fraction, seed, most)
    text = f"{found.description}; {len(held)} held out as the test set"
    return PictureSets(kept[:train], held[:test], found.name, text)


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


def report_data(description: str, unit: str = "images", note: str = "", **counts: int) -> None:
    """Prints what the data is and how many examples each part has.

    Example:
        >>> report_data("Fashion-MNIST (train)", training=900, validation=100, test=50)
        data: Fashion-MNIST (train)
              900 training, 100 validation, 50 test images
    """
    print(f"data: {description}")
    print(f"      {', '.join(f'{n} {part}' for part, n in counts.items())} {unit}{note}")


def report_schedule(plan: Schedule, method: str, *notes: str, unit: str = "images", at_most: bool = False) -> None:
    """Prints the schedule (the most it may run, when ``at_most``), the examples it sees, the optimiser and
    ``notes``, one a line.

    Example:
        >>> report_schedule(schedule(100, 32, None, 10), "ADAM, learning rate 0.001", "(the paper: 20 rounds)")
        schedule: 10 batches of 32 (--iterations) = 10 batches, 320 images; ADAM, learning rate 0.001
                  (the paper: 20 rounds)
    """
    seen = f"{plan.total:,} batches, {plan.total * plan.batch_size:,} {unit}"
    print(f"schedule: {'at most ' * at_most}{plan.description} = {seen}; {method}")
    for note in notes:
        print(f"          {note}")


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
        get_xp(device)
        self.device = device
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, str] = {}

    def path(self, name: str, what: str) -> Path:
        """``name`` in the output folder, noted with what it holds for :meth:`report`."""
        self.files[name] = what
        return self.out / name

    def png(self, name: str, what: str, picture: Any) -> Path:
        """Writes ``picture`` (a PIL image or an array, as :func:`netgraph.images.save_png` takes it) as ``name`` in
        the output folder, noted with what it shows for :meth:`report`."""
        return save_png(picture, self.path(name, what))

    def seconds(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def report(
        self,
        files: Iterable[tuple[str, str]] = (),
        *,
        training: float | str,
        what: str = "pictures and the trained net",
    ) -> float:
        """Prints the time taken (``training``: the seconds spent training, or a sentence on them) and the files
        that were written, those named by :meth:`path` and by ``files`` (name in the output folder, what it
        holds); returns the seconds.

        Example:
            >>> import tempfile
            >>> run = Run(tempfile.mkdtemp())
            >>> _ = run.path("vae.npz", "the trained net").write_bytes(b"")
            >>> seconds = run.report([("none.png", "never written")], training=1.0)  # doctest: +ELLIPSIS
            <BLANKLINE>
            time taken: ... s in all, 1.0 s of it training
            pictures and the trained net are in .../:
              .../vae.npz: the trained net
        """
        total = self.seconds()
        spent = f"{training:.1f} s of it training" if isinstance(training, (int, float)) else training
        print(f"\ntime taken: {total:.1f} s in all, {spent}")
        print(f"{what} are in {self.out}/:")
        for name, text in {**self.files, **dict(files)}.items():
            if (self.out / name).exists():
                print(f"  {self.out / name}: {text}")
        return total


def vae_pictures(
    run: Run,
    decode: Decode,
    latent: int,
    encode: Encode | None = None,
    x: np.ndarray | Mapping[str, np.ndarray] | None = None,
    *,
    seed: int | np.random.Generator | None = None,
    scale: int = 1,
    value_range: tuple[float, float] = (0.0, 1.0),
    shown: int = 16,
    interpolation: str | None = None,
    steps: int = 11,
    what: str = "test pictures",
    samples: str = "samples.png",
    said: str = "64 samples: the decoder fed z ~ N(0, I)",
    temperature: float = 1.0,
) -> np.ndarray:
    """Writes the usual pictures of a trained VAE to the run's folder and notes them (:meth:`Run.png`):
    ``samples`` (default samples.png), 64 pictures decoded from z ~ N(0, temperature² I)
    (:func:`netgraph.generate.sample_prior` with ``seed``) in 8 columns, ``said`` what they are; with ``encode``
    and ``x``, reconstructions.png, the first ``shown`` pictures of ``x`` over their reconstructions from the
    posterior mean (``x`` may also be a mapping, label to pictures: a pair of rows for each); and with
    ``interpolation`` ("linear" or "spherical") interpolation.png, per row the decoded path in ``steps`` steps
    between the codes of pictures 0 and 1, 2 and 3, ... of ``x`` (six rows at most). ``what`` names the pictures
    of ``x``; ``scale`` and ``value_range`` are :func:`netgraph.images.image_grid`'s. Returns the samples.

    Example:
        >>> import tempfile
        >>> run = Run(tempfile.mkdtemp())
        >>> decode = lambda z: np.broadcast_to(1 / (1 + np.exp(-z[:, :1, None, None])), (len(z), 1, 4, 4))
        >>> encode = lambda x: (x.reshape(len(x), -1)[:, :2], np.zeros((len(x), 2)))
        >>> x = np.random.default_rng(0).random((5, 1, 4, 4))
        >>> vae_pictures(run, decode, 2, encode, x, seed=0, interpolation="linear").shape
        (64, 1, 4, 4)
        >>> sorted(run.files)
        ['interpolation.png', 'reconstructions.png', 'samples.png']
    """
    shown_as = {"scale": scale, "value_range": value_range}
    pictures = sample_prior(decode, 64, latent, temperature, seed=seed)
    run.png(samples, said, image_grid(pictures, columns=8, **shown_as))
    sets = {} if encode is None or x is None else x if isinstance(x, Mapping) else {"input": x}
    rows, labels = [], []
    for label, part in ((label, part[:shown]) for label, part in sets.items() if len(part)):
        rows += [part, decode(encode(part)[0])]
        labels += [label, "output" if label == "input" else "reconstructed"]
    if rows:
        strip = interpolation_strip(rows, row_labels=labels, **shown_as)
        run.png("reconstructions.png", f"{what} over their reconstructions from the posterior mean", strip)
    if not interpolation or encode is None or not isinstance(x, np.ndarray):
        return pictures
    mean, ends = encode(x[:12])[0], range(0, min(12, len(x)) - 1, 2)
    if paths := [interpolate(decode, mean[i], mean[i + 1], steps, interpolation) for i in ends]:
        digits = 1 if 10 % (steps - 1) == 0 else 2  # as few as show the steps exactly
        labels = [f"{t:.{digits}f}" for t in np.linspace(0, 1, steps)]
        strip = interpolation_strip(paths, labels=labels, **shown_as)
        run.png("interpolation.png", f"{interpolation} interpolation between the codes of two {what}, per row", strip)
    return pictures


class RoundPictures:
    """A training_progress_function that shows a VAE learning: every ``generate_every`` rounds a picture decoded
    from a fresh z ~ N(0, I) (seeded by ``seed``), ``generated_0001.png``, ...; every ``reconstruct_every`` rounds the
    reconstruction of ``picture`` from its posterior mean beside it, ``reconstruction_0010.png``, ...; written to
    ``folder`` (those of an earlier run removed) and kept for :meth:`strip`. The net's decoder is the vertex
    ``decoder`` and its posterior as :func:`netgraph.generate.vae_parts` reads it by default.

    Example:
        >>> import tempfile
        >>> from netgraph import NetChain, NetGraph, NetPort
        >>> from layers import LinearLayer
        >>> net = NetGraph({"mn": LinearLayer(2), "sd": LinearLayer(2), "dec": NetChain([LinearLayer((1, 2, 2)),
        ...     "LogisticSigmoid"])}, [(NetPort("Input"), "mn", "dec"), (NetPort("Input"), "sd")], input=(1, 2, 2))
        >>> pictures = RoundPictures(Path(tempfile.mkdtemp()), np.zeros((1, 2, 2)), 2, reconstruct_every=2)
        >>> for done in (1, 2):
        ...     pictures({"Net": net, "Round": done})
        >>> sorted(path.name for path in pictures.folder.iterdir())
        ['generated_0001.png', 'generated_0002.png', 'reconstruction_0002.png']
        >>> pictures.strip().size[0] > 0
        True
    """

    def __init__(
        self,
        folder: Path,
        picture: np.ndarray,
        latent: int,
        *,
        seed: int | None = None,
        device: str = "CPU",
        generate_every: int = 1,
        reconstruct_every: int = 10,
        scale: int = 1,
        decoder: str = "dec",
    ) -> None:
        self.folder, self.picture, self.latent, self.device, self.scale = folder, picture[None], latent, device, scale
        self.every, self.decoder, self.rng = (generate_every, reconstruct_every), decoder, np.random.default_rng(seed)
        self.generated: dict[int, np.ndarray] = {}
        self.reconstructed: dict[int, np.ndarray] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for old in [*folder.glob("generated_*.png"), *folder.glob("reconstruction_*.png")]:
            old.unlink()

    def __call__(self, progress: Mapping[str, Any]) -> None:
        net, done = progress["Net"], progress["Round"]
        if done % self.every[0] == 0:
            z = self.rng.standard_normal((1, self.latent))
            self.generated[done] = NetExtract(net, self.decoder)(z, target_device=self.device)[0]
            save_png(self.generated[done], self.folder / f"generated_{done:04d}.png")
        if done % self.every[1] == 0:
            encode, decode = vae_parts(net, decoder=self.decoder, target_device=self.device)
            self.reconstructed[done] = decode(encode(self.picture)[0])[0]
            cells, labels = [self.picture[0], self.reconstructed[done]], ["input", f"round {done}"]
            pair = image_grid(cells, columns=2, labels=labels, scale=self.scale)
            save_png(pair, self.folder / f"reconstruction_{done:04d}.png")

    def strip(self, most: int = 10) -> Any:
        """Up to ``most`` generated pictures, evenly spread over the rounds; under them the fixed picture and its
        latest reconstructions, each cell labelled with its round (a PIL image; None before the first round)."""
        if not self.generated:
            return None
        rounds = sorted(self.generated)
        picked = sorted({rounds[round(i)] for i in np.linspace(0, len(rounds) - 1, min(most, len(rounds)))})
        cells = [self.generated[r] for r in picked]
        labels = [f"round {r}" for r in picked]
        if self.reconstructed:
            kept = sorted(self.reconstructed)[-max(1, len(picked) - 1) :]
            cells += [self.picture[0]] + [self.reconstructed[r] for r in kept]
            labels += ["input"] + [f"recon. {r}" for r in kept]
        return image_grid(cells, columns=len(picked), labels=labels, scale=self.scale)


def save_samples(
    decode: Callable[[np.ndarray], Any],
    count: int,
    latent: int,
    folder: str | Path,
    *,
    prefix: str = "sample_",
    temperature: float = 1.0,
    seed: int | np.random.Generator | None = None,
    chunk: int = 256,
) -> list[Path]:
    """Writes ``count`` pictures decoded from z ~ N(0, temperature² I) (:func:`netgraph.generate.sample_prior`),
    clipped to [0, 1], as numbered PNGs ``<prefix>0001.png``, ... in ``folder`` (made if need be), ``chunk``
    at a time so that any count fits in memory; returns their paths.

    Example:
        >>> import tempfile
        >>> decode = lambda z: np.broadcast_to(z[:, :1, None, None], (len(z), 1, 4, 4))
        >>> paths = save_samples(decode, 3, latent=2, folder=tempfile.mkdtemp(), seed=0, chunk=2)
        >>> [path.name for path in paths]
        ['sample_0001.png', 'sample_0002.png', 'sample_0003.png']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, rng, written = max(4, len(str(count))), np.random.default_rng(seed), []
    for start in range(0, count, chunk):
        pictures = sample_prior(decode, min(chunk, count - start), latent, temperature=temperature, seed=rng)
        for i, picture in enumerate(np.clip(pictures, 0.0, 1.0), start=start + 1):
            written.append(save_png(picture, folder / f"{prefix}{i:0{width}d}.png"))
    return written


def sample_options(parser: argparse.ArgumentParser, *, net: str, prefix: str = "sample_", missing: str = "") -> None:
    """Adds the options of a command that writes new pictures with a trained net's decoder
    (:func:`write_samples`): ``--count N`` and ``--out DIR`` (both required), ``--net PATH`` (default
    ``net``; a file that is not there is a usage error, ``missing`` says what to do), ``--temperature T``,
    ``--prefix`` (default ``prefix``), ``--device`` and ``--seed``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "vae.npz"
        >>> _ = path.write_bytes(b"")
        >>> p = parser("demo.py", None)
        >>> sample_options(p, net=str(path))
        >>> args = p.parse_args(["--count", "3", "--out", "new"])
        >>> args.count, args.out, args.net == str(path), args.temperature, args.prefix, args.device
        (3, 'new', True, 1.0, 'sample_', 'CPU')
    """

    def existing(text: str) -> str:
        if not Path(text).is_file():
            raise argparse.ArgumentTypeError(f"{text}: no such file" + (f" ({missing})" if missing else ""))
        return text

    option(parser, "--count", int, "how many pictures", required=True)
    option(parser, "--out", str, "folder for the pictures", required=True, metavar="DIR")
    option(parser, "--net", net, "the trained net", type=existing, metavar="PATH")
    option(parser, "--temperature", 1.0, "the prior's standard deviation, scaled (below 1: more typical pictures)",
           metavar="T")  # fmt: skip
    option(parser, "--prefix", prefix, "file name prefix")
    standard_options(parser)


def write_samples(args: argparse.Namespace, batch_size: int = 64) -> dict[str, Any]:
    """The command of :func:`sample_options`: loads ``args.net``, takes out its decoder (the vertex "dec", or
    the net itself when it takes a latent vector), and writes ``args.count`` pictures decoded from
    z ~ N(0, T² I) to ``args.out`` (:func:`save_samples`); prints what it did and returns the count, the files
    and the seconds taken."""
    run, net = Run(args.out, args.device), load(args.net)
    decoder = NetExtract(net, "dec") if "dec" in getattr(net, "vertices", {}) else net
    if len(latent := decoder.port_shapes.get("Input") or ()) != 1:
        raise NetFileError(f'{args.net}: has no decoder (a vertex "dec" or a net taking a latent vector)')
    decode = lambda z: decoder(z, target_device=args.device, batch_size=batch_size)
    written = save_samples(
        decode, args.count, latent[0], run.out, prefix=args.prefix, temperature=args.temperature, seed=args.seed
    )
    seconds, size = run.seconds(), "×".join(str(n) for n in decoder.port_shapes["Output"][:0:-1])
    print(f'decoder: NetExtract(load({str(args.net)!r}), "dec"), latent size {latent[0]}')
    print(f"wrote {len(written)} pictures of {size} (z ~ N(0, {args.temperature:g}² I)) to {run.out}/: "
          f"{written[0].name} ... {written[-1].name}")  # fmt: skip
    print(f"time taken: {seconds:.1f} s ({len(written) / seconds:.1f} pictures/s)")
    return {"count": len(written), "files": written, "seconds": seconds}


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
