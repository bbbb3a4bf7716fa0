"""Writing files atomically: nets, checkpoints, pictures and downloads.

Everything netgraph writes goes through :func:`atomic_file`: the data goes to a temporary
file beside the target, is flushed to disk, and only then renamed over the target, so a crash
or a kill at any moment leaves either the old file or the new one, never a torn one.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> target = os.path.join(folder, "net.bin")
    >>> with atomic_file(target) as stream:
    ...     _ = stream.write(b"arrays")
    >>> open(target, "rb").read(), os.listdir(folder)
    (b'arrays', ['net.bin'])
    >>> try:
    ...     with atomic_file(target) as stream:
    ...         _ = stream.write(b"half")
    ...         raise RuntimeError("killed")
    ... except RuntimeError:
    ...     pass
    >>> open(target, "rb").read(), os.listdir(folder)   # the old file is intact, no litter
    (b'arrays', ['net.bin'])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file"]


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary stream whose contents replace ``path`` only if the ``with`` block completes.

    The file gets the permissions an ordinary new file would (not the owner-only mode of a
    temporary file). On any exception, KeyboardInterrupt included, the temporary file is
    removed and ``path`` is left as it was.
    """
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        os.chmod(temporary, _new_file_mode())
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
