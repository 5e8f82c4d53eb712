"""Which facts must agree across nodes: knowledge/tables/drift.toml, read into rules.

The table is data so that a team can say, with a reason, that a difference is harmless
(where nvcc lives, how a driver version was learned) without a change of code.
"""

import fnmatch
from typing import Callable, List, NamedTuple, Sequence, Tuple

from envdoctor.kb.record import Condition
from envdoctor.kb.tables import Tables

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


def rules(tables: Tables) -> Tuple[Rule, ...]:
    """The rules of every knowledge-base folder's table, a later folder's first: a team's own
    rule (--kb DIR/tables/drift.toml) is consulted before the shipped ones."""
    out = []
    for path, data in reversed(tables.files(TABLE)):
        items = data.get("rule", [])
        if not isinstance(items, list):
            raise TableError("%s: rule must be an array of tables ([[rule]])" % path)
        out.extend(_rule(item, "%s: rule[%d]" % (path, i)) for i, item in enumerate(items))
    return tuple(out)


def lint(tables: Tables) -> List[str]:
    """For kb lint: the table's error, if any."""
    try:
        rules(tables)
    except TableError as exc:
        return [str(exc)]
    return []


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
    from envdoctor.kb.load import parse_conditions

    try:
        return parse_conditions(raw)
    except ValueError as exc:
        raise TableError("%s: when: %s" % (where, exc))


def decide(key: str, table: Sequence[Rule], holds: Callable[[Rule], bool]) -> Rule:
    """The first rule naming ``key`` whose conditions hold (``holds`` judges them)."""
    for rule in table:
        if fnmatch.fnmatchcase(key, rule.key) and (not rule.when or holds(rule)):
            return rule
    return DEFAULT
