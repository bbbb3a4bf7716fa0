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

A kill -9 during a write cannot run any clean-up, so it leaves the temporary file behind. Its name
carries the writer's host and process id (``.net.bin~host~4242~k2j4_x7q.part``); the first write of a
process into a directory, and :func:`remove_stale_parts` (which checkpoint directories call when they
are opened or resumed from), remove the temporary files there whose writer on this host has gone. A
temporary file whose writer is still running, here or on another host, is never touched.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file", "remove_stale_parts"]

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
