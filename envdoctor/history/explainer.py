"""explain's answers from the API history, for error lines no record's symptom matched.

Kept apart from explain.py: it is imported only when such a line matched, so a clean log (or one a
record explains) never loads the history.
"""

from typing import Dict, List, Optional, Sequence, Tuple

from envdoctor.history import answers
from envdoctor.history.load import History, load_history
from envdoctor.kb.evaluate import CONFIRMED, POSSIBLE, Finding, Undecided
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


def diagnoses(found, report, kb_dirs: Sequence[str]):
    """One diagnosis per answered line, judged against the examined environment when there is one."""
    from envdoctor.explain import NOT_EXAMINED, NOT_FIRING, Candidate, Diagnosis

    history = load_history(kb_dirs)
    installed: Optional[Dict[str, str]] = None
    if report is not None and not report.fatal:
        installed = {k[4:]: str(v) for k, v in report.facts.values.items() if k.startswith("pkg.") and v is not None}
    out = []
    for line, a, importer in found:
        record = _record(a, importer)
        if installed is None:
            cand = Candidate(record, NOT_EXAMINED)
        else:
            holds, why = answers.holds_here(history, a, installed)
            if holds is True:
                cand = Candidate(record, CONFIRMED, Finding(record, CONFIRMED, (why,), (), "code"))
            elif holds is False:
                cand = Candidate(record, NOT_FIRING, unmet=(why,))
            else:
                undecided = (Undecided("pkg." + a.package, why or "not examined", "examine the environment the log came from (--python)"),)
                cand = Candidate(record, POSSIBLE, Finding(record, POSSIBLE, (), undecided, "code"))
        out.append(Diagnosis((line,), 1, (cand,)))
    return out
