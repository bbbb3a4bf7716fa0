"""Random layers: RandomArrayLayer (fresh draws per example) and DropoutLayer.

Example:
    >>> import numpy as np
    >>> from netgraph import NormalDistribution
    >>> from layers import RandomArrayLayer, DropoutLayer
    >>> RandomArrayLayer(NormalDistribution(0, 1), output=8)(random_seeding=1).shape
    (8,)
    >>> DropoutLayer(0.5)(np.ones(4)).tolist()          # identity unless training
    [1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Any

from netgraph.autograd import Tensor
from netgraph.distributions import Distribution, NormalDistribution
from netgraph.layer import Context, Layer, NetError, UnaryLayer


class RandomArrayLayer(Layer):
    """No input; draws an array of shape ``output`` from ``distribution`` for every
    example at every evaluation (reproducible with ``random_seeding``)."""

    input_ports = ()

    def __init__(self, distribution: Distribution = NormalDistribution(0, 1), *, output: Any = None) -> None:
        super().__init__(output=output)
        if not isinstance(distribution, Distribution):
            raise NetError(
                f"RandomArrayLayer takes a distribution such as NormalDistribution(0, 1) or "
                f"UniformDistribution(a, b), got {distribution!r}"
            )
        self.distribution = distribution
        self._finish_init()

    def forward(self, inputs, ctx: Context):
        shape = (ctx.batch_size, *self.port_shapes["Output"])
        return {"Output": Tensor(self.distribution.sample(ctx.rng, shape, ctx.dtype))}

    def config(self):
        return {"distribution": self.distribution}


class DropoutLayer(UnaryLayer):
    """Zeroes each element with probability ``p`` and scales the rest by 1/(1-p),
    only while training (NetTrain, or ``evaluation_mode="Train"``)."""

    def __init__(self, p: float = 0.5, *, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        if not 0 <= p < 1:
            raise NetError(f"DropoutLayer: p must be in [0, 1), got {p}")
        self.p = float(p)
        self._finish_init()

    def input_shape(self, s):
        return s

    def apply(self, x, ctx: Context):
        if not ctx.training or self.p == 0:
            return x
        keep = ctx.rng.random(x.shape, dtype=ctx.dtype) >= self.p
        return x * (keep * (1.0 / (1.0 - self.p))).astype(ctx.dtype)

    def config(self):
        return {"p": self.p}
