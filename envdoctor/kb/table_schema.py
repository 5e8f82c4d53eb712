"""What each table under knowledge/tables/ must hold, checked the way records are.

A malformed table used to surface as a KeyError deep inside ``check``; here it is one line per
problem, naming the row and field. Each shipped table has a schema: its arrays of rows, and for
each row the fields with their kind. A table without a schema (a team's own) must still be
valid TOML; add a schema here when envdoctor starts reading a new table.
"""

from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


class Field(NamedTuple):
    kind: str  # str | version | specifier | requirement-list | str-list | int | url | requirement-map
    required: bool = True


# table name -> array name -> field name -> Field
SCHEMAS: Dict[str, Dict[str, Dict[str, Field]]] = {
    "cuda-driver": {
        "toolkit": {"cuda": Field("version"), "minimum": Field("version"), "source": Field("url"), "checked": Field("str")},
        "family": {"major": Field("int"), "minimum": Field("version"), "source": Field("url"), "checked": Field("str")},
    },
    "torch-python": {
        "torch": {"minor": Field("version"), "python": Field("specifier"), "matrix": Field("str", False),
                  "wheels": Field("str", False), "source": Field("url")},
    },
    "xtuner-releases": {
        "release": {"package": Field("str"), "version": Field("version"), "date": Field("str"), "source": Field("url"),
                    "commit": Field("str", False), "requires_python": Field("specifier-or-empty"),
                    "requires": Field("requirement-list"), "extras": Field("requirement-map", False)},
    },
    "xtuner-internlm2-dispatch": {
        "gate": {"xtuner": Field("specifier"), "torch": Field("specifier", False), "source": Field("url")},
    },
    "import-checks": {
        "stack": {"package": Field("str"), "modules": Field("str-list"), "why": Field("str"), "source": Field("url")},
    },
    "fact-defaults": {
        "default": {"key": Field("fact-key"), "value": Field("scalar"), "says": Field("str"), "source": Field("url"),
                    "why": Field("str")},
    },
}


class TableProblem(NamedTuple):
    field: str  # e.g. "release[3].requires"
    message: str


def table_problems(name: str, data: Mapping) -> List[TableProblem]:
    """Every problem of the parsed table ``name`` (its file name without .toml)."""
    schema = SCHEMAS.get(name)
    if schema is None:
        return []
    found: List[TableProblem] = []
    for key in sorted(set(data) - set(schema)):
        found.append(TableProblem(key, "unknown array (known: %s)" % ", ".join(sorted(schema))))
    for array, fields in schema.items():
        rows = data.get(array, [])
        if not isinstance(rows, list):
            found.append(TableProblem(array, "must be an array of tables ([[%s]])" % array))
            continue
        for i, row in enumerate(rows):
            found.extend(_row(row, "%s[%d]" % (array, i), fields))
    return found


def _row(row: object, where: str, fields: Mapping[str, Field]) -> List[TableProblem]:
    if not isinstance(row, dict):
        return [TableProblem(where, "must be a table")]
    found = [TableProblem("%s.%s" % (where, k), "unknown field (known: %s)" % ", ".join(sorted(fields)))
             for k in sorted(set(row) - set(fields))]
    for name, spec in fields.items():
        if name not in row:
            if spec.required:
                found.append(TableProblem("%s.%s" % (where, name), "missing"))
            continue
        message = _CHECKS[spec.kind](row[name])
        if message:
            found.append(TableProblem("%s.%s" % (where, name), message))
    return found


def _str(value: object) -> Optional[str]:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _url(value: object) -> Optional[str]:
    return None if isinstance(value, str) and value.startswith(("https://", "http://")) else "must be a web address"


def _int(value: object) -> Optional[str]:
    return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"


def _version(value: object) -> Optional[str]:
    if not isinstance(value, str):
        return "must be a version string"
    try:
        Version(value)
    except InvalidVersion:
        return "%r is not a version" % value
    return None


def _specifier(value: object, empty_ok: bool = False) -> Optional[str]:
    if not isinstance(value, str):
        return "must be a version specifier string"
    if empty_ok and not value:
        return None
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        return "%r is not a version specifier" % value
    return None


def _str_list(value: object) -> Optional[str]:
    ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    return None if ok else "must be a list of strings"


def _requirements(value: object) -> Optional[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    if _str_list(value):
        return "must be a list of requirement strings"
    for text in value:  # type: ignore[union-attr]
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            return "%r is not a requirement: %s" % (text, exc)
    return None


def _requirement_map(value: object) -> Optional[str]:
    if not isinstance(value, dict):
        return "must be a table of name = [requirements]"
    for name, reqs in value.items():
        message = _requirements(reqs)
        if message:
            return "%s: %s" % (name, message)
    return None


def _fact_key(value: object) -> Optional[str]:
    from envdoctor.kb.vocabulary import fact_type

    if not isinstance(value, str) or fact_type(value) is None:
        return "%r is not a fact of docs/facts.md" % (value,)
    return None


def _scalar(value: object) -> Optional[str]:
    return None if isinstance(value, (str, int, float, bool)) else "must be text, a number or true/false"


_CHECKS: Dict[str, Callable[[object], Optional[str]]] = {
    "str": _str,
    "fact-key": _fact_key,
    "scalar": _scalar,
    "url": _url,
    "int": _int,
    "version": _version,
    "specifier": _specifier,
    "specifier-or-empty": lambda v: _specifier(v, empty_ok=True),
    "str-list": _str_list,
    "requirement-list": _requirements,
    "requirement-map": _requirement_map,
}


def describe(problems: List[TableProblem]) -> Tuple[str, ...]:
    return tuple("%s: %s" % (p.field, p.message) for p in problems)
