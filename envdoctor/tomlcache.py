"""Read TOML files, remembering parsed results by content so repeat runs skip the parser.

The knowledge base is read on every run and tomllib is pure Python, which would make its
parsing most of `check`'s own time. The cache is keyed by the sha256 of each file's bytes,
so an edited record is simply parsed again; it lives in the user's cache folder and is only
an optimisation: when it cannot be read or written, everything still works.
"""

import hashlib
import json
import os
import sys
import tempfile
from typing import Dict, Optional

CACHE_ENV = "ENVDOCTOR_CACHE_DIR"


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
        self.dirty = False
        if self.path:
            try:
                with open(self.path, "rb") as handle:
                    loaded = json.loads(handle.read())
                if isinstance(loaded, dict):
                    self.entries = loaded
            except (OSError, ValueError):
                pass

    def load(self, path: str) -> dict:
        """Parse one file (raises OSError when unreadable, TOMLError when invalid)."""
        with open(path, "rb") as handle:
            data = handle.read()
        digest = hashlib.sha256(data).hexdigest()
        hit = self.entries.get(digest)
        if isinstance(hit, dict):
            return hit
        parsed = _parse(data)
        if _json_safe(parsed):
            self.entries[digest] = parsed
            self.dirty = True
        return parsed

    def save(self) -> None:
        if not (self.dirty and self.path):
            return
        try:
            folder = os.path.dirname(self.path)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".toml-cache-")
            with os.fdopen(fd, "w") as handle:
                json.dump(self.entries, handle)
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass  # a read-only home: run without the cache


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


def _json_safe(value: object) -> bool:
    """TOML dates and times do not survive JSON; such files are simply not cached."""
    if isinstance(value, dict):
        return all(_json_safe(v) for v in value.values())
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    return isinstance(value, (str, int, float, bool))
