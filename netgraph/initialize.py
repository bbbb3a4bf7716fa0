"""NetInitialize: fill learnable arrays (Kaiming by default, seeded).

Example:
    >>> from netgraph import NetInitialize, NetExtract
    >>> from layers import LinearLayer
    >>> net = NetInitialize(LinearLayer(3, input=2))
    >>> NetExtract(net, "Weights").shape, NetExtract(net, "Biases").tolist()
    ((3, 2), [0.0, 0.0, 0.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .distributions import Distribution, NormalDistribution
from .layer import Layer, NetError, check_array_sizes, format_shape
from .paths import iter_arrays
from .ports import All

METHODS = ("Kaiming", "Xavier", "Orthogonal", "Random", "Identity")


def NetInitialize(  # noqa: N802 - the Wolfram name
    net: Layer, which: Any = None, *, method: Any = "Kaiming", random_seeding: int | None = 1234
) -> Layer:
    """A copy of ``net`` with its uninitialized arrays filled (all of them with ``which=All``).

    ``method`` is "Kaiming" (He, default), "Xavier" (Glorot), "Orthogonal",
    "Random" or "Identity", optionally with sub-options as
    ``("Kaiming", {"Distribution": "Uniform"})`` or
    ``("Random", {"Weights": NormalDistribution(0, 0.1), "Biases": None})``.
    Biases start at 0, scalings at 1, as the Wolfram Language does.
    """
    net = net.copy()
    initialize_in_place(net, which, method=method, random_seeding=random_seeding)
    return net


def initialize_in_place(
    net: Layer, which: Any = None, *, method: Any = "Kaiming", random_seeding: int | None = 1234
) -> None:
    name, options = (method, {}) if isinstance(method, str) else (method[0], dict(method[1]))
    if name not in METHODS:
        raise NetError(f"NetInitialize: method must be one of {METHODS}, got {name!r}")
    rng = np.random.default_rng(random_seeding)
    wanted = []
    for path, layer, array in iter_arrays(net):
        if which is not All and layer.arrays[array] is not None:
            continue
        shapes = layer.array_shapes() if all(s is not None for s in layer.port_shapes.values()) else {}
        if array not in shapes:
            raise NetError(
                f"NetInitialize: {layer.describe()} at {'/'.join(map(str, path[:-1])) or 'top'} has unknown "
                f"port shapes {dict((p, format_shape(s)) for p, s in layer.port_shapes.items())}; "
                "fix its input shape first"
            )
        wanted.append((layer, array, shapes[array]))
    check_array_sizes(net, wanted)  # the limits "Elements" and "Parameters", before anything is allocated
    for layer, array, shape in wanted:
        try:
            layer.arrays[array] = _initial(layer, array, shape, rng, name, options).astype(np.float32)
        except MemoryError:
            raise NetError(
                f"NetInitialize: not enough memory for array {array!r} of {layer.describe()} "
                f"({format_shape(shape)}, {np.prod(shape, dtype=float) * 8:.3g} bytes while it is drawn)"
            ) from None


def _initial(layer: Layer, array: str, shape: tuple, rng: Any, method: str, options: dict) -> np.ndarray:
    role = layer.array_roles.get(array, "zeros")
    if role == "zeros":
        if method == "Random" and isinstance(options.get("Biases"), (Distribution, int, float)):
            return _as_dist(options["Biases"]).sample(rng, shape, np.float64)
        return np.zeros(shape)
    if role == "ones":
        return np.ones(shape)
    if isinstance(role, (int, float)):
        return np.full(shape, float(role))
    fan_in, fan_out = layer.fan(array)
    uniform = options.get("Distribution", "Normal") == "Uniform"
    if method in ("Kaiming", "Xavier"):
        variance = 2.0 / fan_in if method == "Kaiming" else 2.0 / (fan_in + fan_out)
        if uniform:
            limit = np.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        return rng.normal(0.0, np.sqrt(variance), shape)
    if method == "Orthogonal":
        rows, cols = shape[0], int(np.prod(shape[1:]))
        q, r = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
        q = q * np.sign(np.diag(r))
        return (q if rows >= cols else q.T).reshape(shape)
    if method == "Random":
        return _as_dist(options.get("Weights", NormalDistribution(0, 1))).sample(rng, shape, np.float64)
    noise = _as_dist(options.get("Distribution", NormalDistribution(0, 0.01))).sample(rng, shape, np.float64)
    eye = np.zeros(shape)
    flat = eye.reshape(shape[0], -1)
    flat[np.arange(min(flat.shape)), np.arange(min(flat.shape))] = 1.0
    return eye + noise


def _as_dist(spec: Any) -> Distribution:
    return spec if isinstance(spec, Distribution) else NormalDistribution(0.0, float(spec))
