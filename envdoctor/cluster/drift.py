"""What differs between the nodes of a job, and the knowledge base's findings on each
distinct environment.

Linear in the number of nodes: nodes are grouped by their whole set of facts first (one
canonical string per node), differences are found between the groups, and the knowledge
base is evaluated once per group of the facts it reads, so a thousand identical nodes cost
one evaluation.
"""

import json
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from envdoctor.facts import Facts, Problem, Unknown, Value, describe
from envdoctor.kb.evaluate import CONFIRMED, Finding, condition_holds, evaluate_all
from envdoctor.kb.load import KnowledgeBase
from envdoctor.cluster import table as drift_table
from envdoctor.cluster.nodes import NodeReport

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
NOT_REPORTED = "not reported"  # the node's report does not name the fact at all


class Holding(NamedTuple):
    """One value of a fact and the nodes (indices into Cluster.nodes) that hold it."""

    value: Value
    reason: Optional[str]  # set when the fact is unknown on these nodes
    nodes: Tuple[int, ...]

    def describe(self) -> str:
        if self.reason == NOT_REPORTED:
            return NOT_REPORTED
        return "unknown (%s)" % self.reason if self.reason is not None else describe(self.value)


class Drift(NamedTuple):
    key: str
    rule: drift_table.Rule  # agree=True: a problem; False: shown as harmless
    values: Tuple[Holding, ...]  # most nodes first


class NodeFinding(NamedTuple):
    finding: Finding
    nodes: Tuple[int, ...]


class NodeProblem(NamedTuple):
    problem: Problem
    nodes: Tuple[int, ...]


class Cluster(NamedTuple):
    nodes: Tuple[NodeReport, ...]
    environments: int  # distinct sets of facts
    drift: Tuple[Drift, ...]  # facts that must agree and differ first
    findings: Tuple[NodeFinding, ...]
    problems: Tuple[NodeProblem, ...]
    missing: Tuple[str, ...]  # ranks that never reported, in words
    records: int  # knowledge-base records evaluated
    exit_code: int
    source: str = "files"  # or "torch.distributed"

    @property
    def must_agree(self) -> Tuple[Drift, ...]:
        return tuple(d for d in self.drift if d.rule.agree)

    @property
    def harmless(self) -> Tuple[Drift, ...]:
        return tuple(d for d in self.drift if not d.rule.agree)

    def ranks(self, nodes: Iterable[int]) -> Tuple[int, ...]:
        return tuple(sorted(r for i in nodes for r in self.nodes[i].ranks))


class _Env(NamedTuple):
    facts: Facts
    fatal: bool
    nodes: List[int]


def _key(facts: Facts, fatal: bool) -> tuple:
    # Types ride along so that True and 1 (equal in Python) stay two environments.
    return (tuple(sorted((k, type(v).__name__, v) for k, v in facts.values.items())),
            tuple(sorted((k, u.reason) for k, u in facts.unknown.items())), facts.complete, fatal)


def group(nodes: Sequence[NodeReport]) -> List[_Env]:
    """Nodes with identical facts, in the order of their first node."""
    envs: Dict[tuple, _Env] = {}
    for index, node in enumerate(nodes):
        facts = node.facts()
        fatal = any(p.fatal for p in node.problems())
        key = _key(facts, fatal)
        env = envs.get(key)
        if env is None:
            envs[key] = env = _Env(facts, fatal, [])
        env.nodes.append(index)
    return list(envs.values())


def _value(facts: Facts, key: str) -> Tuple[Value, Optional[str]]:
    if key not in facts.values and key not in facts.unknown and not key.startswith(facts.complete):
        return None, NOT_REPORTED
    got = facts.get(key)
    if isinstance(got, Unknown):
        return None, got.reason
    return got, None


def differences(envs: Sequence[_Env], rules: Sequence[drift_table.Rule]) -> List[Drift]:
    """Each fact whose value is not the same in every environment. One pass over each
    environment's own facts; environments that do not name a fact are looked at only for the
    few facts that differ."""
    seen: Dict[str, Dict[tuple, List[int]]] = {}  # fact -> value -> environments
    for e, env in enumerate(envs):
        for key, value in env.facts.values.items():
            seen.setdefault(key, {}).setdefault((type(value).__name__, value, None), []).append(e)
        for key, unknown in env.facts.unknown.items():
            seen.setdefault(key, {}).setdefault(("", None, unknown.reason), []).append(e)
    holds_cache: Dict[int, bool] = {}

    def holds(rule: drift_table.Rule) -> bool:  # a rule's `when`, in any node
        if id(rule) not in holds_cache:
            holds_cache[id(rule)] = any(all(_holds(c, env.facts) for c in rule.when) for env in envs)
        return holds_cache[id(rule)]

    out = []
    for key in sorted(seen):
        values = seen[key]
        named = sum(len(v) for v in values.values())
        if len(values) == 1 and named == len(envs):
            continue
        if named < len(envs):  # absent where a namespace is complete, else not reported
            have = {e for v in values.values() for e in v}
            for e, env in enumerate(envs):
                if e not in have:
                    value, reason = _value(env.facts, key)
                    values.setdefault((type(value).__name__, value, reason), []).append(e)
            if len(values) < 2:
                continue
        holdings = [Holding(ident[1], ident[2] if ident[2] is not None else None,
                            tuple(sorted(n for e in es for n in envs[e].nodes))) for ident, es in values.items()]
        holdings.sort(key=lambda h: (-len(h.nodes), h.nodes[0]))
        out.append(Drift(key, drift_table.decide(key, rules, holds), tuple(holdings)))
    out.sort(key=lambda d: not d.rule.agree)  # stable: the keys stay sorted within each part
    return out


