"""The plan: the smallest set of package changes that clears every confirmed error.

Candidate versions come from the knowledge base only (release tables, record ranges,
remedies); each candidate is tried by substituting it into the facts and evaluating every
record again, so a target that trips another record, confirmed or possible, is rejected.
A target release's declared Python range and requirements are respected; torch and Python
stay fixed unless the user allows them to change. When nothing works here, the plan says
what would have to change instead of inventing one.
"""

import itertools
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple, Union

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envdoctor.facts import Facts, Unknown
from envdoctor.fix import apihistory
from envdoctor.names import canonical_name, requirement_name
from envdoctor.specs import contains, marker_holds, parse_version
from envdoctor.kb.derive import derive_all
from envdoctor.kb.evaluate import CONFIRMED, Finding, evaluate_all
from envdoctor.kb.load import KnowledgeBase
from envdoctor.kb.record import Record, Remedy
from envdoctor.kb.releases import Release, by_package, python_allowed
from envdoctor.kb.versions import named_versions

NOTHING_TO_DO = "nothing-to-do"
PLAN = "plan"
NO_PLAN = "no-plan"
FIXED_BY_DEFAULT = ("torch", "python")  # expensive to change: they come from the base image
PYTHON_MINORS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
MAX_TRIALS = 2000  # combinations of candidate versions tried, at most
MAX_VERDICTS = 4  # candidates put to the caller's resolver, at most
# The package a fine-tuning stack is built around: its configs are written for its line, so a
# plan never moves it back to an older line, nor far back within one, unless allowed.
MAIN_PACKAGES = ("xtuner",)
NEAR_DOWNGRADE = 3  # releases back within the same line a plan may take


@dataclass(frozen=True)
class PlanOptions:
    latest: bool = False
    allow_change: FrozenSet[str] = frozenset()  # "torch", "python"
    whole_environment: bool = False  # -r FILE: every pin is a user requirement
    loose: Tuple[str, ...] = ()  # -r FILE: its unpinned requirements, kept as they are
    extras: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()  # -r FILE: (package, extras) of its pins
    allow_downgrade: bool = False  # let the main package move back across lines (MAIN_PACKAGES)
    tried_pythons: bool = False  # other Pythons were already tried (no second round inside)
    config_uses: Tuple = ()  # --config: what it imports and the template keys it reads (xtuner_config.Use)
    config: str = ""  # --config: its file name, for the reasons


@dataclass(frozen=True)
class Change:
    action: str  # upgrade / downgrade / install / remove
    package: str  # canonical, or "python"
    current: Optional[str]  # None: not installed
    target: Optional[str]  # a version; None for remove; for a range change, the version tried
    requirement: str  # what requirements.in says for it, e.g. "xtuner==0.1.20"
    clears: Tuple[str, ...]  # record ids
    reason: str
    declares: Tuple[str, ...] = ()  # for a release from the table: its Python range and key requirements

    def describe_target(self) -> str:
        if self.action == "remove":
            return "remove"
        spec = self.requirement[len(self.package):] if self.requirement.startswith(self.package) else self.requirement
        return spec[2:] if spec.startswith("==") else spec


@dataclass(frozen=True)
class Rejected:
    package: str
    version: str
    reasons: Tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    status: str  # NOTHING_TO_DO / PLAN / NO_PLAN
    python: str  # the target Python
    changes: Tuple[Change, ...] = ()
    requirements: Tuple[str, ...] = ()  # the stack as requirements.in lines
    constraints: Tuple[str, ...] = ()  # the knowledge base's bounds for the stack
    errors: Tuple[Finding, ...] = ()  # the confirmed errors the plan set out to clear
    remaining: Tuple[Finding, ...] = ()  # findings left after the plan (possible, warnings, info)
    rejected: Tuple[Rejected, ...] = ()
    unresolved: Tuple[Finding, ...] = ()  # errors no package change clears
    needs: Tuple[str, ...] = ()  # with NO_PLAN: what would have to change
    records: int = 0  # records considered
    facts: Optional[Facts] = field(default=None, compare=False)  # the facts after the plan
    checked: str = ""  # what the resolver said of the planned set, in words ("" when not asked)
    installs: Tuple[str, ...] = ()  # the packages the resolver put in the set (empty when not asked)

    @property
    def exit_code(self) -> int:
        return 1 if self.status == NO_PLAN else 0


Assignment = Tuple[Tuple[str, Optional[str]], ...]  # (package, version or None to remove)

# The caller's last word on a plan that clears every error: why it cannot be (it does not
# install for the target, or what the resolver picks trips a record), or "" to take it.
# Asked of the best candidates only, best first (a resolver takes seconds).
Accept = Callable[["Plan"], "Verdict"]


class Moved(NamedTuple):
    """A pin the plan did not touch that the resolver had to move with it."""

    package: str
    current: str
    target: str


class Verdict(NamedTuple):
    reason: str = ""  # why the plan cannot be taken; "" when it can
    checked: str = ""  # what was checked, in words, for the plan's report
    moved: Tuple[Moved, ...] = ()  # kept pins that conflict with the plan, and where they go
    bounds: Tuple[str, ...] = ()  # the API history's bounds the resolver was held to (constraints)
    installs: Tuple[str, ...] = ()  # the packages of the resolved set (canonical names)


