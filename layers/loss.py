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

from typing import Any

from netgraph import ops
from netgraph import symbolic as sym
from netgraph.fused import apply_function
from netgraph.layer import Context, Layer, NetError

# NOTE: logs are clamped at -100, as PyTorch's BCELoss does, so p = 0 gives a
# large finite loss and a zero (not NaN) gradient.
_SQUARED = sym.trace(lambda x, t: (x - t) ** 2)
_ABSOLUTE = sym.trace(lambda x, t: abs(x - t))
_BINARY = sym.trace(
    lambda p, t: -(t * sym.maximum(sym.log(p), -100.0) + (1.0 - t) * sym.maximum(sym.log(1.0 - p), -100.0))
)
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
            from netgraph.layer import as_shape

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
            per = apply_function(p, t, function=_BINARY)
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
