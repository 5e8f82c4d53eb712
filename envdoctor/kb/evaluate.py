"""Evaluate records against facts: a finding, a *possible* finding, or nothing."""

from typing import List, NamedTuple, Optional, Sequence, Tuple

from envdoctor.facts import Facts, Unknown, describe
from envdoctor.kb.record import CodeCheck, Condition, Range, Record
from envdoctor.specs import in_specifier, parse_version

CONFIRMED = "confirmed"
POSSIBLE = "possible"
DEFAULT = "default."  # the facts that carry documented defaults (kb/defaults.py)

# How a user supplies a fact that was not gathered (longest prefix wins).
HINTS = (
    ("model.", "pass --model PATH (a model folder or a hub id in the local cache)"),
    ("train.", "pass --config FILE (the XTuner config)"),
    ("run.gpus", "pass --gpus N"),
    ("run.launcher", "pass --launcher deepspeed|torchrun|slurm|none"),
    ("run.batch_length", "pass --config FILE and --gpus N"),
    ("train.max_length_beyond", "pass --config FILE and --model PATH"),
    ("run.torch_dtype", "pass --config FILE (and --model where its torch_dtype is 'auto')"),
    ("cuda.driver", "pass --driver VERSION, or run where the NVIDIA driver is visible"),
    ("gpu.", "run where nvidia-smi can see the GPUs"),
    ("torch.", "check that torch/version.py is readable"),
    ("code.", "check that the installed package's files are readable"),
    ("flash_attn.", "check that flash-attn's extension and torch's libraries (torch/lib) are readable"),
)


class Undecided(NamedTuple):
    key: str
    reason: str
    hint: str


class Finding(NamedTuple):
    record: Record
    status: str  # CONFIRMED or POSSIBLE
    because: Tuple[str, ...]  # the facts that made it fire, in words
    undecided: Tuple[Undecided, ...] = ()  # for POSSIBLE: what would decide it
    evidence: str = ""  # "version", "code", "version and code", or "" (no package range)
    # For POSSIBLE: when every undecided fact has a documented default under which the record
    # fires, those defaults in words ("train.use_varlen_attn = False (XTuner's default)").
    assumed: Tuple[str, ...] = ()

    @property
    def severity(self) -> str:
        return self.record.severity

    @property
    def likely(self) -> bool:
        """Possible, but it fires under the defaults of the facts nobody gave."""
        return self.status == POSSIBLE and bool(self.assumed)


def hint_for(key: str) -> str:
    best = ""
    answer = "supply the fact %s" % key
    for prefix, hint in HINTS:
        if key.startswith(prefix) and len(prefix) > len(best):
            best, answer = prefix, hint
    return answer


def condition_holds(cond: Condition, value: object) -> Optional[bool]:
    """True / False, or None when the fact's value cannot be compared (e.g. not a version)."""
    kind, expected = cond.kind, cond.value
    if kind == "installed":
        return (value is not None) == expected
    if kind == "not":
        return value != expected
    if value is None:
        return False
    if kind == "equals":
        return value == expected
    if kind == "one_of":
        return value in expected  # type: ignore[operator]
    if kind == "version":
        version = parse_version(str(value))
        return None if version is None else in_specifier(version, str(expected))
    # below / above / at_least
    if isinstance(expected, str):
        left, right = parse_version(str(value)), parse_version(expected)
        if left is None or right is None:
            return None
    else:
        try:
            left, right = float(value), float(expected)  # type: ignore[arg-type,assignment]
        except (TypeError, ValueError):
            return None
    if kind == "below":
        return left < right  # type: ignore[operator]
    if kind == "above":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


class PackageRange(NamedTuple):
    """One package a record's ranges name, and whether it is installed inside one of them."""

    package: str
    value: object  # pkg.<package>: a version, None (absent) or Unknown
    ranges: Tuple[Range, ...]  # this package's ranges
    inside: Optional[bool]  # None: the value is unknown or not a version
    hit: Optional[Range] = None  # the range it is inside

    def wanted(self) -> str:
        return " or ".join(r.specifier() or "any version" for r in self.ranges)


