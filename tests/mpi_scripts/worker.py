"""Training runs for tests/test_distributed.py, launched as ``mpiexec -n 2 python worker.py CASE OUT [resume]``.

Each rank writes what the test compares to ``OUT/rank<r>-<name>.npz`` (its arrays) and ``OUT/rank<r>.json``
(its losses, the generator calls it saw, and the files netgraph opened for writing on it). The test imports
the nets and data from here, to train the same in one process. ``WORKER_DEVICE`` sets target_device.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import layers as L  # noqa: E402
from netgraph import NetChain, NetInitialize, NetTrain, Scaled  # noqa: E402
from netgraph.distributed import world  # noqa: E402
from netgraph.paths import iter_arrays  # noqa: E402
from netgraph.train.results import TrainingError  # noqa: E402

written: list[str] = []


def record_writes(out: Path):
    """An audit hook: the files under ``out`` opened for writing in this process go to ``written``."""

    def hook(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], (str, os.PathLike)) and str(args[0]).startswith(str(out)):
            mode, flags = args[1], args[2]
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR):
                written.append(os.path.relpath(args[0], out))

    return hook


def arrays(net) -> dict[str, np.ndarray]:
    return {"/".join(map(str, path)): layer.arrays[name] for path, layer, name in iter_arrays(net)}


def mlp():
    return NetInitialize(NetChain([L.LinearLayer(4, input=3), "Tanh", L.LinearLayer(1)]), random_seeding=3)


def normalized():
    chain = [L.LinearLayer(6, input=3), L.BatchNormalizationLayer(), "Ramp", L.DropoutLayer(0.3), L.LinearLayer(1)]
    return NetInitialize(NetChain(chain), random_seeding=4)


def line_data(n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(n, 3))
    return x, x @ np.array([[1.0], [2.0], [-1.0]]) + 0.5


def dump(out: Path, report: dict, **nets) -> None:
    rank, stop = world().rank, len(written)
    for name, net in nets.items():
        np.savez(out / f"rank{rank}-{name}.npz", **arrays(net))
    report["written"] = written[:stop]
    (out / f"rank{rank}.json").write_text(json.dumps(report))


def train_mlp(out: Path | None = None):
    """The deterministic MLP, 9 examples in batches of 4: the last batch has 1, so rank 1 sits it out."""
    files = {}
    if out is not None:
        files = {
            "training_progress_reporting": ("File", out / "log.csv"),
            "training_progress_checkpointing": ("Directory", out / "checkpoints", {"Interval": ("Batches", 1)}),
        }
    options = {"training_progress_reporting": None, **files, "target_device": os.environ.get("WORKER_DEVICE", "CPU")}
    return NetTrain(mlp(), line_data(), "All", batch_size=4, max_training_rounds=3, random_seeding=1, **options)


def main(case: str, out: Path, resuming: bool) -> None:
    sys.addaudithook(record_writes(out))
    quiet = {"training_progress_reporting": None, "target_device": os.environ.get("WORKER_DEVICE", "CPU")}
    rank = world().rank
    if case == "train":  # deterministic MLP (uneven last batch), a net with batch norm and dropout, a generator
        results = train_mlp(out)
        x, y = line_data(40)
        normal = NetTrain(
            normalized(), (x, y), "All", batch_size=8, max_training_rounds=2, validation_set=Scaled(0.25), **quiet
        )
        calls = []

        def generator(info):
            calls.append(info)
            rows = np.random.default_rng([info["AbsoluteBatch"], info["Rank"]]).normal(size=(info["BatchSize"], 3))
            return rows, rows.sum(axis=1, keepdims=True)

        generated = NetTrain(mlp(), (generator, {"RoundLength": 10}), batch_size=5, max_training_rounds=2, **quiet)
        dump(
            out,
            {
                "losses": results["BatchLossList"],
                "files": results["CheckpointingFiles"],
                "validation": normal["ValidationLossList"],
                "calls": calls,
            },
            mlp=results["TrainedNet"],
            normal=normal["TrainedNet"],
            generated=generated,
        )
    elif case == "nan":  # one example of the first batch, on rank 1's share, holds NaN
        x, y = line_data(8)
        x[np.random.default_rng(5).permutation(8)[-1], 0] = np.nan
        try:
            NetTrain(mlp(), (x, y), batch_size=8, max_training_rounds=2, random_seeding=5, **quiet)
        except TrainingError as err:
            (out / f"rank{rank}-caught.txt").write_text(str(err))
    elif case == "raise":  # rank 1's generator raises at the second batch; nothing catches it

        def failing(info):
            if info["Rank"] == 1 and info["AbsoluteBatch"] == 2:
                raise ValueError("the generator of rank 1 broke")
            rows = np.ones((info["BatchSize"], 3))
            return rows, rows.sum(axis=1, keepdims=True)

        NetTrain(mlp(), failing, batch_size=4, max_training_rounds=5, **quiet)
    elif case == "resume":  # a net with random layers, checkpointed every batch; killed and resumed by the test
        x, y = line_data(24)

        def slow(progress):
            time.sleep(float(os.environ.get("WORKER_PAUSE", "0")))

        net = NetTrain(
            normalized(),
            (x, y),
            batch_size=8,
            max_training_rounds=4,
            random_seeding=7,
            training_progress_checkpointing=("Directory", out / "checkpoints", {"Interval": ("Batches", 1)}),
            training_progress_function=(slow, {"Interval": ("Batches", 1)}),
            resume_from=out / "checkpoints" if resuming else None,
            **quiet,
        )
        dump(out, {}, resumed=net)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:] == ["resume"])
