"""netgraph.tuning and the convolution lowering it chooses: the cache file's round trip in a fresh
process, determinism for a given cache, the switch, a corrupt cache, and every candidate lowering
computing what the fixed rules compute."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from layers import convolution as conv
from netgraph import tuning
from netgraph.backend import SPLITS, cpu_work, set_cpu_threads
from netgraph.compiled import numba_available

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder, tuning on, this process's choices forgotten before and after."""
    monkeypatch.setenv("NETGRAPH_CACHE", str(tmp_path))
    previous = tuning.set_autotuning(True)
    tuning.forget()
    yield tmp_path
    tuning.forget()
    tuning.set_autotuning(previous)


def _runs(log: list):
    def run(choice):
        log.append(dict(choice))

    return run


def test_choose_times_once_then_remembers(cache):
    log: list = []
    stages = [("block", [1, 2]), ("split", ["rows"])]
    first = tuning.choose(("k", 1), {"block": 1, "split": None}, stages, _runs(log), work=float("inf"))
    assert len(log) == (1 + tuning.REPEATS) * 4  # two stages of two candidates: warm-up and timed runs each
    assert tuning.choose(("k", 1), {"block": 1, "split": None}, stages, _runs(log), work=float("inf")) == first
    assert len(log) == (1 + tuning.REPEATS) * 4  # no more timing
    (record,) = tuning.report()
    assert record.choice == first and not record.from_disk and len(record.times) == 4
    content = json.loads(tuning.cache_file().read_text())
    assert content["choices"] == {"k | 1": first} and content["machine"] == tuning.machine_key()


def test_small_work_and_switch_off_keep_the_defaults(cache):
    def fail(choice):
        raise AssertionError("timed")

    defaults = {"block": 1}
    assert tuning.choose(("small",), defaults, [("block", [2])], fail, work=tuning.TUNING_MINIMUM - 1) == defaults
    tuning.set_autotuning(False)
    assert tuning.choose(("off",), defaults, [("block", [2])], fail, work=float("inf")) == defaults
    assert tuning.report() == [] and not tuning.cache_file().exists()


def test_environment_switch():
    code = "from netgraph import tuning; print(tuning.autotuning_enabled())"
    environment = {**os.environ, "NETGRAPH_AUTOTUNE": "0", "PYTHONPATH": str(ROOT)}
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert answer.stdout.strip() == "False", answer.stderr


def test_the_fastest_candidate_wins_and_noise_keeps_the_defaults(cache, monkeypatch):
    import time

    def run(choice):
        time.sleep(choice["ms"] / 1000)

    assert tuning.choose(("sleep",), {"ms": 4}, [("ms", [0, 8])], run, work=float("inf")) == {"ms": 0}
    monkeypatch.setattr(tuning, "MARGIN", 10.0)  # nothing is ever that much faster
    assert tuning.choose(("sleep", 2), {"ms": 4}, [("ms", [0])], run, work=float("inf")) == {"ms": 4}


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "choices": [1]}', '{"format": 999, "choices": {}}'])
def test_corrupt_cache_is_ignored_with_a_warning_and_rewritten(cache, content):
    path = tuning.cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    log: list = []
    with pytest.warns(UserWarning, match="tuning cache"):
        choice = tuning.choose(("c",), {"block": 1}, [("block", [2])], _runs(log), work=float("inf"))
    assert log  # timed, the file's content being unusable
    assert json.loads(path.read_text())["choices"] == {"c": choice}


