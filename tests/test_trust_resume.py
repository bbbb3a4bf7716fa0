"""Resume that holds: checkpoints record their setup, a mismatch is an error before training, a damaged
newest checkpoint falls back to the newest good one, stale temporary files go, old checkpoints are
pruned, and the checkpoint options are checked before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from deadlines import deadline

import layers as L
import netgraph.files as files
import netgraph.train.checkpoints as checkpoints
from netgraph import NetChain, NetError, NetTrain
from netgraph.io import load_with_extra

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(50, 4))
Y = np.tanh(X[:, :3]) + 0.1
OPTIONS = dict(batch_size=8, random_seeding=7, training_progress_reporting=None)  # 7 batches a round


def make_net(activation: str = "Tanh", p: float = 0.2):
    return NetChain([L.LinearLayer(8), activation, L.DropoutLayer(p), L.LinearLayer(3)], input=4)


def weights(net):
    return [v for _, v in sorted(net.array_association().items(), key=lambda kv: str(kv[0]))]


def checkpoint_mid_round(folder: Path, **options) -> Path:
    """Train 1 round and 3 batches, checkpointing every 5 batches: the newest is at round 2, batch 3."""
    NetTrain(
        make_net(),
        (X, Y),
        max_training_rounds=2,
        training_progress_checkpointing=("Directory", folder, {"Interval": ("Batches", 5)}),
        training_progress_function=(
            lambda p: "StopTraining" if p["AbsoluteBatch"] == 10 else None,
            {"Interval": ("Batches", 1)},
        ),
        **{**OPTIONS, **options},
    )
    written = sorted(folder.glob("*.npz"))
    assert [p.name.split("-")[3:5] for p in written] == [["round1", "batch5"], ["round2", "batch3"]]
    return written[-1]


def no_training(data=(X, Y)):
    """Data as a generator that records whether it was ever asked: no work may start before the checks."""
    asked = []

    def generator(info):
        asked.append(info)
        return {"Input": X[: info["BatchSize"]], "Target": Y[: info["BatchSize"]]}

    return generator, asked


def rewrite_header(path: Path, change) -> None:
    """Rewrite a checkpoint's JSON header through ``change(header)`` (as a damaged or older file would be)."""
    with np.load(path) as archive:
        payload = {name: archive[name] for name in archive.files}
    header = json.loads(payload["net.json"].tobytes().decode())
    change(header)
    payload["net.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as stream:
        np.savez(stream, **payload)


# --- what a checkpoint records, and mismatches -------------------------------------------------


def test_a_checkpoint_records_the_setup_of_an_exact_continuation(tmp_path):
    path = tmp_path / "c.npz"
    NetTrain(make_net(), (X, Y), max_training_rounds=1, training_progress_checkpointing=("File", path), **OPTIONS)
    _, header, _ = load_with_extra(path)
    setup = header["setup"]
    assert setup["TrainingExamples"] == 50 and setup["ValidationExamples"] == 0 and setup["BatchSize"] == 8
    assert setup["WorldSize"] == 1 and setup["Method"] == "ADAM" and setup["MethodOptions"]["beta1"] == 0.9
    assert setup["WorkingPrecision"] == "float32" and len(setup["Architecture"]) == 16
    assert setup["Losses"] == [["Loss", 1.0]] and ["1/Weights", 1.0] not in setup["LearningRateMultipliers"]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(data=(X[:40], Y[:40])), "training examples 50 in the checkpoint, 40 now"),
        (dict(batch_size=16), "batch size 8 in the checkpoint, 16 now"),
        (dict(validation_set=(X[:5], Y[:5])), "validation examples 0 in the checkpoint, 5 now"),
        (dict(net=make_net("Ramp")), 'layer 2 (ElementwiseLayer) has f "Tanh" in the checkpoint, "Ramp" now'),
        (dict(net=make_net(p=0.3)), "layer 3 (DropoutLayer) has p 0.2 in the checkpoint, 0.3 now"),
        (dict(loss_function=L.MeanAbsoluteLossLayer()), "architecture"),
        (dict(working_precision="Real64"), "working precision float32 in the checkpoint, float64 now"),
    ],
)
def test_a_different_setup_is_an_error_naming_it_before_training(tmp_path, change, message):
    newest = checkpoint_mid_round(tmp_path)
    options = {**OPTIONS, "max_training_rounds": 3}
    data, net = change.pop("data", (X, Y)), change.pop("net", make_net())
    seen = []
    progress = (lambda p: seen.append(p["AbsoluteBatch"]), {"Interval": ("Batches", 1)})
    with pytest.raises(NetError, match="does not fit this run") as err:
        NetTrain(net, data, resume_from=tmp_path, training_progress_function=progress, **{**options, **change})
    assert message in str(err.value) and newest.name in str(err.value) and "'Exact': False" in str(err.value)
    assert seen == []


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(learning_rate=0.1), "method option learning_rate 0.001 in the checkpoint, 0.1 now"),
        (dict(learning_rate_multipliers={1: 0.5}), "learning-rate multipliers"),
    ],
)
def test_a_changed_learning_rate_or_multiplier_resumes_saying_so(tmp_path, change, message):
    checkpoint_mid_round(tmp_path)
    with pytest.warns(UserWarning, match="changed training settings, which apply from here on") as seen:
        res = NetTrain(make_net(), (X, Y), "All", resume_from=tmp_path, max_training_rounds=3, **{**OPTIONS, **change})
    assert any(message in str(w.message) for w in seen) and res["TotalBatches"] == 21


