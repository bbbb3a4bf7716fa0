"""The compiled ADAM update against the shared NumPy update of netgraph.optimizers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from netgraph import compiled  # noqa: E402
from netgraph.compiled.optimizer import adam  # noqa: E402
from netgraph.optimizers import make_optimizer  # noqa: E402

LAYOUTS = ["C", "transposed", "gradient transposed", "sliced parameters", "one value"]


def arrays(layout: str, dtype, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """Parameters in ``layout`` and gradients for 4 steps."""
    shape = (1,) if layout == "one value" else (7, 13)
    w = rng.normal(size=shape).astype(dtype)
    grads = [rng.normal(scale=10.0 ** rng.integers(-6, 2), size=shape).astype(dtype) for _ in range(4)]
    grads[1].flat[0] = 0.0  # a zero gradient: m and v shrink, w still moves
    if layout == "transposed":
        w, grads = np.ascontiguousarray(w.T).T, [np.ascontiguousarray(g.T).T for g in grads]
    elif layout == "gradient transposed":
        grads = [np.ascontiguousarray(g.T).T for g in grads]
    elif layout == "sliced parameters":
        w = np.repeat(w, 2, axis=1)[:, ::2]
    return w, grads


def train(w: np.ndarray, grads: list[np.ndarray], enabled: bool, options: dict) -> tuple[np.ndarray, dict]:
    optimizer = make_optimizer(("ADAM", options), None)
    w = w.copy(order="K") if w.flags.c_contiguous or w.flags.f_contiguous else np.repeat(w, 2, axis=1)[:, ::2]
    previous = compiled.set_compiled_kernels(enabled)
    try:
        for step, g in enumerate(grads, 1):
            optimizer.update([("w", w, g)], step=step, total_steps=10)
    finally:
        compiled.set_compiled_kernels(previous)
    return w, optimizer.state["w"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("options", [{}, {"beta1": 0.5, "beta2": 0.75, "epsilon": 1e-8, "learning_rate": 0.1}])
def test_compiled_adam_matches_the_shared_update(dtype, layout, options):
    w, grads = arrays(layout, dtype, np.random.default_rng(7))
    shared_w, shared_state = train(w, grads, False, options)
    compiled_w, compiled_state = train(w, grads, True, options)
    assert (
        compiled_w.flags.c_contiguous == w.flags.c_contiguous and compiled_w.flags.f_contiguous == w.flags.f_contiguous
    )
    assert compiled_w.dtype == dtype and compiled_w.strides == shared_w.strides
    # NOTE: the same operations in the same order and precision: bit for bit equal where measured;
    # a few ulps allowed for a compiler that contracts a product and a sum into one rounding.
    for got, want in [
        (compiled_w, shared_w),
        (compiled_state["m"], shared_state["m"]),
        (compiled_state["v"], shared_state["v"]),
    ]:
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_the_kernel_declines_what_it_does_not_take():
    w = np.ones((4, 6), np.float32)
    g, m, v = np.ones_like(w), np.zeros_like(w), np.zeros_like(w)
    settings = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-5, "step_size": 0.1}
    assert not adam(w.astype(np.float16), g.astype(np.float16), m, v, **settings)  # half precision
    assert not adam(w, g.astype(np.float64), m, v, **settings)  # two dtypes
    assert not adam(w[:, ::2], g[:, ::2], m[:, ::2], v[:, ::2], **settings)  # parameters not one dense block
    assert not adam(w, g, np.asfortranarray(m), v, **settings)  # moments laid out otherwise
    assert (w == 1).all() and (m == 0).all()
    assert adam(w, g, m, v, **settings) and (w < 1).all()
