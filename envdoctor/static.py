"""Judging the unpinned requirements of a requirements file: does every version the range
allows stay clear of the knowledge base's errors and warnings?

Only the versions the knowledge base names can be tried (release tables, record ranges,
remedies), so "clear" means: no named version inside the range trips a record.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from envdoctor.facts import Facts
from envdoctor.kb.evaluate import evaluate
from envdoctor.kb.load import KnowledgeBase
from envdoctor.kb.releases import python_allowed, release_table
from envdoctor.kb.versions import named_versions
from envdoctor.sources.requirements import Unpinned


@dataclass(frozen=True)
class Tripped:
    record_id: str
    severity: str
    status: str  # confirmed / possible
    versions: Tuple[str, ...]  # the named versions in the range that trip it


@dataclass(frozen=True)
class RangeVerdict:
    name: str
    specifier: str  # "" allows any version
    where: str
    checked: Tuple[str, ...]  # named versions inside the range that were tried
    tripped: Tuple[Tripped, ...]

    @property
    def clear(self) -> bool:
        return not self.tripped

    def describe(self) -> str:
        allows = self.specifier or "any version"
        if not self.checked:
            return "%s %s (%s): no version the knowledge base names is in this range; not judged" % (self.name, allows, self.where)
        if self.clear:
            return "%s %s (%s): clear: none of %s trips a record" % (self.name, allows, self.where, ", ".join(self.checked))
        parts = ["%s %s for %s" % (t.record_id, t.severity if t.status == "confirmed" else "possible " + t.severity,
                                   ", ".join(t.versions)) for t in self.tripped]
        return "%s %s (%s): allows affected versions: %s" % (self.name, allows, self.where, "; ".join(parts))


def judge_unpinned(unpinned: Sequence[Unpinned], facts: Facts, kb: KnowledgeBase) -> Tuple[RangeVerdict, ...]:
    releases = release_table(kb.tables)
    verdicts = []
    for loose in unpinned:
        try:
            spec = SpecifierSet(loose.specifier)
        except InvalidSpecifier:
            continue
        relevant = [r for r in kb.records if r.severity in ("error", "warning") and any(a.package == loose.name for a in r.affected)]
        inside = [v for v in named_versions(loose.name, kb.records, releases) if spec.contains(v, prereleases=True)]
        inside = [v for v in inside if _installable(loose.name, v, facts, releases)]
        hits: Dict[Tuple[str, str, str], List[str]] = {}
        for version in inside:
            trial = facts.with_values({"pkg." + loose.name: str(version)})
            for record in relevant:
                finding = evaluate(record, trial)
                if finding is not None:
                    hits.setdefault((record.id, record.severity, finding.status), []).append(str(version))
        tripped = tuple(Tripped(rid, sev, status, tuple(vs)) for (rid, sev, status), vs in sorted(hits.items()))
        verdicts.append(RangeVerdict(loose.name, loose.specifier, loose.where, tuple(str(v) for v in inside), tripped))
    return tuple(verdicts)


def _installable(package: str, version: Version, facts: Facts, releases) -> bool:
    """pip would not pick a release whose declared Python range excludes the target."""
    python = facts.get("python")
    for release in releases:
        if release.package == package and Version(release.version) == version:
            return python_allowed(release, str(python)) is not False
    return True
