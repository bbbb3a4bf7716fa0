"""The GPU benchmark (benchmarks/train_speed.py --device GPU, benchmarks/bench_devices.py, gpu_check.sh).

Without a GPU: the script and the check script stop at once, saying what is missing, with exit status 2
(CuPy made to fail in three ways by stand-in packages put first on the import path), and the parts that do
not depend on the device are checked here. With CuPy and a CUDA device, the tests marked for the GPU run
the device's own paths: synchronising, the memory hook, the matmul rate, a NetTrain run timed on the GPU.
PyTorch is never imported here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netgraph import gpu_available
from scripts import BENCHMARKS, ROOT

NEEDS_GPU = pytest.mark.skipif(
    not gpu_available(), reason="needs CuPy and a CUDA device (the GPU benchmark's own device paths)"
)
MODULES = ("bench_devices", "training_nets", "timed_runs", "train_speed")

# stand-ins for CuPy, each failing as a machine without a usable GPU does
BROKEN_CUPY = {
    "not installed": ("raise ImportError(\"No module named 'cupy' (a stand-in)\")\n", "needs CuPy"),
    "no device": (
        "import types\n"
        "class CUDARuntimeError(RuntimeError): pass\n"
        "runtime = types.SimpleNamespace(getDeviceCount=lambda: 0, CUDARuntimeError=CUDARuntimeError)\n"
        "cuda = types.SimpleNamespace(runtime=runtime)\n",
        "no CUDA device is visible",
    ),
    "driver missing": (
        "import types\n"
        "class CUDARuntimeError(RuntimeError): pass\n"
        "def count():\n"
        "    raise CUDARuntimeError('cudaErrorInsufficientDriver: CUDA driver version is insufficient')\n"
        "runtime = types.SimpleNamespace(getDeviceCount=count, CUDARuntimeError=CUDARuntimeError)\n"
        "cuda = types.SimpleNamespace(runtime=runtime)\n",
        "CUDA is not usable: cudaErrorInsufficientDriver",
    ),
}


@pytest.fixture(scope="module")
def bench():
    """The benchmark's modules, imported as the script imports them (benchmarks/ first on the path)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield {name: importlib.import_module(name) for name in MODULES}
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in MODULES:
            sys.modules.pop(name, None)


def broken_cupy(folder: Path, how: str) -> dict[str, str]:
    """An environment whose ``import cupy`` finds the stand-in ``how`` (in ``folder``) before any real CuPy."""
    package = folder / "cupy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(BROKEN_CUPY[how][0])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}


# --- without a usable GPU: a clear message and exit status 2, at once --------------------------------------