class Dependency(NamedTuple):
    """A package a trial changes too: a release it moves to (or keeps) declares it, or the
    remedy of an error the trial would trip asks for it."""

    package: str
    current: Optional[str]
    requirement: str  # e.g. "transformers>=4.36.0"
    tried: str  # the version the records were checked at; "" when pip chooses within the range
    why: str  # "declared by xtuner 0.1.22" / "the remedy of RECORD-ID"


class _Trial(NamedTuple):
    """The facts as they would be after an assignment, with what it brings along."""

    assignment: Assignment
    facts: Facts
    python: str  # the target Python
    deps: Tuple[Dependency, ...]


class _Attempt(NamedTuple):
    """One assignment tried: its trial, or why there is none; and what the records say of it."""

    trial: Optional[_Trial]
    hard: Tuple[str, ...]  # why it fails for sure (a confirmed error, or why no trial)
    soft: Tuple[str, ...]  # ``hard``, or else the errors it only may trip that were not there before


class _Needs(NamedTuple):
    """What the releases of a trial declare of the other packages."""

    values: Dict[str, Optional[str]]  # pkg.NAME -> the version tried
    unknown: Dict[str, str]  # pkg.NAME -> why it stays unknown (pip chooses within a range)
    chosen: Dict[str, Optional[str]]  # every package the trial fixes, with its version
    deps: Tuple[Dependency, ...]


class _Search(NamedTuple):
    trial: Optional[_Trial]  # the first assignment that works, best first
    rejected: Dict[Tuple[str, str], Tuple[str, ...]]  # (package, version) -> why, single changes passed over


def _errors(findings: Sequence[Finding]) -> List[Finding]:
    """The errors a plan must clear: confirmed ones, and likely ones (they fire under the
    documented defaults of the facts nobody gave; the plan says what it assumed)."""
    return [f for f in findings if (f.status == CONFIRMED or f.likely) and f.severity == "error"]


CONFIG_LACKS = "CONFIG-USES-MISSING"  # the planner's own error, not a knowledge-base record


def _config_finding(package: str, words: Sequence[str], config: str) -> Finding:
    """The installed release lacks what the config uses: an error whose remedy is another release of it."""
    details = "%s uses what the installed %s lacks (API history)" % (config or "the config", package)
    remedy = Remedy("use a %s release that has what the config uses" % package, (package,))
    record = Record(CONFIG_LACKS, "; ".join(words), "error", details, (), (), (), (), remedy, (), "")
    return Finding(record, CONFIRMED, tuple(words))


def _requirement(text: str) -> Optional[Requirement]:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _primary_packages(record: Record) -> List[str]:
    names = [r.package for r in record.affected]
    names.extend(canonical_name(req.name) for req in map(_requirement, record.remedy.requires) if req)
    names.extend(c.key[4:] for c in record.when if c.kind == "installed" and c.key.startswith("pkg."))
    # A fact derived from a release's declarations ("xtuner.declared.requirements_ok") is the
    # business of that package (and of what it declares, which the trial adds).
    names.extend(c.key.split(".declared.")[0] for c in record.when if ".declared." in c.key)
    out: List[str] = []
    for name in names:
        if name not in out:
            out.append(name)
    return out


def _remedy_specs(errors: Sequence[Finding], package: str) -> List[SpecifierSet]:
    specs = []
    for finding in errors:
        for req in map(_requirement, finding.record.remedy.requires):
            if req is not None and canonical_name(req.name) == package:
                specs.append(req.specifier)
    return specs


def _removable(errors: Sequence[Finding], package: str) -> bool:
    return any(c.kind == "installed" and c.value is True and c.key == "pkg." + package for f in errors for c in f.record.when)


def _line(version: Version) -> Tuple[int, ...]:
    return tuple((version.release + (0, 0))[:2])


def _far_downgrade(now: Optional[Version], v: Version) -> bool:
    """Back to an older line (0.2.0 -> 0.1.23), or more than NEAR_DOWNGRADE releases back in one."""
    if now is None or v >= now:
        return False
    if _line(v) != _line(now):
        return True
    return (now.release + (0, 0, 0))[2] - (v.release + (0, 0, 0))[2] > NEAR_DOWNGRADE


def _candidates(package: str, current: Optional[str], errors: Sequence[Finding], kb: KnowledgeBase,
                releases: Sequence[Release], latest: bool, allow_downgrade: bool = False) -> List[Optional[str]]:
    """Versions to try for one package, best first; current first of all (no change).

    An expert's order: what the maintainers advise, then an upgrade within the same line, then
    across lines; downgrades last, and for the main package only near ones unless allowed."""
    now = parse_version(current) if current else None
    versions = named_versions(package, kb.records, releases)
    if not (now is not None and now.is_prerelease):
        versions = [v for v in versions if not v.is_prerelease]
    versions = [v for v in versions if now is None or v != Version(now.public)]
    if package in MAIN_PACKAGES and not allow_downgrade:
        versions = [v for v in versions if not _far_downgrade(now, v)]
    remedies = _remedy_specs(errors, package)

    def advised(v: Version) -> bool:  # the maintainers' own advice comes first
        return all(spec.contains(v, prereleases=True) for spec in remedies)

    def across(v: Version) -> bool:
        return now is not None and _line(v) != _line(now)

    ordered = sorted(versions, key=lambda v: (not advised(v), -v.release[0], -v.release[1], -v.release[2]) if latest else
                     (not advised(v), now is not None and v < now, across(v), _distance(versions, now, v)))
    out: List[Optional[str]] = [current] + [str(v) for v in ordered]
    if current is not None and _removable(errors, package):
        out.append(None)
    return out


