"""netgraph's own CPU threads: the split matrix product, the split window copies and scatter-adds
of the convolutions (also block by block), and the in-place ADAM update give the same numbers
on any thread count."""

from __future__ import annotations

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


@pytest.mark.parametrize("setting", ["", "system"])
def test_malloc_keeps_freed_memory_unless_told_not_to(setting):
    """In a fresh process: glibc's thresholds are set when the CPU is chosen, except under NETGRAPH_MALLOC=system."""
    import os
    import platform
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("the malloc settings are glibc's")
    code = "from netgraph.backend import get_xp, keep_freed_memory; get_xp('CPU'); print(keep_freed_memory())"
    environment = {**os.environ, "NETGRAPH_MALLOC": setting}
    answer = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == ("False" if setting == "system" else "True")