@pytest.mark.parametrize("how", sorted(BROKEN_CUPY))
def test_gpu_benchmark_without_a_usable_gpu_says_what_is_missing(tmp_path, how):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_speed.py"), "--device", "GPU", "--quick", "--nets", "mlp"],
        env=broken_cupy(tmp_path, how),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("train_speed.py: --device GPU cannot run here: ")
    assert BROKEN_CUPY[how][1] in done.stderr
    assert "make bench" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""  # stopped before any worker or timing


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_gpu_check_script_without_a_usable_gpu_runs_nothing(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh")],
        env={**broken_cupy(tmp_path / "fake", "not installed"), "PYTHON": sys.executable, "GPU_CHECK_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no usable GPU" in done.stderr and "needs CuPy" in done.stderr
    assert "==" not in done.stdout and not (out / "data").exists()  # no check started


def test_gpu_options_that_do_not_go_together(bench, capsys):
    speed = bench["train_speed"]
    assert speed.parse_args([]).device == "CPU"
    for argv in (["--ranks", "2"], ["--profile"]):
        with pytest.raises(SystemExit) as stopped:
            speed.parse_args(["--device", "GPU", *argv])
        assert stopped.value.code == 2
        assert "does not go with --device GPU" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.parse_args(["--cudnn-benchmark"])
    assert "--cudnn-benchmark is for --device GPU" in capsys.readouterr().err
    args = speed.parse_args(["--device", "GPU", "--cudnn-benchmark", "--data", "synthetic", "--quick"])
    assert (args.device, args.cudnn_benchmark, args.data, args.repeats) == ("GPU", True, "synthetic", 2)


def test_gpu_check_says_why_netgraph_cannot_train(bench, monkeypatch):
    speed = bench["train_speed"]
    monkeypatch.setattr(speed.devices, "gpu_missing", lambda: "no CUDA device is visible")
    with pytest.raises(speed.CannotRunError, match="cannot run here: no CUDA device is visible. Without a GPU"):
        speed.gpu_check(has_torch=True)


def test_gpu_check_times_netgraph_alone_without_pytorch_cuda(bench, monkeypatch, capsys):
    speed = bench["train_speed"]
    monkeypatch.setattr(speed.devices, "gpu_missing", lambda: None)
    assert not speed.gpu_check(has_torch=False)
    assert "PyTorch is not installed here, so netgraph is timed alone" in capsys.readouterr().out
    cpu_build = speed.devices.torch_cuda_problem("2.5.0+cpu", None, 0)
    monkeypatch.setattr(speed.nets, "run_in_process", lambda function: cpu_build)
    assert not speed.gpu_check(has_torch=True)
    printed = capsys.readouterr().out
    assert "PyTorch 2.5.0+cpu is a CPU build" in printed and "netgraph is timed alone" in printed
    monkeypatch.setattr(speed.nets, "run_in_process", lambda function: None)
    assert speed.gpu_check(has_torch=True)


# --- the parts that do not depend on the device ---------------------------------------------------------------


def test_torch_cuda_problems(bench):
    problem = bench["bench_devices"].torch_cuda_problem
    assert "CPU build" in problem("2.5.0+cpu", None, 0)
    assert "sees no CUDA device" in problem("2.5.0", "12.4", 0)
    assert problem("2.5.0", "12.4", 2) is None


def test_high_water_is_the_largest_running_total(bench):
    rng = np.random.default_rng(3)
    changes = rng.integers(-50, 100, size=200)
    level = bench["bench_devices"].HighWater(used=40)
    for change in changes:
        level.add(change) if change >= 0 else level.remove(-change)
    totals = 40 + np.cumsum(changes)
    assert level.used == totals[-1]
    assert level.peak == max(40, totals.max())


def test_product_seconds_waits_for_the_device_around_each_product(bench):
    events: list[str] = []

    def product(a, b):
        events.append("product")
        return a @ b

    a = np.ones((8, 8), np.float32)
    seconds = bench["bench_devices"].product_seconds(product, a, a, sync=lambda: events.append("sync"), repeats=3)
    assert seconds > 0
    assert events == ["sync", "product", "sync"] * 4  # a warm-up, then 3 timed


def test_synchronizer_on_the_cpu_is_nothing(bench):
    devices = bench["bench_devices"]
    assert devices.synchronizer("netgraph", "CPU") is None and devices.synchronizer("torch", "CPU") is None
    with pytest.raises(ValueError, match="device must be one of"):
        devices.synchronizer("netgraph", "TPU")


def test_batch_sizes_by_device(bench):
    specs = bench["training_nets"].SPECS
    assert {name: spec.batches_on("CPU") for name, spec in specs.items()} == {
        "seed001": (32, 128),
        "mlp": (128,),
        "augment": (32,),
    }
    assert specs["seed001"].batches_on("GPU") == (32, 128, 512)
    assert all(set(spec.batch_sizes) <= set(spec.batches_on("GPU")) for spec in specs.values())
    plain = bench["training_nets"].NetSpec("x", "x", (8,), 1e-3, 100)
    assert plain.batches_on("GPU") == (8,)


def test_configuration_labels(bench):
    configuration = bench["train_speed"].Configuration
    assert configuration("netgraph", "netgraph", 1, 2).label == "netgraph 1×2"
    assert configuration("torch-ddp", "torch", 2, 1).label == "torch 2×1 DDP gloo"
    assert configuration("netgraph", "netgraph", 1, 2, "GPU").label == "netgraph GPU (CuPy)"
    assert configuration("torch", "torch", 1, 2, "GPU").label == "torch CUDA"


def test_synthetic_pictures_stand_in_for_fashion_mnist(bench, monkeypatch):
    nets = bench["training_nets"]
    for name, shape in (("seed001", (5, 1, 28, 28)), ("mlp", (5, 784)), ("augment", (5, 3, 64, 64))):
        images = nets.synthetic_images(name, 5)
        assert images.shape == shape and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1 and images.max() >= 0.5  # a bright rectangle in each
        np.testing.assert_array_equal(images, nets.synthetic_images(name, 5))
    assert not np.array_equal(nets.synthetic_images("mlp", 5, seed=1), nets.synthetic_images("mlp", 5))
    monkeypatch.setenv(nets.DATA_VARIABLE, "synthetic")
    np.testing.assert_array_equal(nets.training_images("mlp", 4), nets.synthetic_images("mlp", 4))
    assert not np.array_equal(nets.training_images("mlp", 4, kind="test"), nets.synthetic_images("mlp", 4))


def case_row(gpu: bool) -> dict:
    """A case's figures as main() gathers them, for two configurations."""

    def figures(seconds: float, loss: float) -> dict:
        run = {"seconds": seconds, "fastest": seconds, "slowest": seconds, "losses": [loss] * 4}
        run.update(rss_before=None if gpu else 70.0, peak_rss=500.0, peak_reset=True)
        if gpu:
            run.update(gpu_peak=812.0, gpu_held=1024.0)
        return run

    return {"flops": 4e9, "netgraph": figures(0.004, 100.0), "torch": figures(0.005, 101.0)}


@pytest.mark.parametrize("device", ["CPU", "GPU"])
def test_report_of_a_case(bench, capsys, device):
    speed = bench["train_speed"]
    configurations = [speed.Configuration(k, k, 1, 2, device) for k in ("netgraph", "torch")]
    row = case_row(device == "GPU")
    for c in configurations:
        row[c.key]["label"] = c.label
    args = argparse.Namespace(tolerance=0.05)
    speed.report_case(args, "mlp", 128, row, {"netgraph": 100.0, "torch": 80.0}, configurations)
    printed = capsys.readouterr().out
    table = {
        c.label: next(line for line in printed.splitlines() if line.startswith(f"  {c.label} ")) for c in configurations
    }
    if device == "GPU":
        assert "peak GPU MB" in printed and "peak RSS MB" not in printed
        assert table["netgraph GPU (CuPy)"].split()[7] == "812"  # the GPU peak in the memory column
        assert "CuPy's memory pool held 1024 MB of the GPU at most; host peak RSS 500 MB" in printed
        assert "PyTorch's caching allocator held 1024 MB" in printed
    else:
        assert "peak RSS MB" in printed and "GPU" not in printed
        assert table["netgraph 1×2"].split()[6] == "500"
        assert "netgraph 1×2: 70 MB resident before training" in printed
    assert "0.80x" in printed  # 4 ms against 5 ms
    assert "1.0% apart (same)" in printed and row["loss_difference"] == pytest.approx(0.01 / 1.01)


def test_a_timed_run_through_the_device_argument(bench, monkeypatch):
    """netgraph_run and its stamps with the device argument (the CPU here), on made-up pictures."""
    monkeypatch.setenv(bench["training_nets"].DATA_VARIABLE, "synthetic")
    case = bench["timed_runs"].Case("mlp", 4, 3, seed=1)
    done = bench["timed_runs"].netgraph_run(case, "CPU")
    assert len(done["stamps"]) == 3 and len(done["losses"]) == 3
    assert all(np.isfinite(done["losses"])) and done["stamps"] == sorted(done["stamps"])


# --- on a GPU ---------------------------------------------------------------------------------------------------


@NEEDS_GPU
def test_gpu_memory_counts_the_pool_blocks_in_use(bench):
    import cupy

    devices = bench["bench_devices"]
    with devices.gpu_memory("netgraph") as figures:
        block = cupy.ones((64 << 20) // 4, dtype=cupy.float32)  # 64 MB
        del block
        smaller = cupy.ones((16 << 20) // 4, dtype=cupy.float32)
    assert figures["peak"] >= 64 and figures["held"] >= figures["peak"]
    del smaller


@NEEDS_GPU
def test_gpu_matmul_rate_and_synchronizer(bench):
    devices = bench["bench_devices"]
    assert devices.gpu_matmul_rate("netgraph", size=1024) > 0
    devices.synchronizer("netgraph", "GPU")()
    assert "netgraph on cupy" in devices.describe_gpu("netgraph")


@NEEDS_GPU
def test_a_timed_run_on_the_gpu(bench, monkeypatch):
    monkeypatch.setenv(bench["training_nets"].DATA_VARIABLE, "synthetic")
    speed, nets = bench["train_speed"], bench["training_nets"]
    case = bench["timed_runs"].Case("mlp", 8, 4, seed=1)
    assert nets.check_netgraph_order(case.net, case.images, case.spec, case.batch, case.seed, target_device="GPU")
    memory = speed.gpu_memory_run("netgraph", case)
    assert memory["peak"] > 0 and memory["held"] >= memory["peak"] and memory["peak_rss"] > 0
    done = bench["timed_runs"].netgraph_run(case, "GPU")
    assert len(done["stamps"]) == 4 and all(np.isfinite(done["losses"]))
