"""A latent-space explorer for a trained VAE or a decoder, two ways on one implementation.

* In Jupyter, :func:`explore` gives ipywidgets: a slider per latent dimension that redraws the
  decoded picture as it moves (Wolfram's ``Manipulate``), a "sample" button with a temperature
  slider, and an interpolation strip, linear (lerp) or spherical (slerp), between two encoded
  pictures::

      from netgraph.explore import explore
      explore("out/mnist_vae/vae.npz", images="test")      # a VAE: sliders, samples, strips
      explore(NetExtract(vae, "dec"))                        # a bare decoder: sliders and samples

* Without Jupyter, ``python -m netgraph.explore out/mnist_vae/vae.npz`` serves the same explorer as
  a small web page on 127.0.0.1 and prints its address (:mod:`netgraph.explore.server`).

Both sit on :class:`~netgraph.explore.core.Explorer`, which decodes, samples (with
:func:`netgraph.generate.sample_prior`), encodes and interpolates (:func:`netgraph.generate.interpolate`),
and checks every value a user gives. The widgets need the ``notebook`` extra (``pip install
netgraph[notebook]``: ipywidgets, the widget library Jupyter itself maintains); the web page needs
nothing beyond the standard library's ``http.server``, so the explorer runs where Jupyter is not installed.

``import netgraph`` does not load this package, and ``import netgraph.explore`` does not load
ipywidgets: :func:`explore` brings :mod:`netgraph.explore.widgets` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core import Explorer, Sample, load_pictures

__all__ = ["Explorer", "Sample", "explore", "load_pictures"]


def explore(net: Any, images: Any = None, **options: Any) -> Any:
    """The explorer as ipywidgets, for a notebook: see :func:`netgraph.explore.widgets.explore`."""
    return importlib.import_module(f"{__name__}.widgets").explore(net, images, **options)
