"""Normalisation layers: BatchNormalizationLayer, NormalizationLayer and ParametricRampLayer.

All three keep learnable arrays over some levels of the example (level 1 is
the channel axis of an image, the unit axis of a vector) and broadcast them
over the others. The normalisations run as one primitive each, with the
batch-norm backward written out (no chain of small primitives on the tape).

Example:
    >>> import numpy as np
    >>> from layers import BatchNormalizationLayer, NormalizationLayer, ParametricRampLayer
    >>> NormalizationLayer(input=(1, 3))(np.array([[1.0, 2.0, 3.0]])).round(4).tolist()
    [[-1.2238, 0.0, 1.2238]]
    >>> ParametricRampLayer((), slope=0.25)(np.array([[10.0, 10, 10], [-10, -10, -10]])).tolist()
    [[10.0, 10.0, 10.0], [-2.5, -2.5, -2.5]]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netgraph import ops
from netgraph.autograd import Tensor, primitive
from netgraph.backend import array_module, to_numpy
from netgraph.layer import Context, NetError, Shape, ShapeError, UnaryLayer
from netgraph.ports import Automatic

from .array import _levels

# --- the shared primitive ----------------------------------------------------------------


def _moments(x: Any, axes: tuple[int, ...]) -> tuple[Any, Any]:
    """Mean and biased variance of ``x`` over ``axes`` (kept as size-1 axes)."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    return mean, (centered * centered).mean(axis=axes, keepdims=True)


@primitive
def normalize(x, scaling, biases, *, mean, var, epsilon: float, axes: tuple[int, ...] | None = None):
    """``scaling * (x - mean) / sqrt(var + epsilon) + biases``.

    ``scaling`` and ``biases`` (tensors or None) have ``x``'s rank and broadcast
    against it; ``mean`` and ``var`` are plain arrays. With ``axes`` given they
    are the moments of ``x`` itself over those axes (batch or instance
    statistics) and the gradient flows through them; with ``axes=None`` they
    are constants (moving statistics) and the map is affine.
    """
    xp = array_module(x)
    inv_std = 1.0 / xp.sqrt(var + epsilon)  # keeps: inv_std, xhat, scaling
    xhat = (x - mean) * inv_std
    out = xhat if scaling is None else xhat * scaling
    if biases is not None:
        out = out + biases

    def vjp(g, needs):
        if axes is None:
            gx = g * (inv_std if scaling is None else scaling * inv_std) if needs[0] else None
            return gx, g * xhat if needs[1] else None, g if needs[2] else None
        count = math.prod(x.shape[a] for a in axes)

        def constant_over_axes(array):  # an array broadcast along every reduced axis
            return all(array.shape[a] == 1 for a in axes)

        factored = scaling is None or constant_over_axes(scaling)
        scaling_sum = needs[1] and constant_over_axes(scaling)
        bias_sum = needs[2] and constant_over_axes(biases)
        g_mean = g.mean(axis=axes, keepdims=True) if (needs[0] and factored) or bias_sum else None
        gxhat_mean = (g * xhat).mean(axis=axes, keepdims=True) if (needs[0] and factored) or scaling_sum else None
        gx = None
        if needs[0] and factored:
            # dx = (scale / std) * (g - mean(g) - xhat * mean(g * xhat)), means over `axes`
            factor = inv_std if scaling is None else scaling * inv_std
            gx = factor * (g - g_mean - xhat * gxhat_mean)
        elif needs[0]:  # a scale varying inside the reduced axes (layer norm, "Same")
            dxhat = g * scaling
            gx = inv_std * (
                dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
            )
        # sums over the reduced axes; the engine sums over the rest each array is broadcast along
        g_scaling = (gxhat_mean * count if scaling_sum else g * xhat) if needs[1] else None
        g_bias = (g_mean * count if bias_sum else g) if needs[2] else None
        return gx, g_scaling, g_bias

    return out, vjp


@primitive
def parametric_ramp(x, slope):
    """``x`` where ``x >= 0``, ``slope * x`` elsewhere (``slope`` broadcasts)."""
    xp = array_module(x)
    negative = x < 0  # keeps: the mask, x and slope
    return xp.where(negative, slope * x, x), lambda g, needs: (
        xp.where(negative, g * slope, g) if needs[0] else None,
        xp.where(negative, g * x, 0) if needs[1] else None,
    )


# --- helpers -------------------------------------------------------------------------------


def _axes_of(levels: Any, rank: int) -> tuple[int, ...]:
    """0-based example axes of a level spec (as AggregationLayer reads it), each once."""
    return tuple(sorted(set(_levels(levels, rank))))


