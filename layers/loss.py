"""Loss layers: ports "Input" and "Target", output "Loss" (one number per example).

Example:
    >>> import numpy as np
    >>> from layers import MeanSquaredLossLayer, CrossEntropyLossLayer
    >>> float(MeanSquaredLossLayer()({"Input": np.array([1.0, 2, 3]), "Target": np.array([1.0, 2, 5])}))
    1.3333333730697632
    >>> round(float(CrossEntropyLossLayer("Index")({"Input": np.array([0.1, 0.7, 0.2]), "Target": 2})), 6)
    0.356675
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netgraph import ops
from netgraph import symbolic as sym
from netgraph.autograd import primitive
from netgraph.backend import array_module
from netgraph.fused import apply_function
from netgraph.layer import Context, Layer, NetError, as_shape

# NOTE: logs are clamped at -100, as PyTorch's BCELoss does, so p = 0 gives a
# large finite loss and a zero (not NaN) gradient.
_SQUARED = sym.trace(lambda x, t: (x - t) ** 2)
_ABSOLUTE = sym.trace(lambda x, t: abs(x - t))
_LOG_FLOOR = -100.0
_CLAMPED_BELOW = math.exp(_LOG_FLOOR)  # p (or 1 - p) whose log is clamped


@primitive
def binary_cross_entropy(p, t):
    """Elementwise -(t·log p + (1-t)·log(1-p)), each log clamped at -100 (as PyTorch's BCELoss).

    One primitive with its derivative written out, instead of a traced expression: in ``p`` it
    is (p - t)/(p·(1 - p)), six passes over memory, where the differentiated expression
    takes sixteen; a clamped log contributes nothing to it (p = 0 or 1 exactly, or p within
    e⁻¹⁰⁰ of them), which a slower exact pass handles when such values occur (and always on a
    GPU). In ``t`` it is log(1-p) - log p, clamped. Keeps ``p`` and ``t``.

    Example:
        >>> import numpy as np
        >>> loss, vjp = binary_cross_entropy.raw(np.array([0.5, 1.0]), np.array([1.0, 1.0]))
        >>> [round(v, 4) for v in loss.tolist()], vjp(np.ones(2), (True, False))[0].tolist()
        ([0.6931, 0.0], [-2.0, -1.0])
    """
    xp = array_module(p, t)
    log_p, log_q = _clamped_logs(xp, p)
    log_p -= log_q  # -(t·log p + (1-t)·log q) = -(log q + t·(log p - log q))
    log_p *= t
    log_p += log_q
    loss = xp.negative(log_p, out=log_p)

    def vjp(g, needs):
        gp = gt = None
        if needs[0]:
            q = 1.0 - p
            denominator = q * p
            # the exact pass where a log is clamped somewhere, and on a GPU (no device-to-host check there)
            if xp is not np or bool((denominator < 2 * _CLAMPED_BELOW).any()):
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    from_p = xp.where(p >= _CLAMPED_BELOW, -t / p, 0.0)
                    from_q = xp.where(q >= _CLAMPED_BELOW, (1.0 - t) / q, 0.0)
                gp = (from_p + from_q).astype(p.dtype, copy=False) * g
            else:
                gp = xp.subtract(p, t)
                gp /= denominator
                gp *= g
        if needs[1]:
            log_p, log_q = _clamped_logs(xp, p)
            log_q -= log_p
            gt = xp.multiply(log_q, g, out=log_q)
        return gp, gt

    return loss, vjp


def _clamped_logs(xp, p):
    """max(log p, -100) and max(log(1-p), -100), as new arrays."""
    with np.errstate(divide="ignore"):
        log_p = xp.log(p)
        log_q = xp.log(1.0 - p)  # (NumPy's log is vectorised, its log1p is not)
    return xp.maximum(log_p, _LOG_FLOOR, out=log_p), xp.maximum(log_q, _LOG_FLOOR, out=log_q)


_CROSS = sym.trace(lambda p, t: -t * sym.maximum(sym.log(p), -100.0))
_NEG_LOG = sym.trace(lambda p: -sym.maximum(sym.log(p), -100.0))


class _LossLayer(Layer):
    input_ports = ("Input", "Target")
    output_ports = ("Loss",)

    def __init__(self, *, input: Any = None, target: Any = None) -> None:  # noqa: A002
        super().__init__(input=input)
        self._fixed_ports["Target"] = target
        self._finish_init()
        if target is not None:
            self.refine({"Target": as_shape(target, "target")})

    def shape_rule(self, shapes):
        known = shapes["Input"] if shapes["Input"] is not None else shapes["Target"]
        return {"Input": known, "Target": known, "Loss": ()} if known is not None else {"Loss": ()}

    def forward(self, inputs, ctx: Context):
        x = inputs["Input"]
        per_element = apply_function(x, inputs["Target"], function=self.function)
        return {"Loss": ops.mean(per_element, axis=tuple(range(1, x.ndim)))}


class MeanSquaredLossLayer(_LossLayer):
    """Mean over the elements of (Input - Target)²."""

    function = _SQUARED


class MeanAbsoluteLossLayer(_LossLayer):
    """Mean over the elements of |Input - Target|."""

    function = _ABSOLUTE


class CrossEntropyLossLayer(_LossLayer):
    """Cross-entropy of probabilities (not logits).

    "Binary": Input p and Target t in [0, 1] of one shape; mean of
    -(t log p + (1-t) log(1-p)). "Index": Input a probability vector (last
    level), Target the class number from 1. "Probabilities": Target a
    probability vector; -Σ t log p. Extra leading levels are averaged.
    """

    def __init__(self, kind: str = "Index", *, input: Any = None, target: Any = None) -> None:  # noqa: A002
        if kind not in ("Binary", "Index", "Probabilities"):
            raise NetError(f'CrossEntropyLossLayer: kind must be "Binary", "Index" or "Probabilities", got {kind!r}')
        self.kind = kind
        super().__init__(input=input, target=target)

    def shape_rule(self, shapes):
        if self.kind != "Index":
            return super().shape_rule(shapes)
        if shapes["Input"] is not None:
            return {"Target": shapes["Input"][:-1], "Loss": ()}
        return {"Loss": ()}

    def forward(self, inputs, ctx: Context):
        p, t = inputs["Input"], inputs["Target"]
        if self.kind == "Binary":
            per = binary_cross_entropy(p, t)
        elif self.kind == "Probabilities":
            per = ops.sum(apply_function(p, t, function=_CROSS), axis=-1)
        else:
            xp = ctx.xp
            classes = t.data.astype(xp.int64) - 1
            if classes.size and (int(classes.min()) < 0 or int(classes.max()) >= p.shape[-1]):
                raise NetError(f"CrossEntropyLossLayer: Target class numbers must be in 1..{p.shape[-1]}")
            flat = ops.reshape(p, (-1, p.shape[-1]))
            picked = ops.getitem(flat, (xp.arange(flat.shape[0]), classes.reshape(-1)))
            per = ops.reshape(apply_function(picked, function=_NEG_LOG), t.shape)
        if per.ndim == 1:
            return {"Loss": per}
        return {"Loss": ops.mean(per, axis=tuple(range(1, per.ndim)))}

    def config(self):
        return {"kind": self.kind}
