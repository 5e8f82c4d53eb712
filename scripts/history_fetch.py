"""Which releases the API history examines, and fetching their files (maintainer tool, not run by CI).

Releases are chosen from the index's own list of versions (``pip index versions``) and fetched with
``pip download --no-deps`` into a cache outside the repository. Wheels are preferred; where a package
ships platform wheels, a small macOS arm64 wheel is taken (its module tree is the one the Linux/CUDA
wheel has; only the compiled parts differ, and those are never read). Sdists are the last resort.
Nothing fetched is imported or run by us.
"""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional

from packaging.version import InvalidVersion, Version

CACHE = os.path.expanduser(os.environ.get("ENVDOCTOR_HISTORY_CACHE", "~/.cache/envdoctor-history"))


class Selection(NamedTuple):
    """Which releases of one package to examine."""

    package: str
    since: str  # the oldest version considered
    every: str  # "release" (all), "minor" (each minor's last patch), "major" (each major's last)
    until: Optional[str] = None  # versions at or above are left out (None: up to the newest)
    patches_from: Optional[str] = None  # from this version on, every release, not only a minor's last
    last: Optional[int] = None  # keep only the newest this many of those chosen


# The span of the history. The comment on each line says why it starts there.
SELECTIONS = [
    Selection("xtuner", "0.1.0", "release"),  # every release ever published
    Selection("transformers", "4.30.0", "minor", patches_from="5.0.0"),  # the span: 4.30 on, every 5.x
    Selection("peft", "0.4.0", "minor"),  # the first peft XTuner 0.1.x accepts
    Selection("accelerate", "0.20.0", "minor"),
    Selection("trl", "0.7.0", "minor"),
    Selection("datasets", "2.10.0", "minor"),
    Selection("mmengine", "0.7.0", "minor"),  # XTuner needs mmengine>=0.10.x; earlier kept for pins
    Selection("deepspeed", "0.10.0", "minor"),
    Selection("bitsandbytes", "0.39.0", "minor"),
    Selection("torch", "2.0.0", "minor"),
    Selection("torchvision", "0.15.0", "minor"),
    Selection("setuptools", "60.0.0", "major"),  # pkg_resources: present, deprecated, removed
    Selection("flash-attn", "2.0.0", "minor"),
    Selection("numpy", "1.21.0", "minor"),
]

# Libraries the stack imports at module level (one level down): names and modules only. Not a
# list we keep: derived_libs() reads it from the built history (see there).
RECENT_MINORS = 8  # a library's newest minors examined (names and modules only; they change slowly)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def derived_libs(history_dir: str) -> List[Selection]:
    """The libraries one level down, from the history of the stack itself: each top-level module that an
    examined release imports at module level, unguarded (``imports_top``), and that the same package
    declares as a requirement under the same name (huggingface_hub -> huggingface-hub; a module whose
    distribution is named otherwise, yaml for PyYAML, is not matched rather than guessed). Each is
    examined from the lowest version any examined release asks for (``>=``), every minor's last patch,
    at most its newest RECENT_MINORS minors."""
    import json

    from packaging.requirements import InvalidRequirement, Requirement

    covered = {_canonical(s.package) for s in SELECTIONS}
    lows: Dict[str, Optional[Version]] = {}
    for sel in SELECTIONS:
        path = os.path.join(history_dir, sel.package + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            data = json.load(f)
        tops = {_canonical(t) for names in data.get("imports_top", {}).values() for t in names.split(" ")}
        for text in data.get("requires", {}).values():
            for line in text.split("\n")[1:]:
                try:
                    req = Requirement(line)
                except InvalidRequirement:
                    continue
                name = _canonical(req.name)
                if name not in tops or name in covered:
                    continue
                bounds = [Version(s.version) for s in req.specifier if s.operator in (">=", "~=", "==")
                          and "*" not in s.version]
                low = min(bounds) if bounds else None
                if name not in lows:
                    lows[name] = low
                elif low is not None and (lows[name] is None or low < lows[name]):
                    lows[name] = low
    return [Selection(name, str(low) if low is not None else "", "minor", last=RECENT_MINORS)
            for name, low in sorted(lows.items())]


PLATFORM_TRIES = [
    ["--only-binary=:all:", "--platform", "macosx_14_0_arm64", "--python-version", py]
    for py in ("3.11", "3.10", "3.12", "3.9", "3.13", "3.8")
] + [
    ["--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--python-version", py]
    for py in ("3.11", "3.10")
] + [
    # bitsandbytes 0.43 to 0.48 ship only manylinux_2_24 and Windows wheels (same module tree)
    ["--only-binary=:all:", "--platform", "win_amd64", "--python-version", "3.11"],
] + [["--no-binary=:all:"]]


def pip_env() -> Dict[str, str]:
    """pip's environment for reading the index: no pip configuration file. The history records what the
    index publishes; a machine's configuration may cap what it installs (a global `constraint =` file
    holding torch<=2.14.1 kept torch 2.15.0 and torchvision 0.29.2 out), which is no reason to leave a
    release out of the history. pip's PIP_* variables (certificates, timeouts) still apply."""
    return dict(os.environ, PIP_CONFIG_FILE=os.devnull)


def available_versions(package: str) -> List[str]:
    """The versions the index lists for a package (any Python), as pip reports them."""
    done = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package, "--ignore-requires-python"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=300,
                          env=pip_env())
    for line in done.stdout.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    raise RuntimeError("the index lists no versions of %s" % package)


