"""Build the latentLoss graph of the Wolfram Community VAE post, check it against
the closed-form KL divergence and its gradients, and draw it.

    python examples/latent_loss_demo.py --out out/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from layers import ElementwiseLayer, SummationLayer, TotalLayer
from netgraph import NetGraph, NetPort, NetPortGradient, NetSummary, draw, exp


def build_latent_loss() -> NetGraph:
    """The post's subgraph, transcribed literally (layer numbers from 1)."""
    return NetGraph(
        [
            ElementwiseLayer(lambda x: -0.5 * x),
            TotalLayer(),
            ElementwiseLayer(lambda x: -(x**2)),
            ElementwiseLayer(lambda x: -exp(2 * x)),
            ElementwiseLayer(lambda x: 1 + 2 * x),
            SummationLayer(),
        ],
        [(NetPort("mn"), 3), (NetPort("sd"), 4), (NetPort("sd"), 5), ([3, 4, 5], 2, 6, 1)],
        ports={"mn": 8, "sd": 8},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/demo", help="directory for the drawing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    net = build_latent_loss()
    print(net, "\n")
    print(NetSummary(net), "\n")

    rng = np.random.default_rng(args.seed)
    mn, sd = rng.normal(size=(32, 8)), 0.5 * rng.normal(size=(32, 8))
    kl = net({"mn": mn, "sd": sd})
    closed = 0.5 * (mn**2 + np.exp(2 * sd) - 1 - 2 * sd).sum(axis=1)
    grads = net({"mn": mn, "sd": sd}, [NetPortGradient("mn"), NetPortGradient("sd")])
    print(f"KL per example (first 4):  {np.round(kl[:4], 5)}")
    print(f"closed form   (first 4):   {np.round(closed[:4], 5)}")
    print(f"max |KL - closed form|:    {np.abs(kl - closed).max():.2e}")
    print(f"max |dKL/dmn - mn|:        {np.abs(grads[NetPortGradient('mn')] - mn).max():.2e}")
    print(f"max |dKL/dsd - (e^2sd-1)|: {np.abs(grads[NetPortGradient('sd')] - (np.exp(2 * sd) - 1)).max():.2e}")
    path = draw(net, Path(args.out) / "latent_loss.png")
    print(f"\ndrawing written to {path}")


if __name__ == "__main__":
    main()
