"""Data-parallel NetTrain under ``mpiexec -n 2`` (netgraph.distributed), and one process untouched by it.

The MPI tests launch ``mpiexec -n 2 python tests/mpi_scripts/worker.py CASE OUT`` under a timeout, with the
``mpiexec`` next to this Python (MPICH's wheel puts it there) or else on PATH; they are skipped when mpi4py
or mpiexec is missing (``pip install .[mpi]``). The GPU test needs CuPy and 2 GPUs: on such a machine,
``python -m pytest tests/test_distributed.py -k gpu``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from netgraph import All, NetError, NetTrain
from netgraph.distributed import ONE_PROCESS, launched_size, world
from netgraph.train.data import TrainingData, share
from scripts import idx_folder

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "mpi_scripts" / "worker.py"
LAUNCH_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK")
TIMEOUT = 60


def find_mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = find_mpiexec()
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpi4py and mpiexec (pip install .[mpi])",
)


def load_worker():
    spec = importlib.util.spec_from_file_location("mpi_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker = load_worker()


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without a launcher's variables (pytest may itself run under mpiexec)."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES and k != "NETGRAPH_DISTRIBUTED"}
    return {**env, "NETGRAPH_NUM_THREADS": "1", **extra}


def launch(case: str, out: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``mpiexec -n 2`` of the worker, within TIMEOUT seconds."""
    command = [MPIEXEC, "-n", "2", sys.executable, str(WORKER), case, str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=clean_environment(**env))


def report(out: Path, rank: int) -> dict:
    return json.loads((out / f"rank{rank}.json").read_text())


