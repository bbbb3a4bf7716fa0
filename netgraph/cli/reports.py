"""What a script prints and writes: the data, the parameters and the schedule, how training went, the loss
plot, the pictures of a trained VAE (samples, reconstructions, interpolations between pairs) and of one in
training, new samples, the time taken and the files written.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import load  # the package's: it registers the layer classes a file may name
from ..backend import get_xp
from ..distributed import world
from ..generate import Decode, Encode, interpolate, reconstruct, sample_prior, slerp_pairs, vae_loss, vae_parts
from ..images import image_grid, interpolation_strip, loss_plot, save_png
from ..io import NetFileError
from ..summary import NetSummary
from ..surgery import NetExtract
from .options import Schedule, file_prefix, folder, option, standard_options

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


def learnable_parameters(net: Any) -> int:
    """The parameters that training changes by gradients: all of ``net``'s arrays but the moving statistics of
    its batch normalisations.

    Example:
        >>> from layers import BatchNormalizationLayer, LinearLayer
        >>> from netgraph import NetChain
        >>> learnable_parameters(NetChain([LinearLayer(3), BatchNormalizationLayer()], input=2))  # 6 + 3, 3 + 3
        15
    """
    summary = NetSummary(net)
    return summary.total_parameters - summary.non_trainable_parameters


def report_parameters(net: Any, **parts: Sequence[str]) -> int:
    """Prints the learnable parameters (:func:`learnable_parameters`) of each of the ``parts`` of ``net`` (a part:
    the names of its vertices, each one's count given when there are several), of the whole net, and the moving
    statistics of its batch normalisations; returns the learnable parameters of the whole net.

    Example:
        >>> from layers import LinearLayer
        >>> from netgraph import NetGraph
        >>> net = NetGraph({"a": LinearLayer(3), "b": LinearLayer(2), "c": LinearLayer(1)}, [("a", "b", "c")], input=4)
        >>> report_parameters(net, first=["a", "b"], last=["c"])
        parameters: first 23 (a 15, b 8), last 3; 26 learnable
        26
    """
    said = []
    for part, names in parts.items():
        counts = {name: learnable_parameters(net.vertices[name]) for name in names}
        each = f" ({', '.join(f'{name} {n:,}' for name, n in counts.items())})" if len(counts) > 1 else ""
        said.append(f"{part} {sum(counts.values()):,}{each}")
    total, moving = learnable_parameters(net), NetSummary(net).non_trainable_parameters
    plus = f", plus {moving:,} moving statistics of the batch normalisations" if moving else ""
    print(f"parameters: {', '.join(said)}; {total:,} learnable{plus}")
    return total


def report_schedule(plan: Schedule, method: str, *notes: str, unit: str = "images", at_most: bool = False) -> None:
    """Prints the schedule (the most it may run, when ``at_most``), the examples it sees, the optimiser and
    ``notes``, one a line.

    Example:
        >>> from netgraph.cli import schedule
        >>> report_schedule(schedule(100, 32, None, 10), "ADAM, learning rate 0.001", "(the paper: 20 rounds)")
        schedule: 10 batches of 32 (--iterations) = 10 batches, 320 images; ADAM, learning rate 0.001
                  (the paper: 20 rounds)
    """
    seen = f"{plan.total:,} batches, {plan.total * plan.batch_size:,} {unit}"
    print(f"schedule: {'at most ' * at_most}{plan.description} = {seen}; {method}")
    for note in notes:
        print(f"          {note}")


def report_phase(title: str, plan: Schedule, training: int, validation: int, unit: str = "images") -> None:
    """Prints a phase of training (:func:`netgraph.cli.phase_schedule`): its examples and its schedule, with the
    rounds over the training examples that the schedule makes when it is counted in batches.

    Example:
        >>> from netgraph.cli import schedule
        >>> report_phase("fine-tuning", schedule(100, 32, None, 10), 100, 10, "pictures")
        fine-tuning: 100 training, 10 validation pictures; 10 batches of 32 (--iterations) = 320 pictures (2.50 rounds)
    """
    rounds = f" ({plan.total / plan.per_round:.2f} rounds)" if plan.stop else ""
    print(f"{title}: {training:,} training, {validation:,} validation {unit}; "
          f"{plan.description} = {plan.total * plan.batch_size:,} {unit}{rounds}")  # fmt: skip


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


def report_vae_loss(
    encode: Encode,
    decode: Decode,
    x: Any,
    what: str,
    *,
    seed: int | np.random.Generator | None = None,
    likelihood: str = "bernoulli",
    terms: tuple[str, str] = ("BCE", "KL"),
    unit: str = "nats per picture",
    then: str = "",
) -> dict[str, float]:
    """Prints a VAE's loss on ``x`` (:func:`netgraph.generate.vae_loss`, one z ~ q(z|x) each, drawn with
    ``seed``), its two ``terms`` and their sum, on one line that says how many ``what`` it was measured on and
    ends with ``then``; returns the loss and its terms.

    Example:
        >>> encode = lambda x: (np.ones((len(x), 2)), np.zeros((len(x), 2)))
        >>> decode = lambda z: np.full((len(z), 4), 0.5)
        >>> loss = report_vae_loss(encode, decode, np.ones((3, 4)), "test pictures", seed=0, then=" (a coin per pixel)")
          3 test pictures: BCE 2.8 + KL 1.0 = 3.8 nats per picture (a coin per pixel)
    """
    loss = vae_loss(encode, decode, x, likelihood, seed)
    first, second = terms
    print(f"  {len(x):,} {what}: {first} {loss['reconstruction']:.1f} + {second} {loss['kl']:.1f} = "
          f"{loss['loss']:.1f} {unit}{then}")  # fmt: skip
    return loss


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
    usable GPU the run stops before any work, saying what to install); the clock for :meth:`report`.
    Given the parsed arguments instead of a folder, it takes ``--out`` and ``--device`` from them and keeps
    them (``args``: the checkpoint options and the command line that :func:`netgraph.cli.train` reads)."""

    def __init__(self, out: str | Path | argparse.Namespace, device: str = "CPU") -> None:
        self.started = time.perf_counter()
        self.args = out if isinstance(out, argparse.Namespace) else None
        if self.args is not None:
            out, device = self.args.out, self.args.device
        get_xp(device)
        self.device = device
        self.out = Path(out)
        if not world().is_root:  # under mpiexec only rank 0 writes the run's files; the others' go nowhere
            self.out = Path(tempfile.mkdtemp(prefix=f"netgraph-rank{world().rank}-"))
            atexit.register(shutil.rmtree, self.out, ignore_errors=True)
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


