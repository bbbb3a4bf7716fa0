"""Optimisers for NetTrain, with the Wolfram Language's defaults; updates are in place on ``xp`` arrays.

Example:
    >>> import numpy as np
    >>> from netgraph.optimizers import make_optimizer
    >>> opt = make_optimizer(("SGD", {"momentum": 0, "learning_rate_schedule": None}), None)
    >>> w = np.array([1.0]); opt.update([("w", w, np.array([2.0]))], step=1, total_steps=10); w.tolist()
    [0.98]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .backend import array_module, in_parallel
from .compiled import compiled_kernels_enabled
from .compiled.optimizer import adam as compiled_adam
from .layer import NetError, is_real

DEFAULTS: dict[str, dict[str, Any]] = {
    "ADAM": {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-5},
    "SGD": {"learning_rate": 0.01, "momentum": 0.93, "learning_rate_schedule": "Polynomial"},
    "RMSProp": {"learning_rate": 0.001, "beta": 0.95, "momentum": 0.9, "epsilon": 1e-6},
}
COMMON = {"l2_regularization": 0.0, "gradient_clipping": None, "weight_clipping": None, "learning_rate_schedule": None}
#: Other spellings of the method names
NAMES = {"Adam": "ADAM", "adam": "ADAM", "sgd": "SGD", "rmsprop": "RMSProp", "RMSPROP": "RMSProp"}
#: Named learning-rate schedules (a schedule may also be a function ``f(step, total_steps)`` of a multiplier)
SCHEDULES = (None, "Polynomial")
#: What each sub-option accepts: (lowest, highest, whether the lowest is allowed, whether None is allowed)
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.0, math.inf, False, False),
    "beta1": (0.0, 1.0, True, False),
    "beta2": (0.0, 1.0, True, False),
    "beta": (0.0, 1.0, True, False),
    "momentum": (0.0, 1.0, True, False),
    "epsilon": (0.0, math.inf, False, False),
    "l2_regularization": (0.0, math.inf, True, True),
    "gradient_clipping": (0.0, math.inf, False, True),
    "weight_clipping": (0.0, math.inf, False, True),
}


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out.replace("l2_regularization", "l2_regularization").replace("beta_1", "beta1").replace("beta_2", "beta2")


class Optimizer:
    """Holds per-array state (moments, keyed like the arrays) and updates arrays in place."""

    def __init__(self, name: str, options: dict[str, Any]):
        self.name = name
        self.options = options
        self.state: dict[Any, dict[str, Any]] = {}

    def learning_rate(self, step: int, total_steps: int) -> float:
        rate = float(self.options["learning_rate"])
        schedule = self.options.get("learning_rate_schedule")
        if isinstance(schedule, str) and schedule == "Polynomial":
            rate *= math.sqrt(1.0 - min(step, total_steps) / (total_steps + 1))
        elif callable(schedule):
            factor = schedule(step, total_steps)
            if not is_real(factor) or not math.isfinite(factor) or factor < 0:
                raise NetError(
                    f"NetTrain: the learning_rate_schedule returned {factor!r} for step {step} of {total_steps}; "
                    "it must return a finite multiplier >= 0 of the learning rate"
                )
            rate *= float(factor)
        return rate

    def update(
        self, items: list[tuple[Any, Any, Any]], step: int, total_steps: int, rates: dict[Any, float] | None = None
    ) -> None:
        """One step (``step`` counts from 1): ``items`` are (key, array, gradient); ``rates``
        are per-key learning-rate multipliers."""
        rate = self.learning_rate(step, total_steps)
        o = self.options
        for key, w, g in items:
            xp = array_module(w)
            if o["l2_regularization"]:
                g = g + o["l2_regularization"] * w
            if o["gradient_clipping"] is not None:
                g = xp.clip(g, -o["gradient_clipping"], o["gradient_clipping"])
            lr = rate * (rates or {}).get(key, 1.0)
            getattr(self, "_" + self.name.lower())(w, g, self.state.setdefault(key, {}), lr, step, xp)
            if o["weight_clipping"] is not None:
                xp.clip(w, -o["weight_clipping"], o["weight_clipping"], out=w)

    def _adam(self, w, g, s, lr, step, xp):
        # Wolfram folds the bias correction into the step size: lr·√(1−β2^t)/(1−β1^t)
        b1, b2, eps = self.options["beta1"], self.options["beta2"], self.options["epsilon"]
        if not s:
            s["m"], s["v"] = xp.zeros_like(w), xp.zeros_like(w)
        m, v = s["m"], s["v"]
        step_size = lr * math.sqrt(1 - b2**step) / (1 - b1**step)
        if compiled_kernels_enabled(xp) and compiled_adam(
            w, g, m, v, beta1=b1, beta2=b2, epsilon=eps, step_size=step_size
        ):  # one compiled pass over memory in place of eleven
            return
        arrays = (w, g if g.flags.c_contiguous or not w.flags.c_contiguous else xp.ascontiguousarray(g), m, v)
        split = all(a.flags.c_contiguous for a in arrays)  # flat views write through

        def update(begin: int, end: int) -> None:  # in place, with one scratch array
            w, g, m, v = (a.reshape(-1)[begin:end] if split else a for a in arrays)
            scratch = g * (1 - b1)
            m *= b1
            m += scratch
            xp.multiply(g, g, out=scratch)
            scratch *= 1 - b2
            v *= b2
            v += scratch
            xp.sqrt(v, out=scratch)
            scratch += eps
            xp.divide(m, scratch, out=scratch)
            scratch *= step_size
            w -= scratch

        if split:
            in_parallel(xp, update, w.size, 4 * w.size)
        else:
            update(0, w.size)

    def _sgd(self, w, g, s, lr, step, xp):
        momentum = self.options["momentum"]
        if not momentum:
            w -= lr * g
            return
        if not s:
            s["velocity"] = xp.zeros_like(w)
        velocity = s["velocity"]
        velocity *= momentum
        velocity -= lr * g
        w += velocity

    def _rmsprop(self, w, g, s, lr, step, xp):
        # centred RMSProp with momentum (Graves 2013; MXNet's rmspropalex)
        beta, momentum, eps = self.options["beta"], self.options["momentum"], self.options["epsilon"]
        if not s:
            s["n"], s["mean"], s["delta"] = xp.zeros_like(w), xp.zeros_like(w), xp.zeros_like(w)
        n, mean, delta = s["n"], s["mean"], s["delta"]
        n *= beta
        n += (1 - beta) * (g * g)
        mean *= beta
        mean += (1 - beta) * g
        delta *= momentum
        delta -= lr * g / xp.sqrt(n - mean * mean + eps)
        w += delta


def make_optimizer(method: Any, learning_rate: float | None) -> Optimizer:
    """``"ADAM"``, ``("ADAM", {"beta1": 0.9, ...})`` (Wolfram names in snake_case or CamelCase).

    Every sub-option is checked here, before any training: a wrong name or value raises a NetError
    naming the option, the value and what it accepts (:data:`RANGES`).
    """
    forms = '"ADAM", "SGD", "RMSProp" or (name, {sub-options})'
    if isinstance(method, str):
        name, given = method, {}
    elif isinstance(method, (tuple, list)) and len(method) == 2 and isinstance(method[0], str):
        name, given = method
        if not isinstance(given, dict):
            raise NetError(f"NetTrain: method's sub-options must be a dict such as {{'beta1': 0.9}}, got {given!r}")
    else:
        raise NetError(f"NetTrain: method must be {forms}, got {method!r}")
    name = NAMES.get(name, name)
    if name not in DEFAULTS:
        raise NetError(f"NetTrain: method must be {forms}; there is no method {name!r}")
    options = {**COMMON, **DEFAULTS[name]}
    for key, value in given.items():
        if not isinstance(key, str):
            raise NetError(f"NetTrain: {name}'s sub-option names are strings, got {key!r}")
        key = _snake(key)
        if key not in options:
            raise NetError(f"NetTrain: {name} has no option {key!r}; its options are {sorted(options)}")
        options[key] = check_option(name, key, value)
    if learning_rate is not None:
        options["learning_rate"] = check_option(name, "learning_rate", learning_rate, "learning_rate")
    return Optimizer(name, options)


def check_option(method: str, key: str, value: Any, option: str | None = None) -> Any:
    """``value`` if sub-option ``key`` of ``method`` accepts it, else a NetError naming the option (``option``
    when it is one of NetTrain's own, such as learning_rate); numbers come back as floats.

    Example:
        >>> check_option("ADAM", "beta1", 0.5)
        0.5
        >>> check_option("ADAM", "beta1", 2)
        Traceback (most recent call last):
        ...
        netgraph.layer.NetError: NetTrain: ADAM's option 'beta1' must be a number in [0, 1), got 2
    """
    where = option or f"{method}'s option {key!r}"
    if key == "learning_rate_schedule":
        if callable(value) or any(value is s or (isinstance(value, str) and value == s) for s in SCHEDULES):
            return value
        raise NetError(
            f'NetTrain: {where} must be None, "Polynomial" or a function f(step, total_steps) of a multiplier '
            f"of the learning rate, got {value!r}"
        )
    low, high, low_ok, none_ok = RANGES[key]
    if value is None and none_ok:
        return None
    if is_real(value) and math.isfinite(value) and (low < value or (low_ok and low == value)) and value < high:
        return float(value)
    if math.isinf(high):
        accepted = f"a finite number {'>=' if low_ok else '>'} {low:g}"
    else:
        accepted = f"a number in {'[' if low_ok else '('}{low:g}, {high:g})"
    raise NetError(f"NetTrain: {where} must be {accepted}{' or None' if none_ok else ''}, got {value!r}")


Schedule = Callable[[int, int], float]
