"""netgraph: the Wolfram Language's neural-net DSL in Python, on NumPy or CuPy.

The engine core is :mod:`netgraph.backend` (NumPy/CuPy), :mod:`netgraph.autograd`
and :mod:`netgraph.ops` (reverse mode over primitives), :mod:`netgraph.symbolic`
(traced elementwise functions) and :mod:`netgraph.layer` (the layer protocol).
:mod:`netgraph.graph` builds NetGraph/NetChain on that protocol; the layers
themselves live in the top-level ``layers`` package, whose names are also
available from here (``from netgraph import LinearLayer``).

Example:
    >>> import numpy as np
    >>> from netgraph import NetGraph, NetPort, exp
    >>> from layers import ElementwiseLayer, TotalLayer, SummationLayer
    >>> latent_loss = NetGraph(
    ...     [ElementwiseLayer(lambda x: -0.5 * x), TotalLayer(), ElementwiseLayer(lambda x: -x**2),
    ...      ElementwiseLayer(lambda x: -exp(2 * x)), ElementwiseLayer(lambda x: 1 + 2 * x), SummationLayer()],
    ...     [(NetPort("mn"), 3), (NetPort("sd"), 4), (NetPort("sd"), 5), ([3, 4, 5], 2, 6, 1)],
    ...     ports={"mn": 2, "sd": 2})
    >>> round(float(latent_loss({"mn": np.array([1.0, 0]), "sd": np.array([0, np.log(2) / 2])})), 6)
    0.653426
"""

from __future__ import annotations

import importlib
from typing import Any

from .backend import BackendError, get_xp, gpu_available, to_numpy
from .datasets import (
    DatasetError,
    cifar10,
    fashion_mnist,
    image_folder,
    load_mnist_format,
    mnist,
    random_horizontal_flip,
    read_idx,
    split,
    to_float,
    write_idx,
)
from .distributions import NormalDistribution, UniformDistribution
from .evaluate import evaluate
from .generate import (
    anomaly_scores,
    attribute_vector,
    bits_per_dim,
    elbo,
    interpolate,
    iwae_bound,
    iwae_log_likelihood,
    lerp,
    reconstruct,
    roc_auc,
    sample_prior,
    slerp,
    slerp_grid,
    traversal_grid,
    vae_parts,
)
from .graph import NetChain, NetGraph
from .images import ImageError, NetDecoder, NetEncoder, image_grid, interpolation_strip, save_png
from .initialize import NetInitialize
from .io import Export, Import, NetFileError, load, save
from .layer import Layer, NetError, ShapeError
from .ports import All, Automatic, NetPort, NetPortGradient, Scaled
from .summary import NetSummary, draw
from .surgery import NetDrop, NetExtract, NetReplacePart, NetTake
from .symbolic import (
    TracingError,
    arctan,
    ceiling,
    clip,
    cos,
    erf,
    exp,
    expm1,
    floor,
    leaky_ramp,
    log,
    log1p,
    logistic_sigmoid,
    maximum,
    minimum,
    power,
    ramp,
    sign,
    sin,
    softplus,
    sqrt,
    tan,
    tanh,
    where,
)
from .train import NetTrain, NetTrainResults, TrainingError

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Layer classes from the ``layers`` package, imported on first use (no cycle at import)."""
    if name.endswith("Layer"):
        layers = importlib.import_module("layers")
        if hasattr(layers, name):
            return getattr(layers, name)
    raise AttributeError(f"module 'netgraph' has no attribute {name!r}")


__all__ = [
    "NetEncoder",
    "NetDecoder",
    "ImageError",
    "image_grid",
    "interpolation_strip",
    "save_png",
    "vae_parts",
    "sample_prior",
    "reconstruct",
    "lerp",
    "slerp",
    "interpolate",
    "slerp_grid",
    "attribute_vector",
    "traversal_grid",
    "elbo",
    "bits_per_dim",
    "iwae_bound",
    "iwae_log_likelihood",
    "anomaly_scores",
    "roc_auc",
    "Export",
    "Import",
    "NetFileError",
    "load",
    "save",
    "NetTrain",
    "NetTrainResults",
    "TrainingError",
    "DatasetError",
    "cifar10",
    "fashion_mnist",
    "image_folder",
    "load_mnist_format",
    "mnist",
    "random_horizontal_flip",
    "read_idx",
    "split",
    "to_float",
    "write_idx",
    "All",
    "Automatic",
    "BackendError",
    "Layer",
    "NetChain",
    "NetDrop",
    "NetError",
    "NetExtract",
    "NetGraph",
    "NetInitialize",
    "NetPort",
    "NetPortGradient",
    "NetReplacePart",
    "NetSummary",
    "NetTake",
    "NormalDistribution",
    "Scaled",
    "ShapeError",
    "TracingError",
    "UniformDistribution",
    "arctan",
    "ceiling",
    "clip",
    "cos",
    "draw",
    "erf",
    "evaluate",
    "exp",
    "expm1",
    "floor",
    "get_xp",
    "gpu_available",
    "leaky_ramp",
    "log",
    "log1p",
    "logistic_sigmoid",
    "maximum",
    "minimum",
    "power",
    "ramp",
    "sign",
    "sin",
    "softplus",
    "sqrt",
    "tan",
    "tanh",
    "to_numpy",
    "where",
]