def reconstruction_pictures(
    run: Run,
    x: np.ndarray,
    models: Mapping[str, tuple[Encode, Decode]],
    said: str,
    *,
    labels: np.ndarray | None = None,
    classes: Sequence[int] = (),
    shown: int = 8,
    scale: int = 1,
    name: str = "reconstructions.png",
) -> np.ndarray:
    """Writes ``name``, ``said`` what it shows: a row of pictures of ``x`` (the first ``shown``, or with ``labels``
    the first ``shown`` of each of ``classes``) over a row of their reconstructions from the posterior mean by each
    of ``models`` (``(encode, decode)``, labelled by its key); returns the pictures shown.

    Example:
        >>> import tempfile
        >>> run = Run(tempfile.mkdtemp())
        >>> models = {"half": (lambda x: (x / 2, 0 * x), lambda z: z), "same": (lambda x: (x, 0 * x), lambda z: z)}
        >>> x, labels = np.random.default_rng(0).random((6, 1, 2, 2)), np.array([0, 1, 0, 1, 0, 1])
        >>> reconstruction_pictures(run, x, models, "two models", labels=labels, classes=(1, 0), shown=2).shape
        (4, 1, 2, 2)
        >>> run.files
        {'reconstructions.png': 'two models'}
    """
    picked = np.arange(min(shown, len(x))) if labels is None else np.concatenate(
        [np.flatnonzero(labels == k)[:shown] for k in dict.fromkeys(classes)])  # fmt: skip
    rows = [x[picked], *(reconstruct(encode, decode, x[picked]) for encode, decode in models.values())]
    run.png(name, said, interpolation_strip(rows, row_labels=["input", *models], scale=scale))
    return rows[0]


