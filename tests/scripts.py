"""Loading the example and benchmark scripts as modules (examples/ and benchmarks/ are not packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def load_script(path: Path, name: str | None = None) -> ModuleType:
    """Run the script at ``path`` as a fresh module, without its ``__main__`` block."""
    spec = importlib.util.spec_from_file_location(name or f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module."""
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")
