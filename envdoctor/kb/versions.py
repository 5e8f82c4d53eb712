"""The versions of a package that the knowledge base names (release tables, record ranges,
remedies), for trying candidates without asking a package index."""

from typing import Iterable, List, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from envdoctor.names import canonical_name
from envdoctor.kb.record import Record
from envdoctor.kb.releases import Release

# Operators whose version is itself allowed (so it is a real candidate); < and != exclude theirs.
_INCLUSIVE = ("==", ">=", "<=", "~=", "===")


def _specifier_versions(requirements: Iterable[str], package: str) -> List[str]:
    out = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonical_name(req.name) != package:
            continue
        out.extend(s.version for s in req.specifier if s.operator in _INCLUSIVE and "*" not in s.version)
    return out


def named_versions(package: str, records: Sequence[Record], releases: Sequence[Release]) -> List[Version]:
    """Sorted, distinct versions of ``package`` that the knowledge base mentions."""
    texts: List[str] = [r.version for r in releases if r.package == package]
    for record in records:
        for rng in record.affected:
            if rng.package == package:
                texts.extend(v for v in (rng.introduced, rng.fixed, rng.last_affected) if v)
        texts.extend(_specifier_versions(record.remedy.requires, package))
    for release in releases:
        texts.extend(_specifier_versions(release.requires, package))
    found = set()
    for text in texts:
        try:
            found.add(Version(text))
        except InvalidVersion:
            continue
    return sorted(found)