def test_the_same_setup_resumes_silently(tmp_path):
    checkpoint_mid_round(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = NetTrain(make_net(), (X, Y), "All", resume_from=tmp_path, max_training_rounds=3, **OPTIONS)
    assert res["TotalBatches"] == 21 and res["TotalRounds"] == 3


def test_exact_false_continues_with_other_data_restarting_the_interrupted_round(tmp_path):
    checkpoint_mid_round(tmp_path)
    with pytest.warns(UserWarning, match="training examples 50 in the checkpoint, 40 now.*starts again"):
        res = NetTrain(
            make_net(),
            (X[:40], Y[:40]),
            "All",
            resume_from=(tmp_path, {"Exact": False}),
            max_training_rounds=3,
            **OPTIONS,
        )
    # 10 batches before; round 2 again from its first batch (5 batches of 40 examples), then round 3
    assert res["TotalRounds"] == 3 and res["TotalBatches"] == 10 + 5 + 5
    assert np.isfinite(res["RoundLossList"]).all() and len(res["RoundLossList"]) == 3


def test_exact_false_with_another_batch_size_and_learning_rate(tmp_path):
    checkpoint_mid_round(tmp_path)
    with pytest.warns(UserWarning) as seen:
        res = NetTrain(
            make_net(),
            (X, Y),
            "All",
            resume_from=(tmp_path, {"Exact": False}),
            max_training_rounds=2,
            **{**OPTIONS, "batch_size": 25, "learning_rate": 0.01},
        )
    assert res["TotalRounds"] == 2 and res["TotalBatches"] == 10 + 2
    messages = [str(w.message) for w in seen]
    assert any("not an exact continuation: batch size 8 in the checkpoint, 25 now" in m for m in messages)
    assert any(
        "changed training settings, which apply from here on: method option learning_rate" in m for m in messages
    )
    assert {w.filename for w in seen} == {__file__}  # each warning points at the NetTrain call, not inside netgraph


def test_arrays_of_another_shape_or_another_method_are_refused_even_when_not_exact(tmp_path):
    checkpoint_mid_round(tmp_path)
    wider = NetChain([L.LinearLayer(9), "Tanh", L.DropoutLayer(0.2), L.LinearLayer(3)], input=4)
    with pytest.raises(
        NetError,
        match=r"does not fit this net.*array 1/Weights has shape \(8, 4\) in the checkpoint, "
        r"\(9, 4\) now",
    ):
        NetTrain(wider, (X, Y), resume_from=(tmp_path, {"Exact": False}), max_training_rounds=3, **OPTIONS)
    with pytest.raises(NetError, match="method 'ADAM' in the checkpoint, 'SGD' now"):
        NetTrain(make_net(), (X, Y), resume_from=(tmp_path, {"Exact": False}), method="SGD", **OPTIONS)


def test_an_old_checkpoint_without_a_setup_is_read_with_a_warning(tmp_path):
    newest = checkpoint_mid_round(tmp_path)
    rewrite_header(newest, lambda header: header["extra"].pop("setup"))
    uninterrupted = NetTrain(make_net(), (X, Y), max_training_rounds=3, **OPTIONS)
    with pytest.warns(UserWarning, match="records no training setup"):
        resumed = NetTrain(make_net(), (X, Y), resume_from=newest, max_training_rounds=3, **OPTIONS)
    for a, b in zip(weights(uninterrupted), weights(resumed)):
        np.testing.assert_array_equal(a, b)
    # what it does hold is still checked: the interrupted round's data
    with pytest.raises(NetError, match="part-way through a round of 50 examples; the data now has 40"):
        NetTrain(make_net(), (X[:40], Y[:40]), resume_from=newest, max_training_rounds=3, **OPTIONS)


# --- damaged checkpoints -----------------------------------------------------------------------


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_good_one(tmp_path):
    newest = checkpoint_mid_round(tmp_path)
    older = sorted(tmp_path.glob("*.npz"))[0]
    expected = NetTrain(make_net(), (X, Y), resume_from=older, max_training_rounds=3, **OPTIONS)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a torn write
    with pytest.warns(
        UserWarning, match=f"resuming from {older.name}.*skipped \\(newest first\\) {newest.name}: cannot be read"
    ):
        resumed = NetTrain(make_net(), (X, Y), resume_from=tmp_path, max_training_rounds=3, **OPTIONS)
    for a, b in zip(weights(expected), weights(resumed)):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_with_a_damaged_header_is_skipped_too(tmp_path):
    newest = checkpoint_mid_round(tmp_path)
    rewrite_header(newest, lambda header: header["extra"].pop("optimizer"))
    with pytest.warns(UserWarning, match=f"{newest.name}: a damaged training checkpoint \\(optimiser missing\\)"):
        NetTrain(make_net(), (X, Y), resume_from=tmp_path, max_training_rounds=2, **OPTIONS)
    with pytest.raises(NetError, match="a damaged training checkpoint"):
        NetTrain(make_net(), (X, Y), resume_from=newest, **OPTIONS)


def test_a_directory_without_a_good_checkpoint_lists_what_was_tried(tmp_path):
    (tmp_path / "20240101-000000-00001-round1-batch1.npz").write_bytes(b"garbage")
    (tmp_path / "20240101-000000-00002-round1-batch2.npz").write_bytes(b"")
    make_net().save(tmp_path / "plain.npz")
    generator, asked = no_training()
    with pytest.raises(NetError, match="holds no usable checkpoint; tried \\(newest first\\)") as err:
        NetTrain(make_net(), generator, resume_from=tmp_path, **OPTIONS)
    text = str(err.value)
    assert text.index("00002-round1-batch2.npz") < text.index("00001-round1-batch1.npz") < text.index("plain.npz")
    assert "plain.npz: is a net file but not a training checkpoint" in text and asked == []


# --- stale temporary files ---------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_write_killed_mid_way_leaves_a_part_file_that_the_next_run_removes(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        import layers as L
        from netgraph import NetChain
        def torn(stream, **arrays):
            stream.write(b"half a file")
            stream.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = torn
        NetChain([L.LinearLayer(2)], input=2).save({str(tmp_path / "c.npz")!r})
        """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == -signal.SIGKILL, run.stderr
    [stale] = [p.name for p in tmp_path.iterdir()]
    assert stale.startswith(".c.npz~") and stale.endswith(".part")
    NetTrain(
        make_net(),
        (X, Y),
        max_training_rounds=1,
        training_progress_checkpointing=("File", tmp_path / "c.npz"),
        **OPTIONS,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_only_parts_of_gone_writers_are_removed(tmp_path):
    host, pid = files._HOST, dead_pid()
    gone = tmp_path / f".a.npz~{host}~{pid}~abc_1234.part"
    mine = tmp_path / f".b.npz~{host}~{os.getpid()}~abc_1234.part"
    live = tmp_path / f".c.npz~{host}~1~abc_1234.part"  # pid 1 is always running
    elsewhere = tmp_path / f".d.npz~another-host~{pid}~abc_1234.part"
    unnamed_old, unnamed_new = tmp_path / ".e.npz.abcd1234.part", tmp_path / ".f.npz.abcd1234.part"
    user_file = tmp_path / "notes.part"
    for path in (gone, mine, live, elsewhere, unnamed_old, unnamed_new, user_file):
        path.write_bytes(b"x")
    hours_ago = time.time() - 2 * files.UNNAMED_PART_AGE
    os.utime(unnamed_old, (hours_ago, hours_ago))
    assert sorted(files.remove_stale_parts(tmp_path)) == sorted([gone, unnamed_old])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (mine, live, elsewhere, unnamed_new, user_file)
    )


def test_resuming_from_a_directory_removes_its_stale_parts(tmp_path):
    checkpoint_mid_round(tmp_path)
    stale = tmp_path / f".x.npz~{files._HOST}~{dead_pid()}~abc_1234.part"
    stale.write_bytes(b"half")
    NetTrain(make_net(), (X, Y), resume_from=tmp_path, max_training_rounds=2, **OPTIONS)
    assert not stale.exists()


# --- retention ---------------------------------------------------------------------------------


def test_maximum_checkpoints_keeps_this_runs_newest_files(tmp_path):
    earlier = tmp_path / "19990101-000000-00001-round1-batch1.npz"
    earlier.write_bytes(b"another run's checkpoint")
    res = NetTrain(
        make_net(),
        (X, Y),
        "All",
        max_training_rounds=2,
        training_progress_checkpointing=("Directory", tmp_path, {"Interval": ("Batches", 1), "MaximumCheckpoints": 3}),
        **OPTIONS,
    )
    kept = sorted(p for p in tmp_path.glob("*.npz") if p != earlier)
    assert [p.name.split("-")[2:5] for p in kept] == [
        ["00012", "round2", "batch5"],
        ["00013", "round2", "batch6"],
        ["00014", "round2", "batch7"],
    ]
    assert res["CheckpointingFiles"] == [str(p) for p in kept] and earlier.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_runs_started_in_the_same_second_number_their_checkpoints_on(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints.time, "strftime", lambda _: "20240101-120000")
    spec = ("Directory", tmp_path, {"Interval": ("Batches", 4)})
    NetTrain(make_net(), (X, Y), max_training_rounds=1, training_progress_checkpointing=spec, **OPTIONS)
    res = NetTrain(
        make_net(),
        (X, Y),
        "All",
        max_training_rounds=2,
        resume_from=tmp_path,
        training_progress_checkpointing=spec,
        **OPTIONS,
    )
    names = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert [n.split("-")[2:4] for n in names] == [["00001", "round1"], ["00002", "round2"], ["00003", "round2"]]
    assert res["CheckpointingFiles"] == [str(tmp_path / n) for n in names[1:]]


def test_time_intervals_and_minimum_interval(tmp_path):
    res = NetTrain(
        make_net(),
        (X, Y),
        "All",
        max_training_rounds=1,
        training_progress_checkpointing=("Directory", tmp_path / "a", {"Interval": ("Seconds", 1e-9)}),
        **OPTIONS,
    )
    assert len(res["CheckpointingFiles"]) == 7  # due after every batch
    res = NetTrain(
        make_net(),
        (X, Y),
        "All",
        max_training_rounds=1,
        training_progress_checkpointing=("Directory", tmp_path / "b", {"Interval": ("Minutes", 1)}),
        **OPTIONS,
    )
    assert res["CheckpointingFiles"] == [] and not (tmp_path / "b").exists()  # nothing made before a checkpoint
    res = NetTrain(
        make_net(),
        (X, Y),
        "All",
        max_training_rounds=1,
        training_progress_checkpointing=(
            "Directory",
            tmp_path / "c",
            {"Interval": ("Batches", 1), "MinimumInterval": 3600},
        ),
        **OPTIONS,
    )
    assert len(res["CheckpointingFiles"]) == 1


# --- the options, checked before any work ------------------------------------------------------


def read_only_directory(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if os.access("/proc/self", os.W_OK):
        pytest.skip("no directory that root cannot write in")
    return Path("/proc/self")  # root may write anywhere but here


@pytest.mark.parametrize(
    "spec, message",
    [
        (lambda d: ("File", d), "is a directory; give a file path"),
        (lambda d: ("Directory", d / "f.txt"), "is a file, not a directory"),
        (lambda d: ("File", d / "f.txt" / "c.npz"), "is not a directory, so"),
        (lambda d: ("Directory", d, {"Intervl": ("Rounds", 1)}), "has no sub-option 'Intervl'"),
        (lambda d: ("Directory", d, {"Interval": ("Rounds", 0)}), "'Interval' must be"),
        (lambda d: ("Directory", d, {"Interval": ("Batches", 2.5)}), "'Interval' must be"),
        (lambda d: ("Directory", d, {"Interval": ("Weeks", 1)}), "'Interval' must be"),
        (lambda d: ("Directory", d, {"Interval": ("Seconds", float("nan"))}), "'Interval' must be"),
        (lambda d: ("Directory", d, {"Interval": 5}), "'Interval' must be"),
        (lambda d: ("Directory", d, {"MinimumInterval": -1}), "'MinimumInterval' must be"),
        (lambda d: ("Directory", d, {"MaximumCheckpoints": 0}), "'MaximumCheckpoints' must be"),
        (lambda d: ("Directory", d, {"MaximumCheckpoints": True}), "'MaximumCheckpoints' must be"),
        (lambda d: ("File", d / "c.npz", {"MaximumCheckpoints": 2}), "applies to ('Directory', dir)"),
        (lambda d: ("Directory", d, "every round"), "must be a dict of sub-options"),
        (lambda d: ("File",), 'must be ("File", path) or'),
        (lambda d: ("Folder", d), 'must be ("File", path) or'),
        (lambda d: ("File", 42), "needs a path"),
        (lambda d: "checkpoints", 'must be ("File", path) or'),
        (lambda d: ("Directory", read_only_directory(d)), "no permission to write in"),
        (lambda d: ("File", read_only_directory(d) / "c.npz"), "no permission to write in"),
    ],
)
def test_bad_checkpointing_is_refused_before_any_work(tmp_path, spec, message):
    (tmp_path / "f.txt").write_text("a file")
    generator, asked = no_training()
    with pytest.raises(NetError, match="training_progress_checkpointing") as err:
        NetTrain(make_net(), generator, training_progress_checkpointing=spec(tmp_path), **OPTIONS)
    assert message in str(err.value) and asked == []


@pytest.mark.parametrize(
    "where, message",
    [
        (lambda d: d / "missing.npz", "no such file or directory"),
        (lambda d: d / "plain.npz", "is a net file but not a training checkpoint"),
        (lambda d: d / "f.txt", "f.txt': cannot be read: not a netgraph net file"),
        (lambda d: d / "empty", "holds no checkpoint (*.npz) files"),
        (lambda d: 42, "resume_from must be a checkpoint file or a directory"),
        (lambda d: (d, {"Exact": "no"}), "'Exact' must be True or False"),
        (lambda d: (d, {"Exactly": False}), "resume_from's sub-options are"),
        (lambda d: d / "fifo.npz", "is not a regular file or a directory"),
    ],
)
def test_bad_resume_from_is_refused_before_any_work(tmp_path, where, message):
    (tmp_path / "f.txt").write_text("a file")
    (tmp_path / "empty").mkdir()
    make_net().save(tmp_path / "plain.npz")
    os.mkfifo(tmp_path / "fifo.npz")
    generator, asked = no_training()
    with pytest.raises(NetError, match="resume_from") as err, deadline(20):  # a FIFO must not hang
        NetTrain(make_net(), generator, resume_from=where(tmp_path), **OPTIONS)
    assert message in str(err.value) and asked == []
