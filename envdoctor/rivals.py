"""Rank the known causes that share one error line, by the log's other lines.

The environment examined ranks them first (confirmed, possible, not firing). The log adds two
kinds of evidence the environment may not hold, because the log may come from another machine:
the traceback's file paths (a record's ``traceback`` fragment, else the frames of the package its
id names, e.g. ``site-packages/peft/``), and the versions the log prints (``transformers==4.43.0``,
``transformers version: 4.43.0``). Where the top causes stay level, the fact that would tell them
apart is named.

Data only: the patterns to look for, and what their hits say about each candidate. The log is
read by the caller (``explain``), with the same scanner as the symptoms.
"""

import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from packaging.version import InvalidVersion, Version

from envdoctor.specs import in_specifier
from envdoctor.kb.record import Record
from envdoctor.logscan import MIN_LITERAL, Hit

# A version printed next to a package's name: pip freeze (name==1.2.3), `name version: 1.2.3`
# (transformers-cli env, accelerate env), `name 1.2.3`, a wheel or dist-info name (name-1.2.3).
_VERSION = r"v?(\d+\.\d+(?:\.\d+)*(?:(?:a|b|rc|\.post|\.dev)\d+)?(?:\+[\w.]+)?)"


class Clue(NamedTuple):
    """One pattern looked for in the log, and what a hit says (a fragment may have two)."""

    kind: str  # "frame" or "version"
    value: str  # the path fragment, or the package's canonical name
    pattern: str


class Ranked(NamedTuple):
    """What the log's other lines say about one candidate."""

    score: int  # for minus against
    evidence: Tuple[str, ...]  # in words, each with its line number


def module_dir(package: str) -> str:
    return package.replace("-", "_")


def fault_package(record: Record) -> str:
    """The package a record's id names as at fault: XTUNER-..., PEFT-..., FLASH-ATTN-..."""
    packages = {r.package for r in record.affected} | {c.key[4:] for c in record.when if c.key.startswith("pkg.")}
    for package in sorted(packages, key=len, reverse=True):
        if record.id.startswith(package.upper().replace("_", "-") + "-"):
            return package
    return record.id.split("-", 1)[0].lower()


def frames(record: Record) -> Tuple[str, ...]:
    """Path fragments of the traceback above the line when this record is the cause."""
    own = tuple(s.traceback for s in record.symptoms if s.traceback)
    return own or ("site-packages/%s/" % module_dir(fault_package(record)),)


def packages(record: Record) -> Tuple[str, ...]:
    return tuple(sorted({r.package for r in record.affected}))


def _frame_patterns(fragment: str) -> Tuple[str, ...]:
    """The lines whose paths hold ``fragment``, under dist-packages (Debian) as well as
    site-packages, with either slash: one pattern, or two that together match those lines."""
    names = re.split(r"[/\\]", fragment.strip("/\\"))
    parts = [re.escape(p) for p in names]
    trailing = fragment.endswith(("/", "\\"))
    if names[0] != "site-packages":
        return (r"[/\\]".join(parts) + (r"[/\\]" if trailing else ""),)
    if len(names) == 1 or len(names[1]) < MIN_LITERAL:
        return (r"(?:site|dist)-packages[/\\]" + r"[/\\]".join(parts[1:]) + (r"[/\\]" if trailing else ""),)
    # The package's folder first, what stands before it checked after (a look-behind): so the
    # scan looks for "mmengine/", not for "-packages" (on every frame of every traceback) nor
    # for "mmengine" (on every line mmengine logs), and the regex starts with a literal. Each
    # slash has its own pattern, as a literal cannot hold a choice.
    folder, rest = parts[1], parts[2:]
    if not rest and not trailing:
        return (r"%s(?<=(?:site|dist)-packages[/\\]%s)" % (folder, folder),)
    after = r"[/\\]".join(rest) + (r"[/\\]" if rest and trailing else "")
    return tuple(r"%s%s(?<=(?:site|dist)-packages[/\\]%s%s)%s" % (folder, slash, folder, slash, after)
                 for slash in ("/", re.escape("\\")))


