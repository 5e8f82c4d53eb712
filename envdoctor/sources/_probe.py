"""Inventory of one Python environment, in the standard library alone.

This file is run in two ways: imported by envdoctor for its own interpreter, and executed
as a script (``python -I _probe.py``) inside another interpreter given with ``--python``,
where it prints JSON. So it must run on every Python envdoctor supports (3.8 and newer),
import nothing outside the standard library, and never import a probed package: it reads
metadata and files as text.
"""

import json
import os
import sys

SCHEMA = 1
TOO_OLD = 3  # exit status when this interpreter is older than envdoctor can inspect

# Files read as text from installed packages, for facts that versions alone cannot give
# (torch's CUDA build). Keys are "distribution:relative/path".
TORCH_VERSION_FILE = "torch/version.py"


MAX_METADATA = 16 * 1024 * 1024  # a METADATA file is kilobytes (a long description at most)
MAX_SOURCE = 4 * 1024 * 1024


def _not_regular(path, limit):
    """Why ``path`` must not be read ("" when it may): a FIFO would block the probe, a device
    such as /dev/zero would fill its memory. The open does not wait for a FIFO's writer."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return ""  # the read that follows reports it as usual
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > limit:
        return "too large (%d MiB; at most %d MiB is read)" % (info.st_size >> 20, limit >> 20)
    return ""


def _read_text(path, limit=MAX_SOURCE):
    why = _not_regular(path, limit)
    if why:
        raise OSError(why)
    with open(path, "rb") as handle:
        return handle.read(limit).decode("utf-8", "replace")


def parse_headers(text):
    """The header block of a METADATA / PKG-INFO file (RFC 822 style), multi-valued keys kept."""
    headers = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and last is not None:
            continue  # continuation of a long header (e.g. License); not needed
        name, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        last = name.strip().lower()
        headers.setdefault(last, []).append(value.strip())
    return headers


def _simple_assignments(text):
    """NAME = 'literal' / None lines of a generated module such as torch/version.py."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        left, _, right = line.partition("=")
        name = left.split(":")[0].strip()
        if not name.replace("_", "").isalnum():
            continue
        right = right.strip()
        if right == "None":
            out[name] = None
        elif len(right) >= 2 and right[0] == right[-1] and right[0] in "'\"":
            out[name] = right[1:-1]
        elif right in ("True", "False"):
            out[name] = right == "True"
    return out


def _dist_info_path(dist):
    path = getattr(dist, "_path", None)
    return str(path) if path is not None else ""


def _list_distributions(problems):
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8 is refused before this
        problems.append("importlib.metadata is not available on this Python")
        return []
    seen = {}
    result = []
    for dist in metadata.distributions():
        where = _dist_info_path(dist)
        why = ""
        for name in ("METADATA", "PKG-INFO"):
            why = why or (_not_regular(os.path.join(where, name), MAX_METADATA) if where else "")
        if why:
            problems.append("%s: metadata not read (%s); distribution skipped" % (where, why))
            continue
        try:
            text = dist.read_text("METADATA")
            if text is None:
                text = dist.read_text("PKG-INFO")
        except Exception as exc:  # unreadable file: report it, keep going
            problems.append("%s: cannot read metadata (%s)" % (where, exc))
            continue
        if text is None:
            problems.append("%s: no METADATA file" % where)
            continue
        headers = parse_headers(text)
        name = (headers.get("name") or [""])[0]
        version = (headers.get("version") or [""])[0]
        if not name or not version:
            missing = "Name" if not name else "Version"
            problems.append("%s: METADATA has no %s field; distribution skipped" % (where, missing))
            continue
        try:
            location = str(dist.locate_file(""))
        except Exception:
            location = ""
        key = canonical_name(name)
        entry = {
            "name": name,
            "version": version,
            "location": location,
            "path": where,
            "requires": headers.get("requires-dist", []),
            "requires_python": (headers.get("requires-python") or [None])[0],
        }
        if key in seen:
            first = seen[key]
            problems.append(
                "%s is installed twice: %s (%s, used) and %s (%s, shadowed)"
                % (name, first["version"], first["path"], version, where)
            )
            continue
        seen[key] = entry
        result.append(entry)
    return result


def canonical_name(name):
    """envdoctor.names.canonical_name, copied: this file runs standalone (tests hold them equal)."""
    out = []
    prev = False
    for ch in name.strip().lower():
        if ch in "-_.":
            if not prev:
                out.append("-")
            prev = True
        else:
            out.append(ch)
            prev = False
    return "".join(out)


def _unreadable_paths(problems):
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            os.listdir(entry)
        except OSError as exc:
            problems.append("%s: cannot list folder (%s); packages there were not seen" % (entry, exc.strerror or exc))


def _torch_build(distributions, problems):
    for dist in distributions:
        if canonical_name(dist["name"]) != "torch":
            continue
        path = os.path.join(dist["location"], TORCH_VERSION_FILE)
        try:
            values = _simple_assignments(_read_text(path))
        except OSError as exc:
            problems.append("%s: cannot read (%s); torch's CUDA build is unknown" % (path, exc.strerror or exc))
            return {"error": "torch/version.py not readable", "path": path}
        if "__version__" not in values:
            problems.append("%s: no __version__ found; torch's CUDA build is unknown" % path)
            return {"error": "torch/version.py has no __version__", "path": path}
        return {
            "path": path,
            "version": values.get("__version__"),
            "cuda": values.get("cuda"),
            "hip": values.get("hip"),
            "debug": values.get("debug"),
        }
    return None


def probe():
    problems = []
    _unreadable_paths(problems)
    distributions = _list_distributions(problems)
    uname = os.uname() if hasattr(os, "uname") else None
    return {
        "schema": SCHEMA,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "platform": {
            "system": uname.sysname if uname else sys.platform,
            "machine": uname.machine if uname else "",
        },
        "distributions": distributions,
        "torch": _torch_build(distributions, problems),
        "problems": problems,
    }


if __name__ == "__main__":
    if sys.version_info < (3, 8):
        sys.stderr.write("Python %d.%d is older than 3.8, the oldest envdoctor can inspect\n" % sys.version_info[:2])
        sys.exit(TOO_OLD)
    json.dump(probe(), sys.stdout)
