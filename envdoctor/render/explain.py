"""An explanation of a log as text, JSON (schema in docs/json-schema.md) or markdown."""

import json
from typing import Any, Dict, List

from envdoctor import __version__
from envdoctor.explain import (
    APPLIES,
    CANDIDATE,
    DECIDE,
    NONE_APPLIES,
    NOT_EXAMINED,
    NOT_FIRING,
    UNEXAMINED,
    Candidate,
    Diagnosis,
    Explanation,
)
from envdoctor.kb.evaluate import CONFIRMED, POSSIBLE
from envdoctor.kb.record import EVIDENCE_WORDS
from envdoctor.render.style import Style

SCHEMA = "envdoctor.explain/1"
LABEL = {CONFIRMED: "applies", POSSIBLE: "may apply", NOT_FIRING: "not here", NOT_EXAMINED: "known issue"}
WORDS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five"}


def _log_name(expl: Explanation) -> str:
    return "standard input" if expl.log == "-" else expl.log


def _label(cand: Candidate) -> str:
    return "candidate" if cand.weak else LABEL[cand.status]


def _conclusion(diag: Diagnosis) -> str:
    text = _verdict_sentence(diag)
    if diag.decided_by:
        text += " Between %s, it turns on %s." % (" and ".join(c.record.id for c in diag.candidates if _level(c, diag)), diag.decided_by)
    return text


def _level(cand: Candidate, diag: Diagnosis) -> bool:
    first = diag.candidates[0]
    return (cand.weak, cand.status, cand.log_score) == (first.weak, first.status, first.log_score)


def _verdict_sentence(diag: Diagnosis) -> str:
    verdict = diag.verdict
    if verdict == CANDIDATE:
        ids = [c.record.id for c in diag.candidates]
        return ("A common error with many causes, not a known issue by itself; in this environment it may "
                "come from %s, whose conditions hold here. Rule out the usual causes too." % " or ".join(ids))
    if verdict == APPLIES:
        ids = [c.record.id for c in diag.with_status(CONFIRMED)]
        return "Cause here: %s." % " and ".join(ids)
    if verdict == DECIDE:
        keys: List[str] = []
        hints: List[str] = []
        for cand in diag.with_status(POSSIBLE):
            for u in cand.finding.undecided:  # type: ignore[union-attr]
                if u.key not in keys:
                    keys.append(u.key)
                if u.hint not in hints:
                    hints.append(u.hint)
        ids = [c.record.id for c in diag.with_status(POSSIBLE)]
        return "Could be %s; it turns on %s: %s." % (" or ".join(ids), " and ".join(keys), "; ".join(hints))
    if verdict == NONE_APPLIES:
        return ("None of the known causes holds in the environment examined. If the log comes from "
                "another environment, run envdoctor explain there (or pass --python).")
    return "No environment was examined; run without --log-only where the log was made to learn which cause applies."


# -- text --------------------------------------------------------------------------------------


def _candidate_lines(style: Style, cand: Candidate, show_fix: bool) -> List[str]:
    record = cand.record
    kind = "possible" if cand.weak else record.severity if cand.status == CONFIRMED else "possible" if cand.status == POSSIBLE else "dim"
    out = ["  %s %s  %s" % (style(kind, "[%s]" % _label(cand)), style("bold", record.id), record.summary)]
    if cand.finding is not None and cand.finding.because:
        out.append("      because: %s" % "; ".join(cand.finding.because))
    if cand.finding is not None:
        for u in cand.finding.undecided:
            out.append("      undecided: %s is unknown (%s): %s" % (u.key, u.reason, u.hint))
    for reason in cand.unmet:
        out.append("      needs %s" % reason)
    for clue in cand.log_evidence:
        out.append("      log: %s" % clue)
    if show_fix:
        out.append("      fix: %s" % record.remedy.summary)
        if record.remedy.note:
            out.append("           %s" % record.remedy.note.strip().replace("\n", " "))
        out.append("      see: %s" % record.references[0].url)
        out.append("      known: %s" % EVIDENCE_WORDS.get(record.evidence_level, record.evidence_level))
    return out


def _diagnosis_lines(style: Style, diag: Diagnosis) -> List[str]:
    numbers = [line.number for line in diag.lines]
    head = "Line %d" % numbers[0] if diag.count == 1 else "Lines %s" % ", ".join(str(n) for n in numbers)
    if diag.count > len(numbers):
        head += " and %d more (%d lines in all)" % (diag.count - len(numbers), diag.count)
    out = [style("bold", head + ":")]
    width = len(str(numbers[-1]))
    out += ["  %*d: %s" % (width, line.number, line.text) for line in diag.lines]
    n = len(diag.candidates)
    if diag.weak:
        out.append("A common error line; %s known issue%s that hold%s here can produce it:" % (WORDS.get(n, str(n)).lower(), "" if n == 1 else "s", "s" if n == 1 else ""))
    else:
        out.append("%s known issue%s show%s this symptom:" % (WORDS.get(n, str(n)), "" if n == 1 else "s", "s" if n == 1 else ""))
    fix_all = diag.verdict in (NONE_APPLIES, UNEXAMINED)
    for cand in diag.candidates:
        out += _candidate_lines(style, cand, fix_all or cand.status in (CONFIRMED, POSSIBLE))
    out.append(style("bold", "=> " + _conclusion(diag)))
    return out