def test_unreadable_cache_is_ignored_with_a_warning(cache):
    path = tuning.cache_file()
    path.mkdir(parents=True)  # a folder where the file should be: reading fails, writing too
    with pytest.warns(UserWarning, match="tuning cache"):
        tuning.choose(("u",), {"block": 1}, [("block", [2])], _runs([]), work=float("inf"))


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from layers.convolution import Window, convolution, deconvolution
    from netgraph import tuning
    from netgraph.autograd import Tape, Tensor, backward
    from netgraph.backend import cpu_work

    tuning.TUNING_MINIMUM = 0  # time even this small net
    rng = np.random.default_rng(0)
    window = Window((3, 3), (2, 1), (1, 1), ((1, 1), (0, 1)))
    x, w, wd = (Tensor(rng.standard_normal(s), requires_grad=True) for s in ((4, 6, 9, 8), (8, 6, 3, 3), (8, 5, 3, 3)))
    with cpu_work(), Tape() as tape:
        y = convolution(x, w, window=window)
        z = deconvolution(y, wd, window=window)
    grads = backward(tape, {z: np.ones(z.shape)})
    values = [z.data, *(grads[id(t)] for t in (x, w, wd))]
    print(json.dumps({
        "bits": [v.tobytes().hex() for v in values],
        "records": [[r.key, r.choice, r.from_disk, len(r.times)] for r in tuning.report()],
    }))
    """
)


def _fresh_process(cache: Path) -> dict:
    environment = {**os.environ, "NETGRAPH_CACHE": str(cache), "NETGRAPH_AUTOTUNE": "1", "PYTHONPATH": str(ROOT)}
    answer = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def test_cache_round_trip_in_fresh_processes(tmp_path):
    first = _fresh_process(tmp_path)
    assert first["records"] and not any(from_disk for _, _, from_disk, _ in first["records"])
    (path,) = tmp_path.glob("tuning-*.json")
    kept = json.loads(path.read_text())["choices"]
    assert {key: choice for key, choice, _, _ in first["records"]} == kept
    second = _fresh_process(tmp_path)  # reads the file, times nothing
    assert all(from_disk and timings == 0 for _, _, from_disk, timings in second["records"])
    assert sorted(map(str, second["records"])) == sorted(str([k, c, True, 0]) for k, c, _, _ in first["records"])
    assert second["bits"] == first["bits"]  # same cache, same choices, same bits


def test_a_given_cache_decides_the_choices(tmp_path):
    """Whatever the file says is used, untimed: here the choices the fixed rules would not make."""
    first = _fresh_process(tmp_path)
    (path,) = tmp_path.glob("tuning-*.json")
    content = json.loads(path.read_text())
    for key, choice in content["choices"].items():
        choice.update(transpose=True, split="rows")
        if key.startswith("adjoint"):  # (smaller blocks in the forward pass would leave no columns to reuse)
            choice.update(block=4096 if choice["block"] is None else None)
    path.write_text(json.dumps(content))
    forced = _fresh_process(tmp_path)
    assert {key: choice for key, choice, _, _ in forced["records"]} == content["choices"]
    assert all(from_disk for _, _, from_disk, _ in forced["records"])
    again = _fresh_process(tmp_path)
    assert again["bits"] == forced["bits"]
    for ours, theirs in zip(forced["bits"], first["bits"]):  # another lowering: float rounding apart
        a, b = np.frombuffer(bytes.fromhex(ours)), np.frombuffer(bytes.fromhex(theirs))
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def _lowerings():
    windows = ["numpy", "compiled"] if numba_available() else ["numpy"]
    for w, block, transpose, split, rows in itertools.product(
        windows, [None, 300, 5000], [False, True], [None, *SPLITS], [False, True]
    ):
        yield conv.Lowering(windows=w, block=block, transpose=transpose, split=split, rows_in_parallel=rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_lowering_computes_what_the_fixed_rules_compute(dtype):
    rng = np.random.default_rng(5)
    window = conv.Window((3, 2), (1, 2), (2, 1), ((0, 0), (0, 0)))
    groups, n, c, o = 2, 5, 4, 6
    xpad = conv._pad(rng.standard_normal((n, c, 11, 9)).astype(dtype), window.pads)
    out = window.positions(xpad.shape[2:])
    weights = rng.standard_normal((o, c // groups, *window.kernel)).astype(dtype)
    cotangent = conv._pad(rng.standard_normal((n, o, *out)).astype(dtype), ((0, 0), (0, 0)))
    reference = conv.Lowering()
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    with cpu_work():
        forward, gradient = conv._correlate_with(reference, xpad, window, out, groups, weights, cotangent, None)
        adjoint = conv._correlate_adjoint_with(reference, cotangent, weights, window, xpad.shape, groups)
        for lowering in _lowerings():
            y, gw = conv._correlate_with(lowering, xpad, window, out, groups, weights, cotangent, None)
            gx = conv._correlate_adjoint_with(lowering, cotangent, weights, window, xpad.shape, groups)
            for got, expected in ((y, forward), (gw, gradient), (gx, adjoint)):
                np.testing.assert_allclose(got, expected, **tolerance, err_msg=str(lowering))


@pytest.mark.parametrize("threads", [2, 3])
def test_columns_kept_by_one_lowering_serve_the_weights_gradient_of_another(threads):
    """The forward pass keeps its column blocks (one per share of rows) for the weights' gradient,
    which may run under another lowering: every pairing gives the reference's gradient."""
    rng = np.random.default_rng(6)
    window = conv.Window((3, 3), (2, 1), (1, 1), ((1, 1), (0, 1)))
    xpad = conv._pad(rng.standard_normal((4, 3, 13, 8)), window.pads)
    out = window.positions(xpad.shape[2:])
    weights = rng.standard_normal((5, 3, 3, 3))
    cotangent = conv._pad(rng.standard_normal((4, 5, *out)), ((0, 0), (0, 0)))
    pairs = itertools.product((False, True), (None, "rows"))
    lowerings = [conv.Lowering(rows_in_parallel=rows, split=split) for rows, split in pairs]
    set_cpu_threads(threads)
    try:
        with cpu_work():
            forward, gradient = conv._correlate_with(conv.Lowering(), xpad, window, out, 1, weights, cotangent, None)
            for first, second in itertools.product(lowerings, lowerings):
                saved: list = []
                y, _ = conv._correlate_with(first, xpad, window, out, 1, weights, None, saved)
                assert len(saved) == 1 and len(saved[0]) == (min(threads, out[0]) if first.rows_in_parallel else 1)
                _, gw = conv._correlate_with(second, xpad, window, out, 1, None, cotangent, saved)
                assert saved == []
                np.testing.assert_allclose(y, forward, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(gw, gradient, rtol=1e-12, atol=1e-12, err_msg=f"{first} then {second}")
    finally:
        set_cpu_threads(None)