def _distance(versions: Sequence[Version], now: Optional[Version], v: Version) -> int:
    if now is None:
        return versions.index(v)
    return abs(sum(1 for w in versions if w < v) - sum(1 for w in versions if w < now))


def _python_ok(release: Optional[Release], python: str) -> bool:
    return release is None or python_allowed(release, python) is not False


def _pick_python(targets: Sequence[Release], current: str) -> Optional[str]:
    """The Python minor nearest to the current one that every target release allows."""
    now = parse_version(current)
    minors = sorted(PYTHON_MINORS, key=lambda m: (abs(Version(m).minor - now.minor) if now else 0, Version(m) < now if now else 0))
    for minor in minors:
        if all(_python_ok(r, minor + ".0") for r in targets):
            return minor
    return None


def _tried_version(package: str, spec: SpecifierSet, current: str, kb: KnowledgeBase, releases: Sequence[Release]) -> Optional[str]:
    """A version the knowledge base names inside spec, nearest to the current one."""
    named = named_versions(package, kb.records, releases)
    inside = [v for v in named if spec.contains(v) and not v.is_prerelease]
    if not inside:
        return None
    now = parse_version(current)
    inside.sort(key=lambda v: (_distance(named, now, v), now is not None and v < now))
    return str(inside[0])


def _substitute(facts: Facts, values: Dict[str, Optional[str]], unknown: Dict[str, str]) -> Facts:
    merged = facts.with_values(values)
    if not unknown:
        return merged
    kept = {k: v for k, v in merged.values.items() if k not in unknown}
    gaps = dict(merged.unknown)
    gaps.update({k: Unknown(reason) for k, reason in unknown.items()})
    return Facts(kept, gaps, merged.complete)


class _Planner:
    def __init__(self, facts: Facts, kb: KnowledgeBase, releases: Sequence[Release], options: PlanOptions,
                 accept: Optional[Accept] = None) -> None:
        self.accept = accept
        self.verdicts: Dict[Assignment, Verdict] = {}
        self.broken: Dict[Assignment, str] = {}  # what the API history says of a candidate
        self.lacks: Dict[Tuple[str, str], List[str]] = {}  # (package, version) -> what of the config it lacks
        self.facts = facts
        self.kb = kb
        self.releases = tuple(releases)
        self.table = by_package(self.releases)
        self.options = options
        self.python = str(facts.get("python"))
        self.before = evaluate_all(kb.records, facts)
        # What the user's config uses that the installed releases lack (the API history): the
        # config cannot load as it is, an error the plan clears like a record's.
        self.config_broken = self.config_lacks_now()
        self.errors = _errors(self.before) + [_config_finding(p, words, options.config) for p, words in self.config_broken.items()]
        self.baseline = {f.record.id for f in self.before if f.severity == "error"}
        # Errors no package change clears: they do not reject a candidate.
        self.unresolved = tuple(f for f in self.errors if not any(self.allowed(p) for p in _primary_packages(f.record)))
        self.ignore = {f.record.id for f in self.unresolved}

    def allowed(self, package: str) -> bool:
        return package not in FIXED_BY_DEFAULT or package in self.options.allow_change

    def current(self, package: str) -> Optional[str]:
        value = self.facts.get("pkg." + package)
        return value if isinstance(value, str) else None

    # -- one trial: the facts an assignment would give ------------------------------------------

    def trial(self, assignment: Assignment) -> Tuple[Optional[_Trial], str]:
        """Facts with the assignment (and what its releases need); or None and why not."""
        targets, staying = self.releases_of(assignment)
        python, why = self.target_python(targets)
        if python is None:
            return None, why
        needs = self.declared_needs(targets + staying, assignment, python)
        if isinstance(needs, str):
            return None, needs
        values: Dict[str, Optional[str]] = {"pkg." + p: v for p, v in assignment}
        if python != self.python:
            values["python"] = python
        values.update(needs.values)
        if "pkg.torch" in values and values["pkg.torch"] != self.current("torch"):
            values["torch.version"] = values["pkg.torch"]
        facts, deps = self.complete(self.substitute(values, needs.unknown), values, needs.unknown, needs.chosen)
        return _Trial(assignment, facts, python, needs.deps + deps), ""

    def releases_of(self, assignment: Assignment) -> Tuple[List[Release], List[Release]]:
        """The table's releases the assignment moves to, and those of the packages that stay
        (they must keep what they declare, too)."""
        moving = {p for p, v in assignment if v != self.current(p)}
        targets = [self.table.get(p, {}).get(v or "") for p, v in assignment if v is not None and v != self.current(p)]
        staying = [self.table.get(p, {}).get(self.current(p) or "") for p in self.table if p not in moving]
        return [r for r in targets if r is not None], [r for r in staying if r is not None]

    def target_python(self, targets: Sequence[Release]) -> Tuple[Optional[str], str]:
        """This Python when every target allows it; else, with --allow-change python, the
        nearest that all allow; else None and why not."""
        bad = next((r for r in targets if not _python_ok(r, self.python)), None)
        if bad is None:
            return self.python, ""
        if "python" not in self.options.allow_change:
            return None, "needs Python %s (this is %s)" % (bad.requires_python, self.python)
        picked = _pick_python(targets, self.python)
        if picked is None:
            return None, "no Python allows %s" % ", ".join("%s %s" % (r.package, r.version) for r in targets)
        return picked, ""

    def declared_needs(self, releases: Sequence[Release], assignment: Assignment, python: str) -> Union[_Needs, str]:
        """What the releases declare of the other packages, or why the assignment cannot be."""
        values: Dict[str, Optional[str]] = {}
        unknown: Dict[str, str] = {}
        deps: List[Dependency] = []
        chosen = dict(assignment)
        for release in releases:
            for req in map(_requirement, self.declared(release, chosen)):
                if req is None or marker_holds(req, python) is False or not str(req.specifier):
                    continue
                name = canonical_name(req.name)
                now = chosen.get(name, self.current(name))
                if name in chosen or now is None:
                    if now is not None and contains(req.specifier, now) is False:
                        return "%s %s declares %s%s" % (release.package, release.version, name, req.specifier)
                    continue  # not installed: pip brings it in within the declared range
                if contains(req.specifier, now):
                    continue
                if not self.allowed(name):
                    return "needs %s%s, and %s %s stays (allow with --allow-change %s)" % (name, req.specifier, name, now, name)
                tried = _tried_version(name, req.specifier, now, self.kb, self.releases)
                if tried is None:
                    unknown["pkg." + name] = "chosen by pip within %s" % req.specifier
                else:
                    values["pkg." + name] = tried
                deps.append(Dependency(name, now, "%s%s" % (name, req.specifier), tried or "", "declared by %s %s" % (release.package, release.version)))
                chosen[name] = tried
        return _Needs(values, unknown, chosen, tuple(deps))

    def declared(self, release: Release, chosen: Dict[str, Optional[str]]) -> List[str]:
        """What a release asks of the stack: its requirements, and its extras' requirements of
        packages that are here (an extra's pin moves with the release that declares it: xtuner
        0.2.0's deepspeed extra moves an installed deepspeed to 0.16.2)."""
        out = list(release.requires)
        for reqs in release.extras.values():
            for text in reqs:
                req = _requirement(text)
                name = canonical_name(req.name) if req else ""
                if req is not None and text not in out and chosen.get(name, self.current(name)) is not None:
                    out.append(text)
        return out

    def complete(self, facts: Facts, values: Dict[str, Optional[str]], unknown: Dict[str, str],
                 chosen: Dict[str, Optional[str]]) -> Tuple[Facts, Tuple[Dependency, ...]]:
        """Add what the remedies of errors the targets newly trip ask for (e.g. XTuner 0.1.20-0.1.23
        import deepspeed without declaring it: install deepspeed), while the package may change."""
        values, chosen = dict(values), dict(chosen)
        deps: List[Dependency] = []
        for _ in range(3):
            added = False
            for finding in evaluate_all(self.kb.records, facts):
                if finding.status != CONFIRMED or finding.severity != "error" or finding.record.id in self.ignore:
                    continue
                for req in map(_requirement, finding.record.remedy.requires):
                    name = canonical_name(req.name) if req else ""
                    if not req or name in chosen or not self.allowed(name):
                        continue
                    now = facts.get("pkg." + name)
                    if isinstance(now, str) and contains(req.specifier, now):
                        continue
                    tried = _tried_version(name, req.specifier, now if isinstance(now, str) else "", self.kb, self.releases)
                    if tried is None:
                        continue
                    values["pkg." + name] = tried
                    chosen[name] = tried
                    deps.append(Dependency(name, self.current(name), "%s%s" % (name, req.specifier), tried, "the remedy of %s" % finding.record.id))
                    added = True
            if not added:
                return facts, tuple(deps)
            facts = self.substitute(values, unknown)
        return facts, tuple(deps)

    def substitute(self, values: Dict[str, Optional[str]], unknown: Dict[str, str]) -> Facts:
        """The facts with the planned versions, and everything derived from them recomputed.
        What was read from the installed files of a package that changes no longer holds."""
        changed = {k[4:] for k, v in values.items() if k.startswith("pkg.") and v != self.facts.get(k)}
        gone = dict(unknown)
        for record in self.kb.records:
            for check in record.code:
                if check.package in changed:
                    gone[check.key] = "%s would be replaced by the plan" % check.package
        facts, _ = derive_all(_substitute(self.facts, values, gone), self.kb)
        return facts

    def judge(self, trial: _Trial, strict: bool = True) -> List[str]:
        """Why the trial fails: any confirmed error, what the user's config uses that a release
        it moves to lacks, or (strict) a possible error not already there."""
        reasons = self.config_lacks(trial)
        for finding in evaluate_all(self.kb.records, trial.facts):
            if finding.severity != "error" or finding.record.id in self.ignore:
                continue
            if finding.status == CONFIRMED:
                reasons.append("trips %s" % finding.record.id)
            elif finding.likely:
                reasons.append("trips %s (assuming %s)" % (finding.record.id, "; ".join(finding.assumed)))
            elif strict and finding.record.id not in self.baseline:
                facts = ", ".join(u.key for u in finding.undecided)
                reasons.append("may trip %s (undecided: %s unknown)" % (finding.record.id, facts))
        return reasons

    def config_lacks(self, trial: _Trial) -> List[str]:
        """What the config uses that the trial's moved releases lack (the API history), once per release."""
        if not self.options.config_uses:
            return []
        before = self.facts.packages()
        out: List[str] = []
        for package, version in sorted(trial.facts.packages().items()):
            if before.get(package) == version:
                out.extend(self.config_broken.get(package, ()))  # kept: it still lacks what it lacked
                continue
            if (package, version) not in self.lacks:
                self.lacks[(package, version)] = apihistory.config_breaks(
                    self.options.config_uses, self.options.config, {package: version}, self.kb, {package})
            out.extend(self.lacks[(package, version)])
        return out

    def config_lacks_now(self) -> Dict[str, List[str]]:
        """package -> what of the config its installed release lacks, for the packages the plan may move."""
        if not self.options.config_uses:
            return {}
        pins = self.facts.packages()
        out: Dict[str, List[str]] = {}
        for package in sorted(pins):
            if self.allowed(package):
                words = apihistory.config_breaks(self.options.config_uses, self.options.config, pins, self.kb, {package})
                if words:
                    out[package] = words
        return out

    # -- the search: assignments best first, each tried and judged ------------------------------

    def search(self) -> _Search:
        packages = self.packages_to_change()
        if not packages:
            return _Search(None, {})
        ranked = self.ranked(packages)
        attempts: Dict[Assignment, _Attempt] = {}
        rejected: Dict[Tuple[str, str], Tuple[str, ...]] = {}
        # Versions the remedies advise before others; within each, first a target that may trip
        # nothing new, then one that only *may* trip records (a fact they need is unknown: the
        # plan lists them, and supplying the facts decides), the fewest such records first.
        for advised in (True, False):
            pool = [self.assignment(packages, c) for c in ranked[:MAX_TRIALS] if self.advised(packages, c) is advised]
            for assignment in pool:
                attempt = self.attempt(assignment, attempts)
                if not attempt.soft:
                    refused = self.refused(attempt.trial)
                    if not refused:
                        return _Search(attempt.trial, rejected)
                    attempt = attempts[assignment] = attempt._replace(hard=(refused,), soft=(refused,))
                changed = [(p, v) for p, v in assignment if v != self.current(p)]
                if len(changed) == 1:
                    rejected.setdefault(_rejected_key(*changed[0]), attempt.soft)
            doubtful = sorted((len(a.soft), order, a.trial) for order, a in enumerate(self.attempt(x, attempts) for x in pool)
                              if not a.hard and a.trial is not None)
            for _, _, trial in doubtful:
                refused = self.refused(trial)
                if refused:
                    changed = [(p, v) for p, v in trial.assignment if v != self.current(p)]
                    if len(changed) == 1:
                        rejected[_rejected_key(*changed[0])] = (refused,)
                    continue
                chosen = {_rejected_key(p, v) for p, v in trial.assignment}
                return _Search(trial, {k: v for k, v in rejected.items() if k not in chosen})
        return _Search(None, rejected)

    def refused(self, trial: Optional[_Trial]) -> str:
        """Why the plan this trial makes cannot be taken ("" to take it): the API history knows
        its imports fail or its declared requirements conflict; or the caller refuses it, asked
        once per assignment, and of MAX_VERDICTS candidates at most (the rest are refused unasked)."""
        if trial is None:
            return ""
        if trial.assignment not in self.broken:  # asked here, of the few best candidates only: it costs ~0.2 s
            pins = trial.facts.packages()
            before = self.facts.packages()
            moved = {p for p, v in pins.items() if before.get(p) != v}
            self.broken[trial.assignment] = "; ".join(apihistory.breaks(pins, trial.python, self.kb, moved))
        if self.broken[trial.assignment]:
            return self.broken[trial.assignment]
        if self.accept is None:
            return ""
        if trial.assignment not in self.verdicts:
            if len(self.verdicts) >= MAX_VERDICTS:
                return "not checked: %d candidates before it did not resolve" % MAX_VERDICTS
            self.verdicts[trial.assignment] = self.accept(_from_trial(self, trial, (), self.options))
        return self.verdicts[trial.assignment].reason

    def packages_to_change(self) -> List[str]:
        """The packages the errors name (their ranges, remedies and conditions) that may change."""
        packages: List[str] = []
        for finding in self.errors:
            if finding.record.id in self.ignore:
                continue
            for name in _primary_packages(finding.record):
                if name not in packages and self.allowed(name):
                    packages.append(name)
        return packages

    def ranked(self, packages: Sequence[str]) -> List[Tuple[Tuple[int, Optional[str]], ...]]:
        """Combinations of (rank, version), one per package: fewest changes first, then the
        best-ranked versions."""
        lists = [_candidates(p, self.current(p), self.errors, self.kb, self.releases, self.options.latest,
                             self.options.allow_downgrade) for p in packages]
        combos = itertools.product(*[list(enumerate(options)) for options in lists])
        return sorted(itertools.islice(combos, MAX_TRIALS * 10),
                      key=lambda combo: (sum(1 for rank, _ in combo if rank), sum(rank for rank, _ in combo)))

    @staticmethod
    def assignment(packages: Sequence[str], combo: Sequence[Tuple[int, Optional[str]]]) -> Assignment:
        return tuple((p, v) for p, (rank, v) in zip(packages, combo))

    def attempt(self, assignment: Assignment, attempts: Dict[Assignment, _Attempt]) -> _Attempt:
        """The assignment tried and judged, once (``attempts`` keeps what was tried)."""
        if assignment not in attempts:
            trial, why = self.trial(assignment)
            if trial is None:
                attempts[assignment] = _Attempt(None, (why,), (why,))
            else:
                hard = tuple(self.judge(trial, False))
                attempts[assignment] = _Attempt(trial, hard, hard or tuple(self.judge(trial, True)))
        return attempts[assignment]

    def advised(self, packages: Sequence[str], combo: Sequence[Tuple[int, Optional[str]]]) -> bool:
        """Whether every version satisfies what the errors' remedies require of its package."""
        for package, (_, version) in zip(packages, combo):
            parsed = parse_version(version) if version else None
            for spec in _remedy_specs(self.errors, package):
                if parsed is None or not spec.contains(Version(parsed.public), prereleases=True):
                    return False
        return True


def _rejected_key(package: str, version: Optional[str]) -> Tuple[str, str]:
    return package, str(version or "removed")


def _action(current: Optional[str], target: Optional[str]) -> str:
    if target is None:
        return "remove"
    if current is None:
        return "install"
    a, b = parse_version(current), parse_version(target)
    return "downgrade" if a is not None and b is not None and b < a else "upgrade"


def make_plan(facts: Facts, kb: KnowledgeBase, releases: Sequence[Release], options: PlanOptions = PlanOptions(),
              accept: Optional[Accept] = None) -> Plan:
    """The plan for these facts. With ``accept`` (a resolver), a candidate is a plan only when
    accept takes it; what it said of the chosen one is the plan's ``checked``."""
    planner = _Planner(facts, kb, releases, options, accept)
    python = planner.python
    base = dict(records=len(kb.records), python=python)
    if not planner.errors:
        constraints = tuple(b for b in _bounds(planner, facts) if requirement_name(b) not in set(facts.packages()))
        # No resolver is asked here: what the pins bring in comes from the history's declarations,
        # so that the printed requirements carry the bounds on those (numpy<2.0.0 beside torch 2.1.2).
        installs = tuple(apihistory.brought_in(facts.packages(), python, kb)) if constraints else ()
        return Plan(NOTHING_TO_DO, remaining=planner.before, requirements=_stack(planner, None, (), constraints),
                    constraints=constraints, facts=facts, installs=installs, **base)
    unresolved = planner.unresolved
    found = planner.search() if len(unresolved) < len(planner.errors) else _Search(None, {})
    trial = found.trial
    rejected = tuple(Rejected(p, v, r) for (p, v), r in sorted(found.rejected.items(), key=lambda kv: (kv[0][0], parse_version(kv[0][1]) or Version("0"))))
    if (trial is None or unresolved) and "python" in options.allow_change and not options.tried_pythons:
        moved = _on_other_python(facts, kb, releases, options, accept, python)
        if moved is not None:
            return moved
    if trial is None:
        return Plan(NO_PLAN, errors=tuple(planner.errors), rejected=rejected, unresolved=unresolved,
                    needs=tuple(_needs(facts, kb, releases, options, unresolved, accept)), **base)
    plan = _from_trial(planner, trial, rejected, options)
    verdict = planner.verdicts.get(trial.assignment)
    if verdict is not None:
        plan = _with_moves(replace(plan, checked=verdict.checked, constraints=plan.constraints + verdict.bounds,
                                   installs=verdict.installs), verdict.moved)
    if unresolved:
        # The changes clear what packages can; the rest needs the host or the base image.
        return replace(plan, status=NO_PLAN, unresolved=unresolved, needs=tuple(_needs(facts, kb, releases, options, unresolved, accept)))
    return plan


