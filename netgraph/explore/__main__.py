"""Serve the latent-space explorer of a trained net as a local web page.

    python -m netgraph.explore out/mnist_vae/vae.npz                  # sliders and samples
    python -m netgraph.explore out/mnist_vae/vae.npz --images test    # and strips between test pictures
    python -m netgraph.explore decoder.npz --port 8080

The net is a VAE written by ``net.save`` (vertices "enc", "mn", "sd" and "dec", as in
examples/mnist_vae.py) or a bare decoder (a net from a latent vector to a picture). The page is served on
127.0.0.1 (this machine only) unless --host says otherwise; its address is printed. Ctrl-C stops it.
--images gives pictures to interpolate between: "test" (the MNIST test set, else Fashion-MNIST's), an IDX
file, a folder of MNIST-format files or a folder of pictures; without it, two uploaded pictures do.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from ..cli import option, parser, run_main
from .core import Explorer
from .server import UPLOAD_LIMIT, make_server, serve

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, load the net and serve until Ctrl-C; returns the exit status."""
    p = parser("python -m netgraph.explore", __doc__)
    p.add_argument("net", help="the trained net file (.npz): a VAE or a decoder")
    option(p, "--images", str, 'pictures to interpolate between: "test", an IDX file or a folder', metavar="SOURCE")
    option(p, "--host", "127.0.0.1", "the address to serve on (127.0.0.1: this machine only)")
    option(p, "--port", 8000, "the port (0: any free port)", type=int)
    option(p, "--device", "CPU", "CPU or GPU")
    option(p, "--upload-limit", UPLOAD_LIMIT, "the largest picture upload accepted, in bytes", type=int)
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port: a number from 0 to 65535; got {args.port}")
    if args.upload_limit < 1:
        p.error(f"--upload-limit: a positive number of bytes; got {args.upload_limit}")
    explorer = Explorer(args.net, args.images, target_device=args.device, batch_size=64)
    server = make_server(explorer, args.host, args.port, upload_limit=args.upload_limit)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as Ctrl-C does: the socket closed, exit status 0
    return serve(server)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    run_main(lambda: sys.exit(main()), prog="python -m netgraph.explore")
