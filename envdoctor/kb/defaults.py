"""Documented defaults of facts (tables/fact-defaults.toml), offered to the evaluation as facts.

A default is not a fact about this environment; it is what the program the user runs takes
when nobody says otherwise. It travels as the fact ``default.<key>`` (its words as
``default.<key>.why``), and the evaluation reads it only where ``<key>`` itself is unknown.
"""

from typing import Dict, List, NamedTuple, Tuple

from envdoctor.facts import Gathered, Value
from envdoctor.kb.tables import Tables

TABLE = "fact-defaults"
PREFIX = "default."


class Default(NamedTuple):
    key: str
    value: Value
    says: str  # whose default, e.g. "XTuner's default"
    source: str


class DefaultsError(ValueError):
    """A malformed row of the defaults table, naming file and row."""


def fact_defaults(tables: Tables) -> Tuple[Default, ...]:
    """Every default in the tables, in file order (parsed once per knowledge base)."""
    return tables.parsed(_parse)


def _parse(tables: Tables) -> Tuple[Default, ...]:
    out: List[Default] = []
    for row in tables.rows(TABLE, "default"):
        data = row.data
        where = "%s: default[%d]" % (row.path, row.index)
        if not isinstance(data, dict) or not isinstance(data.get("key"), str) or "value" not in data:
            raise DefaultsError("%s: needs key (text) and value" % where)
        if not isinstance(data["value"], (str, int, float, bool)):
            raise DefaultsError("%s: value must be text, a number or true/false" % where)
        out.append(Default(data["key"], data["value"], str(data.get("says", "the default")), str(data.get("source", ""))))
    return tuple(out)


def gather(tables: Tables) -> Gathered:
    """The defaults as facts; an unusable table gives none (``kb lint`` names the row)."""
    try:
        defaults = fact_defaults(tables)
    except DefaultsError:
        return Gathered()
    values: Dict[str, Value] = {}
    for default in defaults:
        values[PREFIX + default.key] = default.value
        values[PREFIX + default.key + ".why"] = default.says
    return Gathered(values=values)
