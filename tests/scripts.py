"""The example scripts as modules, for the tests (examples/ is not a package): loaded with
:func:`netgraph.cli.load_script`, the one loader that tests, benchmarks and examples share."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from netgraph.cli import load_script
from netgraph.datasets import write_idx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BENCHMARKS = ROOT / "benchmarks"


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a fresh module, without its ``__main__`` block."""
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")


def idx_folder(folder: Path, train: int = 48, test: int = 12, seed: int = 1) -> Path:
    """MNIST-format files in ``folder`` (made): ``train`` training and ``test`` test pictures, a bright square
    each, all of class 0: data for an example's quick run."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for kind, n in (("train", train), ("t10k", test)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        for image in images:
            top, left = rng.integers(2, 14, size=2)
            image[top : top + 10, left : left + 10] = rng.integers(128, 256)
        write_idx(folder / f"{kind}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{kind}-labels-idx1-ubyte.gz", np.zeros(n, dtype=np.uint8))
    return folder
