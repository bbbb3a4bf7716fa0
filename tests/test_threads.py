"""netgraph's own CPU threads: the split matrix product, the split window copies and scatter-adds
of the convolutions (also block by block), and the in-place ADAM update give the same numbers
on any thread count. The process settings of cpu_work() (OpenBLAS on one thread, glibc keeping
freed memory) hold inside it only, and are put back after it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layers.convolution as convolution_module
from layers.convolution import Window, convolution, deconvolution
from netgraph import backend
from netgraph.autograd import Tape, Tensor, backward
from netgraph.optimizers import make_optimizer


@pytest.fixture
def threads(monkeypatch):
    """Sets the thread count and makes every pass big enough to be split; restores both after."""
    monkeypatch.setattr(backend, "PARALLEL_MINIMUM", 1)
    monkeypatch.setattr(backend, "PRODUCT_MINIMUM", 1)

    def use(count: int) -> None:
        backend.set_cpu_threads(count)

    with backend.cpu_work():  # netgraph splits products only inside it
        yield use
    backend.set_cpu_threads(None)


def test_thread_count_comes_from_the_environment(monkeypatch):
    backend.set_cpu_threads(None)
    monkeypatch.setenv("NETGRAPH_NUM_THREADS", "3")
    assert backend.cpu_threads() == 3
    monkeypatch.delenv("NETGRAPH_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert backend.cpu_threads() == 3  # read once, until set_cpu_threads(None)
    backend.set_cpu_threads(None)
    assert backend.cpu_threads() == 1
    backend.set_cpu_threads(2)
    assert backend.cpu_threads() == 2
    backend.set_cpu_threads(None)
    with pytest.raises(backend.BackendError, match="positive int"):
        backend.set_cpu_threads(0)


def test_in_parallel_covers_the_range_once(threads):
    threads(3)
    seen = np.zeros(10, int)

    def work(begin, end):
        seen[begin:end] += 1

    backend.in_parallel(np, work, 10, 10)
    assert seen.tolist() == [1] * 10


def test_in_parallel_passes_errors_on(threads):
    threads(2)

    def work(begin, end):
        if begin > 0:
            raise ValueError("second part")

    with pytest.raises(ValueError, match="second part"):
        backend.in_parallel(np, work, 4, 4)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 40),
    inner=st.integers(1, 30),
    columns=st.integers(1, 40),
    stack=st.sampled_from([(), (3,)]),
    transpose_a=st.booleans(),
    transpose_b=st.booleans(),
    count=st.integers(1, 4),
    few_rows=st.sampled_from([0, 8, 128]),
    into=st.booleans(),
)
def test_split_matrix_product_equals_numpys(
    rows, inner, columns, stack, transpose_a, transpose_b, count, few_rows, into
):
    """Split over threads, and computed as the transpose when it has few rows and a long inner side."""
    rng = np.random.default_rng(rows * 1000 + columns)
    a = rng.standard_normal((*stack, inner, rows) if transpose_a else (*stack, rows, inner)).astype(np.float32)
    b = rng.standard_normal((*stack, columns, inner) if transpose_b else (*stack, inner, columns)).astype(np.float32)
    a = a.swapaxes(-1, -2) if transpose_a else a
    b = b.swapaxes(-1, -2) if transpose_b else b
    saved = backend.PARALLEL_MINIMUM, backend.PRODUCT_MINIMUM, backend.FEW_ROWS
    backend.PARALLEL_MINIMUM, backend.PRODUCT_MINIMUM, backend.FEW_ROWS = 1, 1, few_rows
    try:
        backend.set_cpu_threads(count)
        out = np.full((*stack, rows, columns), np.nan, np.float32) if into else None
        with backend.cpu_work():
            result = backend.matmul(a, b, out=out)
        assert out is None or result is out
    finally:
        backend.PARALLEL_MINIMUM, backend.PRODUCT_MINIMUM, backend.FEW_ROWS = saved
        backend.set_cpu_threads(None)
    assert result.shape == (a @ b).shape and result.dtype == np.float32
    np.testing.assert_allclose(result, a @ b, rtol=1e-5, atol=1e-5)


def _conv_run(primitive, x, w, b, window, groups):
    xs, ws, bs = (Tensor(v, True) for v in (x, w, b))
    with Tape() as tape:
        y = primitive(xs, ws, bs, window=window, groups=groups)
    seed = np.cos(np.arange(y.data.size)).reshape(y.shape)
    grads = backward(tape, {y: seed})
    return [y.data, *(grads[id(t)] for t in (xs, ws, bs))]


@pytest.mark.parametrize("kind", ["convolution", "deconvolution"])
@pytest.mark.parametrize("batch,channels", [(1, 6), (5, 1), (4, 4)])
def test_convolutions_agree_on_any_thread_count_and_block_size(threads, monkeypatch, kind, batch, channels):
    rng = np.random.default_rng(batch * 10 + channels)
    window = Window(kernel=(3, 2), stride=(2, 1), dilation=(1, 2), pads=((1, 0), (2, 1)))
    groups = 2 if channels % 2 == 0 else 1
    x = rng.standard_normal((batch, channels, 7, 6))
    if kind == "convolution":
        w, primitive = rng.standard_normal((4, channels // groups, 3, 2)), convolution
    else:
        w, primitive = rng.standard_normal((channels, 4 // groups, 3, 2)), deconvolution
    b = rng.standard_normal(4)
    threads(1)
    one = _conv_run(primitive, x, w, b, window, groups)
    for count, block in ((2, 1 << 20), (3, 1 << 20), (1, 1), (2, 1), (3, 50)):  # 1: one output row a block
        threads(count)
        monkeypatch.setattr(convolution_module, "COLUMN_BLOCK", block)
        for got, expected in zip(_conv_run(primitive, x, w, b, window, groups), one):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["contiguous", "transposed gradient", "transposed weights"])
def test_adam_in_place_equals_the_formula(threads, layout):
    threads(3)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((7, 5)).astype(np.float32)
    if layout == "transposed weights":
        w = np.asfortranarray(w)
    grads = [rng.standard_normal((7, 5)).astype(np.float32) for _ in range(3)]
    if layout == "transposed gradient":
        grads = [np.asfortranarray(g) for g in grads]
    optimizer = make_optimizer(("ADAM", {"learning_rate": 0.01}), None)
    expected, m, v = w.astype(np.float64), 0.0, 0.0
    b1, b2, eps = 0.9, 0.999, 1e-5
    for step, g in enumerate(grads, 1):
        optimizer.update([("w", w, g)], step, 3)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g.astype(np.float64) ** 2
        expected -= 0.01 * np.sqrt(1 - b2**step) / (1 - b1**step) * m / (np.sqrt(v) + eps)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_workers(threads):
    import multiprocessing

    threads(2)
    a = np.arange(24.0).reshape(4, 6)
    backend.matmul(a, a.T)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        result = pool.apply_async(backend.matmul, (a, a.T)).get(timeout=60)
    np.testing.assert_allclose(result, a @ a.T)


# --- the process settings of cpu_work(), each case in a fresh process ------------------------------

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Run first in each fresh process: reads OpenBLAS's thread count as netgraph's backend finds it
# (None without OpenBLAS) and watches glibc's malloc through mallinfo (None without glibc).
PROBE = """
import ctypes, importlib, json, os, sys, threading
import numpy as np

