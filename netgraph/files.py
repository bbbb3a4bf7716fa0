"""Writing files atomically, and reading only regular files.

Everything netgraph writes goes through :func:`atomic_file`: the data goes to a temporary
file beside the target, is flushed to disk, and only then renamed over the target, so a crash
or a kill at any moment leaves either the old file or the new one, never a torn one.

Everything netgraph reads from a user's path (nets, pictures, datasets) is opened with
:func:`open_regular`, which refuses FIFOs, devices, sockets and folders: a FIFO would block
the reader forever, and a device such as ``/dev/zero`` never ends.

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

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotARegularFileError", "atomic_file", "open_regular"]


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


class NotARegularFileError(OSError):
    """A path names a FIFO, a device or a socket where a file is to be read; ``strerror`` says which."""


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file (links followed).

    A folder raises ``IsADirectoryError``; a FIFO, a device or a socket raises
    :class:`NotARegularFileError`, whose ``strerror`` names the kind. The file is opened without
    blocking and checked once open, so a FIFO put in the file's place meanwhile cannot hang
    the caller either.

    Example:
        >>> import os, tempfile
        >>> pipe = os.path.join(tempfile.mkdtemp(), "pipe.png")
        >>> os.mkfifo(pipe)
        >>> open_regular(pipe)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        netgraph.files.NotARegularFileError: [Errno 22] a FIFO (named pipe), not a regular file: '...pipe.png'
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    handle = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(handle).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "a folder, not a regular file", os.fspath(path))
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise NotARegularFileError(errno.EINVAL, f"{kind}, not a regular file", os.fspath(path))
        if nonblocking:
            os.set_blocking(handle, True)
        return os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise
