"""Running a script: errors a user can act on as one line and exit status 1; a script loaded as a module."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ..backend import BackendError
from ..distributed import raised_together, world
from ..layer import NetError

# --- running -----------------------------------------------------------------------------------------------


def run_main(
    main: Callable[[], Any], hints: Mapping[type[BaseException], str] | None = None, prog: str | None = None
) -> None:
    """Runs a script's ``main()``. Errors a user can act on - bad data, a bad net file, training that
    failed (:class:`NetError`), no usable GPU (:class:`BackendError`), a file that cannot be read or
    written (:class:`OSError`) - end it with one line, ``<script>: <message>``, on stderr and exit status 1;
    ``hints`` adds a line in parentheses for errors of a given type. Other errors show their traceback. Under
    ``mpiexec`` the ranks other than 0 print nothing on stdout, and leave an error raised on every rank to rank 0.

    Example:
        >>> from netgraph import DatasetError
        >>> def main():
        ...     raise DatasetError("photos/: no usable images")
        >>> try:
        ...     run_main(main, prog="demo.py")
        ... except SystemExit as exit:
        ...     print("exit status", exit.code)
        exit status 1
    """
    prog = prog or Path(sys.argv[0]).name
    ranks = world()
    try:
        quiet = contextlib.nullcontext() if ranks.is_root else contextlib.redirect_stdout(open(os.devnull, "w"))  # noqa: SIM115
        with quiet:
            main()
    except (NetError, BackendError, OSError) as err:
        if not ranks.is_root and raised_together(err):  # rank 0 says it
            raise SystemExit(1) from None
        hint = next((text for kind, text in (hints or {}).items() if isinstance(err, kind)), None)
        rank = "" if ranks.is_root else f"rank {ranks.rank}: "
        print(f"{rank}{prog}: {err}" + (f"\n  ({hint})" if hint else ""), file=sys.stderr)
        raise SystemExit(1) from None


def load_script(path: str | Path, name: str | None = None) -> ModuleType:
    """The Python file ``path`` run as a fresh module (its ``if __name__ == "__main__":`` block does not
    run), registered in ``sys.modules`` under ``name`` (default ``script_<file name>``): how tests,
    benchmarks and other scripts reuse a script's nets when its folder is not a package.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "tiny.py"
        >>> _ = path.write_text("SIZE = 28\\nif __name__ == '__main__':\\n    raise SystemExit('not run')\\n")
        >>> load_script(path).SIZE
        28
    """
    path = Path(path)
    name = name or f"script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
