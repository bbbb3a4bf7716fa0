"""The example scripts as modules, for the tests (examples/ is not a package): loaded with
:func:`netgraph.cli.load_script`, the one loader that tests, benchmarks and examples share."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from netgraph.cli import load_script

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BENCHMARKS = ROOT / "benchmarks"


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a fresh module, without its ``__main__`` block."""
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")
