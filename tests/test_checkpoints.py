"""NetTrain checkpoints: atomic files that are nets, exact resume after kill -9, Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import layers as L
from netgraph import NetChain, NetError, NetTrain, load

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import numpy as np
import layers as L
from netgraph import NetChain, NetGraph, NetPort, NetTrain, NormalDistribution

def make_net():
    # a dropout and a random layer, so the random states must be restored too
    return NetGraph({"body": NetChain([L.LinearLayer(16), "Tanh", L.DropoutLayer(0.2), L.LinearLayer(3)]),
                     "eps": L.RandomArrayLayer(NormalDistribution(0, 0.1), output=3), "plus": L.TotalLayer()},
                    [(NetPort("Input"), "body", "plus"), ("eps", NetPort("plus", "Input2"))], input=4)

rng = np.random.default_rng(0)
x = rng.normal(size=(50, 4))
y = np.tanh(x[:, :3]) + 0.1
OPTIONS = dict(max_training_rounds=4, batch_size=8, random_seeding=7, training_progress_reporting=None,
               method=("ADAM", {"learning_rate": 0.01}))
"""
namespace: dict = {}
exec(SETUP, namespace)  # the same definitions in this process and in the killed one


def weights(net):
    return [v for _, v in sorted(net.array_association().items(), key=lambda kv: str(kv[0]))]


def test_kill_minus_9_then_resume_gives_the_uninterrupted_weights(tmp_path):
    make_net, x, y, options = namespace["make_net"], namespace["x"], namespace["y"], namespace["OPTIONS"]
    uninterrupted = NetTrain(make_net(), (x, y), **options)
    folder = tmp_path / "checkpoints"
    script = SETUP + textwrap.dedent(f"""
        import os, signal
        def killer(progress):
            if progress["AbsoluteBatch"] == 11:   # mid-round 2 (7 batches per round)
                os.kill(os.getpid(), signal.SIGKILL)
        NetTrain(make_net(), (x, y), training_progress_checkpointing=("Directory", {str(folder)!r},
                 {{"Interval": ("Batches", 3)}}), training_progress_function=(killer, {{"Interval": ("Batches", 1)}}),
                 **OPTIONS)
        """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == -9, run.stderr
    written = sorted(folder.glob("*.npz"))
    # 7 batches a round: checkpoints after batches 3 and 6 of round 1 and batch 2 of round 2
    assert [p.name.split("-")[3:5] for p in written] == [
        ["round1", "batch3"],
        ["round1", "batch6"],
        ["round2", "batch2"],
    ]
    resumed = NetTrain(make_net(), (x, y), resume_from=folder, **options)
    for a, b in zip(weights(uninterrupted), weights(resumed)):
        np.testing.assert_array_equal(a, b)


def test_file_checkpoint_is_a_net_and_results_list_files(tmp_path):
    make_net, x, y, options = namespace["make_net"], namespace["x"], namespace["y"], namespace["OPTIONS"]
    path = tmp_path / "run.npz"
    res = NetTrain(make_net(), (x, y), "All", training_progress_checkpointing=("File", path), **options)
    assert res["CheckpointingFiles"] == [str(path)]
    saved = load(path)
    for a, b in zip(weights(saved), weights(res["FinalNet"])):
        np.testing.assert_array_equal(a, b)


def test_resume_from_the_last_round_checkpoint_trains_the_remaining_rounds(tmp_path, device):
    # on the GPU too: each step's random numbers come from (seed, step), as CuPy's states cannot be saved
    make_net, x, y, options = namespace["make_net"], namespace["x"], namespace["y"], namespace["OPTIONS"]
    options = {**options, "target_device": device}
    full = NetTrain(make_net(), (x, y), "All", **options)
    NetTrain(
        make_net(),
        (x, y),
        training_progress_checkpointing=("Directory", tmp_path),
        **{**options, "max_training_rounds": 2},
    )
    res = NetTrain(make_net(), (x, y), "All", resume_from=tmp_path, **options)
    assert res["TotalRounds"] == 4 and res["RoundLossList"] == full["RoundLossList"]


def test_ctrl_c_returns_the_net_trained_so_far(tmp_path):
    make_net, x, y, options = namespace["make_net"], namespace["x"], namespace["y"], namespace["OPTIONS"]

    def interrupt(progress):
        if progress["AbsoluteBatch"] == 5:
            raise KeyboardInterrupt

    res = NetTrain(
        make_net(),
        (x, y),
        "All",
        training_progress_function=(interrupt, {"Interval": ("Batches", 1)}),
        training_progress_checkpointing=("File", tmp_path / "c.npz", {"Interval": ("Batches", 2)}),
        **options,
    )
    assert res["ReasonTrainingStopped"] == "UserInterrupt" and res["TotalBatches"] == 5
    assert load(tmp_path / "c.npz") is not None


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    make_net, x, y, options = namespace["make_net"], namespace["x"], namespace["y"], namespace["OPTIONS"]
    path = tmp_path / "c.npz"
    NetTrain(
        make_net(), (x, y), training_progress_checkpointing=("File", path), **{**options, "max_training_rounds": 1}
    )
    before = path.read_bytes()
    calls = {"n": 0}
    real = np.savez

    def failing(*args, **kwargs):
        calls["n"] += 1
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing)
    with pytest.raises(OSError, match="disk full"):
        NetTrain(make_net(), (x, y), training_progress_checkpointing=("File", path), **options)
    monkeypatch.setattr(np, "savez", real)
    assert path.read_bytes() == before and calls["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_resume_checks_the_checkpoint_fits(tmp_path):
    x, y = namespace["x"], namespace["y"]
    NetTrain(
        NetChain([L.LinearLayer(3)], input=4),
        (x, y),
        training_progress_checkpointing=("File", tmp_path / "a.npz"),
        max_training_rounds=1,
        training_progress_reporting=None,
    )
    with pytest.raises(NetError, match="does not fit"):
        NetTrain(
            NetChain([L.LinearLayer(5), L.LinearLayer(3)], input=4),
            (x, y),
            resume_from=tmp_path / "a.npz",
            training_progress_reporting=None,
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(NetError, match="no checkpoint"):
        NetTrain(
            NetChain([L.LinearLayer(3)], input=4),
            (x, y),
            resume_from=tmp_path / "empty",
            training_progress_reporting=None,
        )
