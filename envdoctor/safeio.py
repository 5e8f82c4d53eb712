"""Opening files we did not make: only regular files, never blocking, never unbounded; and
writing ours so that no reader ever sees one half-written.

A FIFO would block an ordinary open() forever and /dev/zero would fill memory; both can sit
where a file is expected (a requirements include, a knowledge file, the cache, a file in the
environment we probe). The open does not wait, and the fstat after it refuses what is not a
regular file, with no window between the check and the read.
"""

import os
import stat
import tempfile
from typing import BinaryIO, Callable, Optional, Tuple


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def open_regular(path: str, limit: int) -> BinaryIO:
    """An unbuffered binary handle on the regular file ``path`` of at most ``limit`` bytes, or
    OSError whose text says why not (``str(exc)`` is "not a regular file (a FIFO)", ...)."""
    handle = open(path, "rb", buffering=0, opener=_nonblocking)
    try:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            kind = kind_of(info.st_mode)
            raise OSError(kind if kind == "not a regular file" else "not a regular file (%s)" % kind)
        if info.st_size > limit:
            raise OSError("too large (%s; envdoctor reads at most %s)" % (size_words(info.st_size), size_words(limit)))
    except BaseException:
        handle.close()
        raise
    return handle  # type: ignore[return-value]


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, or OSError saying why not."""
    with open_regular(path, limit) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after the fstat
        raise OSError("too large (over %s)" % size_words(limit))
    return data


def reason(exc: OSError) -> str:
    """An OSError in words: the system's text, or ours."""
    return exc.strerror or str(exc)


def size_words(count: int) -> str:
    if count >= 1 << 20:
        return "%.0f MiB" % (count / (1 << 20))
    return "%d bytes" % count


def write_beside(path: str, text: str, mode: int, place: Callable[[str, str], None] = os.replace,
                 owner: Optional[Tuple[int, int]] = None) -> None:
    """Write ``text`` to a temp file in ``path``'s folder, on disk (fsync) with ``mode`` (and
    ``owner``), then ``place(temp, path)`` puts it there in one step: readers see the old file
    or the whole new one. Whatever fails, no temp file is left behind."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".envdoctor-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        if owner is not None:
            os.chown(temp, *owner)
        place(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