def requirements_in(plan: Plan) -> Tuple[str, ...]:
    """The plan's lines for a requirements.in, with the bounds on packages the resolver put in
    the set (numpy<2.0.0 beside torch 2.1.2): compiled without them, the open ones would go
    to their newest. A bound on a package the set does not hold stays out (a line installs it)."""
    named = {requirement_name(line) for line in plan.requirements}
    extra = [b for b in plan.constraints if requirement_name(b) in plan.installs and requirement_name(b) not in named]
    return tuple(plan.requirements) + tuple(extra)


def _with_moves(plan: Plan, moved: Sequence[Moved]) -> Plan:
    """The plan with the kept pins the resolver moved: each a change of its own, each line re-pinned."""
    if not moved:
        return plan
    why = "moved with the plan: the kept pin does not install beside %s" % ", ".join(
        "%s %s" % (c.package, c.describe_target()) for c in plan.changes)
    changes = tuple(Change(_action(m.current, m.target), m.package, m.current, m.target, "%s==%s" % (m.package, m.target), (), why)
                    for m in moved)
    targets = {m.package: m.target for m in moved}
    lines = []
    for line in plan.requirements:
        req = _requirement(line)
        name = canonical_name(req.name) if req else ""
        if name in targets:
            label = req.name + ("[%s]" % ",".join(sorted(req.extras)) if req.extras else "")
            line = "%s==%s" % (label, targets[name])
        lines.append(line)
    return replace(plan, changes=plan.changes + changes, requirements=tuple(lines))


def _on_other_python(facts: Facts, kb: KnowledgeBase, releases: Sequence[Release], options: PlanOptions,
                     accept: Optional[Accept], python: str) -> Optional[Plan]:
    """With --allow-change python: the plan on the nearest Python where every error clears."""
    elsewhere = other_python(facts, kb, releases, replace(options, tried_pythons=True), accept)
    if elsewhere is None:
        return None
    minor, plan = elsewhere
    change = Change("downgrade" if Version(minor) < Version(python) else "upgrade", "python", python, minor, "python==%s" % minor, (),
                    "no plan clears every error on Python %s; on %s one does (change the base image)" % (python, minor))
    errors = _errors(evaluate_all(kb.records, facts))
    return replace(plan, status=PLAN, changes=(change,) + plan.changes, errors=tuple(errors), python=minor)


