"""Layers holding a learnable array: ConstantArrayLayer (NetArrayLayer),
ConstantTimesLayer and ConstantPlusLayer.

Example:
    >>> import numpy as np
    >>> from layers import ConstantTimesLayer, ConstantArrayLayer
    >>> ConstantTimesLayer(scaling=[2, 3])(np.array([1.0, 1.0])).tolist()
    [2.0, 3.0]
    >>> ConstantArrayLayer(array=[1, 2])().tolist()
    [1.0, 2.0]
"""

from __future__ import annotations

from typing import Any

from netgraph import ops
from netgraph.layer import Context, Layer, UnaryLayer
from netgraph.ports import Automatic


def _given(value: Any) -> Any:
    return "Automatic" if value is Automatic else value


class ConstantArrayLayer(Layer):
    """No input; outputs its learnable "Array" (of shape ``output``) for every example."""

    input_ports = ()
    array_roles = {"Array": "zeros"}

    def __init__(self, *, array: Any = Automatic, output: Any = None) -> None:
        super().__init__(output=output)
        self.set_arrays({"Array": _given(array)})
        self._finish_init()

    def shape_rule(self, shapes):
        value = self.arrays.get("Array")
        return {"Output": tuple(value.shape)} if value is not None else {}

    def array_shapes(self):
        return {"Array": self.port_shapes["Output"]}

    def forward(self, inputs, ctx: Context):
        array = ctx.array(self, "Array")
        return {"Output": ops.broadcast_to(array, (ctx.batch_size, *array.shape))}


NetArrayLayer = ConstantArrayLayer


class ConstantTimesLayer(UnaryLayer):
    """y = Scaling ⊙ x with a learnable "Scaling" of the input's shape (starts at 1)."""

    array_roles = {"Scaling": "ones"}

    def __init__(self, *, scaling: Any = Automatic, input: Any = None, output: Any = None) -> None:  # noqa: A002
        super().__init__(input=input, output=output)
        self.set_arrays({"Scaling": _given(scaling)})
        self._finish_init()

    def output_shape(self, s):
        return s

    def input_shape(self, s):
        return s

    def shape_rule(self, shapes):
        value = self.arrays.get("Scaling")
        if value is not None and shapes["Input"] is None:
            return {"Input": tuple(value.shape), "Output": tuple(value.shape)}
        return super().shape_rule(shapes)

    def array_shapes(self):
        return {"Scaling": self.port_shapes["Input"]}

    def apply(self, x, ctx):
        return x * ctx.array(self, "Scaling")


class ConstantPlusLayer(ConstantTimesLayer):
    """y = x + Biases with learnable "Biases" of the input's shape (starts at 0)."""

    array_roles = {"Biases": "zeros"}

    def __init__(self, *, biases: Any = Automatic, input: Any = None, output: Any = None) -> None:  # noqa: A002
        UnaryLayer.__init__(self, input=input, output=output)
        self.set_arrays({"Biases": _given(biases)})
        self._finish_init()

    def shape_rule(self, shapes):
        value = self.arrays.get("Biases")
        if value is not None and shapes["Input"] is None:
            return {"Input": tuple(value.shape), "Output": tuple(value.shape)}
        return UnaryLayer.shape_rule(self, shapes)

    def array_shapes(self):
        return {"Biases": self.port_shapes["Input"]}

    def apply(self, x, ctx):
        return x + ctx.array(self, "Biases")


__all__ = ["ConstantArrayLayer", "ConstantPlusLayer", "ConstantTimesLayer", "NetArrayLayer"]