def package_ranges(ranges: Sequence[Range], facts: Facts) -> Tuple[PackageRange, ...]:
    """Each package the ranges name (in the order named) against its installed version."""
    out = []
    for package in dict.fromkeys(r.package for r in ranges):
        value = facts.get("pkg." + package)
        mine = tuple(r for r in ranges if r.package == package)
        if isinstance(value, Unknown):
            out.append(PackageRange(package, value, mine, None))
            continue
        if value is None:
            out.append(PackageRange(package, value, mine, False))
            continue
        version = parse_version(str(value))
        hit = None if version is None else next((r for r in mine if in_specifier(version, r.specifier() or ">=0")), None)
        out.append(PackageRange(package, value, mine, None if version is None else hit is not None, hit))
    return tuple(out)


class RangeCheck(NamedTuple):
    """Whether every package named is installed inside one of its ranges."""

    holds: bool  # False: one is absent or outside (undecided packages do not refute)
    because: Tuple[str, ...] = ()
    undecided: Tuple[Undecided, ...] = ()

    @property
    def says(self) -> Optional[bool]:
        """True, False, or None when a package left it undecided."""
        return None if self.holds and self.undecided else self.holds


def check_ranges(ranges: Sequence[Range], facts: Facts) -> RangeCheck:
    because: List[str] = []
    undecided: List[Undecided] = []
    for found in package_ranges(ranges, facts):
        key = "pkg." + found.package
        if isinstance(found.value, Unknown):
            undecided.append(Undecided(key, found.value.reason, "list the environment's packages"))
        elif found.inside is None:
            undecided.append(Undecided(key, "version %r is not understood" % found.value, "reinstall %s" % found.package))
        elif not found.inside:
            return RangeCheck(False)
        else:
            because.append("%s %s is in %s" % (found.package, found.value, found.hit.specifier() or "all versions"))  # type: ignore[union-attr]
    return RangeCheck(True, tuple(because), tuple(undecided))


def _code_holds(checks: Sequence[CodeCheck], facts: Facts) -> Tuple[Optional[bool], List[str]]:
    """All code checks together: True / False, or None when the files could not be read.

    One failing check decides False even when another file was unreadable."""
    because = []
    unread = False
    for check in checks:
        value = facts.get(check.key)
        if isinstance(value, Unknown) or value is None:
            if check.if_missing == "no" and facts.get(check.file_key) is False:
                return False, []  # the record's code cannot be in a file that is not there
            unread = True
            continue
        if bool(value) != check.present:
            return False, []
        verb = "contains" if check.present else "no longer contains"
        because.append("%s %s %r" % (check.file, verb, check.contains))
    return (None, []) if unread else (True, because)


class Evidence(NamedTuple):
    """Whether a record's affected packages are in range here, and what decided it."""

    affected: bool
    kind: str = ""  # "version", "code" or "version and code"; "" when the record names no package
    because: Tuple[str, ...] = ()
    undecided: Tuple[Undecided, ...] = ()


NOT_AFFECTED = Evidence(False)


def package_evidence(record: Record, facts: Facts) -> Evidence:
    """A code check speaks only for the package whose files it reads: that package's range is
    decided by its installed code when the files are readable (source installs lie about their
    version), by its version otherwise. Every other package's range is decided by its version.
    """
    read = {c.package for c in record.code}
    others = [r for r in record.affected if r.package not in read]
    covered = [r for r in record.affected if r.package in read]
    by_version = check_ranges(others, facts) if others else RangeCheck(True)
    if not by_version.holds:
        return NOT_AFFECTED
    if not record.code:
        return Evidence(True, "version" if others else "", by_version.because, by_version.undecided)
    read_code = _read_code_evidence(record, covered, facts, bool(others))
    if not read_code.affected:
        return NOT_AFFECTED
    return read_code._replace(because=by_version.because + read_code.because, undecided=by_version.undecided + read_code.undecided)