def _from_trial(planner: "_Planner", trial: _Trial, rejected: Tuple[Rejected, ...], options: PlanOptions) -> Plan:
    python = planner.python
    kb = planner.kb
    after = evaluate_all(kb.records, trial.facts)
    changes: List[Change] = []
    for package, target in trial.assignment:
        now = planner.current(package)
        if target == now:
            continue
        release = planner.table.get(package, {}).get(target or "")
        why = _why(package, target, release, trial, rejected, options, planner.judge(trial, True))
        requirement = "%s==%s" % (package, target) if target else package
        clears = tuple(f.record.id for f in planner.errors if package in _primary_packages(f.record) and f.record.id not in planner.ignore)
        declares = ()
        if release is not None:
            declares = ("python%s" % release.requires_python.replace(" ", ""),) if release.requires_python else ()
            declares += tuple(name + spec for name, spec in _declares(release, trial.python) if name in ("transformers", "torch"))
        changes.append(Change(_action(now, target), package, now, target, requirement, clears, why, declares))
    for name, now, requirement, tried, source in trial.deps:
        reason = "%s, needed with %s" % (source, ", ".join("%s %s" % (p, v) for p, v in trial.assignment if v != planner.current(p)))
        if tried:
            reason += "; checked against the records at %s" % tried
        changes.append(Change(_action(now, tried or None) if tried else "upgrade", name, now, tried or None, requirement, (), reason))
    if trial.python != python:
        changes.append(Change("downgrade" if Version(trial.python) < Version(python) else "upgrade", "python", python, trial.python,
                              "python==%s" % trial.python, (), "the target releases declare it (change the base image)"))
    plan_changes = tuple(changes)
    pinned = {p for p, v in trial.assignment} | {c.package for c in plan_changes if "==" in c.requirement}
    if not options.allow_change >= {"torch"}:
        pinned.add("torch")
    constraints = tuple(b for b in _bounds(planner, trial.facts) if requirement_name(b) not in pinned)
    return Plan(PLAN, changes=plan_changes, requirements=_stack(planner, trial, plan_changes, constraints), constraints=constraints,
                errors=tuple(planner.errors), remaining=after, rejected=rejected, facts=trial.facts,
                records=len(kb.records), python=trial.python)


def _why(package: str, target: Optional[str], release: Optional[Release], trial: _Trial, rejected: Sequence[Rejected],
         options: PlanOptions, doubts: Sequence[str] = ()) -> str:
    which = "the newest release" if options.latest else "the nearest release"
    if doubts:
        text = "%s that clears every error and trips no other record for sure; it %s: supply those facts to decide" % (
            which, ", ".join(doubts))
    else:
        text = "%s that clears every error without tripping another record" % which
    if release is not None:
        declares = [name + spec for name, spec in _declares(release, trial.python) if name in ("transformers", "torch")]
        text += "; it declares Python %s%s" % (release.requires_python or "(any)", ", " + ", ".join(declares) if declares else "")
    skipped = [r for r in rejected if r.package == package]
    if skipped:
        text += "; passed over: " + "; ".join("%s (%s)" % (r.version, ", ".join(r.reasons)) for r in skipped[:6])
    return text


def _declares(release: Release, python: str) -> List[Tuple[str, str]]:
    out = []
    for req in map(_requirement, release.requires):
        if req is not None and str(req.specifier) and marker_holds(req, python) is not False:
            out.append((canonical_name(req.name), str(req.specifier)))
    return out


def _bounds(planner: _Planner, facts: Facts) -> Tuple[str, ...]:
    """The knowledge base's bounds for the stack: ranges of records that would fire there, as a
    confirmed or likely error. One that only may fire (a fact it needs is unknown: torch's CUDA
    build for an unlabelled torch pin) is no bound: it would overrule a release's own pin
    (bitsandbytes>=0.45.3 against xtuner 0.2.0's bitsandbytes==0.45.0) on a guess."""
    out: List[str] = []
    unpinned: Dict[str, List[Tuple[Version, Optional[Version]]]] = {}  # package -> ranges to keep it out of
    for record in planner.kb.records:
        if record.severity != "error":
            continue
        for rng in record.affected:
            if not rng.introduced:
                continue
            chosen = facts.get("pkg." + rng.package)
            probe = facts.with_values({"pkg." + rng.package: rng.introduced})
            if not any(f.record.id == record.id and f.severity == "error" and (f.status == CONFIRMED or f.likely)
                       for f in evaluate_all((record,), probe)):
                continue
            now = parse_version(chosen) if isinstance(chosen, str) else None
            if now is None:
                unpinned.setdefault(rng.package, []).append((Version(rng.introduced), Version(rng.fixed) if rng.fixed else None))
                continue
            if now < Version(rng.introduced):
                bound = "%s<%s" % (rng.package, rng.introduced)
            elif rng.fixed and now >= Version(rng.fixed):
                bound = "%s>=%s" % (rng.package, rng.fixed)
            else:
                continue
            if bound not in out:
                out.append(bound)
    for package, ranges in unpinned.items():
        out.extend(b for b in _unpinned_bounds(package, ranges) if b not in out)
    return tuple(out)


