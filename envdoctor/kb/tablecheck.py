"""The shape of the tables a ``--kb`` folder may replace, checked when they are loaded: a
malformed table is reported (file and row) and not used, instead of failing the check later."""

from typing import Callable, Dict, List

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


def _version(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        return "%s.%s: missing (a version string)" % (where, key)
    try:
        Version(value)
    except InvalidVersion:
        return "%s.%s: %r is not a version" % (where, key, value)
    return ""


def _specifier(row: dict, key: str, where: str, required: bool = True) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        return "%s.%s: missing (a version specifier such as '>=2.1')" % (where, key)
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        return "%s.%s: %r is not a version specifier" % (where, key, value)
    return ""


def _rows(data: dict, key: str, check: Callable[[dict, str], List[str]]) -> str:
    rows = data.get(key, [])
    if not isinstance(rows, list):
        return "%s: must be an array of tables ([[%s]])" % (key, key)
    for i, row in enumerate(rows):
        where = "%s[%d]" % (key, i)
        if not isinstance(row, dict):
            return "%s: must be a table" % where
        found = next((why for why in check(row, where) if why), "")
        if found:
            return found
    return ""


def _cuda_driver(data: dict) -> str:
    def family(row: dict, where: str) -> List[str]:
        major = row.get("major")
        wrong = isinstance(major, bool) or not isinstance(major, (int, str)) or not str(major).isdigit()
        return ["%s.major: missing (a whole number such as 12)" % where if wrong else "", _version(row, "minimum", where)]

    return (_rows(data, "toolkit", lambda row, where: [_version(row, "cuda", where), _version(row, "minimum", where)])
            or _rows(data, "family", family))


def _dispatch(data: dict) -> str:
    return _rows(data, "gate", lambda row, where: [_specifier(row, "xtuner", where), _specifier(row, "torch", where, required=False)])


CHECKS: Dict[str, Callable[[dict], str]] = {
    "cuda-driver": _cuda_driver,
    "xtuner-internlm2-dispatch": _dispatch,
}


def table_problem(name: str, data: object) -> str:
    """Why the table NAME (tables/NAME.toml) cannot be used, in words; "" when it can."""
    if not isinstance(data, dict):
        return "not a table"
    check = CHECKS.get(name)
    return check(data) if check else ""
