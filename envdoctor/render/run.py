"""``envdoctor run``: the pre-flight in brief, the post-mortem, and the --report JSON
(schema ``envdoctor.run/1`` in docs/json-schema.md)."""

import json
import signal
from typing import Any, Dict, List

from envdoctor import __version__
from envdoctor.kb.evaluate import Finding
from envdoctor.render.explain import explanation_dict, render_text
from envdoctor.render.style import Style

SCHEMA = "envdoctor.run/1"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "signal %d" % number


def _finding_lines(style: Style, finding: Finding) -> List[str]:
    record = finding.record
    lines = ["  %s %s  %s" % (style(record.severity, "[%s]" % record.severity), style("bold", record.id), record.summary)]
    if finding.because:
        lines.append("      because: %s" % "; ".join(finding.because))
    lines.append("      fix: %s" % record.remedy.summary)
    lines.append("      see: %s" % record.references[0].url)
    return lines


def preflight_text(pre, keep_going: bool, colour: bool = False) -> str:
    """Nothing when the pre-flight found nothing confirmed; else the errors and warnings, briefly."""
    style = Style(colour)
    out: List[str] = ["envdoctor: %s" % note for note in pre.notes]
    report = pre.report
    if report is None:
        return "\n".join(out) + "\n" if out else ""
    for problem in report.problems:
        if problem.fatal:
            out.append("envdoctor: pre-flight could not examine the environment: %s" % problem.message)
    shown = report.confirmed("warning")
    if shown:
        errors = len([f for f in shown if f.severity == "error"])
        out.append(style("bold", "envdoctor pre-flight: %d error%s, %d warning%s in %s" % (
            errors, "" if errors == 1 else "s", len(shown) - errors, "" if len(shown) - errors == 1 else "s", report.target)))
        for finding in shown:
            out.extend(_finding_lines(style, finding))
        if errors and keep_going:
            out.append("envdoctor: starting the command anyway (--keep-going)")
        elif errors:
            out.append(style("error", "envdoctor: the command was not started (exit 1): fix the error%s above, or pass "
                                      "--keep-going to run it anyway; envdoctor check explains more" % ("" if errors == 1 else "s")))
    return "\n".join(out) + "\n" if out else ""


def outcome_line(outcome) -> str:
    if outcome.signal is not None:
        return "the command was killed by %s (exit %d)" % (_signal_name(outcome.signal), outcome.exit_code)
    return "the command failed with exit code %d" % outcome.exit_code


def postmortem_text(expl, outcome, colour: bool = False) -> str:
    style = Style(colour)
    head = "envdoctor: %s" % outcome_line(outcome)
    if not expl.diagnoses:  # one line: the command's own output said it all
        notes = "".join("envdoctor: note: %s\n" % p.message for p in expl.problems)
        return "%s; no known issue's symptom in its %s line%s (%d records with symptoms searched)\n%s" % (
            style("bold", head), format(expl.lines, ","), "" if expl.lines == 1 else "s", expl.records_searched, notes)
    return "\n" + style("bold", head) + "\n" + render_text(expl, colour)


def _launch_dict(pre) -> Dict[str, Any]:
    found, options = pre.launch, pre.options
    return {"program": found.program, "python": options.python, "config": options.config, "launcher": options.launcher, "gpus": options.gpus,
            "notes": list(pre.notes)}


def result_dict(result) -> Dict[str, Any]:
    from envdoctor.render.json import report_dict

    pre, outcome = result.preflight, result.outcome
    return {
        "schema": SCHEMA,
        "envdoctor": __version__,
        "command": list(result.argv),
        "exit_code": result.exit_code,
        "started": result.started,
        "stopped_by_preflight": not result.started and outcome is None,
        "error": None if outcome is None else outcome.error,
        "signal": None if outcome is None or outcome.signal is None else _signal_name(outcome.signal),
        "seconds": round(result.seconds, 3),
        "launch": _launch_dict(pre),
        "preflight": None if pre.report is None else dict(report_dict(pre.report),
                                                          seconds=round(pre.seconds, 3)),
        "diagnosis": None if result.explanation is None else explanation_dict(result.explanation),
        "tail": list(result.tail),
    }


def render_json(result) -> str:
    return json.dumps(result_dict(result), indent=2) + "\n"