def _blas_functions():
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    for path in paths:
        library = ctypes.CDLL(path)
        for prefix, suffix in (("openblas_", ""), ("scipy_openblas_", "64_"), ("openblas_", "64_")):
            get, put = prefix + "get_num_threads" + suffix, prefix + "set_num_threads" + suffix
            if hasattr(library, get):
                return getattr(library, get), getattr(library, put)
    return None, None

_get, _set = _blas_functions()
if _set is not None:
    _set(3)  # the program's own choice, on any number of cores

def blas():
    return None if _get is None else _get()

_FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version
    if hasattr(libc, "mallinfo2"):
        class Info(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]
        libc.mallinfo2.restype = Info
        mallinfo = libc.mallinfo2
    else:
        class Info(ctypes.Structure):
            _fields_ = [(name, ctypes.c_int) for name in _FIELDS]
        libc.mallinfo.restype = Info
        mallinfo = libc.mallinfo
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
except (OSError, AttributeError):
    libc = None

def mapped(size):
    # whether malloc gives a block of this size a mapping of its own (above the mmap threshold)
    if libc is None:
        return None
    before = mallinfo().hblks
    block = libc.malloc(size)
    answer = mallinfo().hblks > before
    libc.free(block)
    return answer

def free_top():
    # 8 MB allocated and freed: at the top of the heap if the mmap threshold is above 8 MB
    if libc is not None:
        libc.free(libc.malloc(8 << 20))

