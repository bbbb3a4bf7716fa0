"""LinearLayer: y = W·x + b on the flattened input.

Example:
    >>> import numpy as np
    >>> from layers import LinearLayer
    >>> LinearLayer(2, weights=[[1, 2], [3, 4]], biases=[0.5, -1])(np.array([1.0, 1.0])).tolist()
    [3.5, 6.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netgraph import ops
from netgraph.epilogue import Activation, bias_activation
from netgraph.layer import Context, Shape, UnaryLayer, as_shape
from netgraph.ports import Automatic


class LinearLayer(UnaryLayer):
    """A fully connected layer. ``n`` is the output size: an int, a tuple of
    dims, ``()`` for a scalar, or None to infer it from what the output feeds.

    Any input rank is accepted and flattened row-major; "Weights" has shape
    (output size, input size) and "Biases" the output's shape (``biases=None``
    removes them).
    """

    array_roles = {"Weights": "weights", "Biases": "zeros"}

    def __init__(
        self, n: Any = None, *, weights: Any = Automatic, biases: Any = Automatic, input: Any = None, output: Any = None
    ) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.size = None if n is None else as_shape(n, "LinearLayer size") if n != () else ()
        self.set_arrays({"Weights": _auto(weights), "Biases": _auto(biases)})
        w = self.arrays.get("Weights")
        if w is not None and w.ndim != 2:
            raise ValueError(f"LinearLayer: weights must be a matrix, got shape {w.shape}")
        self._finish_init()

    def shape_rule(self, shapes):
        derived = {}
        w = self.arrays.get("Weights")
        if self.size is not None:
            derived["Output"] = self.size
        elif w is not None:
            derived["Output"] = (w.shape[0],)
        if shapes["Input"] is None and w is not None:
            derived["Input"] = (w.shape[1],)
        return derived

    def array_shapes(self) -> dict[str, Shape]:
        n_in, n_out = _size(self.port_shapes["Input"]), self.port_shapes["Output"]
        shapes = {"Weights": (_size(n_out), n_in), "Biases": n_out}
        return {k: v for k, v in shapes.items() if k in self.arrays}

    def fan(self, name: str) -> tuple[int, int]:
        out_size, in_size = self.array_shapes()["Weights"]
        return in_size, out_size

    def apply(self, x, ctx: Context):
        return self._apply(x, ctx, None)

    def apply_with_epilogue(self, x, ctx: Context, activation: Activation):
        """:meth:`apply`, then ``activation``, the biases added in its pass (see :mod:`netgraph.graph`'s fusion)."""
        return self._apply(x, ctx, activation)

    def _apply(self, x, ctx: Context, activation: Activation | None):
        n = x.shape[0]
        flat = x if x.ndim == 2 else ops.reshape(x, (n, -1))
        biases = ctx.array(self, "Biases") if "Biases" in self.arrays else None
        biases = ops.reshape(biases, (-1,)) if biases is not None and biases.ndim != 1 else biases
        if activation is None:
            y = ops.affine(flat, ctx.array(self, "Weights"), biases)
        else:
            y = bias_activation(ops.affine(flat, ctx.array(self, "Weights")), biases, activation=activation)
        return y if len(self.port_shapes["Output"]) == 1 else ops.reshape(y, (n, *self.port_shapes["Output"]))

    def config(self) -> dict[str, Any]:
        return {"n": self.size}


def _auto(value: Any) -> Any:
    return "Automatic" if value is Automatic else value


def _size(shape: Shape) -> int:
    return int(np.prod(shape)) if shape else 1
