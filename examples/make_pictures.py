"""The README's pictures, made by code, not by hand (`make pictures`), into docs/pictures/:

- net.png: the seed-001 VAE of examples/mnist_vae.py, drawn by netgraph.draw;
- samples_<example>.png: pictures decoded from z ~ N(0, I) by each seed example's trained net: the one in
  out/<example>/ when `make demo` or the example itself has trained it, else a quick run's, trained here into
  out/pictures/<example>/ on the example's stand-in data (and kept there for the next time);
- panel.png: the image of NetTrain's live panel in Jupyter for that seed-001 run: its loss plot (batch, round
  and validation losses) with the run's samples beside it, as a "Picture" callback shows them;
- explorer.png: the latent-space explorer's page (python -m netgraph.explore on the seed-001 net) in headless
  Chromium; skipped, saying why, when netgraph.explore or Chromium is missing.

    python examples/make_pictures.py                    # every picture: about 3 minutes on 2 CPU cores
    python examples/make_pictures.py --only net panel   # some of them
    python examples/make_pictures.py --retrain          # quick runs again, even where out/ has trained nets

Every PNG is kept under 200 KB (fewer colours, then smaller, when it would be bigger), so that the repository
can hold them.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from netgraph import NetExtract, cli, draw, load
from netgraph.images import image_grid
from netgraph.train.panel import beside

HERE = Path(__file__).resolve().parent
MOST_BYTES = 200_000
PICTURES = ("net", "samples", "panel", "explorer")


class Example(NamedTuple):
    """A seed example: its trained net's file name, the quick run's arguments (before --out), the range of
    its decoder's values and the picture grid's size and scale."""

    net: str
    quick: tuple[str, ...]
    value_range: tuple[float, float] = (0.0, 1.0)
    count: int = 32
    scale: int = 1


EXAMPLES = {
    "mnist_vae": Example("vae.npz", ("--train-images", "6000", "--epochs", "2", "--test-images", "500"), scale=2),
    "cake_vae": Example("cake_vae.npz", ("--size", "28", "--epochs", "60"), count=16, scale=2),
    "pegasus_vae": Example("pegasus_vae.npz", ("--iterations", "40", "--train-images", "2000"), scale=2),
    "faces_vae": Example("vae.npz", ("--train-images", "600", "--epochs", "2"), (-1.0, 1.0), count=16),
    "augment_vae": Example("vae.npz", ("train", "--train-images", "96", "--epochs", "2"), count=16),
}


def small_png(image: Image.Image, path: Path) -> Path:
    """Writes ``image`` as an optimised PNG of at most MOST_BYTES: with 64 colours when it would be bigger, then
    smaller by steps of 0.8."""
    image = image.convert("RGB") if image.mode not in ("L", "RGB", "P") else image
    for attempt in range(12):
        shown = image if attempt == 0 or image.mode == "L" else image.quantize(64)
        if attempt > 1:
            factor = 0.8 ** (attempt - 1)
            shown = shown.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))))
        buffer = io.BytesIO()
        shown.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MOST_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    print(f"  {path} ({shown.width}×{shown.height}, {buffer.tell() / 1000:.0f} KB)")
    return path


def trained_net(name: str, trained: Path, work: Path, retrain: bool) -> Path:
    """The example's trained net: out/<name>/ when there is one (unless ``retrain``), else a quick run's."""
    example = EXAMPLES[name]
    full, quick = trained / name / example.net, work / name / example.net
    if not retrain and full.is_file():
        print(f"{name}: the trained net {full}")
        return full
    if not retrain and quick.is_file():
        print(f"{name}: the quick run's net {quick} (--retrain trains it again)")
        return quick
    command = [sys.executable, str(HERE / f"{name}.py"), *example.quick, "--out", str(quick.parent)]
    print(f"{name}: a quick run, {' '.join(command[1:])}")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not quick.is_file():
        raise SystemExit(
            f"make_pictures.py: {name} failed (exit status {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    print(f"  trained in {time.perf_counter() - started:.0f} s")
    return quick


def samples(name: str, net_file: Path, out: Path, seed: int) -> Path:
    """``samples_<name>.png``: the decoder of ``net_file`` fed z ~ N(0, I)."""
    example = EXAMPLES[name]
    decoder = NetExtract(load(net_file), "dec")
    (latent,) = decoder.port_shapes["Input"]
    z = np.random.default_rng(seed).standard_normal((example.count, latent))
    grid = image_grid(decoder(z), columns=8, scale=example.scale, value_range=example.value_range)
    return small_png(grid, out / f"samples_{name}.png")


def net_picture(out: Path) -> Path:
    """net.png: the seed-001 VAE, drawn."""
    vae = cli.load_script(HERE / "mnist_vae.py", "pictures_mnist_vae").build_vae()
    with tempfile.TemporaryDirectory() as folder:
        drawn = Path(folder) / "vae.png"
        as_png = {"format": "png"} if "format" in inspect.signature(draw).parameters else {}
        draw(vae, drawn, **as_png)
        return small_png(Image.open(drawn), out / "net.png")


def explorer_picture(net_file: Path, out: Path) -> Path | None:
    """explorer.png: the page of ``python -m netgraph.explore net_file`` in headless Chromium; None (saying why)
    when the explorer or Chromium is missing."""
    if importlib.util.find_spec("netgraph.explore") is None:
        print("explorer.png skipped: this netgraph has no netgraph.explore")
        return None
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("explorer.png skipped: no Chromium (Debian: apt-get install chromium)")
        return None
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "netgraph.explore", str(net_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        address, said, deadline = None, [], time.monotonic() + 120
        while address is None and time.monotonic() < deadline and (line := server.stdout.readline()):
            said.append(line)
            if found := re.search(r"http://127\.0\.0\.1:\d+\S*", line):
                address = found.group(0)
        if address is None:
            raise SystemExit(f"make_pictures.py: python -m netgraph.explore printed no address:\n{''.join(said)}")
        with tempfile.TemporaryDirectory() as folder:
            shot = Path(folder) / "explorer.png"
            command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                       "--hide-scrollbars", f"--user-data-dir={folder}/profile", "--window-size=1100,800",
                       "--virtual-time-budget=5000", f"--screenshot={shot}", address]  # fmt: skip
            subprocess.run(command, capture_output=True, timeout=120, check=False)
            if not shot.is_file():
                raise SystemExit(f"make_pictures.py: {Path(browser).name} took no screenshot of {address}")
            return small_png(Image.open(shot), out / "explorer.png")
    finally:
        server.send_signal(signal.SIGINT)  # the explorer stops cleanly on Ctrl-C
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main(argv: list[str] | None = None) -> list[Path]:
    """Writes the pictures asked for; returns their paths."""
    parser = argparse.ArgumentParser(prog="make_pictures.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", default="docs/pictures", help="folder for the pictures (default docs/pictures)")
    parser.add_argument("--only", nargs="+", choices=PICTURES, default=PICTURES, help="which pictures (default all)")
    parser.add_argument("--examples", nargs="+", choices=list(EXAMPLES), default=list(EXAMPLES),
                        help="whose samples (default every seed example)")  # fmt: skip
    parser.add_argument("--trained", default="out", help="where the examples' own runs put their nets (default out)")
    parser.add_argument("--work", default="out/pictures", help="where quick runs train (default out/pictures)")
    parser.add_argument("--retrain", action="store_true", help="train quick runs again even where nets are found")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sampled codes (default 1)")
    args = parser.parse_args(argv)
    out, trained, work = Path(args.out), Path(args.trained), Path(args.work)
    written: list[Path] = []
    if "net" in args.only:
        written.append(net_picture(out))
    nets: dict[str, Path] = {}
    needed = set(args.examples) if "samples" in args.only else set()
    if {"panel", "explorer"} & set(args.only):  # both show the seed-001 run
        needed.add("mnist_vae")
    for name in (name for name in EXAMPLES if name in needed):
        nets[name] = trained_net(name, trained, work, args.retrain)
        if "samples" in args.only and name in args.examples:
            written.append(samples(name, nets[name], out, args.seed))
    if "panel" in args.only:
        plot, picture = nets["mnist_vae"].parent / "loss.png", nets["mnist_vae"].parent / "samples.png"
        if plot.is_file():  # the panel's image: the loss plot, and the run's samples beside it as a callback shows them
            shown = beside(
                Image.open(plot).convert("RGB"), Image.open(picture).convert("RGB") if picture.is_file() else None
            )
            written.append(small_png(shown, out / "panel.png"))
        else:
            print(f"panel.png skipped: {plot} is missing (--retrain makes it)")
    if "explorer" in args.only and (shot := explorer_picture(nets["mnist_vae"], out)):
        written.append(shot)
    return written


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli.run_main(main)
