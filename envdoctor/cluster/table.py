"""Which facts must agree across nodes: knowledge/tables/drift.toml, read into rules.

The table is data so that a team can say, with a reason, that a difference is harmless
(where nvcc lives, how a driver version was learned) without a change of code.
"""

import fnmatch
import os
from typing import Callable, List, Mapping, NamedTuple, Sequence, Tuple

from envdoctor.kb.record import Condition

TABLE = "drift"
DEFAULT_WHY = "no rule of knowledge/tables/drift.toml names this fact, so it must agree"


class TableError(ValueError):
    """The drift table is malformed; the message names the rule and the field."""


class Rule(NamedTuple):
    key: str  # a glob over fact names
    agree: bool
    why: str
    when: Tuple[Condition, ...] = ()  # the rule applies where these hold in some node


DEFAULT = Rule("*", True, DEFAULT_WHY)


def rules(tables: Mapping[str, dict], dirs: Sequence[str] = ()) -> Tuple[Rule, ...]:
    """The rules of the table; ``dirs`` (the knowledge-base folders) name its file in errors."""
    data = tables.get(TABLE) or {}
    name = _file(dirs)
    items = data.get("rule", [])
    if not isinstance(items, list):
        raise TableError("%s: rule must be an array of tables ([[rule]])" % name)
    return tuple(_rule(item, "%s: rule[%d]" % (name, i)) for i, item in enumerate(items))


def lint(tables: Mapping[str, dict], dirs: Sequence[str]) -> List[str]:
    """For kb lint: the table's error, if any."""
    try:
        rules(tables, dirs)
    except TableError as exc:
        return [str(exc)]
    return []


def _file(dirs: Sequence[str]) -> str:
    # A later folder's table replaces an earlier one's (the knowledge base's loading order).
    for directory in reversed(dirs):
        path = os.path.join(directory, "tables", TABLE + ".toml")
        if os.path.exists(path):
            return path
    return TABLE + ".toml"


def _rule(item: object, where: str) -> Rule:
    if not isinstance(item, dict):
        raise TableError("%s: must be a table" % where)
    extra = set(item) - {"key", "agree", "why", "when"}
    if extra:
        raise TableError("%s: unknown field(s) %s" % (where, ", ".join(sorted(extra))))
    key, agree, why = item.get("key"), item.get("agree"), item.get("why")
    if not isinstance(key, str) or not key:
        raise TableError("%s: key must be a fact name or a glob such as pkg.*" % where)
    if not isinstance(agree, bool):
        raise TableError("%s: agree must be true or false" % where)
    if not isinstance(why, str) or not why.strip():
        raise TableError("%s: why must say, in words, why" % where)
    return Rule(key, agree, why.strip(), _when(item.get("when", {}), where))


def _when(raw: object, where: str) -> Tuple[Condition, ...]:
    # The record syntax, parsed by the record loader, so both stay one language.
    from envdoctor.kb import load

    try:
        return load._conditions({"when": raw})
    except load._Invalid as exc:
        raise TableError("%s: when: %s" % (where, exc.message))


def decide(key: str, table: Sequence[Rule], holds: Callable[[Rule], bool]) -> Rule:
    """The first rule naming ``key`` whose conditions hold (``holds`` judges them)."""
    for rule in table:
        if fnmatch.fnmatchcase(key, rule.key) and (not rule.when or holds(rule)):
            return rule
    return DEFAULT
