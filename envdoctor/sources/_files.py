"""The one place that reads a user's file (a model's config.json, remote code, an XTuner
config): capped in size, regular files only, every failure one line naming the file."""

import errno
import os
import stat

from envdoctor.safeio import kind_of

MIB = 1024 * 1024


class FileProblem(Exception):
    """A file could not be read; ``str()`` is one line that names it."""


def read_capped(path: str, limit: int) -> bytes:
    """The file's bytes, refusing what is not a regular file or is larger than ``limit``.

    The stat comes first so a FIFO or device never blocks the open, and a 200 MB file is
    refused before a byte of it is read.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise FileProblem(_os_message(path, exc))
    if stat.S_ISDIR(info.st_mode):
        raise FileProblem("%s: is a folder, expected a file" % path)
    if not stat.S_ISREG(info.st_mode):
        raise FileProblem("%s: not a regular file (%s)" % (path, kind_of(info.st_mode)))
    if info.st_size > limit:
        raise FileProblem("%s: too large (%s; envdoctor reads at most %s)" % (path, _size(info.st_size), _size(limit)))
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise FileProblem(_os_message(path, exc))
    if len(data) > limit:  # it grew between the stat and the read
        raise FileProblem("%s: too large (over %s)" % (path, _size(limit)))
    return data


def decode_text(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem("%s: not UTF-8 text (byte %d)" % (path, exc.start))


def _os_message(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "%s: symbolic link loop" % path
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return "%s: broken symbolic link (points to %s)" % (path, os.readlink(path))
        return "%s: no such file" % path
    return "%s: cannot read (%s)" % (path, exc.strerror or exc)


def _size(count: int) -> str:
    if count >= MIB:
        return "%.0f MiB" % (count / MIB)
    return "%d bytes" % count


def parse_python(text: str, path: str):
    """``ast.parse`` for files we read and never run: (module, "") or (None, one line naming
    the file, the line and what Python said)."""
    import ast

    try:
        return ast.parse(text, path), ""
    except SyntaxError as exc:
        where = "%s:%d" % (path, exc.lineno) if exc.lineno else path
        return None, "%s: syntax error (%s)" % (where, exc.msg)
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes; absurd nesting
        return None, "%s: cannot be parsed as Python (%s)" % (path, type(exc).__name__)
