"""Training that is not lost: NetTrain with the checkpoints of ``--checkpoint DIR`` and ``--resume``, and on a
failure the last good net kept, with a message a command-line user can act on.

:func:`train` is NetTrain for a script. It runs the schedule the script planned (:class:`Schedule`) and

- with ``--checkpoint DIR`` writes a checkpoint every round (a run counted in batches: every round's worth of
  batches) to DIR, or to DIR/<phase> for a training in phases, and records a phase that finished (not one
  that Ctrl-C stopped) in DIR[/<phase>]/finished/ (its results and nets);
- with ``--resume`` continues from the newest checkpoint there, or, when the phase had finished with the same
  schedule, reads it back instead of training it again; while the folder holds no checkpoint, it starts
  from the beginning, saying so;
- when training fails on bad numbers (NetTrain's :class:`~netgraph.train.results.TrainingError`), saves the net
  before the failing batch as ``<net>.last-good.npz`` in the output folder with 64 samples of its decoder, and
  raises :class:`TrainingStoppedError`: one message that says what happened, where the files are and the command
  that resumes (:func:`netgraph.cli.run_main` prints it and exits with status 1, without a traceback).

Under ``mpiexec -n N`` every rank runs the script and trains together (:mod:`netgraph.distributed`); rank 0
alone prints, writes the files and the checkpoints and decides whether a finished phase is read back, and
the other ranks end (exit status 0) once the script's last training is over (the last of its phases).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import load  # the package's: it registers the layer classes a file may name
from ..distributed import world
from ..generate import sample_prior
from ..images import image_grid, loss_plot, save_png
from ..layer import Layer, NetError, iter_arrays
from ..surgery import NetExtract
from ..train import NetTrain, NetTrainResults, TrainingError
from .options import Schedule
from .reports import Run

#: how many checkpoints of a run its folder keeps (the newest): resuming needs only the newest, and one more
#: stays in case the newest is damaged
KEPT_CHECKPOINTS = 2

#: NetTrain's result properties that a finished phase's record keeps (besides its nets)
RECORDED = (
    "RoundLossList", "BatchLossList", "ValidationLossList", "RoundLoss", "ValidationLoss", "BestValidationRound",
    "TotalTrainingTime", "MeanExamplesPerSecond", "ReasonTrainingStopped", "TotalRounds", "TotalBatches", "BatchSize",
    "BatchesPerRound", "ExamplesProcessed", "TrainingExamples", "ValidationExamples", "OptimizationMethod",
    "InitialLearningRate", "FinalLearningRate", "CheckpointingFiles",
)  # fmt: skip


class TrainingStoppedError(TrainingError):
    """Training failed on bad numbers; the message says what was kept and how to resume. ``kept`` is the file of
    the last good net (None when there was none to keep)."""

    def __init__(self, message: str, last_good_net: Layer | None = None, kept: Path | None = None):
        super().__init__(message, last_good_net)
        self.kept = kept


def train(
    run: Run,
    net: Layer,
    data: Any,
    prop: Any,
    plan: Schedule,
    *,
    phase: str | None = None,
    saved: str = "vae.npz",
    value_range: tuple[float, float] = (0.0, 1.0),
    **options: Any,
) -> Any:
    """``NetTrain(net, data, prop, **options)`` for the schedule ``plan``: its batch size, its number of rounds and,
    for a run counted in batches, its stop (the script passes NetTrain's other options). With the options
    ``--checkpoint`` and ``--resume`` of ``run.args`` it writes checkpoints and resumes from them, as this module's
    docstring says; ``phase`` names a phase of a training in phases (its sub-folder). On a
    :class:`~netgraph.train.results.TrainingError` it saves the last good net as ``<saved stem>.last-good.npz``
    in the run's folder (``saved``: the file the script writes the trained net to) and, when it has a decoder
    (a vertex "dec" taking a vector), 64 of its samples (pictures in ``value_range``) as
    ``<saved stem>.last-good-samples.png``, then raises :class:`TrainingStoppedError`.
    """
    if plan.stop is not None and "training_progress_function" in options:
        raise ValueError("train: a schedule counted in batches stops training itself; give no progress function")
    if plan.stop is not None:
        options["training_progress_function"] = plan.stop
    options.update(batch_size=plan.batch_size, max_training_rounds=plan.rounds)
    args = run.args
    if getattr(args, "resume", False) and not getattr(args, "checkpoint", None):  # a parser other than cli.parser's
        raise NetError("--resume continues from the checkpoints in --checkpoint DIR: give the folder they are in")
    folder = Path(args.checkpoint) / (phase or "") if args is not None and getattr(args, "checkpoint", None) else None
    ranks = world()  # under mpiexec: rank 0 decides, writes and reports; the others train with it, then end
    if folder is not None:
        record = _Record(folder / "finished", plan)
        if ranks.broadcast_object(bool(args.resume) and record.matches()):
            print(f"{phase or 'training'}: finished in an earlier run; read back from {record.folder} (--resume)")
            return record.read(prop)
        if ranks.is_root:
            record.remove()
        _checkpoint_options(folder, plan, bool(args.resume), options)
    if ranks.size > 1:
        print(f"data-parallel: {ranks.size} processes (mpiexec), each with a share of every batch of {plan.batch_size}")
    try:
        with _quiet():  # NetTrain stops on NaN and Inf itself and says where: no warnings before that
            results = NetTrain(net, data, "All", **options)
    except TrainingError as err:
        if not ranks.is_root:  # rank 0 keeps the last good net and says how to resume
            raise SystemExit(1) from None
        raise _stopped(run, err, saved, value_range, folder) from None
    if not ranks.is_root and phase == (getattr(args, "phases", None) or [phase])[-1]:
        raise SystemExit(0)  # the last training of the script: what follows is rank 0's (pictures, files)
    if folder is not None and results["ReasonTrainingStopped"] == "UserInterrupt":
        print(f"training interrupted: --resume continues from the newest checkpoint in {folder}/")
    elif folder is not None and ranks.is_root:
        try:
            record.write(results)
        except OSError as err:  # the trained net still goes to the script; only --resume will train the phase again
            print(f"checkpoints: the finished training could not be recorded in {record.folder} ({err})")
    return _property(results, prop)


def _property(results: Any, prop: Any) -> Any:
    """What NetTrain returns for ``prop`` from its "All" results."""
    if prop is None:
        return results["TrainedNet"]
    if prop == "All":
        return results
    return [results[p] for p in prop] if isinstance(prop, list) else results[prop]


def _checkpoint_options(folder: Path, plan: Schedule, resume: bool, options: dict[str, Any]) -> None:
    """NetTrain's checkpoint options for ``folder``, and what they mean said in a line."""
    found = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    unit, every = plan.checkpoint_interval
    often = "every round" if unit == "Rounds" else f"every {every} batches"
    kept_note = f" (the newest {KEPT_CHECKPOINTS} kept)"
    kept = {"Interval": (unit, every), "MaximumCheckpoints": KEPT_CHECKPOINTS}
    options["training_progress_checkpointing"] = ("Directory", str(folder), kept)
    if resume and found:
        options["resume_from"] = str(folder)
        print(f"checkpoints: resuming from the newest in {folder}/ ({found[-1].name}); one written {often}{kept_note}")
    elif resume:
        print(
            f"checkpoints: none in {folder}/ yet, so training starts from the beginning; one written {often}{kept_note}"
        )
    else:
        earlier = f" (it holds {len(found)} of an earlier run; --resume continues from them)" if found else ""
        print(f"checkpoints: one written {often} to {folder}/{kept_note}{earlier}")


class _Record:
    """A phase that finished: its results (JSON) and nets, in ``folder``, for the schedule ``plan``."""

    def __init__(self, folder: Path, plan: Schedule):
        self.folder, self.schedule = folder, [plan.rounds, plan.total, plan.batch_size, plan.stop is not None]
        self.results, self.nets = folder / "results.json", {"TrainedNet": "trained.npz", "FinalNet": "final.npz"}

    def matches(self) -> bool:
        """Whether a record is there, for the same schedule."""
        try:
            return json.loads(self.results.read_text()).get("schedule") == self.schedule
        except (OSError, ValueError, AttributeError):
            return False

    def write(self, results: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        results["TrainedNet"].save(self.folder / self.nets["TrainedNet"])
        if results["FinalNet"] is not results["TrainedNet"]:
            results["FinalNet"].save(self.folder / self.nets["FinalNet"])
        properties = {name: results[name] for name in RECORDED}
        text = json.dumps({"schedule": self.schedule, "properties": properties}, default=float)
        self.results.write_text(text)  # last: a record without it is no record

    def read(self, prop: Any) -> Any:
        properties = json.loads(self.results.read_text())["properties"]
        trained = load(self.folder / self.nets["TrainedNet"])
        final = self.folder / self.nets["FinalNet"]
        properties.update(TrainedNet=trained, FinalNet=load(final) if final.exists() else trained)
        lists = (properties[name] for name in ("RoundLossList", "ValidationLossList", "BatchLossList"))
        properties["LossPlot"] = loss_plot(*lists, properties["BatchesPerRound"])
        return _property(NetTrainResults(properties), prop)

    def remove(self) -> None:
        """A record of an earlier run: not this run's (training starts or resumes)."""
        for path in (self.results, *(self.folder / name for name in self.nets.values())):
            path.unlink(missing_ok=True)


def _stopped(
    run: Run, err: TrainingError, saved: str, value_range: tuple[float, float], folder: Path | None
) -> TrainingStoppedError:
    """Keeps the last good net of a failed training and its samples; the error that says so and how to resume."""
    net, stem = err.last_good_net, Path(saved).stem
    parts, kept = _clauses(str(err).removeprefix("NetTrain: ")), None
    if net is not None:
        kept = run.out / f"{stem}.last-good.npz"
        net.save(kept)
        bad = ["/".join(map(str, path)) for path, layer, name in iter_arrays(net)
               if not np.isfinite(np.asarray(layer.arrays[name])).all()]  # fmt: skip
        said = [part.replace(" is in .last_good_net", f" is kept in {kept}") for part in parts]
        if said == parts:  # the library words it otherwise: say it here
            said.append(f"the last good net is kept in {kept}")
        note = f"; NOTE: NaN or Inf in {', '.join(bad[:3])}{' and others' if len(bad) > 3 else ''}" if bad else ""
        said[-1] += f" (netgraph.load reads it){note}"
        if (samples := _samples(net, run, run.out / f"{stem}.last-good-samples.png", value_range)) is not None:
            said.append(f"64 samples of it: {samples}")
    else:
        said = [part for part in parts if "last_good_net" not in part] + ["no net could be kept"]
    lines = [f"training failed: {said[0]}", *(f"  {part}" for part in said[1:])]
    script, words = _command_line(run)
    if folder is None:
        again = _command(script, words, run.out / "checkpoints")
        lines.append(f"  no checkpoint to resume from (--checkpoint DIR writes one every round); to train again, "
                     f"keeping them:\n    {again}")  # fmt: skip
    else:
        found = sorted(folder.glob("*.npz")) if folder.is_dir() else []
        base = Path(run.args.checkpoint)
        newest = f"the newest checkpoint, {found[-1]}" if found else f"the beginning ({folder}/ holds none yet)"
        lines.append(f"  to resume from {newest}:\n    {_command(script, words, base, resume=True)}")
    if getattr(run.args, "learning_rate", None) is not None:
        rate = f"{run.args.learning_rate:g}".replace("e+0", "e").replace("e-0", "e-")
        lines.append(f"  (the same options may fail at the same point again: give a --learning-rate below {rate})")
    return TrainingStoppedError("\n".join(lines), net, kept)


def _clauses(message: str) -> list[str]:
    """``message`` split at its semicolons outside parentheses, one clause a line.

    Example:
        >>> _clauses("the loss became nan (ADAM; learning rate 1e6); the net before is in .last_good_net")
        ['the loss became nan (ADAM; learning rate 1e6)', 'the net before is in .last_good_net']
    """
    clauses, depth, start = [], 0, 0
    for i, char in enumerate(message):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ";" and depth == 0:
            clauses.append(message[start:i].strip())
            start = i + 1
    return [*clauses, message[start:].strip()]


def _samples(net: Layer, run: Run, path: Path, value_range: tuple[float, float]) -> Path | None:
    """64 pictures from the decoder of ``net`` (its vertex "dec", fed z ~ N(0, I)) written to ``path``; None when the
    net has no such decoder or it cannot make them."""
    if "dec" not in getattr(net, "vertices", {}):
        return None
    try:
        decoder = NetExtract(net, "dec")
        if len(latent := decoder.port_shapes.get("Input") or ()) != 1:
            return None
        with _quiet():
            decode = lambda z: decoder(z, target_device=run.device, batch_size=64)
            pictures = np.nan_to_num(np.asarray(sample_prior(decode, 64, latent[0], seed=0), dtype=np.float64))
            return save_png(image_grid(np.clip(pictures, *value_range), columns=8, value_range=value_range), path)
    except Exception:  # noqa: BLE001 - the pictures of a net that diverged are a bonus: the net file is what counts
        return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """NumPy's warnings of overflow and invalid values left out, in every thread (``np.errstate`` is per thread);
    NetTrain's own warnings (a resume that is not exact, a damaged checkpoint skipped) printed as plain lines."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
        warnings.showwarning = _plain_warning
        yield


def _plain_warning(message: Warning | str, category: type, *_: Any, **__: Any) -> None:
    """A warning as a command-line user reads it: its text, without the source line it was raised at."""
    print(f"warning: {message}", file=sys.stderr)


def _command_line(run: Run) -> tuple[str, list[str]]:
    """The script as it was called and its arguments (those the parser kept, else this process's)."""
    if run.args is not None and hasattr(run.args, "command_line"):
        return run.args.command_line
    return sys.argv[0], sys.argv[1:]


def _command(script: str, words: list[str], checkpoint: Path, *, resume: bool = False) -> str:
    """``python <script> <words>`` with ``--checkpoint`` set to ``checkpoint`` (and ``--resume`` added)."""
    kept, skip = [], False
    for word in words:
        name = word.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) > 4 and "--checkpoint".startswith(name):
            skip = "=" not in word
        elif not (len(name) > 3 and "--resume".startswith(name)):
            kept.append(word)
    return shlex.join(["python", script, *kept, "--checkpoint", str(checkpoint), *(["--resume"] * resume)])