def _read_code_evidence(record: Record, covered: Sequence[Range], facts: Facts, others: bool) -> Evidence:
    """The packages whose files the record reads: by their code, or by version when unreadable."""
    versions = check_ranges(covered, facts) if covered else RangeCheck(True)
    version_says = versions.says if covered else None
    code_says, code_because = _code_holds(record.code, facts)
    if code_says is False:
        return NOT_AFFECTED
    if code_says:
        agree = version_says is True
        because = tuple(versions.because if agree else _overruled(covered, facts) if version_says is False else [])
        return Evidence(True, "version and code" if agree or (others and not covered) else "code", because + tuple(code_because))
    # The files could not be read: the version decides, as for any other package.
    if not covered:
        values = [facts.get(check.key) for check in record.code]
        if any(v is None for v in values):  # the package is not installed: nothing to read
            return NOT_AFFECTED
        return Evidence(True, "code", undecided=tuple(
            Undecided(check.key, value.reason if isinstance(value, Unknown) else "not read", hint_for(check.key))
            for check, value in zip(record.code, values)))
    if version_says is False:
        return NOT_AFFECTED
    return Evidence(True, "version", versions.because, versions.undecided if version_says is None else ())


def _overruled(ranges: Sequence[Range], facts: Facts) -> List[str]:
    """Say which version number the installed code contradicts (a source install)."""
    out = []
    for package in sorted({r.package for r in ranges}):
        spec = " or ".join(r.specifier() or "any version" for r in ranges if r.package == package)
        out.append("%s reports %s, outside %s, but its installed code is the affected one" % (package, describe(facts.get("pkg." + package)), spec))  # type: ignore[arg-type]
    return out


def evaluate(record: Record, facts: Facts) -> Optional[Finding]:
    evidence = package_evidence(record, facts)
    if not evidence.affected:
        return None
    because = list(evidence.because)
    undecided = list(evidence.undecided)
    assumed = []

    for cond in record.when:
        value = facts.get(cond.key)
        if isinstance(value, Unknown):
            undecided.append(Undecided(cond.key, value.reason, hint_for(cond.key)))
            default = facts.get(DEFAULT + cond.key)
            if not isinstance(default, Unknown) and condition_holds(cond, default):
                assumed.append(cond.key)
            continue
        result = condition_holds(cond, value)
        if result is None:
            undecided.append(Undecided(cond.key, "value %r cannot be compared" % (value,), hint_for(cond.key)))
        elif not result:
            return None
        else:
            because.append(_explain(cond, value, facts))

    status = POSSIBLE if undecided else CONFIRMED
    # Likely only when the defaults decide every open fact; one other unknown leaves it possible.
    likely = undecided and len(assumed) == len(undecided)
    words = tuple(_assumption(key, facts) for key in assumed) if likely else ()
    return Finding(record, status, tuple(because), tuple(undecided), evidence.kind, words)


def _assumption(key: str, facts: Facts) -> str:
    says = facts.get(DEFAULT + key + ".why")
    return "%s = %s (%s)" % (key, describe(facts.get(DEFAULT + key)), says if isinstance(says, str) else "the default")  # type: ignore[arg-type]


def _explain(cond: Condition, value: object, facts: Facts) -> str:
    # A derived fact may carry its reason in words as "<key>.why" (e.g. which requirement broke).
    why = facts.get(cond.key + ".why")
    if isinstance(why, str) and why:
        return why
    if cond.kind == "installed":
        name = cond.key[4:]
        return "%s is installed (%s)" % (name, value) if cond.value else "%s is not installed" % name
    if cond.kind == "version":
        return "%s %s is in %s" % (cond.key, value, cond.value)
    return "%s = %s" % (cond.key, describe(value))  # type: ignore[arg-type]


def evaluate_all(records: Sequence[Record], facts: Facts) -> Tuple[Finding, ...]:
    order = {"error": 0, "warning": 1, "info": 2}
    found = [f for f in (evaluate(r, facts) for r in records) if f is not None]
    found.sort(key=lambda f: (f.status != CONFIRMED, order[f.severity], f.record.id))
    return tuple(found)