def arrays(out: Path, rank: int, name: str) -> dict[str, np.ndarray]:
    with np.load(out / f"rank{rank}-{name}.npz") as saved:
        return dict(saved)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The worker's "train" case, run once for the tests that read it."""
    out = tmp_path_factory.mktemp("train")
    done = launch("train", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


# --- two ranks -----------------------------------------------------------------------------------


@needs_mpi
def test_two_ranks_end_with_the_same_arrays_as_one_process(trained):
    first, second = arrays(trained, 0, "mlp"), arrays(trained, 1, "mlp")
    for name in first:  # bit for bit on both ranks
        assert np.array_equal(first[name], second[name]), name
    alone = worker.train_mlp()  # 1 process, the same global batch of 4 (9 examples: the last batch has 1)
    assert alone["BatchLossList"] == pytest.approx(report(trained, 0)["losses"], rel=1e-5)
    assert len(report(trained, 0)["losses"]) == 9
    for name, value in worker.arrays(alone["TrainedNet"]).items():
        np.testing.assert_allclose(first[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@needs_mpi
def test_batch_normalization_and_dropout_leave_the_same_net_on_both_ranks(trained):
    first, second = arrays(trained, 0, "normal"), arrays(trained, 1, "normal")
    assert {"2/MovingMean", "2/MovingVariance"} <= set(first)
    for name in first:
        assert np.array_equal(first[name], second[name]), name
    assert not np.array_equal(first["2/MovingMean"], np.zeros_like(first["2/MovingMean"]))  # they were trained
    validation = report(trained, 0)["validation"]  # reduced over the ranks: the same on both
    assert len(validation) == 2 and validation == report(trained, 1)["validation"]


@needs_mpi
def test_a_generator_is_asked_for_each_ranks_share_with_its_rank(trained):
    calls = [report(trained, rank)["calls"] for rank in (0, 1)]
    assert [call["BatchSize"] for call in calls[0]] == [3] * 4  # a batch of 5: 3 on rank 0, 2 on rank 1
    assert [call["BatchSize"] for call in calls[1]] == [2] * 4
    assert {(c["Rank"], c["WorldSize"]) for c in calls[0]} == {(0, 2)} and calls[1][0]["Rank"] == 1
    assert [c["AbsoluteBatch"] for c in calls[1]] == [1, 2, 3, 4]
    first, second = arrays(trained, 0, "generated"), arrays(trained, 1, "generated")  # Automatic seed: rank 0's
    for name in first:
        assert np.array_equal(first[name], second[name]), name


@needs_mpi
def test_only_rank_0_writes_files(trained):
    zero, one = report(trained, 0), report(trained, 1)
    assert one["written"] == []
    assert "log.csv" in zero["written"] and any(name.startswith("checkpoints/") for name in zero["written"])
    assert len(list((trained / "checkpoints").glob("*.npz"))) == 9  # one per batch, written once
    assert zero["files"] == one["files"] and len(zero["files"]) == 9  # every rank returns the same results
    assert len((trained / "log.csv").read_text().splitlines()) == 4  # the header and 3 rounds


@needs_mpi
def test_a_nan_on_one_rank_stops_both_with_the_same_training_error(tmp_path):
    done = launch("nan", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    messages = {(tmp_path / f"rank{rank}-caught.txt").read_text() for rank in (0, 1)}  # both caught it
    assert len(messages) == 1
    assert "the loss became nan in round 1, batch 1 on rank 1 (of 2)" in messages.pop()


@needs_mpi
def test_an_exception_on_one_rank_stops_both_and_is_shown_once(tmp_path):
    started = time.monotonic()
    done = launch("raise", tmp_path)
    assert done.returncode != 0
    assert time.monotonic() - started < TIMEOUT
    message = "TrainingError: NetTrain: rank 1 (of 2) failed: ValueError: the generator of rank 1 broke"
    assert done.stderr.count(message) == 1, done.stderr[-3000:]
    assert done.stderr.count("Traceback") == 1


@needs_mpi
def test_a_killed_job_resumed_from_its_checkpoints_equals_an_uninterrupted_one(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    assert launch("resume", whole).returncode == 0
    command = [MPIEXEC, "-n", "2", sys.executable, str(WORKER), "resume", str(killed)]
    job = subprocess.Popen(command, env=clean_environment(WORKER_PAUSE="0.15"), start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(list((killed / "checkpoints").glob("*.npz"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert job.poll() is None, "the job ended before it could be killed"
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # mpiexec and both ranks
        job.wait(TIMEOUT)
    assert not list(killed.glob("rank*.npz"))  # it did not get to the end
    resumed = launch("resume", killed, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in (0, 1):
        expected, got = arrays(whole, rank, "resumed"), arrays(killed, rank, "resumed")
        for name in expected:
            assert np.array_equal(expected[name], got[name]), (rank, name)


@needs_mpi
def test_resuming_with_another_number_of_processes_is_refused_unless_not_exact(trained):
    x, y = worker.line_data()
    options = {"batch_size": 4, "max_training_rounds": 4, "random_seeding": 1, "training_progress_reporting": None}
    with pytest.raises(NetError, match=r"processes \(WorldSize\) 2 in the checkpoint, 1 now"):
        NetTrain(worker.mlp(), (x, y), resume_from=trained / "checkpoints", **options)
    with pytest.warns(UserWarning, match=r"not an exact continuation: processes \(WorldSize\) 2"):
        results = NetTrain(
            worker.mlp(), (x, y), "All", resume_from=(trained / "checkpoints", {"Exact": False}), **options
        )
    assert results["TotalRounds"] == 4 and results["TotalBatches"] == 12


# --- GPUs (NCCL) -----------------------------------------------------------------------------------


def gpus() -> int:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no CuPy, no driver: no GPU
        return 0


@needs_mpi
@pytest.mark.skipif(gpus() < 2, reason="needs CuPy and 2 CUDA GPUs")
def test_gpu_two_ranks_sum_their_gradients_with_nccl(tmp_path):
    done = launch("train", tmp_path, WORKER_DEVICE="GPU")
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = arrays(tmp_path, 0, "mlp"), arrays(tmp_path, 1, "mlp")
    alone = worker.arrays(worker.train_mlp()["TrainedNet"])
    for name in first:
        assert np.array_equal(first[name], second[name]), name
        np.testing.assert_allclose(first[name], alone[name], rtol=1e-4, atol=1e-5, err_msg=name)


# --- one process: nothing changes, nothing is imported --------------------------------------------


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
        env=clean_environment(**env),
    )  # fmt: skip


TRAIN_AND_LOOK = (
    "import sys, numpy as np; from netgraph import NetTrain, LinearLayer; from netgraph.distributed import world; "
    "NetTrain(LinearLayer(1, input=1), (np.ones((4, 1)), np.ones((4, 1))), max_training_rounds=1, "
    "training_progress_reporting=None); print(world().size, 'mpi4py' in sys.modules)"
)


@pytest.mark.parametrize(
    "env",
    [{}, {"PMI_SIZE": "1"}, {"OMPI_COMM_WORLD_SIZE": "1"}, {"PMI_SIZE": "2", "NETGRAPH_DISTRIBUTED": "0"}],
    ids=["plain", "mpiexec -n 1", "Open MPI -n 1", "switched off"],
)
def test_one_process_trains_as_before_and_imports_no_mpi(env):
    done = run_python(TRAIN_AND_LOOK, **env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "False"]


def test_a_launch_of_several_processes_without_mpi4py_says_what_to_install():
    code = "import sys; sys.modules['mpi4py'] = None\n" + TRAIN_AND_LOOK
    done = run_python(code, PMI_SIZE="2", PMI_RANK="0")
    assert done.returncode != 0
    assert "NetError: netgraph: this process is one of 2 launched by mpiexec" in done.stderr
    assert "pip install netgraph[mpi]" in done.stderr


def test_the_world_of_a_plain_process(monkeypatch):
    assert world().size == 1 and world().rank == 0 and world().comm is None and world().is_root
    assert ONE_PROCESS.allgather_object("x") == ["x"] and ONE_PROCESS.broadcast_object(3) == 3
    buffer = np.arange(3.0)
    assert ONE_PROCESS.allreduce_sum(buffer) is buffer and buffer.tolist() == [0.0, 1.0, 2.0]
    ONE_PROCESS.raise_together(None, NetError)  # nothing to raise
    with pytest.raises(ValueError, match="boom"):
        ONE_PROCESS.raise_together(ValueError("boom"), NetError)  # one rank, the same error everywhere
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK", "NETGRAPH_DISTRIBUTED"):
        monkeypatch.delenv(name, raising=False)
    assert launched_size() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert launched_size() == 4
    monkeypatch.setenv("NETGRAPH_DISTRIBUTED", "off")
    assert launched_size() is None


def test_each_rank_takes_a_contiguous_share_of_every_batch():
    columns = {"Input": np.arange(10.0)[:, None]}
    net = worker.mlp()
    order = np.arange(10)[::-1]
    parts = []
    for rank in (0, 1, 2):
        data = TrainingData(net, columns, None, 10, 4, np.random.default_rng(0), rank=rank, size=3)
        parts.append([data.batch(order, 1, batch, batch)["Input"][:, 0].tolist() for batch in (1, 2, 3)])
    assert parts[0] == [[9.0, 8.0], [5.0, 4.0], [1.0]]  # batches of 4, 4 and 2, split 2+1+1, 2+1+1, 1+1+0
    assert parts[1] == [[7.0], [3.0], [0.0]]
    assert parts[2] == [[6.0], [2.0], []]
    assert [share(2, rank, 3) for rank in range(3)] == [slice(0, 1), slice(1, 2), slice(2, 2)]


def test_gpu_all_is_a_target_device_nettrain_accepts(device):
    from netgraph import LinearLayer

    x = np.ones((4, 1))
    options = {"max_training_rounds": 1, "training_progress_reporting": None}
    if device == "GPU":
        net = NetTrain(LinearLayer(1, input=1), (x, x), target_device=("GPU", All), **options)
        assert net.arrays["Weights"].shape == (1, 1)
    else:
        with pytest.raises(NetError) as err:
            NetTrain(LinearLayer(1, input=1), (x, x), target_device=("TPU", All), **options)
        assert '("GPU", All): one process per GPU under mpiexec' in str(err.value)


@needs_mpi
def test_an_example_under_mpiexec_trains_together_and_writes_its_files_once(tmp_path):
    data, out, scratch = idx_folder(tmp_path / "idx"), tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    command = [MPIEXEC, "-n", "2", sys.executable, str(ROOT / "examples" / "mnist_vae.py"), "--data", str(data)]
    command += ["--iterations", "4", "--batch-size", "8", "--out", str(out), "--checkpoint", str(tmp_path / "ck")]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, env=clean_environment(TMPDIR=str(scratch))
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("data-parallel: 2 processes (mpiexec)") == 1  # rank 0 alone speaks
    assert done.stdout.count("pictures and the trained net are in") == 1
    assert {p.name for p in out.iterdir()} >= {"vae.npz", "samples.png", "loss.png", "vae.png"}
    assert len(list((tmp_path / "ck").glob("*.npz"))) == 1  # written by rank 0 only
    assert not list(scratch.glob("netgraph-rank*"))  # the other rank's scratch folder is gone
