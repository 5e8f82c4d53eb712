"""Machine-readable report. The schema is documented in docs/json-schema.md; bump
SCHEMA's number on any change that could break a reader."""

import json
from typing import Any, Dict, List, Sequence

from envdoctor import __version__
from envdoctor.check import Report
from envdoctor.facts import Problem
from envdoctor.kb.evaluate import CONFIRMED, Finding

SCHEMA = "envdoctor.check/1"


def finding_dict(finding: Finding) -> Dict[str, Any]:
    record = finding.record
    return {
        "id": record.id,
        "severity": record.severity,
        "status": finding.status,
        "summary": record.summary,
        "details": record.details,
        "because": list(finding.because),
        "evidence": finding.evidence or None,
        "evidence_level": record.evidence_level,
        "undecided": [{"fact": u.key, "reason": u.reason, "hint": u.hint} for u in finding.undecided],
        "likely": finding.likely,
        "assumed": list(finding.assumed),
        "remedy": {"summary": record.remedy.summary, "requires": list(record.remedy.requires), "note": record.remedy.note or None},
        "references": [{"url": r.url, "title": r.title or None} for r in record.references],
        "record_file": record.path,
    }


def problem_dicts(problems: Sequence[Problem]) -> List[Dict[str, Any]]:
    return [{"source": p.source, "message": p.message, "fatal": p.fatal} for p in problems]


def report_dict(report: Report) -> Dict[str, Any]:
    counts = {"error": 0, "warning": 0, "info": 0, "possible": 0}
    for f in report.findings:
        counts[f.severity if f.status == CONFIRMED else "possible"] += 1
    return {
        "schema": SCHEMA,
        "envdoctor": __version__,
        "target": report.target,
        "exit_code": report.exit_code,
        "facts": dict(sorted(report.facts.values.items())),
        "unknown_facts": {k: v.reason for k, v in sorted(report.facts.unknown.items())},
        "complete": list(report.facts.complete),
        "findings": [finding_dict(f) for f in report.findings],
        "problems": problem_dicts(report.problems),
        "summary": counts,
        "records_checked": len(report.kb.records),
        "unpinned": [
            {"package": v.name, "specifier": v.specifier, "where": v.where, "checked": list(v.checked), "clear": v.clear,
             "tripped": [{"id": t.record_id, "severity": t.severity, "status": t.status, "versions": list(t.versions)} for t in v.tripped]}
            for v in report.ranges
        ],
    }


def render(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"
