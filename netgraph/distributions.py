"""Distributions for RandomArrayLayer and NetInitialize's "Random" method.

Example:
    >>> import numpy as np
    >>> from netgraph.distributions import NormalDistribution
    >>> d = NormalDistribution(0, 2)
    >>> d.sample(np.random.default_rng(0), (10000,), np.float32).std().round(1)
    np.float32(2.0)
"""

from __future__ import annotations

from typing import Any


class Distribution:
    """A univariate distribution that draws arrays with an ``xp`` random Generator."""

    def sample(self, rng: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError

    @staticmethod
    def from_json(data: Any) -> Distribution:
        kinds = {"Normal": NormalDistribution, "Uniform": UniformDistribution}
        if not isinstance(data, dict) or data.get("kind") not in kinds:
            raise ValueError(f"unknown stored distribution {data!r:.80}")
        params = data.get("params")
        if not isinstance(params, list) or not all(isinstance(p, (int, float)) for p in params):
            raise ValueError(f"invalid distribution parameters {params!r:.80}")
        return kinds[data["kind"]](*params)


class NormalDistribution(Distribution):
    """Wolfram's NormalDistribution[mu, sigma] (standard normal by default)."""

    def __init__(self, mean: float = 0.0, standard_deviation: float = 1.0):
        if standard_deviation <= 0:
            raise ValueError(f"NormalDistribution needs a positive standard deviation, got {standard_deviation}")
        self.mean = float(mean)
        self.standard_deviation = float(standard_deviation)

    def sample(self, rng: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        z = rng.standard_normal(shape, dtype=dtype)
        if self.standard_deviation != 1.0:
            z *= self.standard_deviation
        if self.mean != 0.0:
            z += self.mean
        return z

    def to_json(self) -> dict:
        return {"kind": "Normal", "params": [self.mean, self.standard_deviation]}

    def __repr__(self) -> str:
        return f"NormalDistribution({self.mean:g}, {self.standard_deviation:g})"


class UniformDistribution(Distribution):
    """Wolfram's UniformDistribution[{a, b}] (on [0, 1] by default)."""

    def __init__(self, low: float = 0.0, high: float = 1.0):
        if not high > low:
            raise ValueError(f"UniformDistribution needs low < high, got {low}, {high}")
        self.low = float(low)
        self.high = float(high)

    def sample(self, rng: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        u = rng.random(shape, dtype=dtype)
        return u * (self.high - self.low) + self.low

    def to_json(self) -> dict:
        return {"kind": "Uniform", "params": [self.low, self.high]}

    def __repr__(self) -> str:
        return f"UniformDistribution({self.low:g}, {self.high:g})"
