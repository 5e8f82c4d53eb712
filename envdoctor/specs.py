"""Version and marker rules every stage shares, written once.

- ``parse_version``: a version, or None for text that is not one;
- ``version_in``: whether a version is inside a specifier as pip counts it: a local label
  (2.1.2+cu121) is its public version, and pre-releases and dev builds (0.1.22.dev0) are real
  installs, so they count;
- ``python_allowed``: whether a release's requires_python allows a target Python;
- ``marker_environment`` / ``marker_holds``: a requirement's environment marker judged for a
  target Python on this machine's platform.
"""

import os
import sys
from typing import TYPE_CHECKING, Dict, Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:  # packaging.requirements and .markers cost a start-up import: only where used
    from packaging.requirements import Requirement


def parse_version(text: object) -> Optional[Version]:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def in_specifier(version: Version, spec: str) -> bool:
    return SpecifierSet(spec).contains(Version(version.public), prereleases=True)


def contains(spec: SpecifierSet, version: str) -> Optional[bool]:
    """``version_in`` for a parsed specifier; None when ``version`` is not a version."""
    parsed = parse_version(version)
    return None if parsed is None else spec.contains(Version(parsed.public), prereleases=True)


def version_in(spec: str, version: str) -> Optional[bool]:
    """None when ``version`` is not a version (or ``spec`` not a specifier)."""
    parsed = parse_version(version)
    if parsed is None:
        return None
    try:
        return in_specifier(parsed, spec)
    except InvalidSpecifier:
        return None


def python_allowed(requires_python: str, python: str) -> Optional[bool]:
    """A release that declares no requires_python allows every Python."""
    if not requires_python:
        return True
    return version_in(requires_python, python)


def marker_environment(python: str) -> Dict[str, str]:
    """PEP 508 marker values for ``python`` ("3.10" or "3.10.13") on this machine's platform."""
    import platform  # only where markers are judged: a start-up import check does not need

    parts = (python.split(".") + ["0", "0"])[:3]
    return {
        "python_version": "%s.%s" % (parts[0], parts[1]),
        "python_full_version": ".".join(parts),
        "sys_platform": sys.platform,
        "platform_system": platform.system(),
        "platform_machine": platform.machine(),
        "os_name": os.name,
        "implementation_name": sys.implementation.name,
        "platform_python_implementation": platform.python_implementation(),
        "extra": "",
    }


def marker_holds(req: "Requirement", python: str) -> Optional[bool]:
    """Whether the requirement applies for ``python``; None when its marker cannot be judged
    (a name or comparison packaging does not know): the caller decides what that means."""
    if req.marker is None:
        return True
    from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName

    try:
        return req.marker.evaluate(marker_environment(python))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return None
