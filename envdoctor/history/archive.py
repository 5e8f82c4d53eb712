"""The Python files and declared requirements inside a release file (wheel or sdist), read as bytes.

Used by the history builder (scripts/build_history.py) and its tests; nothing here is imported at
run time of `check` or `explain`.
"""

import io
import os
import tarfile
import zipfile
from email.parser import Parser
from typing import Dict, List, NamedTuple, Optional

SKIP_TOP = {"tests", "test", "docs", "doc", "examples", "benchmarks", "benchmark", "scripts", "csrc", "build",
            "setup", "tools_", "third_party", "3rdparty", "ci", "requirements"}


class Release(NamedTuple):
    files: Dict[str, bytes]  # path as installed ('pkg/mod.py'; C extensions with empty content)
    requires_dist: List[str]
    requires_python: Optional[str]
    kind: str  # "wheel" or "sdist"


def _metadata(text: str):
    msg = Parser().parsestr(text, headersonly=True)
    return list(msg.get_all("Requires-Dist") or []), msg.get("Requires-Python")


def _wanted(path: str) -> bool:
    return path.endswith((".py", ".so", ".pyd")) and not path.endswith("/setup.py")


def read_wheel(path: str) -> Release:
    files: Dict[str, bytes] = {}
    requires: List[str] = []
    python = None
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            top = name.split("/")[0]
            if top.endswith(".dist-info"):
                if name.endswith("/METADATA"):
                    requires, python = _metadata(z.read(name).decode("utf-8", "replace"))
                continue
            if top.endswith(".data"):
                parts = name.split("/")
                if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
                    name = "/".join(parts[2:])
                else:
                    continue
            if _wanted(name):
                files[name] = z.read(name) if name.endswith(".py") else b""
    return Release(files, requires, python, "wheel")


def _egg_requires(text: str) -> List[str]:
    """egg-info/requires.txt as Requires-Dist lines (sections name extras and markers)."""
    out, extra, marker = [], None, None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]")
            extra, _, marker = section.partition(":")
            extra, marker = extra or None, marker or None
            continue
        conds = []
        if marker:
            conds.append("(%s)" % marker)
        if extra:
            conds.append('extra == "%s"' % extra)
        out.append(line + ("; " + " and ".join(conds) if conds else ""))
    return out


def read_sdist(path: str) -> Release:
    members: Dict[str, bytes] = {}
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith((".py", "PKG-INFO", "requires.txt", "top_level.txt")):
                    members[name] = z.read(name)
    else:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith((".py", "PKG-INFO", "requires.txt", "top_level.txt")):
                    f = t.extractfile(m)
                    members[m.name] = f.read() if f else b""
    root = os.path.commonprefix([n.split("/")[0] + "/" for n in members]) if members else ""
    rel = {n[len(root):]: b for n, b in members.items() if n.startswith(root)}
    requires: List[str] = []
    python = None
    if "PKG-INFO" in rel:
        requires, python = _metadata(rel["PKG-INFO"].decode("utf-8", "replace"))
    top_level: Optional[List[str]] = None
    for name, data in rel.items():
        if name.count("/") == 1 and name.split("/")[0].endswith(".egg-info") or name.startswith("src/") and name.endswith(".egg-info/requires.txt"):
            if name.endswith("requires.txt") and not requires:
                requires = _egg_requires(data.decode("utf-8", "replace"))
            if name.endswith("top_level.txt"):
                top_level = [x.strip() for x in data.decode().split() if x.strip()]
    base = "src/" if any(n.startswith("src/") and n.endswith("/__init__.py") for n in rel) else ""
    files: Dict[str, bytes] = {}
    for name, data in rel.items():
        if not name.startswith(base) or not name.endswith(".py"):
            continue
        inner = name[len(base):]
        top = inner.split("/")[0]
        if top_level is not None:
            if top not in top_level and top[:-3] not in top_level:
                continue
        elif "/" not in inner or top in SKIP_TOP or top.startswith("."):
            continue  # loose scripts (setup.py) and non-package folders
        if _wanted(inner):
            files[inner] = data
    return Release(files, requires, python, "sdist")


def read_release(path: str) -> Release:
    return read_wheel(path) if path.endswith(".whl") else read_sdist(path)


def as_text(data: bytes) -> str:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace").read()
