"""The netgraph layer library: one module per family of layers.

Every layer follows :class:`netgraph.layer.Layer`: configuration in
``__init__``, a data-free shape rule, arrays created once shapes are known,
and a forward computation on tensors.
"""

from __future__ import annotations

from typing import Any

from netgraph.symbolic import trace

from .array import (
    AggregationLayer,
    CatenateLayer,
    FlattenLayer,
    PartLayer,
    ReplicateLayer,
    ReshapeLayer,
    SummationLayer,
    TotalLayer,
    TransposeLayer,
)
from .constant import ConstantArrayLayer, ConstantPlusLayer, ConstantTimesLayer, NetArrayLayer
from .convolution import ConvolutionLayer, DeconvolutionLayer, PoolingLayer
from .elementwise import ACTIVATIONS, THREADING, ElementwiseLayer, SoftmaxLayer, ThreadingLayer
from .linear import LinearLayer
from .loss import CrossEntropyLossLayer, MeanAbsoluteLossLayer, MeanSquaredLossLayer
from .normalization import BatchNormalizationLayer, NormalizationLayer, ParametricRampLayer
from .random import DropoutLayer, RandomArrayLayer
from .resize import PaddingLayer, ResizeLayer


def coerce(spec: Any) -> Any:
    """Wolfram's shorthand for layers: ``8`` → LinearLayer(8), ``"Ramp"`` or a
    function of one argument → ElementwiseLayer, ``"Plus"``/``"Times"`` or a
    function of several → ThreadingLayer."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return LinearLayer(spec)
    if isinstance(spec, str):
        return ThreadingLayer(spec) if spec in THREADING else ElementwiseLayer(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] == "LeakyRamp":
        return ElementwiseLayer(spec)
    if callable(spec):
        function = trace(spec)
        return ElementwiseLayer(function) if function.arity == 1 else ThreadingLayer(function)
    raise TypeError(f"cannot make a layer from {spec!r}: give a layer, a net, an int, a name or a function")


__all__ = [
    "AggregationLayer",
    "BatchNormalizationLayer",
    "CatenateLayer",
    "ConstantArrayLayer",
    "ConstantPlusLayer",
    "ConstantTimesLayer",
    "ConvolutionLayer",
    "CrossEntropyLossLayer",
    "DeconvolutionLayer",
    "DropoutLayer",
    "ElementwiseLayer",
    "FlattenLayer",
    "LinearLayer",
    "MeanAbsoluteLossLayer",
    "MeanSquaredLossLayer",
    "NetArrayLayer",
    "NormalizationLayer",
    "PaddingLayer",
    "ParametricRampLayer",
    "PartLayer",
    "PoolingLayer",
    "RandomArrayLayer",
    "ReplicateLayer",
    "ReshapeLayer",
    "ResizeLayer",
    "SoftmaxLayer",
    "SummationLayer",
    "ThreadingLayer",
    "TotalLayer",
    "TransposeLayer",
    "coerce",
    "ACTIVATIONS",
]
