"""The data of a script: the user's ``--data``, else a stand-in data set, saying so; class labels, a test
set, a part held out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..datasets import (
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


def choose_classes(
    requested: Sequence[str] | None,
    data: Pictures,
    preferred: tuple[str, str],
    stand_ins: Mapping[tuple[str, ...], tuple[str, str]] | None = None,
) -> tuple[int, int, str]:
    """Two classes of ``data`` as numbers, and how they were chosen: ``requested`` (a ``--classes FIRST SECOND``,
    by name in any case or by number), else the ``preferred`` names when the data has them, else the pair that
    ``stand_ins`` gives for the data's class names, else the first two classes present.

    Example:
        >>> found = Pictures(np.zeros((3, 1, 2, 2), np.uint8), np.array([0, 1, 2]), ("cat", "bird", "horse"), "toy", "")
        >>> choose_classes(None, found, ("bird", "horse"))
        (1, 2, "(the paper's)")
        >>> choose_classes(["CAT", "2"], found, ("bird", "horse"))
        (0, 2, '(--classes)')
    """
    names = [name.lower() for name in data.class_names]
    if requested:
        asked = [names.index(t) if (t := token.strip().lower()) in names else int(t) if t.isdigit() else -1
                 for token in requested]  # fmt: skip
        if wrong := [token for token, k in zip(requested, asked) if not 0 <= k < len(names)]:
            listed = ", ".join(f"{k} {name}" for k, name in enumerate(data.class_names))
            raise DatasetError(f"--classes: {wrong[0]!r} is not a class of {data.name}; its classes are {listed}")
        if asked[0] == asked[1] and len(names) > 1:
            raise DatasetError(f"--classes: give two different classes, not {data.class_names[asked[0]]} twice")
        return asked[0], asked[1], "(--classes)"
    if all(name in names for name in preferred):
        return names.index(preferred[0]), names.index(preferred[1]), "(the paper's)"
    if (pair := (stand_ins or {}).get(tuple(data.class_names))) is not None:
        first, second = (data.class_names.index(name) for name in pair)
        return first, second, f"({data.name} has no {preferred[0]}s or {preferred[1]}s; --classes picks others)"
    if len(present := sorted(set(data.labels.tolist()))) == 1:
        return present[0], present[0], "(the only class, so both ends come from it; sub-folders make classes)"
    return present[0], present[1], "(the first two; --classes picks others)"


def split_pictures(
    data: Pictures, fraction: float, seed: int | None, draw: int | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``data``'s pictures and labels, ``((training, labels), (validation, labels))``: with ``draw``, ``draw`` of
    them drawn at random first (with ``seed``, kept in their order; printed), then ``fraction`` of them held out
    for validation (:func:`netgraph.datasets.split`, with ``seed``).

    Example:
        >>> found = Pictures(np.zeros((10, 1, 2, 2), np.uint8), np.arange(10), tuple("abcdefghij"), "toy", "")
        >>> (train, train_labels), (validation, labels) = split_pictures(found, 0.25, seed=0, draw=8)
              8 of them drawn at random (--train-images)
        >>> len(train), len(validation), sorted([*train_labels, *labels]) == sorted(set([*train_labels, *labels]))
        (6, 2, True)
    """
    images, labels = data.images, data.labels
    if draw is not None and draw < len(images):
        keep = np.sort(np.random.default_rng(seed).choice(len(images), draw, replace=False))
        images, labels = images[keep], labels[keep]
        print(f"      {len(images):,} of them drawn at random (--train-images)")
    return split((images, labels), fractions=(1 - fraction, fraction), seed=seed)


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
