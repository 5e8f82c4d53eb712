"""The release tables (knowledge/tables/*-releases.toml): what each release declares.

The planner takes its candidate versions from here, and respects each release's declared
Python range and requirements.
"""

import glob
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Tuple

from envdoctor.facts import canonical_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Release:
    package: str  # canonical
    version: str
    requires_python: str  # a specifier, "" for none declared
    requires: Tuple[str, ...]  # requirement strings (install_requires)
    extras: Tuple[Tuple[str, Tuple[str, ...]], ...]  # (extra, requirements)
    date: str
    source: str


def load_releases(kb_dir: str) -> Tuple[Release, ...]:
    """Every release in every ``*-releases.toml`` under kb_dir/tables, oldest first per package."""
    releases: List[Release] = []
    for path in sorted(glob.glob(os.path.join(kb_dir, "tables", "*-releases.toml"))):
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        for row in data.get("release", []):
            extras = tuple(sorted((name, tuple(reqs)) for name, reqs in (row.get("extras") or {}).items()))
            releases.append(Release(canonical_name(row["package"]), str(row["version"]), str(row.get("requires_python", "")),
                                    tuple(row.get("requires", ())), extras, str(row.get("date", "")), str(row.get("source", ""))))
    return tuple(releases)


def by_package(releases: Tuple[Release, ...]) -> Dict[str, Dict[str, Release]]:
    out: Dict[str, Dict[str, Release]] = {}
    for release in releases:
        out.setdefault(release.package, {})[release.version] = release
    return out