def trims():
    # whether a free now hands the free top of the heap back (it is above the trim threshold)
    if libc is None:
        return None
    heap = mallinfo().arena
    libc.free(libc.malloc(100 << 10))  # a free of 64 KiB or more checks the top against the threshold
    return mallinfo().arena < heap - (4 << 20)

result = {}
"""

MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
BIG = 24 << 20  # bytes: above glibc's first mmap threshold, below the largest it raises it to by itself


def fresh(code: str, **environment: str) -> dict:
    """Run PROBE + ``code`` in a fresh interpreter (OpenBLAS at 3 threads); its ``result`` dict."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "3", **environment}
    for name in (
        "NETGRAPH_BLAS",
        "NETGRAPH_MALLOC",
        "GLIBC_TUNABLES",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
    ):
        if name not in environment:
            env.pop(name, None)
    script = PROBE + code + "\nprint(json.dumps(result))"
    answer = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.strip().splitlines()[-1])


def needs(result: dict, *what: str) -> None:
    """Skips where the fresh process had no OpenBLAS ("blas") or no glibc ("glibc")."""
    if "blas" in what and result.get("blas_before") is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS")
    if "glibc" in what and not GLIBC:
        pytest.skip("the malloc settings are glibc's")


def test_choosing_the_cpu_and_numpy_products_change_nothing():
    """import netgraph, get_xp("CPU"), NumPy's and netgraph's own products outside a scope: OpenBLAS keeps
    its threads, and glibc's mmap threshold is still the dynamic one (raised by itself by a free)."""
    result = fresh(
        """
result["blas_before"] = blas()
import netgraph
from netgraph.backend import get_xp, matmul
xp = get_xp("CPU")
a = np.ones((600, 600))
b = a @ a
c = matmul(a, a)
d = matmul(a[:100], np.ones((600, 2000)))
result["blas_after"] = blas()
result["mapped"] = [mapped(BIG), mapped(BIG)]  # glibc alone: mapped, then (threshold raised) not
""".replace("BIG", str(BIG))
    )
    needs(result, "blas")
    assert result["blas_before"] == 3
    assert result["blas_after"] == 3
    if GLIBC:
        assert result["mapped"] == [True, False]


def test_settings_hold_inside_the_scope_and_are_put_back_after_it():
    """cpu_work() by hand, evaluation and NetTrain: OpenBLAS on one thread and malloc keeping memory
    inside; OpenBLAS's count exactly as before and glibc's start-up thresholds after (a 24 MB block
    may still come from what the scope kept; once that is handed back, such blocks are mapped again)."""
    result = fresh(
        """
result["blas_before"] = blas()
from netgraph import NetTrain, backend
from layers import LinearLayer
with backend.cpu_work():
    result["blas_inside"] = blas()
    result["mapped_inside"] = mapped(BIG)
    free_top()
    result["trims_inside"] = trims()
result["blas_after"] = blas()
result["trims_after"] = trims()
result["mapped_after"] = [mapped(BIG), mapped(BIG)]

seen = []
evaluate_module = importlib.import_module("netgraph.evaluate")
run = evaluate_module._run
def watched(*args):
    seen.append((blas(), mapped(BIG)))
    return run(*args)
evaluate_module._run = watched
net = LinearLayer(3, input=4)
net(np.ones((5, 4), np.float32))
result["evaluation"] = seen[-1]
result["blas_after_evaluation"] = blas()
result["mapped_after_evaluation"] = [mapped(BIG), mapped(BIG)]

progress = []
NetTrain(net, (np.ones((8, 4), np.float32), np.zeros((8, 3), np.float32)), max_training_rounds=2,
    training_progress_reporting=None, training_progress_function=lambda p: progress.append((blas(), mapped(BIG))))
result["training"] = progress[-1]
result["blas_after_training"] = blas()
result["mapped_after_training"] = [mapped(BIG), mapped(BIG)]
""".replace("BIG", str(BIG))
    )
    needs(result, "blas")
    assert (result["blas_before"], result["blas_inside"], result["blas_after"]) == (3, 1, 3)
    assert result["evaluation"][0] == 1 and result["blas_after_evaluation"] == 3
    assert result["training"][0] == 1 and result["blas_after_training"] == 3
    if GLIBC:
        assert result["mapped_inside"] is False and result["trims_inside"] is False
        assert result["trims_after"] is True and result["mapped_after"][-1] is True
        assert result["evaluation"][1] is False and result["mapped_after_evaluation"][-1] is True
        assert result["training"][1] is False and result["mapped_after_training"][-1] is True