def _given(value: Any) -> Any:
    return "Automatic" if value is Automatic else value


def _broadcast_shape(shape: Shape, axes: tuple[int, ...]) -> tuple[int, ...]:
    """The batch-ranked shape that puts an array over ``axes`` of an example in place."""
    return (1, *(n if i in axes else 1 for i, n in enumerate(shape)))


def _array(layer: UnaryLayer, ctx: Context, name: str, shape: tuple[int, ...]) -> Tensor | None:
    return ops.reshape(ctx.array(layer, name), shape) if name in layer.arrays else None


def _number(name: str, value: Any, what: str, low: float, high: float = math.inf, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (low < value if open_low else low <= value) or not value <= high:
        bounds = f"{'(' if open_low else '['}{low:g}, {high:g}]"
        raise NetError(f"{what}: {name} must be a number in {bounds}, got {value!r}")
    return float(value)


# --- layers --------------------------------------------------------------------------------


class BatchNormalizationLayer(UnaryLayer):
    """Normalises each channel (level 1 of the example) with batch or moving statistics.

    ``y = Scaling_c * (x - mean_c) / sqrt(var_c + epsilon) + Biases_c``. While
    training (NetTrain, or ``evaluation_mode="Train"``) the mean and the biased
    variance are those of the current batch over the batch axis and every
    level but the first, and the moving statistics are updated:
    ``moving = momentum * moving + (1 - momentum) * batch statistic``
    (``momentum=1`` freezes them). Otherwise "MovingMean" and "MovingVariance"
    are used, and the layer is an affine map per channel.

    The four arrays are vectors over level 1 (channels of a ``(C, H, W)``
    input, units of a vector). "MovingMean" and "MovingVariance" are state, not
    parameters: they get no gradient (their NetPortGradient is zero) and are
    changed only by training evaluations. ``scaling=None``/``biases=None``
    remove the affine part.

    NOTE: the moving variance averages the *biased* batch variance (divide by
    the count), as MXNet's BatchNorm, which the Wolfram Language runs on, does
    in its reference implementation; PyTorch (and cuDNN) average the unbiased
    one, so after training the moving variances differ from PyTorch's by the
    factor ``m / (m - 1)`` for m values per channel in a batch.

    NOTE: a training evaluation changes the layer it runs on. When its input
    shape is not fixed, ``layer(x, evaluation_mode="Train")`` runs on a copy
    whose shapes come from the data (see ``netgraph/evaluate.py``), so the
    original keeps its statistics; give ``input=`` or evaluate the enclosing
    net.

    Example:
        >>> import numpy as np
        >>> from netgraph import NetExtract
        >>> bn = BatchNormalizationLayer(input=3)          # arrays filled on first use
        >>> bn(np.array([0.90044, 0.177369, 0.356773])).round(5).tolist()   # x / sqrt(1.001)
        [0.89999, 0.17728, 0.35659]
        >>> batch = np.array([[0.90044, 0.177369, 0.356773], [0.784026, 0.446095, 0.664769]])
        >>> bn(batch, evaluation_mode="Train").round(6).tolist()
        [[0.878696, -0.973404, -0.979561], [-0.878696, 0.973404, 0.979561]]
        >>> NetExtract(bn, "MovingMean").round(6).tolist()                 # 0.1 * batch mean
        [0.084223, 0.031173, 0.051077]
    """

    array_roles = {"Scaling": "ones", "Biases": "zeros", "MovingMean": "zeros", "MovingVariance": "ones"}
    #: arrays changed by training evaluations rather than by gradients
    state_arrays = ("MovingMean", "MovingVariance")

    def __init__(
        self,
        *,
        epsilon: float = 0.001,
        momentum: float = 0.9,
        scaling: Any = Automatic,
        biases: Any = Automatic,
        moving_mean: Any = Automatic,
        moving_variance: Any = Automatic,
        input: Any = None,  # noqa: A002
        output: Any = None,
    ) -> None:
        super().__init__(input=input, output=output)
        self.epsilon = _number("epsilon", epsilon, "BatchNormalizationLayer", 0, open_low=True)
        self.momentum = _number("momentum", momentum, "BatchNormalizationLayer", 0, 1)
        if moving_mean is None or moving_variance is None:
            raise NetError("BatchNormalizationLayer: the moving statistics cannot be removed (None)")
        self.set_arrays(
            {
                "Scaling": _given(scaling),
                "Biases": _given(biases),
                "MovingMean": _given(moving_mean),
                "MovingVariance": _given(moving_variance),
            }
        )
        for name, value in self.arrays.items():
            if value is not None and value.ndim != 1:
                raise NetError(f"BatchNormalizationLayer: {name} must be a vector, got shape {value.shape}")
        self._finish_init()

    def output_shape(self, input_shape):
        if not input_shape:
            raise ShapeError(f"{self.describe()}: needs an input of rank 1 or more (level 1 holds the channels)")
        return input_shape

    def input_shape(self, output_shape):
        return output_shape

    def array_shapes(self) -> dict[str, Shape]:
        channels = self.port_shapes["Input"][:1]
        return {name: channels for name in self.arrays}

    def apply(self, x, ctx: Context):
        shape = _broadcast_shape(x.shape[1:], (0,))
        scaling, biases = _array(self, ctx, "Scaling", shape), _array(self, ctx, "Biases", shape)
        if ctx.training:
            axes = (0, *range(2, x.ndim))
            mean, var = _moments(x.data, axes)
            self._update_moving(ctx, mean, var)
            return normalize(x, scaling, biases, mean=mean, var=var, epsilon=self.epsilon, axes=axes)
        mean = ctx.array(self, "MovingMean").data.reshape(shape)  # constants: no gradient
        var = ctx.array(self, "MovingVariance").data.reshape(shape)
        return normalize(x, scaling, biases, mean=mean, var=var, epsilon=self.epsilon)

    def _update_moving(self, ctx: Context, mean: Any, var: Any) -> None:
        """moving = momentum * moving + (1 - momentum) * batch statistic, in place.

        The evaluation's tensor is updated in place (a training loop keeps it
        from step to step), and the layer's own array is replaced by a copy of
        the new value, so that the update persists whether or not the tensor
        shares memory with that array (it does on the CPU in float32). In a training loop
        (``ctx.arrays_persist``) only the tensor changes, so a GPU step never waits for the host.
        """
        if self.momentum == 1:
            return
        for name, batch_value in (("MovingMean", mean), ("MovingVariance", var)):
            tensor = ctx.array(self, name)
            new = self.momentum * tensor.data + (1 - self.momentum) * batch_value.reshape(tensor.shape)
            tensor.data[...] = new
            if ctx.arrays_persist:  # NetTrain writes the tensors back at the end: no copy to the host per step
                continue
            old = self.arrays[name]
            self.arrays[name] = np.array(to_numpy(new), dtype=old.dtype if old is not None else np.float32)

    def config(self) -> dict[str, Any]:
        removed = {k.lower(): None for k in ("Scaling", "Biases") if k not in self.arrays}
        return {"epsilon": self.epsilon, "momentum": self.momentum, **removed}


class NormalizationLayer(UnaryLayer):
    """Normalises each example over ``aggregation_levels``, then applies a learnable
    "Scaling" and "Biases" over ``scaling_levels``.

    ``aggregation_levels``: None (levels 2;;All, every level but the first),
    ``All``, a level, a list of levels, or ``slice(i, j)`` for the span i;;j.
    ``scaling_levels``: "Complement" (the levels not aggregated: per channel by
    default), "Same" (the aggregated levels) or explicit levels. The mean and
    the biased variance are per example, ε inside the square root.
    ``NormalizationLayer()`` on a ``(C, H, W)`` input is instance
    normalisation; ``NormalizationLayer(All, "Same")`` is layer normalisation
    with an elementwise affine of the input's shape. ``scaling=None`` or
    ``biases=None`` removes that array.

    Example:
        >>> import numpy as np
        >>> from netgraph import All
        >>> NormalizationLayer(input=(1, 3))(np.array([[1.0, 2.0, 3.0]])).round(4).tolist()
        [[-1.2238, 0.0, 1.2238]]
        >>> layer_norm = NormalizationLayer(All, "Same", input=(2, 3))
        >>> layer_norm.array_shapes()
        {'Scaling': (2, 3), 'Biases': (2, 3)}
    """

    array_roles = {"Scaling": "ones", "Biases": "zeros"}

    def __init__(
        self,
        aggregation_levels: Any = None,
        scaling_levels: Any = "Complement",
        *,
        epsilon: float = 0.001,
        scaling: Any = Automatic,
        biases: Any = Automatic,
        input: Any = None,  # noqa: A002
        output: Any = None,
    ) -> None:
        super().__init__(input=input, output=output)
        self.aggregation_levels = aggregation_levels
        self.scaling_levels = scaling_levels
        self.epsilon = _number("epsilon", epsilon, "NormalizationLayer", 0, open_low=True)
        self.set_arrays({"Scaling": _given(scaling), "Biases": _given(biases)})
        self._finish_init()

    def _axes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(aggregated example axes, scaled example axes), 0-based."""
        aggregated = _axes_of(self.aggregation_levels, rank)
        if not aggregated:
            raise ShapeError(
                f"{self.describe()}: no levels to normalise over in a rank-{rank} input "
                "(the default is levels 2;;All; use NormalizationLayer(All, ...) for vectors)"
            )
        if isinstance(self.scaling_levels, str):
            if self.scaling_levels not in ("Complement", "Same"):
                raise NetError(
                    f'{self.describe()}: scaling levels must be "Complement", "Same" or levels, '
                    f"got {self.scaling_levels!r}"
                )
            if self.scaling_levels == "Same":
                return aggregated, aggregated
            return aggregated, tuple(i for i in range(rank) if i not in aggregated)
        return aggregated, _axes_of(self.scaling_levels, rank)

    def output_shape(self, input_shape):
        self._axes(len(input_shape))  # checks the levels
        return input_shape

    def input_shape(self, output_shape):
        return output_shape

    def array_shapes(self) -> dict[str, Shape]:
        shape = self.port_shapes["Input"]
        _, scaled = self._axes(len(shape))
        return {name: tuple(shape[i] for i in scaled) for name in self.arrays}

    def apply(self, x, ctx: Context):
        aggregated, scaled = self._axes(x.ndim - 1)
        shape = _broadcast_shape(x.shape[1:], scaled)
        axes = tuple(a + 1 for a in aggregated)
        mean, var = _moments(x.data, axes)
        scaling, biases = _array(self, ctx, "Scaling", shape), _array(self, ctx, "Biases", shape)
        return normalize(x, scaling, biases, mean=mean, var=var, epsilon=self.epsilon, axes=axes)

    def config(self) -> dict[str, Any]:
        removed = {k.lower(): None for k in ("Scaling", "Biases") if k not in self.arrays}
        return {
            "aggregation_levels": self.aggregation_levels,
            "scaling_levels": self.scaling_levels,
            "epsilon": self.epsilon,
            **removed,
        }


class ParametricRampLayer(UnaryLayer):
    """Leaky or parametric ramp: ``y = x`` for ``x >= 0``, ``Slope * x`` otherwise.

    By default "Slope" has one learnable value per element of level 1 (per
    channel); ``levels`` chooses other levels (a level, a list, ``slice(i, j)``
    or ``All`` for one slope per element), and ``ParametricRampLayer(())`` has a
    single slope. "Slope" starts at 0.1. A fixed leaky ramp is
    ``ParametricRampLayer((), slope=0.2)``; a single number given as ``slope``
    with no levels means the same.

    Example:
        >>> import numpy as np
        >>> ParametricRampLayer((), slope=0.25)(np.array([[10.0, 10, 10], [-10, -10, -10]])).tolist()
        [[10.0, 10.0, 10.0], [-2.5, -2.5, -2.5]]
        >>> ParametricRampLayer(input=(2, 5, 5)).array_shapes()
        {'Slope': (2,)}
    """

    array_roles = {"Slope": 0.1}

    def __init__(self, levels: Any = None, *, slope: Any = Automatic, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.set_arrays({"Slope": _given(slope)})
        if slope is None:
            raise NetError("ParametricRampLayer: the slope cannot be removed (None)")
        if levels is None and self.arrays["Slope"] is not None and self.arrays["Slope"].ndim == 0:
            levels = ()
        self.levels = levels
        self._finish_init()

    def _axes(self, rank: int) -> tuple[int, ...]:
        spec = 1 if self.levels is None else self.levels
        if spec == () or spec == []:
            return ()
        if rank == 0:
            raise ShapeError(
                f"{self.describe()}: a scalar input has no level {spec!r}; use ParametricRampLayer(()) for one slope"
            )
        return _axes_of(spec, rank)

    def output_shape(self, input_shape):
        self._axes(len(input_shape))
        return input_shape

    def input_shape(self, output_shape):
        return output_shape

    def array_shapes(self) -> dict[str, Shape]:
        shape = self.port_shapes["Input"]
        return {"Slope": tuple(shape[i] for i in self._axes(len(shape)))}

    def apply(self, x, ctx: Context):
        shape = _broadcast_shape(x.shape[1:], self._axes(x.ndim - 1))
        return parametric_ramp(x, ops.reshape(ctx.array(self, "Slope"), shape))

    def config(self) -> dict[str, Any]:
        return {"levels": self.levels}


__all__ = ["BatchNormalizationLayer", "NormalizationLayer", "ParametricRampLayer"]
