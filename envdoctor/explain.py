"""Explain a log: which known issues its lines show, and whether the environment at hand has them.

Knows nothing of the command line. The log is scanned first (``logscan``); the environment is
probed (``check.run``) only when something matched, and each matching record is then
confirmed, possible (with the fact that decides it) or not firing here.
"""

import gzip
import os
import stat
import sys
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, Dict, List, Optional, Sequence, Tuple

from envdoctor.kb.load import load_kb
from envdoctor.options import CheckOptions

if TYPE_CHECKING:  # check (and every source) is imported only when a log matches
    from envdoctor.check import Report
    from envdoctor.rivals import LogClues
from envdoctor.facts import Facts, Problem, Unknown, describe
from envdoctor.history.answers import FRAME, PATTERNS as HISTORY_PATTERNS
from envdoctor.kb.evaluate import CONFIRMED, POSSIBLE, Finding, Undecided, condition_holds, package_ranges
from envdoctor.kb.load import KnowledgeBase
from envdoctor.kb.record import Record
from envdoctor.logscan import PATTERN_BUDGET, Hit, LogLine, Progress, Scanner, parallel_workers, scan_file, scan_into

NOT_FIRING = "not firing"  # the record's conditions do not hold in this environment
NOT_EXAMINED = "not examined"  # no environment was examined (--log-only, or the probe failed)

# What a group of matching lines means for this environment. CANDIDATE: only weak symptoms
# matched (an everyday error line); the records shown hold here but are not a diagnosis.
APPLIES, DECIDE, NONE_APPLIES, UNEXAMINED = "applies", "decide", "none applies", "not examined"
CANDIDATE = "candidate"

GZIP_MAGIC = b"\x1f\x8b"
KEEP = 5  # matching lines kept per symptom; the rest are counted


class LogError(Exception):
    """The log cannot be read at all: one line naming it."""


@dataclass(frozen=True)
class Candidate:
    """One record whose symptom the log shows, judged against the environment."""

    record: Record
    status: str  # CONFIRMED, POSSIBLE, NOT_FIRING or NOT_EXAMINED
    finding: Optional[Finding] = None
    unmet: Tuple[str, ...] = ()  # for NOT_FIRING: the conditions that do not hold, in words
    weak: bool = False  # the log showed only a weak symptom of this record
    log_score: int = 0  # what the log's other lines say (rivals.judge): for minus against
    log_evidence: Tuple[str, ...] = ()  # those lines, in words


@dataclass(frozen=True)
class Diagnosis:
    """Log lines and the known issues that could have produced them."""

    lines: Tuple[LogLine, ...]
    count: int
    candidates: Tuple[Candidate, ...]
    decided_by: str = ""  # rival causes left level: the fact that would tell them apart

    @property
    def weak(self) -> bool:
        """Only weak symptoms matched these lines: a common error, not a known issue."""
        return all(c.weak for c in self.candidates)

    @property
    def verdict(self) -> str:
        if self.weak:
            return CANDIDATE
        statuses = {c.status for c in self.candidates}
        if CONFIRMED in statuses:
            return APPLIES
        if POSSIBLE in statuses:
            return DECIDE
        return UNEXAMINED if NOT_EXAMINED in statuses else NONE_APPLIES

    def with_status(self, status: str) -> Tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.status == status)


@dataclass(frozen=True)
class Explanation:
    log: str  # the path, or "-" for standard input
    diagnoses: Tuple[Diagnosis, ...]
    lines: int
    size: int
    complete: bool  # read to the end
    records_searched: int
    report: Optional["Report"]  # the environment, when one was examined
    problems: Tuple[Problem, ...]

    @property
    def exit_code(self) -> int:
        if any(p.fatal for p in self.problems):
            return 2
        if any(not d.weak for d in self.diagnoses):
            return 1
        return 0 if self.complete else 2


# -- reading ---------------------------------------------------------------------------------