def choose(selection: Selection, versions: List[str]) -> List[str]:
    """The releases of a selection: final releases only, grouped as the selection says."""
    parsed = []
    for text in versions:
        try:
            v = Version(text)
        except InvalidVersion:
            continue
        if v.is_prerelease or v.is_devrelease or v.local or (selection.since and v < Version(selection.since)):
            continue
        if selection.until and v >= Version(selection.until):
            continue
        parsed.append(v)
    groups: Dict[object, Version] = {}
    for v in parsed:
        every_patch = selection.patches_from and v >= Version(selection.patches_from)
        if selection.every == "release" or every_patch:
            key = str(v)
        elif selection.every == "minor":
            key = (v.major, v.minor)
        else:
            key = v.major
        if key not in groups or v > groups[key]:
            groups[key] = v
    chosen = [str(v) for v in sorted(groups.values())]
    return chosen[-selection.last:] if selection.last else chosen


def release_dir(package: str, version: str) -> str:
    return os.path.join(CACHE, "files", package, version)


def downloaded(package: str, version: str) -> Optional[str]:
    folder = release_dir(package, version)
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.endswith((".whl", ".tar.gz", ".zip")):
                return os.path.join(folder, name)
    return None


def fetch(package: str, version: str) -> Optional[str]:
    """The release file in the cache (downloaded if it is not there yet), or None where none could be had."""
    have = downloaded(package, version)
    if have:
        return have
    folder = release_dir(package, version)
    os.makedirs(folder, exist_ok=True)
    env = dict(pip_env(), FLASH_ATTENTION_SKIP_CUDA_BUILD="TRUE", DS_BUILD_OPS="0", BUILD_CUDA_EXT="0")
    for extra in PLATFORM_TRIES:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python", "-q",
               "-d", folder] + extra + ["%s==%s" % (package, version)]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              env=env, timeout=1800)
        got = downloaded(package, version)
        if done.returncode == 0 and got:
            return got
    got = fetch_listed_sdist(package, version, folder)
    if got:
        return got
    with open(os.path.join(folder, "FAILED"), "w") as out:
        out.write(done.stdout[-4000:])
    return None


INDEX = "https://pypi.org/simple/"


def fetch_listed_sdist(package: str, version: str, folder: str) -> Optional[str]:
    """The sdist as the index lists it, checked against the index's sha256. For packages whose setup.py
    cannot even produce metadata here (flash-attn's imports torch), which `pip download` needs; the
    file is only read, never built."""
    import hashlib
    import json
    import urllib.request

    request = urllib.request.Request(INDEX + package + "/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            listing = json.load(answer)
    except (OSError, ValueError):
        return None
    stem = re.sub(r"[-_.]+", "_", package).lower() + "-" + version
    for entry in listing.get("files", []):
        name = entry["filename"]
        if not name.endswith(".tar.gz") or re.sub(r"[-_.]+", "_", name[:-7].rsplit("-", 1)[0]).lower() + "-" + \
                name[:-7].rsplit("-", 1)[1] != stem:
            continue
        target = os.path.join(folder, name)
        try:
            with urllib.request.urlopen(entry["url"], timeout=600) as answer:
                data = answer.read()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != entry.get("hashes", {}).get("sha256"):
            return None
        with open(target + ".tmp", "wb") as out:
            out.write(data)
        os.replace(target + ".tmp", target)
        return target
    return None


def cached_versions(package: str) -> List[str]:
    folder = os.path.join(CACHE, "files", package)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def plan(selections=None, offline: bool = False) -> List[tuple]:
    """The releases to examine; offline: those of the cache (as the last online plan fetched them)."""
    out = []
    for sel in selections or SELECTIONS:
        listed = cached_versions(sel.package) if offline else available_versions(sel.package)
        for version in choose(sel, listed):
            out.append((sel.package, version))
    return out


def fetch_all(releases, workers: int = 1) -> Dict[tuple, Optional[str]]:
    with ThreadPoolExecutor(workers) as pool:
        files = list(pool.map(lambda r: fetch(*r), releases))
    return dict(zip(releases, files))


if __name__ == "__main__":
    wanted = set(sys.argv[1:])
    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "knowledge", "history")
    sels = [s for s in SELECTIONS + derived_libs(shipped) if not wanted or s.package in wanted]
    todo = plan(sels)
    print("%d releases" % len(todo), flush=True)
    for (package, version), path in fetch_all(todo).items():
        print(package, version, os.path.basename(path) if path else "FAILED", flush=True)
