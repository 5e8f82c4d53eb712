"""Read TOML files, remembering parsed results by content so repeat runs skip the parser.

The knowledge base is read on every run and tomllib is pure Python, which would make its
parsing most of `check`'s own time. The cache is keyed by each file's length and checksums,
so an edited record is simply parsed again; it lives in the user's cache folder and is only
an optimisation: when it cannot be read or written, everything still works.
"""

import json
import os
import sys
from typing import Dict, Optional, Set, Tuple

from envdoctor.safeio import read_regular

CACHE_ENV = "ENVDOCTOR_CACHE_DIR"
MAX_TOML = 64 << 20  # a knowledge file (record or table); the largest shipped is under 1 MiB
MAX_CACHE = 256 << 20



class TOMLError(ValueError):
    """The file is not valid TOML (or not UTF-8); the message says where."""


def cache_file() -> Optional[str]:
    folder = os.environ.get(CACHE_ENV)
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "envdoctor")
    if not folder or folder == "off":
        return None
    from envdoctor import __version__

    return os.path.join(folder, "toml-%s-py%d%d.json" % (__version__, sys.version_info[0], sys.version_info[1]))


class TomlCache:
    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path if path is not None else cache_file()
        self.entries: Dict[str, dict] = {}
        # Digests of files that a loader fully validated once: it may skip its costly checks
        # (compiling patterns, parsing requirements) when it sees the same bytes again.
        self.valid: Set[str] = set()
        self.dirty = False
        if self.path:
            try:
                loaded = json.loads(read_regular(self.path, MAX_CACHE))
                if isinstance(loaded, dict) and isinstance(loaded.get("toml"), dict):
                    self.entries = loaded["toml"]
                    self.valid = set(loaded.get("valid", ()))
            except (OSError, ValueError, TypeError, RecursionError):
                pass  # unusable (not a file, too large, damaged): run without it

    def load(self, path: str) -> dict:
        """Parse one file (raises OSError when unreadable, TOMLError when invalid)."""
        return self.parsed(path)[0]

    def parsed(self, path: str) -> Tuple[dict, str]:
        """The parsed file and the sha256 of its bytes."""
        data = read_regular(path, MAX_TOML)
        digest = content_key(data)
        hit = self.entries.get(digest)
        if isinstance(hit, dict):
            return hit, digest
        parsed = _parse(data)
        try:
            safe = _json_safe(parsed)
        except RecursionError:
            raise TOMLError("nested too deeply to be read")
        if safe:
            self.entries[digest] = parsed
            self.dirty = True
        return parsed, digest

    def is_valid(self, digest: str) -> bool:
        return digest in self.valid and digest in self.entries

    def mark_valid(self, digest: str) -> None:
        if digest in self.entries and digest not in self.valid:
            self.valid.add(digest)
            self.dirty = True

    def save(self) -> None:
        if not (self.dirty and self.path):
            return
        import tempfile  # only when there is something to write

        tmp = None
        try:
            folder = os.path.dirname(self.path)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".toml-cache-")
            with os.fdopen(fd, "w") as handle:
                json.dump({"toml": self.entries, "valid": sorted(self.valid)}, handle)
            os.replace(tmp, self.path)  # refused when the cache path is a folder: no cache then
            tmp = None
            self.dirty = False
        except OSError:
            pass  # a read-only home, a full disk: run without the cache
        finally:
            if tmp is not None:  # never leave a half-written or unplaceable temp file behind
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


_SHARED: Optional[TomlCache] = None


def shared() -> TomlCache:
    """One cache per process, so every loader of knowledge files shares one read of it."""
    global _SHARED
    if _SHARED is None or _SHARED.path != cache_file():
        _SHARED = TomlCache()
    return _SHARED


def content_key(data: bytes) -> str:
    """The cache key of a file's bytes: its length and two independent checksums. zlib is
    already loaded by importlib.metadata, while hashlib would load OpenSSL on every run."""
    import zlib

    return "%d-%08x-%08x" % (len(data), zlib.crc32(data), zlib.adler32(data))


def _parse(data: bytes) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.8-3.10
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise TOMLError("not valid UTF-8")
    except tomllib.TOMLDecodeError as exc:
        raise TOMLError("not valid TOML: %s" % exc)
    except RecursionError:
        raise TOMLError("nested too deeply to be read")


def _json_safe(value: object) -> bool:
    """TOML dates and times do not survive JSON; such files are simply not cached."""
    if isinstance(value, dict):
        return all(_json_safe(v) for v in value.values())
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    return isinstance(value, (str, int, float, bool))