def _unpinned_bounds(package: str, ranges: Sequence[Tuple[Version, Optional[Version]]]) -> List[str]:
    """Bounds that keep a package nobody pinned out of ranges that trip records here; the
    resolver would pick the newest. An open range (numpy 2 beside torch 2.1.2) is kept below;
    a closed one is passed upwards unless that crosses an open one's bound, then kept below too
    (beside transformers 4.34, peft >= 0.14 trips one record and peft 0.18.0 another: peft<0.14.0
    alone, where each on its own would give peft<0.14.0 and peft>=0.18.1, which no peft meets)."""
    opens = [low for low, high in ranges if high is None]
    upper = min(opens) if opens else None
    out = ["%s<%s" % (package, upper)] if upper is not None else []
    for low, high in ranges:
        if high is None or (upper is not None and low >= upper):
            continue  # an open range, or one the upper bound already keeps it out of
        bound = "%s>=%s" % (package, high) if upper is None or high < upper else "%s<%s" % (package, low)
        if bound not in out:
            out.append(bound)
    return out


def _stack_names(planner: _Planner) -> List[str]:
    names = set(planner.table)
    for record in planner.kb.records:
        names.update(_primary_packages(record))
        names.update(c.key[4:] for c in record.when if c.key.startswith("pkg."))
    for release in planner.releases:
        names.update(canonical_name(r.name) for r in map(_requirement, release.requires) if r)
    names.update(("torch", "transformers", "xtuner", "flash-attn", "deepspeed", "peft", "accelerate", "bitsandbytes", "mmengine"))
    return sorted(names)


def _stack(planner: _Planner, trial: Optional[_Trial], changes: Sequence[Change] = (), constraints: Sequence[str] = ()) -> Tuple[str, ...]:
    """requirements.in: the plan's changes, the rest of the stack pinned where it is."""
    installed = planner.facts.packages()
    names = sorted(installed) if planner.options.whole_environment else [n for n in _stack_names(planner) if n in installed]
    by_name = {c.package: c for c in changes}
    lines = []
    loose = {canonical_name(r.name): text for r, text in ((_requirement(t), t) for t in planner.options.loose) if r}
    for name in sorted(set(names) | set(by_name) | set(loose)):
        if name == "python":
            continue
        if name in loose and name not in by_name and name not in installed:
            lines.append(loose[name])
            continue
        change = by_name.get(name)
        extras = dict(planner.options.extras).get(name)
        label = "%s[%s]" % (name, ",".join(extras)) if extras else name
        if change is None:
            lines.append("%s==%s" % (label, installed[name]))
        elif change.action != "remove":
            extra = [b[len(name):] for b in constraints if b.startswith(name) and b[len(name):len(name) + 1] in "<>=!~"]
            line = change.requirement + ("," + ",".join(extra) if extra and "==" not in change.requirement else "")
            lines.append(label + line[len(name):] if line.startswith(name) else line)
    return tuple(lines)


def other_python(facts: Facts, kb: KnowledgeBase, releases: Sequence[Release], options: PlanOptions,
                 accept: Optional[Accept] = None) -> Optional[Tuple[str, "Plan"]]:
    """The nearest other Python minor on which every error clears (the rest of the stack
    planned there too), and that plan; None when no Python the planner knows does it."""
    now = parse_version(str(facts.get("python")))
    here = "%d.%d" % (now.major, now.minor) if now else ""
    minors = [m for m in PYTHON_MINORS if m != here]
    minors.sort(key=lambda m: (abs(Version(m).minor - now.minor), Version(m) > now) if now else 0)
    wider = replace(options, allow_change=options.allow_change | frozenset(("python",)))
    for minor in minors:
        moved, _ = derive_all(facts.with_values({"python": minor}), kb)
        plan = make_plan(moved, kb, releases, wider, accept)
        if plan.status in (PLAN, NOTHING_TO_DO) and not any(c.package == "python" for c in plan.changes):
            return minor, plan
    return None


def _needs(facts: Facts, kb: KnowledgeBase, releases: Sequence[Release], options: PlanOptions, unresolved: Sequence[Finding],
           accept: Optional[Accept] = None) -> List[str]:
    """What would have to change for a plan to exist: Python, torch, or what the records say."""
    out = ["%s: %s" % (f.record.id, f.record.remedy.summary) for f in unresolved]
    if "python" not in options.allow_change:
        elsewhere = other_python(facts, kb, releases, options, accept)
        if elsewhere is not None:
            minor, plan = elsewhere
            rest = ", ".join("%s %s -> %s" % (c.package, c.current or "(none)", c.describe_target()) for c in plan.changes if c.package != "python")
            out.append("use a Python %s base image%s (or --allow-change python)" % (minor, "; then: " + rest if rest else ""))
            return out
    if unresolved:
        return out
    for extra in (("python",), ("torch",), ("python", "torch")):
        if all(e in options.allow_change for e in extra):
            continue
        wider = replace(options, allow_change=options.allow_change | frozenset(extra))
        plan = make_plan(facts, kb, releases, wider, accept)
        if plan.status != PLAN:
            continue
        words = []
        py = next((c for c in plan.changes if c.package == "python"), None)
        if py is not None:
            words.append("use a Python %s base image" % py.target)
        torch = next((c for c in plan.changes if c.package == "torch"), None)
        if torch is not None:
            words.append("change torch to %s (--allow-change torch)" % torch.describe_target())
        rest = ", ".join("%s %s -> %s" % (c.package, c.current or "(none)", c.describe_target()) for c in plan.changes if c.package not in ("python", "torch"))
        out.append("%s; then: %s" % (" and ".join(words), rest) if rest else " and ".join(words))
        break
    if not out:
        out.append("no release the knowledge base knows clears these errors here")
    return out
