"""netgraph: the Wolfram Language's neural-net DSL in Python, on NumPy or CuPy.

The engine core is :mod:`netgraph.backend` (NumPy/CuPy), :mod:`netgraph.autograd`
and :mod:`netgraph.ops` (reverse mode over primitives), :mod:`netgraph.symbolic`
(traced elementwise functions) and :mod:`netgraph.layer` (the layer protocol).
:mod:`netgraph.graph` builds NetGraph/NetChain on that protocol; the layers
themselves live in the top-level ``layers`` package, whose names are also
available from here (``from netgraph import LinearLayer``).

Every public name below is imported on first use (module-level ``__getattr__``,
as SciPy and scikit-image do), so ``import netgraph`` costs almost nothing and
training, datasets, Pillow, networkx and tqdm load only when a name that needs
them is used. :data:`PUBLIC_NAMES` says which module defines each name.

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

__version__ = "0.1.0"

#: The public API: each module of the package and the names it gives to ``netgraph``.
# fmt: off
PUBLIC_NAMES: dict[str, tuple[str, ...]] = {
    "backend": ("BackendError", "cpu_work", "get_xp", "gpu_available", "to_numpy"),
    "datasets": (
        "DatasetError", "cifar10", "fashion_mnist", "image_folder", "load_mnist_format", "mnist",
        "random_horizontal_flip", "read_idx", "split", "to_float", "write_idx",
    ),
    "distributions": ("NormalDistribution", "UniformDistribution"),
    "evaluate": ("evaluate",),
    "generate": (
        "anomaly_scores", "attribute_vector", "bits_per_dim", "elbo", "interpolate", "iwae_bound",
        "iwae_log_likelihood", "lerp", "reconstruct", "roc_auc", "sample_prior", "slerp", "slerp_grid",
        "traversal_grid", "vae_parts", "cross_entropy", "nearest_neighbours", "slerp_pairs", "vae_loss",
    ),
    "graph": ("NetChain", "NetGraph"),
    "images": ("ImageError", "NetDecoder", "NetEncoder", "image_grid", "interpolation_strip", "save_png"),
    "initialize": ("NetInitialize",),
    "io": ("Export", "Import", "NetFileError", "load", "save"),
    "layer": ("LIMITS", "Layer", "LimitError", "NetError", "ShapeError"),
    "ports": ("All", "Automatic", "Inherited", "NetPort", "NetPortGradient", "Scaled"),
    "summary": ("NetSummary", "draw"),
    "surgery": ("NetDrop", "NetExtract", "NetReplacePart", "NetTake"),
    "symbolic": (
        "TracingError", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "ceiling", "clip", "cos",
        "cosh", "cube_root", "erf", "erfc", "exp", "expm1", "floor", "fractional_part", "gamma", "integer_part",
        "kronecker_delta", "leaky_ramp", "log", "log10", "log1p", "log2", "log_gamma", "logistic_sigmoid",
        "maximum", "minimum", "mod", "polygamma", "power", "ramp", "sign", "sin", "sinh", "softplus", "sqrt",
        "surd", "tan", "tanh", "unitize", "where",
    ),
    "train": ("NetTrain", "NetTrainResults", "TrainingError"),
}
# fmt: on

_HOME = {name: module for module, names in PUBLIC_NAMES.items() for name in names}

#: Loading a file may name any built-in layer class, and classes enter the register of
#: :mod:`netgraph.layer` when their module runs: the file functions bring these modules first.
_CLASSES_FOR_FILES = ("layers", "netgraph.graph")

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use; layer classes come from ``layers``."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _HOME.get(name)
    if module is not None:
        if module == "io":
            for needed in _CLASSES_FOR_FILES:
                importlib.import_module(needed)
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    elif name.endswith("Layer") and hasattr(layers := importlib.import_module("layers"), name):
        value = getattr(layers, name)
    else:
        try:
            return importlib.import_module(f"{__name__}.{name}")  # a submodule: netgraph.profile, ...
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