class _Rewound:
    """A stream whose first bytes were read (to sniff the format) and are handed out again.
    No buffering layer: the scan reads large chunks, and every layer would copy them."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            return head + self.rest.read(max(0, size - len(head))) if size > 0 else head + self.rest.read()
        return self.rest.read(size)

    def close(self) -> None:
        self.rest.close()


def _name(log: str) -> str:
    return "standard input" if log == "-" else log


def open_log(log: str) -> Tuple[BinaryIO, BinaryIO]:
    """A binary stream of the log's text, decompressed when it is gzip (by its magic bytes),
    and the file under it (for the caller to close: GzipFile leaves it open)."""
    if log == "-":
        if sys.stdin is None:
            raise LogError("no standard input to read the log from")
        if sys.stdin.isatty():
            raise LogError("reading the log from standard input, which is a terminal: give a file, or pipe one in (envdoctor explain - < train.log)")
        raw: BinaryIO = sys.stdin.buffer
    else:
        if os.path.isdir(log):
            raise LogError("%s: is a folder, not a log file" % log)
        try:
            raw = open(log, "rb", buffering=0)
            mode = os.fstat(raw.fileno()).st_mode
        except OSError as exc:
            raise LogError("%s: cannot read (%s)" % (log, exc.strerror or exc))
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):  # /dev/zero would be scanned forever
            raw.close()
            raise LogError("%s: is a device, not a log file" % log)
    head = b""
    try:
        while len(head) < 2:  # a pipe may hand over one byte at a time
            more = raw.read(2 - len(head))
            if not more:
                break
            head += more
    except OSError as exc:
        if log != "-":
            raw.close()
        raise LogError("%s: cannot read (%s)" % (_name(log), exc.strerror or exc))
    stream = _Rewound(head, raw)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb"), raw  # type: ignore[arg-type,return-value]
    return stream, raw  # type: ignore[return-value]


def _read(log: str, stream: BinaryIO, raw: BinaryIO, scanner: Scanner, progress: Progress) -> None:
    """Scan the whole log: a large plain file by offset, in ranges scanned at once; a pipe or
    gzip in order."""
    workers = parallel_workers(raw.fileno()) if log != "-" and isinstance(stream, _Rewound) else 1
    if workers > 1:
        scan_file(raw.fileno(), scanner, progress, workers)
    else:
        scan_into(stream, scanner, progress)


def _read_error(log: str, exc: BaseException, progress: Progress) -> str:
    where = "after %d lines" % progress.lines
    if isinstance(exc, EOFError):
        return "%s: the gzip stream is truncated (%s); those lines were scanned" % (_name(log), where)
    if isinstance(exc, (zlib.error, gzip.BadGzipFile)):
        return "%s: the gzip stream is corrupt (%s: %s); the lines before were scanned" % (_name(log), where, exc)
    reason = getattr(exc, "strerror", None) or str(exc)
    return "%s: reading failed %s (%s); the lines before were scanned" % (_name(log), where, reason)


def _identity(raw: BinaryIO) -> Optional[Tuple[int, int, int]]:
    """Size and change times of a regular file (None for a pipe): equal before and after a scan
    unless someone wrote to it meanwhile. (A log still being appended to also changes.)"""
    try:
        info = os.fstat(raw.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


# -- judging ---------------------------------------------------------------------------------


def symptom_patterns(kb: KnowledgeBase) -> Tuple[str, ...]:
    seen: List[str] = []
    for record in kb.records:
        for symptom in record.symptoms:
            if symptom.pattern not in seen:
                seen.append(symptom.pattern)
    return tuple(seen)


def unmet_conditions(record: Record, facts: Facts) -> Tuple[str, ...]:
    """Why a record does not fire here, in words: the ranges and conditions that do not hold."""
    unmet = []
    for found in sorted(package_ranges(record.affected, facts), key=lambda found: found.package):
        if found.inside is False:
            here = "it is not installed" if found.value is None else "%s is installed" % found.value
            unmet.append("%s %s, but %s" % (found.package, found.wanted(), here))
    for cond in record.when:
        value = facts.get(cond.key)
        if not isinstance(value, Unknown) and condition_holds(cond, value) is False:
            unmet.append("%s, but here it is %s" % (cond.describe(), "absent" if value is None else describe(value)))
    if not unmet and record.code:
        unmet.append("the installed code shows the fix (%s)" % ", ".join(c.file for c in record.code))
    return tuple(unmet)


def _candidates(records: Sequence[Tuple[Record, bool]], report: Optional["Report"]) -> Tuple[Candidate, ...]:
    out = []
    findings = {f.record.id: f for f in report.findings} if report is not None and not report.fatal else None
    for record, weak in records:
        if findings is None:
            cand = Candidate(record, NOT_EXAMINED, weak=weak)
        elif record.id in findings:
            finding = findings[record.id]
            cand = Candidate(record, finding.status, finding, weak=weak)
        else:
            cand = Candidate(record, NOT_FIRING, unmet=unmet_conditions(record, report.facts), weak=weak)  # type: ignore[union-attr]
        # A weak symptom names a record only where the environment examined meets it.
        if not weak or cand.status in (CONFIRMED, POSSIBLE):
            out.append(cand)
    out.sort(key=_rank)
    return tuple(out)


ORDER = {CONFIRMED: 0, POSSIBLE: 1, NOT_FIRING: 2, NOT_EXAMINED: 3}


def _rank(cand: Candidate) -> Tuple[bool, int, int]:
    """The environment first, then the log's other lines (stable: ties keep the records' order)."""
    return (cand.weak, ORDER[cand.status], -cand.log_score)


def _is_weak(record: Record, patterns: Sequence[str]) -> bool:
    """Every symptom of the record that matched these lines is weak."""
    return all(s.weak for s in record.symptoms if s.pattern in patterns)


def diagnose(hits: Sequence[Hit], kb: KnowledgeBase, report: Optional["Report"]) -> Tuple[Diagnosis, ...]:
    """Group the records whose symptoms matched the same lines: they are rival explanations."""
    groups: Dict[Tuple[int, ...], Tuple[Hit, List[str]]] = {}
    for hit in hits:
        key = tuple(line.number for line in hit.lines) + (hit.count,)
        groups.setdefault(key, (hit, []))[1].append(hit.pattern)
    diagnoses = []
    for hit, patterns in groups.values():
        records = [r for r in kb.records if any(s.pattern in patterns for s in r.symptoms)]
        candidates = _candidates([(r, _is_weak(r, patterns)) for r in records], report)
        if candidates:  # weak lines whose records do not hold here are everyday errors: not shown
            diagnoses.append(Diagnosis(hit.lines, hit.count, candidates))
    diagnoses.sort(key=lambda d: d.lines[0].number)
    return tuple(diagnoses)


def explain(log: str, options: CheckOptions, examine: bool = True, keep: int = KEEP) -> Explanation:
    """Scan ``log`` against every record's symptoms; when something matches and ``examine``,
    judge the matching records against the environment ``options`` describe."""
    kb = load_kb(options.extra_kb)
    problems = [Problem("knowledge", str(e)) for e in kb.errors]
    # The API history's error classes are scanned too; the history loads only if one matched.
    generic = HISTORY_PATTERNS + (FRAME,)
    scanner = Scanner(symptom_patterns(kb) + generic, keep)
    progress = Progress(scanner)
    complete = True
    stream, raw = open_log(log)
    before = _identity(raw)
    try:
        _read(log, stream, raw, scanner, progress)
    except (OSError, EOFError, zlib.error) as exc:
        complete = False
        problems.append(Problem("log", _read_error(log, exc, progress)))
    finally:
        after = _identity(raw)
        if log != "-":
            raw.close()
    if complete and before and after and before != after:
        if after[0] > before[0]:  # appended to (a running job's log): what was read stands
            problems.append(Problem("log", "%s: grew while it was read; the lines added meanwhile were not scanned" % _name(log)))
        else:  # truncated or rewritten under the scan: what was read may be neither version
            complete = False
            problems.append(Problem("log", "%s: changed while it was read (%s); the result and its line numbers may be "
                                           "wrong: explain a copy" % (_name(log), "truncated" if after[0] < before[0] else "rewritten")))
    for index, line in sorted(scanner.slow.items(), key=lambda item: item[1]):
        complete = False  # that pattern was not looked for in the rest of the log
        problems.append(Problem("log", "%s: the symptom pattern %r ran out of time (%gs) on one line, at or after line %d, "
                                       "and was not looked for from there on; its record needs a pattern that does not backtrack"
                                % (_name(log), scanner.patterns[index].text, PATTERN_BUDGET, line)))
    if progress.size == 0 and complete:
        problems.append(Problem("log", "%s: empty, nothing to explain" % _name(log)))
    elif progress.binary:
        problems.append(Problem("log", "%s: holds binary data (NUL bytes), not a text log; scanned it anyway" % _name(log)))
    everything = scanner.hits()
    own = set(symptom_patterns(kb))
    hits = [h for h in everything if h.pattern not in generic or h.pattern in own]
    found = _history_questions([h for h in everything if h not in hits], hits, kb)
    report = None
    if (hits or found) and examine:
        from envdoctor.check import run

        report = run(options, kb)
        problems.extend(p for p in report.problems if p.source != "knowledge")
    diagnoses = diagnose(hits, kb, report)
    if any(len(d.candidates) > 1 for d in diagnoses):
        diagnoses = _rank_rivals(log, diagnoses, problems)
    if found:
        diagnoses = tuple(sorted(diagnoses + tuple(_history_diagnoses(found, report, kb)),
                                 key=lambda d: d.lines[0].number))
    return Explanation(log, diagnoses, progress.lines, progress.size, complete,
                       len([r for r in kb.records if r.symptoms]), report, tuple(problems))


def _history_diagnoses(found, report, kb: KnowledgeBase) -> List[Diagnosis]:
    """One diagnosis per line the API history answered, judged against the examined environment."""
    from envdoctor.history.explainer import judge

    out = []
    for j in judge(found, report, kb.dirs[1:]):
        if not j.examined:
            cand = Candidate(j.record, NOT_EXAMINED)
        elif j.holds is True:
            cand = Candidate(j.record, CONFIRMED, Finding(j.record, CONFIRMED, (j.why,), (), "code"))
        elif j.holds is False:
            cand = Candidate(j.record, NOT_FIRING, unmet=(j.why,))
        else:
            undecided = (Undecided("pkg." + j.package, j.why or "not examined",
                                   "examine the environment the log came from (--python)"),)
            cand = Candidate(j.record, POSSIBLE, Finding(j.record, POSSIBLE, (), undecided, "code"))
        out.append(Diagnosis((j.line,), 1, (cand,)))
    return out


def _history_questions(generic_hits, record_hits, kb: KnowledgeBase) -> list:
    """Error lines no record explains that the API history can answer ([] costs nothing)."""
    if not any(h.pattern != FRAME for h in generic_hits):
        return []
    from envdoctor.history.explainer import questions
    from envdoctor.history.load import load_history

    covered = {line.number for h in record_hits for line in h.lines}
    return questions(generic_hits, covered, load_history(kb.dirs[1:]))


def _rank_rivals(log: str, diagnoses: Tuple[Diagnosis, ...], problems: List[Problem]) -> Tuple[Diagnosis, ...]:
    """Where several records share lines, read the log once more for what tells them apart:
    traceback paths and printed versions (``rivals``). Standard input cannot be read twice."""
    from envdoctor import rivals

    records = [c.record for d in diagnoses if len(d.candidates) > 1 for c in d.candidates]
    wanted = rivals.clues(records)
    found = rivals.LogClues({}, {})
    if log == "-":
        problems.append(Problem("log", "standard input was read once: rival causes are ranked by the environment alone (give the log as a file to rank them by its other lines)"))
    else:
        scanner = Scanner([c.pattern for c in wanted], keep=1, count_all=False)  # where each clue first shows
        try:
            stream, raw = open_log(log)
            try:
                _read(log, stream, raw, scanner, Progress(scanner))
            finally:
                raw.close()
            found = rivals.LogClues.from_hits(wanted, scanner.hits())
        except (OSError, EOFError, zlib.error, LogError):
            pass  # the first read already reported what went wrong
    return rank_rivals(diagnoses, found)


def rank_rivals(diagnoses: Tuple[Diagnosis, ...], found: "LogClues") -> Tuple[Diagnosis, ...]:
    """Order the rival causes of each diagnosis by the clues found in the log (``rivals``)."""
    from envdoctor import rivals

    out = []
    for diag in diagnoses:
        if len(diag.candidates) < 2:
            out.append(diag)
            continue
        judged = []
        shared = rivals.common_frames([c.record for c in diag.candidates])
        for cand in diag.candidates:
            ranked = rivals.judge(cand.record, found, shared)
            judged.append(replace(cand, log_score=ranked.score, log_evidence=ranked.evidence))
        judged.sort(key=_rank)
        top = [c for c in judged if _rank(c) == _rank(judged[0])]
        decided = rivals.decider([c.record for c in top], found) if len(top) > 1 else ""
        out.append(replace(diag, candidates=tuple(judged), decided_by=decided))
    return tuple(out)