def slerp_pictures(
    run: Run,
    encode: Encode,
    decode: Decode,
    images: np.ndarray,
    labels: np.ndarray,
    classes: tuple[int, int],
    names: tuple[str, str],
    *,
    mus: int | Sequence[float] = 8,
    rows: int = 8,
    pool: int = 21,
    seed: int | np.random.Generator | None = None,
    scale: int = 1,
    grid: str = "slerp.png",
    pairs: str = "slerp_pairs.png",
    title: str = "slerp",
) -> tuple[np.ndarray, int]:
    """Spherical interpolations between pictures of two classes, as the winged-horse study drew them: ``rows``
    pictures of the second of ``classes`` (class numbers as in ``labels``; ``names``, their names), each paired
    with one drawn (with ``seed``) from a pool of ``pool`` pictures of the first; the slerp between their
    posterior means decoded at ``mus`` (:func:`netgraph.generate.slerp_pairs`). Writes ``grid``, the decodes
    (rows by mus), and ``pairs``, each row between the two pictures and the decodes of their codes; prints, after
    ``title``, what was paired and the angles between the paired codes; returns the angles in degrees and the
    size of the pool.

    Example:
        >>> import tempfile
        >>> run = Run(tempfile.mkdtemp())
        >>> images, labels = np.random.default_rng(0).random((6, 1, 2, 2)), np.array([0, 0, 0, 1, 1, 1])
        >>> encode = lambda x: (x.reshape(len(x), -1), np.zeros((len(x), 4)))
        >>> decode = lambda z: z.reshape(len(z), 1, 2, 2)
        >>> angles, pool = slerp_pictures(run, encode, decode, images, labels, (0, 1), ("cat", "dog"), mus=2,
        ...                               rows=2, seed=0)  # doctest: +ELLIPSIS
        slerp: 2 dog pictures, each paired with one of 3 cat pictures; slerp at mu = 0.40, 0.70
          angles between the paired codes: ...°, ...°
        >>> angles.shape, pool, sorted(run.files)
        ((2,), 3, ['slerp.png', 'slerp_pairs.png'])
    """
    rng = np.random.default_rng(seed)
    firsts, seconds = (np.flatnonzero(labels == k) for k in classes)
    chosen = rng.choice(seconds, rows, replace=len(seconds) < rows)
    drawn = rng.choice(firsts, min(pool, len(firsts)), replace=False)
    ends = images[rng.choice(drawn, rows)], images[chosen]
    found = slerp_pairs(encode, decode, *ends, mus)
    cells, mu = found.grid.reshape(-1, *found.grid.shape[2:]), found.mus
    what = f"the {rows}x{len(mu)} grid: slerp from {names[0]} (mu=0) to {names[1]} (mu=1)"
    run.png(grid, f"{what} at mu {mu[0]:.1f}..{mu[-1]:.1f}, per row", image_grid(cells, columns=len(mu), scale=scale))
    framed = [np.stack([ends[0][i], found.starts[i], *found.grid[i], found.ends[i], ends[1][i]]) for i in range(rows)]
    columns = [names[0], "mu=0", *(f"{m:.2f}" for m in mu), "mu=1", names[1]]
    strip = interpolation_strip(framed, labels=columns, scale=scale)
    run.png(pairs, "the same rows between the two pictures and their decoded codes", strip)
    print(f"{title}: {rows} {names[1]} pictures, each paired with one of {len(drawn)} {names[0]} pictures; slerp at "
          f"mu = {', '.join(f'{m:.2f}' for m in mu)}\n  angles between the paired codes: "
          f"{', '.join(f'{a:.0f}°' for a in found.angles)}")  # fmt: skip
    return found.angles, len(drawn)


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
    ``--prefix`` (default ``prefix``; a path separator in it is a usage error: the pictures stay in ``--out``),
    ``--device`` and ``--seed``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "vae.npz"
        >>> _ = path.write_bytes(b"")
        >>> from netgraph.cli import parser
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
    option(parser, "--out", str, "folder for the pictures", required=True, metavar="DIR", type=folder)
    option(parser, "--net", net, "the trained net", type=existing, metavar="PATH")
    option(parser, "--temperature", 1.0, "the prior's standard deviation, scaled (below 1: more typical pictures)",
           metavar="T")  # fmt: skip
    option(parser, "--prefix", prefix, "file name prefix (a name, no folder: the pictures go in --out)",
           type=file_prefix)  # fmt: skip
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