def _version_pattern(package: str) -> str:
    # The spellings logs print (pip freeze, collect_env, "Transformers version: ..."), each a
    # literal the scan can look for: a case-insensitive pattern has none, and was searched over
    # every block of the log, 100 times slower than the scan itself. The name comes first and
    # the character before it is checked after it (a look-behind as wide as both): a leading
    # look-behind made the regex try every position of each line holding the name.
    bases = {package, package.replace("-", "_")}
    names = sorted({v for n in bases for v in (n, n.capitalize(), n.upper())})
    by_width = ["(?:%s)(?<![\\w.-].{%d})" % ("|".join(re.escape(n) for n in names if len(n) == width), width)
                for width in sorted({len(n) for n in names})]
    return r"(?:%s)(?:==|-|:\s*|\s+[Vv]ersion:?\s*|\s+)%s(?![\w])" % ("|".join(by_width), _VERSION)


def clues(records: Sequence[Record]) -> Tuple[Clue, ...]:
    out: List[Clue] = []
    for record in records:
        for fragment in frames(record):
            for pattern in _frame_patterns(fragment):
                clue = Clue("frame", fragment, pattern)
                if clue not in out:
                    out.append(clue)
        for package in packages(record):
            clue = Clue("version", package, _version_pattern(package))
            if clue not in out:
                out.append(clue)
    return tuple(out)


class LogClues(NamedTuple):
    """The clues the log holds: fragment -> first line; package -> (version, line)."""

    frames: Dict[str, int]
    versions: Dict[str, Tuple[str, int]]

    @classmethod
    def from_hits(cls, wanted: Sequence[Clue], hits: Sequence[Hit]) -> "LogClues":
        by_pattern = {c.pattern: c for c in wanted}
        found_frames: Dict[str, int] = {}
        found_versions: Dict[str, Tuple[str, int]] = {}
        for hit in hits:
            clue = by_pattern.get(hit.pattern)
            if clue is None or not hit.lines:
                continue
            line = hit.lines[0]
            if clue.kind == "frame":  # the first line of any of its patterns
                found_frames[clue.value] = min(line.number, found_frames.get(clue.value, line.number))
            else:
                match = re.search(clue.pattern, line.text)
                if match:
                    found_versions[clue.value] = (match.group(1), line.number)
        return cls(found_frames, found_versions)


def _version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def common_frames(records: Sequence[Record]) -> Tuple[str, ...]:
    """Fragments every rival shares: they tell none apart (e.g. site-packages/xtuner/)."""
    sets = [set(frames(r)) for r in records]
    return tuple(sorted(set.intersection(*sets))) if sets else ()


def judge(record: Record, log: LogClues, shared: Sequence[str] = ()) -> Ranked:
    score = 0
    evidence = []
    for fragment in frames(record):
        if fragment in log.frames and fragment not in shared:
            score += 1
            evidence.append("the traceback passes through %s (line %d)" % (fragment, log.frames[fragment]))
    for package in packages(record):
        if package not in log.versions:
            continue
        text, line = log.versions[package]
        version = _version(text)
        if version is None:
            continue
        ranges = [r for r in record.affected if r.package == package]
        wanted = " or ".join(r.specifier() or "any version" for r in ranges)
        if any(in_specifier(version, r.specifier() or ">=0") for r in ranges):
            score += 1
            evidence.append("the log prints %s %s (line %d), inside %s" % (package, text, line, wanted))
        else:
            score -= 2  # a printed version outside the range rules the cause out where the log was made
            evidence.append("the log prints %s %s (line %d), outside %s" % (package, text, line, wanted))
    return Ranked(score, tuple(evidence))


def decider(records: Sequence[Record], log: LogClues) -> str:
    """The fact that would tell the records apart, in words; "" when there is none to name."""
    parts = []
    shared = set.intersection(*[set(packages(r)) for r in records]) if records else set()
    for package in sorted(set().union(*[set(packages(r)) for r in records])):
        if package in log.versions:
            continue
        specs = []
        for record in records:
            ranges = [r.specifier() or "any version" for r in record.affected if r.package == package]
            specs.append("%s needs %s" % (record.id, " or ".join(ranges) if ranges else "any version"))
        if package in shared and len({s.split(" needs ")[1] for s in specs}) == 1:
            continue  # the same range in every record decides nothing
        parts.append("the %s version (%s)" % (package, "; ".join(specs)))
    fragments = [(r.id, frames(r)) for r in records]
    if len({f for _, f in fragments}) > 1 and not any(f in log.frames for _, fs in fragments for f in fs):
        parts.append("which package the traceback passes through (%s)" % "; ".join(
            "%s for %s" % (" or ".join(fs), rid) for rid, fs in fragments))
    return " or ".join(parts)
