"""Pins checked against each other from the API history, nothing installed (``check -r``).

1. Imports: from each pinned entry package's entry modules, its module-level unguarded imports
   (recorded per release) are followed through its own modules; each import of another package
   must find that package pinned (or brought in by a pin's declared requirements) and, at the pinned
   release, the module and the name.
2. Declared requirements: each pin's Requires-Dist (extras it is pinned with included) against the
   other pins, and its Requires-Python against the target Python, as `pip check` does once installed.
Only examined releases are judged; anything else is left alone (never a guess).
"""

from collections import deque
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envdoctor.names import canonical_name
from envdoctor.history.load import History
from envdoctor.importcheck import ENTRY_MODULES


class PinBreak(NamedTuple):
    kind: str  # "import" or "requires"
    package: str  # the pin that breaks (the importer / the declaring release)
    version: str
    other: str  # the package it needs
    other_version: str  # pinned version ("" when not pinned)
    message: str  # Python's message for imports; the conflict in words for requirements
    module: str = ""  # importing module
    target: str = ""  # module imported
    name: str = ""  # name imported


def _declared(history: History, package: str, version: str, extras: Sequence[str], python: str,
              same_minor: bool = False) -> Optional[List[Requirement]]:
    """A pin's declared requirements (markers evaluated); with `same_minor`, a release that was not
    examined is answered by its minor's examined release, as names are."""
    ph = history.package(package)
    got = ph.requires(version) if ph else None
    if got is None and same_minor and ph is not None:
        lo, hi = ph.neighbours(version)
        if lo is not None and lo == hi:
            got = ph.requires(ph.versions[lo])
    if got is None:
        return None
    out = []
    for line in got[1]:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None:
            env = {"python_version": ".".join(python.split(".")[:2]), "python_full_version": python, "extra": ""}
            try:
                if not req.marker.evaluate(env):
                    continue
            except Exception:
                continue
        out.append(req)
    return out


def _requires_python(history: History, package: str, version: str) -> Optional[str]:
    ph = history.package(package)
    got = ph.requires(version) if ph else None
    return got[0] if got else None


def brought_in(history: History, pins: Dict[str, str], python: str) -> Set[str]:
    """Packages present after installing the pins: the pins and their declared requirements' closure."""
    have = set(pins)
    queue = deque(pins.items())
    while queue:
        name, version = queue.popleft()
        # what a pin brings in only decides whether an unpinned library is there at all: a pin of a
        # patch that was not examined (mmengine 0.10.4) declares what its minor's examined one does
        for req in _declared(history, name, version, (), python, same_minor=True) or ():
            other = canonical_name(req.name)
            if other not in have:
                have.add(other)
    return have


def import_breaks(history: History, pins: Dict[str, str], python: str, extras: Dict[str, Tuple[str, ...]]) -> List[PinBreak]:
    out: List[PinBreak] = []
    present = brought_in(history, pins, python)
    for package, version in sorted(pins.items()):
        if package not in ENTRY_MODULES:
            continue
        ph = history.package(package)
        if ph is None:
            continue
        imports, links = ph.imports(version), ph.links(version)
        if imports is None or links is None:
            continue
        edges: Dict[str, List[str]] = {}
        for a, b in links:
            edges.setdefault(a, []).append(b)
        reached: Set[str] = set()
        queue = deque(m for m in ENTRY_MODULES[package] if ph.has_module(m, version))
        while queue:
            m = queue.popleft()
            if m in reached:
                continue
            reached.add(m)
            queue.extend(edges.get(m, ()))
        seen: Set[Tuple[str, str]] = set()
        for module, target, name, in_function, guarded in imports:
            if module not in reached or in_function or guarded:
                continue
            found = _judge(history, pins, present, package, version, module, target, name)
            if found is not None and (found.message, found.other) not in seen:
                seen.add((found.message, found.other))
                out.append(found)
    return out


def _judge(history: History, pins, present, package, version, module, target, name) -> Optional[PinBreak]:
    other = history.package_of(target)
    if other is None or other == package:
        return None  # a library the history does not cover: nothing to say
    if other not in pins:
        if other in present:
            return None  # brought in by a declared requirement, at a version we do not know
        top = target.split(".")[0]
        return PinBreak("import", package, version, other, "", "No module named '%s'" % top, module, target, name)
    oph = history.package(other)
    ov = pins[other]
    if oph is None:
        return None
    parts = target.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if oph.has_module(prefix, ov) is False:
            return PinBreak("import", package, version, other, ov, "No module named '%s'" % prefix, module, target, name)
    if name and oph.has_name(target, name, ov) is False:
        return PinBreak("import", package, version, other, ov, "cannot import name '%s' from '%s'" % (name, target),
                        module, target, name)
    return None


def requirement_breaks(history: History, pins: Dict[str, str], python: str, extras: Dict[str, Tuple[str, ...]]) -> List[PinBreak]:
    out: List[PinBreak] = []
    for package, version in sorted(pins.items()):
        rp = _requires_python(history, package, version)
        if rp:
            try:
                if not SpecifierSet(rp).contains(Version(python), prereleases=True):
                    out.append(PinBreak("requires", package, version, "python", python,
                                        "%s %s requires Python %s, the target is %s" % (package, version, rp, python)))
            except Exception:
                pass
        for req in _declared(history, package, version, extras.get(package, ()), python) or ():
            other = canonical_name(req.name)
            if other not in pins or not req.specifier:
                continue
            try:
                ok = req.specifier.contains(Version(Version(pins[other]).public), prereleases=True)
            except Exception:
                continue
            if not ok:
                out.append(PinBreak("requires", package, version, other, pins[other],
                                    "%s %s requires %s%s, but %s %s is pinned" % (package, version, req.name, req.specifier, other, pins[other])))
    return out


def constraints_for(pins: Dict[str, str], python: str, kb_dirs: Sequence[str] = ()) -> List[str]:
    """For the fix planner: requirements that clear the history's import breaks between these pins
    (e.g. 'transformers<5.0.0' for xtuner 0.1.23, 'deepspeed' where a pin imports it unguarded).
    A plan holding them never proposes a set whose recorded imports are known to fail."""
    from envdoctor.history.where import pin_for, where_exists
    from envdoctor.history.load import load_history

    history = load_history(kb_dirs)
    out: List[str] = []
    for b in import_breaks(history, pins, python, {}):
        if not b.other_version:
            need = b.other
        else:
            where = where_exists(history, b.target, b.name)
            need = pin_for(where, b.other_version) if where is not None else None
        if need and need not in out:
            out.append(need)
    return out