def _holds(cond, facts: Facts) -> bool:
    value = facts.get(cond.key)
    return not isinstance(value, Unknown) and condition_holds(cond, value) is True


def read_keys(kb: KnowledgeBase) -> Set[str]:
    """Every fact a record may read: two environments equal on these get the same findings."""
    keys: Set[str] = {"cuda.driver"}  # --require-gpu reads it
    for record in kb.records:
        keys.update("pkg." + r.package for r in record.affected)
        for cond in record.when:
            keys.update((cond.key, cond.key + ".why"))
        for check in record.code:
            keys.update((check.key, check.file_key))
    return keys


def _project(facts: Facts, keys: Set[str]) -> Facts:
    return Facts({k: v for k, v in facts.values.items() if k in keys},
                 {k: u for k, u in facts.unknown.items() if k in keys}, facts.complete)


def findings(envs: Sequence[_Env], kb: KnowledgeBase, require_gpu: bool = False) -> List[NodeFinding]:
    """The findings of each distinct environment, once, with the nodes each holds on."""
    from envdoctor.check import NO_GPU

    keys = read_keys(kb)
    by_reading: Dict[tuple, Tuple[Facts, List[int]]] = {}
    for env in envs:
        if env.fatal:  # as check: a failed probe has no findings, only its problem
            continue
        projected = _project(env.facts, keys)
        slot = by_reading.setdefault(_key(projected, False), (projected, []))
        slot[1].extend(env.nodes)
    merged: Dict[str, Tuple[Finding, List[int]]] = {}
    for facts, nodes in by_reading.values():
        found = list(evaluate_all(kb.records, facts))
        if require_gpu and not facts.get("cuda.driver"):
            found.insert(0, Finding(NO_GPU, CONFIRMED, ("cuda.driver = none visible",)))
        for finding in found:
            ident = json.dumps([finding.record.id, finding.status, finding.because, [u.key for u in finding.undecided], finding.evidence])
            merged.setdefault(ident, (finding, []))[1].extend(nodes)
    order = {"error": 0, "warning": 1, "info": 2}
    out = [NodeFinding(f, tuple(sorted(n))) for f, n in merged.values()]
    out.sort(key=lambda nf: (nf.finding.status != CONFIRMED, order[nf.finding.severity], nf.finding.record.id, nf.nodes[0]))
    return out


def problems(nodes: Sequence[NodeReport]) -> List[NodeProblem]:
    seen: Dict[Problem, List[int]] = {}
    for index, node in enumerate(nodes):
        for problem in node.problems():
            seen.setdefault(problem, []).append(index)
    return [NodeProblem(p, tuple(n)) for p, n in seen.items()]


def exit_code(drift: Sequence[Drift], found: Sequence[NodeFinding], trouble: Sequence[NodeProblem],
              missing: Sequence[str], fail_on: str) -> int:
    if missing or any(p.problem.fatal for p in trouble):
        return 2
    floor = SEVERITY_RANK[fail_on]
    failing = any(nf.finding.status == CONFIRMED and SEVERITY_RANK[nf.finding.severity] >= floor for nf in found)
    return 1 if failing or any(d.rule.agree for d in drift) else 0


def analyse(nodes: Sequence[NodeReport], kb: KnowledgeBase, fail_on: str = "error", require_gpu: bool = False,
            missing: Sequence[str] = (), source: str = "files") -> Cluster:
    """Raises table.TableError when the drift table is malformed."""
    rules = drift_table.rules(kb.tables)
    envs = group(nodes)
    drift = differences(envs, rules)
    found = findings(envs, kb, require_gpu)
    trouble = problems(nodes)
    code = exit_code(drift, found, trouble, missing, fail_on)
    return Cluster(tuple(nodes), len(envs), tuple(drift), tuple(found), tuple(trouble), tuple(missing),
                   len(kb.records), code, source)
