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

A kill -9 during a write cannot run any clean-up, so it leaves the temporary file behind. Its name
carries the writer's host and process id (``.net.bin~host~4242~k2j4_x7q.part``); the first write of a
process into a directory, and :func:`remove_stale_parts` (which checkpoint directories call when they
are opened or resumed from), remove the temporary files there whose writer on this host has gone. A
temporary file whose writer is still running, here or on another host, is never touched.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotARegularFileError", "atomic_file", "open_regular", "remove_stale_parts"]

#: this host, as temporary file names carry it (only the characters a file name keeps safely)
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "host"
#: ``.<target>~<host>~<pid>~<random>.part``: a temporary file of :func:`atomic_file`
_PART = re.compile(r"^\.(?P<target>.+)~(?P<host>[A-Za-z0-9.-]+)~(?P<pid>\d{1,10})~[a-z0-9_]+\.part$")
#: ``.<target>.<random>.part``: a temporary file of earlier versions, which named no writer
_UNNAMED_PART = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")
#: an unnamed temporary file is stale once it has not changed for this long (seconds)
UNNAMED_PART_AGE = 3600.0
_cleaned: set[str] = set()  # the directories this process has cleaned on its first write there


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
    folder = os.path.abspath(target.parent)
    if folder not in _cleaned:
        _cleaned.add(folder)
        remove_stale_parts(folder)
    prefix = f".{target.name}~{_HOST}~{os.getpid()}~"
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".part")
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


def _writer_is_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (False when that cannot be told)."""
    if pid == os.getpid() or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # it exists but belongs to someone else, or cannot be a process id
        return False
    return False


def remove_stale_parts(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writes left in ``folder``; returns those removed.

    A temporary file of :func:`atomic_file` goes when its writer ran on this host and is no longer
    running; one of an earlier version (which named no writer) when it has not changed for an hour.
    Errors (a folder that cannot be read, a file removed meanwhile) are ignored: cleaning up never
    stops a write.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.endswith(".part") or not entry.name.startswith("."):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            named = _PART.match(entry.name)
            if named is not None:
                stale = named["host"] == _HOST and _writer_is_gone(int(named["pid"]))
            else:
                old = now - entry.stat(follow_symlinks=False).st_mtime > UNNAMED_PART_AGE
                stale = _UNNAMED_PART.match(entry.name) is not None and old
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


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
