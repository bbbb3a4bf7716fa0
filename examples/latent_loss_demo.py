"""Build the latentLoss graph of the Wolfram Community VAE post (defined in mnist_vae.py), check it
against the closed-form KL divergence and its gradients, and draw it.

    python examples/latent_loss_demo.py --out out/demo
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mnist_vae import build_latent_loss  # the sibling script: its folder is on the path when run as a script

from netgraph import NetPortGradient, NetSummary, cli, draw


def main(argv: list[str] | None = None) -> None:
    parser = cli.parser("latent_loss_demo.py", __doc__)
    parser.add_argument("--out", default="out/demo", metavar="DIR", help="directory for the drawing (default out/demo)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed of the test values (default 0)")
    args = parser.parse_args(argv)

    net = build_latent_loss(size=8)
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
    cli.run_main(main)
