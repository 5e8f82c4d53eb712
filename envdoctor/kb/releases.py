"""What releases declare (the knowledge base's tables), and whether an installed set obeys it.

``release_table``: each XTuner release's python_requires and install_requires
(tables/xtuner-releases.toml); ``torch_python_table``: the Pythons each torch minor builds for
(tables/torch-python.toml). Both are parsed from the knowledge base's tables once, on first use.
"""

from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envdoctor import specs
from envdoctor.kb.tables import Tables
from envdoctor.names import canonical_name

RELEASES = "xtuner-releases"
TORCH_PYTHON = "torch-python"


class TableError(ValueError):
    """A table file that cannot be read or has a bad row; the message names file and row."""


class Release(NamedTuple):
    package: str  # canonical name
    version: str
    requires_python: str  # a specifier, "" when the release declares none
    requires: Tuple[str, ...]  # requirement strings, exactly as the release declares them
    extras: Dict[str, Tuple[str, ...]] = {}  # what each extra adds
    date: str = ""
    source: str = ""


class Violation(NamedTuple):
    """An installed package outside a range the release declares."""

    package: str
    installed: str
    requirement: str

    def __str__(self) -> str:
        return "%s %s does not satisfy %s" % (self.package, self.installed, self.requirement)


class TorchPython(NamedTuple):
    minor: str  # "2.4"
    python: str  # specifier of the Pythons it builds wheels for
    source: str = ""


def _strings(value: object, where: str) -> Tuple[str, ...]:
    from packaging.requirements import InvalidRequirement, Requirement  # only when a table is used: costly to import

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TableError("%s: must be a list of strings" % where)
    for text in value:
        try:
            Requirement(text)
        except InvalidRequirement:
            raise TableError("%s: %r is not a requirement" % (where, text))
    return tuple(value)


def _release(row: object, where: str) -> Release:
    if not isinstance(row, dict):
        raise TableError("%s: must be a table" % where)
    for name in ("package", "version", "requires_python"):
        if not isinstance(row.get(name), str):
            raise TableError("%s: %s missing" % (where, name))
    try:
        Version(row["version"])
        SpecifierSet(row["requires_python"])
    except (InvalidVersion, InvalidSpecifier) as exc:
        raise TableError("%s: %s" % (where, exc))
    extras = row.get("extras", {})
    if not isinstance(extras, dict):
        raise TableError("%s: extras must be a table" % where)
    return Release(
        package=canonical_name(row["package"]),
        version=row["version"],
        requires_python=row["requires_python"],
        requires=_strings(row.get("requires", []), where + ".requires"),
        extras={name: _strings(reqs, "%s.extras.%s" % (where, name)) for name, reqs in extras.items()},
        date=str(row.get("date", "")),
        source=str(row.get("source", "")),
    )


def release_table(tables: Tables) -> Tuple[Release, ...]:
    """Every release in the tables, in file order. Raises TableError naming file and row.

    Parsed once per knowledge base: the planner derives facts for every candidate it tries,
    and validating the table's ~300 requirement strings each time was most of a `fix` run."""
    return tables.parsed(_parse_releases)


def _parse_releases(tables: Tables) -> Tuple[Release, ...]:
    return tuple(_release(row.data, "%s: release[%d]" % (row.path, row.index)) for row in tables.rows(RELEASES, "release"))


def find_release(releases: Sequence[Release], package: str, version: str) -> Optional[Release]:
    """The row for exactly this version (0.1.17 == 0.1.17.0); None for versions not released."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    name = canonical_name(package)
    for release in releases:
        if release.package == name and Version(release.version) == wanted:
            return release
    return None


def python_allowed(release: Release, python: str) -> Optional[bool]:
    return specs.python_allowed(release.requires_python, python)


def violations(release: Release, installed: Mapping[str, str], python: str = "") -> Tuple[Violation, ...]:
    """Installed packages outside the release's declared ranges, its extras' included (an
    installed deepspeed must fit the deepspeed extra). A package that is not installed is no
    violation here: that is an incomplete install, which pip check reports."""
    from packaging.requirements import Requirement  # only when a table is used: costly to import

    found: List[Violation] = []
    for text in _declared(release):
        req = Requirement(text)
        if python and specs.marker_holds(req, python) is False:
            continue
        name = canonical_name(req.name)
        version = installed.get(name)
        if version is None or not str(req.specifier):
            continue
        if specs.version_in(str(req.specifier), version) is False:
            found.append(Violation(name, version, text))
    return tuple(found)


def _declared(release: Release) -> List[str]:
    out = list(release.requires)
    for reqs in release.extras.values():
        out.extend(r for r in reqs if r not in out)
    return out


def torch_python_table(tables: Tables) -> Tuple[TorchPython, ...]:
    """The Pythons each torch minor builds for. Raises TableError naming file and row."""
    return tables.parsed(_parse_torch_python)


def _parse_torch_python(tables: Tables) -> Tuple[TorchPython, ...]:
    out = []
    for found in tables.rows(TORCH_PYTHON, "torch"):
        row = found.data
        where = "%s: torch[%d]" % (found.path, found.index)
        if not isinstance(row, dict) or not isinstance(row.get("minor"), str) or not isinstance(row.get("python"), str):
            raise TableError("%s: needs minor and python strings" % where)
        try:
            SpecifierSet(row["python"])
        except InvalidSpecifier as exc:
            raise TableError("%s: %s" % (where, exc))
        out.append(TorchPython(row["minor"], row["python"], str(row.get("source", ""))))
    return tuple(out)


def torch_python_row(rows: Sequence[TorchPython], torch_version: str) -> Optional[TorchPython]:
    try:
        version = Version(torch_version)
    except InvalidVersion:
        return None
    minor = "%d.%d" % (version.major, version.minor)
    return next((row for row in rows if row.minor == minor), None)


def by_package(releases: Sequence[Release]) -> Dict[str, Dict[str, Release]]:
    """package -> version -> release, for the planner's look-ups."""
    out: Dict[str, Dict[str, Release]] = {}
    for release in releases:
        out.setdefault(release.package, {})[release.version] = release
    return out
