"""explain's answers from the API history, for error lines no record's symptom matched.

Kept apart from explain.py: it is imported only when such a line matched, so a clean log (or one a
record explains) never loads the history.
"""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from envdoctor.history import answers
from envdoctor.history.load import History, load_history
from envdoctor.kb.record import Record, Reference, Remedy


def questions(generic_hits, covered: set, history: History) -> List[Tuple[object, answers.Answer, Optional[str]]]:
    """(log line, answer, importer frame) for each generic line that the history can answer."""
    frames: List[Tuple[int, str]] = []
    lines = []
    for hit in generic_hits:
        if hit.pattern == answers.FRAME:
            frames.extend((line.number, line.text) for line in hit.lines)
        else:
            lines.extend(hit.lines)
    out = []
    seen = set()
    for line in sorted(lines, key=lambda l: l.number):
        if line.number in covered:
            continue
        q = answers.parse_line(line.text)
        if q is None or (q.kind, q.module, q.name) in seen:
            continue
        a = answers.answer(history, q)
        if a is None:
            continue
        seen.add((q.kind, q.module, q.name))
        out.append((line, a, answers.importer_from((), line.number, frames)))
    return out


def _record(a: answers.Answer, importer: Optional[str]) -> Record:
    q = a.question
    where = ", ".join(s.text() for s in a.spans) if a.spans else "no examined release"
    details = ["The API history (read from %s's released files, %s) has %s in: %s." % (a.package, a.examined, a.what, where)]
    if importer:
        details.append("The traceback's innermost installed frame: %s (the package that asks for it)." % importer)
    return Record(
        id="HISTORY-%s-%s" % (q.kind.upper().replace("_", "-"), q.name),
        summary=("%s exists in %s %s" % (a.what, a.package, where)) if a.spans else
                "%s: in no examined %s release (%s)" % (a.what, a.package, a.examined),
        severity="error",
        details=" ".join(details),
        affected=(), when=(), code=(), symptoms=(),
        remedy=Remedy(a.fix, a.requires),
        references=(Reference(answers.HISTORY_REFERENCE % a.package, "API history of %s (envdoctor)" % a.package),),
        path="<api history>", evidence_level="read-from-code",
        tags=("api-history",),
    )


class Judged(NamedTuple):
    """One answered line, and whether what it says holds in the examined environment."""

    line: object  # the log line (logscan.LogLine)
    record: Record  # the answer as a record (id HISTORY-...)
    examined: bool  # an environment was examined
    holds: Optional[bool]  # there: True, False, or None (cannot tell)
    why: Optional[str]  # the fact that says so, in words
    package: str


def judge(found, report, kb_dirs: Sequence[str]) -> List[Judged]:
    """Each answered line as a record, judged against the examined environment when there is one.
    explain turns these into its diagnoses (this module does not know explain's types)."""
    history = load_history(kb_dirs)
    installed: Optional[Dict[str, str]] = None
    if report is not None and not report.fatal:
        installed = {k[4:]: str(v) for k, v in report.facts.values.items() if k.startswith("pkg.") and v is not None}
    out = []
    for line, a, importer in found:
        record = _record(a, importer)
        if installed is None:
            out.append(Judged(line, record, False, None, None, a.package))
        else:
            holds, why = answers.holds_here(history, a, installed)
            out.append(Judged(line, record, True, holds, why, a.package))
    return out