def test_the_start_up_thresholds_are_what_the_exit_puts_back():
    """A process started with GLIBC_TUNABLES' mmap threshold at 1 MiB has it again after a scope; start-up
    thresholds beyond mallopt's range come back as the largest it can set."""
    if not GLIBC:
        pytest.skip("the malloc settings are glibc's")
    code = """
from netgraph import backend
result["before"] = [mapped(512 << 10), mapped(2 << 20)]
with backend.cpu_work():
    result["inside"] = mapped(2 << 20)
trims()  # hands back what the scope kept
result["after"] = [mapped(512 << 10), mapped(2 << 20)]
"""
    result = fresh(code, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=1048576")
    assert result == {"before": [False, True], "inside": False, "after": [False, True]}
    result = fresh(code, MALLOC_MMAP_THRESHOLD_="1048576")
    assert result == {"before": [False, True], "inside": False, "after": [False, True]}
    # two thresholds after the first ':', both above what mallopt takes: they come back as its largest
    both = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"
    result = fresh(code, GLIBC_TUNABLES=both)
    assert result == {"before": [False, False], "inside": False, "after": [False, False]}
    result = fresh(
        "from netgraph import backend\nresult['start'] = list(backend._Library.find().thresholds)", GLIBC_TUNABLES=both
    )
    assert result == {"start": [1 << 32, 1 << 32]}


@pytest.mark.parametrize("setting", ["", "system"])
def test_malloc_keeps_freed_memory_unless_told_not_to(setting):
    """In a fresh process: glibc's thresholds are set inside cpu_work(), except under NETGRAPH_MALLOC=system."""
    if not GLIBC:
        pytest.skip("the malloc settings are glibc's")
    code = "from netgraph import backend\nwith backend.cpu_work():\n    result['answer'] = str(not mapped(BIG))"
    answer = fresh(code.replace("BIG", str(BIG)), NETGRAPH_MALLOC=setting)["answer"]
    assert answer == ("False" if setting == "system" else "True")


def test_blas_threads_are_left_alone_when_told_so():
    """NETGRAPH_BLAS=system: OpenBLAS keeps its threads inside cpu_work(), and netgraph leaves products to them."""
    result = fresh(
        """
result["blas_before"] = blas()
from netgraph import backend
with backend.cpu_work():
    result["blas_inside"] = blas()
    result["splits"] = backend._BLAS_SINGLE
result["blas_after"] = blas()
""",
        NETGRAPH_BLAS="system",
    )
    needs(result, "blas")
    assert (result["blas_before"], result["blas_inside"], result["blas_after"]) == (3, 3, 3)
    assert result["splits"] is False


def test_nested_scopes_and_scopes_on_several_threads():
    """Only the outermost exit, over all threads, puts the settings back; many threads entering and
    leaving at once end with everything as it was."""
    result = fresh(
        """
result["blas_before"] = blas()
from netgraph import backend
with backend.cpu_work():
    with backend.cpu_work():
        pass
    result["after_inner"] = [blas(), mapped(BIG)]
result["after_outer"] = blas()
trims()

first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
def first():
    with backend.cpu_work():
        first_in.set()
        second_in.wait()
    first_out.set()
def second():
    first_in.wait()
    with backend.cpu_work():
        second_in.set()
        first_out.wait()
        result["second_alone"] = [blas(), mapped(BIG)]
threads = [threading.Thread(target=first), threading.Thread(target=second)]
[t.start() for t in threads]
[t.join() for t in threads]
result["after_threads"] = blas()

def churn():
    for _ in range(300):
        with backend.cpu_work():
            assert blas() in (1, None)
            with backend.cpu_work():
                pass
threads = [threading.Thread(target=churn) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
trims()
result["after_churn"] = [blas(), backend._WORK_DEPTH, mapped(BIG)]
""".replace("BIG", str(BIG))
    )
    needs(result, "blas")
    assert result["after_inner"][0] == 1 and result["after_outer"] == 3
    assert result["second_alone"][0] == 1 and result["after_threads"] == 3
    assert result["after_churn"][:2] == [3, 0]
    if GLIBC:
        assert result["after_inner"][1] is False and result["second_alone"][1] is False
        assert result["after_churn"][2] is True