def _headline(expl: Explanation) -> str:
    strong = [d for d in expl.diagnoses if not d.weak]
    n = len({c.record.id for d in strong for c in d.candidates})
    if not strong:
        found = "no known issue"
    else:
        found = "symptoms of %d known issue%s" % (n, "" if n == 1 else "s")
    weak = len(expl.diagnoses) - len(strong)
    if weak:
        found += " (%d common error line%s with a candidate cause)" % (weak, "" if weak == 1 else "s")
    return "envdoctor explain %s: %s in %s line%s (%d records with symptoms searched)" % (
        _log_name(expl), found, format(expl.lines, ","), "" if expl.lines == 1 else "s", expl.records_searched)


def render_text(expl: Explanation, colour: bool = False) -> str:
    style = Style(colour)
    out = [style("bold", _headline(expl))]
    if expl.report is not None:
        installed = expl.report.facts.packages()
        stack = ", ".join("%s %s" % (p, installed[p]) for p in ("xtuner", "transformers", "torch") if p in installed)
        out.append("Environment examined: %s%s" % (expl.report.target, " (%s)" % stack if stack else ""))
    for diag in expl.diagnoses:
        out += [""] + _diagnosis_lines(style, diag)
    if expl.problems:
        out.append("")
        out += [style("warning", "note: ") + p.message for p in expl.problems]
    if all(d.weak for d in expl.diagnoses) and expl.complete:
        out += ["", style("ok", "No known issue's symptom appears in the log.")]
    return "\n".join(out) + "\n"


# -- json --------------------------------------------------------------------------------------


def _candidate_dict(cand: Candidate) -> Dict[str, Any]:
    from envdoctor.render.json import finding_dict

    if cand.finding is not None:
        data = finding_dict(cand.finding)
    else:
        r = cand.record
        data = {
            "id": r.id, "severity": r.severity, "status": cand.status, "summary": r.summary, "details": r.details,
            "because": [], "evidence": None, "evidence_level": r.evidence_level, "undecided": [],
            "remedy": {"summary": r.remedy.summary, "requires": list(r.remedy.requires), "note": r.remedy.note or None},
            "references": [{"url": ref.url, "title": ref.title or None} for ref in r.references],
            "record_file": r.path,
        }
    data["unmet"] = list(cand.unmet)
    data["weak"] = cand.weak
    data["log_evidence"] = list(cand.log_evidence)
    return data


def explanation_dict(expl: Explanation) -> Dict[str, Any]:
    return {
        "schema": SCHEMA,
        "envdoctor": __version__,
        "log": expl.log,
        "exit_code": expl.exit_code,
        "lines_read": expl.lines,
        "bytes_read": expl.size,
        "complete": expl.complete,
        "target": None if expl.report is None else expl.report.target,
        "matches": [
            {
                "lines": [{"line": line.number, "text": line.text} for line in diag.lines],
                "line_count": diag.count,
                "verdict": diag.verdict,
                "weak": diag.weak,
                "decided_by": diag.decided_by or None,
                "conclusion": _conclusion(diag),
                "records": [_candidate_dict(c) for c in diag.candidates],
            }
            for diag in expl.diagnoses
        ],
        "facts": None if expl.report is None else dict(sorted(expl.report.facts.values.items())),
        "problems": [{"source": p.source, "message": p.message, "fatal": p.fatal} for p in expl.problems],
        "records_searched": expl.records_searched,
    }


def render_json(expl: Explanation) -> str:
    return json.dumps(explanation_dict(expl), indent=2) + "\n"


# -- markdown ----------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("`", "'")


def render_markdown(expl: Explanation) -> str:
    out = ["### " + _headline(expl).replace("envdoctor explain", "envdoctor %s explain" % __version__), ""]
    if expl.report is not None:
        out += ["Environment examined: `%s`" % _md(expl.report.target), ""]
    for diag in expl.diagnoses:
        out.append("```")
        out += ["%d: %s" % (line.number, line.text.replace("```", "'''")) for line in diag.lines]
        if diag.count > len(diag.lines):
            out.append("… %d more matching lines" % (diag.count - len(diag.lines)))
        out += ["```", ""]
        for cand in diag.candidates:
            r = cand.record
            out.append("- **%s** `%s`: %s ([source](%s))" % (_label(cand), r.id, r.summary, r.references[0].url))
            if cand.finding is not None:
                for u in cand.finding.undecided:
                    out.append("  - undecided: `%s` (%s)" % (u.key, u.hint))
            for reason in cand.unmet:
                out.append("  - needs %s" % reason)
            for clue in cand.log_evidence:
                out.append("  - log: %s" % _md(clue))
            if cand.status in (CONFIRMED, POSSIBLE) or diag.verdict in (NONE_APPLIES, UNEXAMINED, CANDIDATE):
                out.append("  - fix: %s" % r.remedy.summary)
        out += ["", "**%s**" % _conclusion(diag), ""]
    for p in expl.problems:
        out.append("> %s" % p.message)
    if all(d.weak for d in expl.diagnoses) and expl.complete:
        out.append("✅ No known issue's symptom appears in the log.")
    return "\n".join(out) + "\n"
