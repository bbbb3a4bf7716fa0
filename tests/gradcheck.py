"""The one gradient checker: float64 central differences along a random direction.

For a function f with inputs x (inputs and arrays) and a random output
cotangent u, reverse mode gives ⟨u, J v⟩ = ⟨Jᵀu, v⟩ for any direction v; the
same number is estimated by (⟨u, f(x + h v)⟩ − ⟨u, f(x − h v)⟩) / 2h. One
comparison checks every gradient entry at once (Chainer's check_backward,
JAX's check_grads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from netgraph import NetPortGradient
from netgraph.autograd import Tape, Tensor, backward
from netgraph.backend import get_xp, to_numpy
from netgraph.paths import iter_arrays


def assert_close_dot(analytic: float, numeric: float, what: str, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    scale = max(abs(analytic), abs(numeric), 1.0)
    assert abs(analytic - numeric) <= atol + rtol * scale, (
        f"{what}: reverse mode gives <u, J v> = {analytic!r}, central differences {numeric!r}"
    )


def check_function(
    f: Callable[..., Tensor],
    args: list[np.ndarray],
    *,
    device: str = "CPU",
    seed: int = 0,
    h: float = 1e-6,
    rtol: float = 1e-6,
) -> None:
    """Check the gradients of ``f(*tensors)`` with respect to every argument."""
    xp = get_xp(device)
    rng = np.random.default_rng(seed)
    args64 = [np.asarray(a, dtype=np.float64) for a in args]
    tensors = [Tensor(xp.asarray(a), requires_grad=True) for a in args64]
    with Tape() as tape:
        out = f(*tensors)
    u = rng.standard_normal(out.shape)
    grads = backward(tape, {out: xp.asarray(u)})
    directions = [rng.standard_normal(a.shape) for a in args64]
    analytic = sum(float(np.sum(to_numpy(grads[id(t)]) * v)) for t, v in zip(tensors, directions) if id(t) in grads)

    def value(step: float) -> float:
        moved = [Tensor(xp.asarray(a + step * v)) for a, v in zip(args64, directions)]
        return float(np.sum(to_numpy(f(*moved).data) * u))

    assert_close_dot(analytic, (value(h) - value(-h)) / (2 * h), getattr(f, "__name__", "function"), rtol=rtol)


def check_net(
    net: Any,
    inputs: dict[str, np.ndarray],
    *,
    device: str = "CPU",
    seed: int = 0,
    h: float = 1e-6,
    rtol: float = 1e-6,
    evaluation_mode: str = "Test",
    constant_inputs: tuple[str, ...] = (),
    constant_arrays: tuple[str, ...] = (),
) -> None:
    """Check the gradients of ``net`` with respect to its inputs and all its arrays.

    Inputs are batches; ``constant_inputs`` (e.g. class numbers) and arrays named in
    ``constant_arrays`` (state such as moving statistics, which get no gradient) are held fixed.
    Random layers draw the same numbers at every evaluation (a fixed ``random_seeding``).
    """
    rng = np.random.default_rng(seed)
    net = net.copy()
    for _, layer, name in iter_arrays(net):
        if layer.arrays[name] is None:
            raise ValueError("initialize the net before checking it")
        layer.arrays[name] = layer.arrays[name].astype(np.float64)
    options = dict(
        target_device=device,
        working_precision="Real64",
        random_seeding=seed,
        evaluation_mode=evaluation_mode,
        batch=True,  # the inputs are batches, also where a port's shape is not fixed
    )
    base = {p: np.asarray(x, dtype=np.float64) for p, x in inputs.items()}
    outputs = net(base, list(net.output_ports), **options)
    cotangents = {p: rng.standard_normal(np.shape(v)) for p, v in outputs.items()}
    arrays = [(path, layer, name) for path, layer, name in iter_arrays(net) if name not in constant_arrays]
    varied = [p for p in base if p not in constant_inputs]
    specs = [NetPortGradient(p) for p in varied] + [NetPortGradient(path) for path, _, _ in arrays]
    if not specs:
        return
    data = {**base, **{NetPortGradient(p): g for p, g in cotangents.items()}}
    grads = net(data, specs, **options)
    v_in = {p: rng.standard_normal(x.shape) if p in varied else np.zeros(x.shape) for p, x in base.items()}
    v_arr = [rng.standard_normal(layer.arrays[name].shape) for _, layer, name in arrays]
    analytic = sum(float(np.sum(grads[NetPortGradient(p)] * v_in[p])) for p in varied)
    analytic += sum(float(np.sum(grads[NetPortGradient(path)] * v)) for (path, _, _), v in zip(arrays, v_arr))
    originals = [layer.arrays[name] for _, layer, name in arrays]

    def value(step: float) -> float:
        for (_, layer, name), a, v in zip(arrays, originals, v_arr):
            layer.arrays[name] = a + step * v
        out = net({p: x + step * v_in[p] for p, x in base.items()}, list(net.output_ports), **options)
        return sum(float(np.sum(np.asarray(out[p]) * cotangents[p])) for p in cotangents)

    numeric = (value(h) - value(-h)) / (2 * h)
    for (_, layer, name), a in zip(arrays, originals):
        layer.arrays[name] = a
    assert_close_dot(analytic, numeric, repr(net), rtol=rtol)
