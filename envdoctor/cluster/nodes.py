"""A node's report: the JSON object of ``envdoctor check --format json`` (docs/json-schema.md),
read from a file for ``compare`` or received from a rank for ``check --distributed``."""

import json
import os
from typing import Any, Dict, NamedTuple, Optional, Tuple

from envdoctor.facts import Facts, Problem, Unknown

SCHEMA = "envdoctor.check/1"
_FAMILY = SCHEMA.split("/")[0] + "/"
MAX_BYTES = 64 * 1024 * 1024  # a check report is tens of kilobytes; refuse anything absurd


class ReportError(ValueError):
    """One line naming the file and what is wrong with it."""


class NodeReport(NamedTuple):
    label: str  # how the output names the node: a file name, or "node 1 (host)"
    report: Dict[str, Any]
    ranks: Tuple[int, ...] = ()  # the ranks on this node (check --distributed)

    def facts(self) -> Facts:
        return facts_of(self.report)

    def problems(self) -> Tuple[Problem, ...]:
        return tuple(Problem(str(p.get("source", "")), str(p.get("message", "")), bool(p.get("fatal")))
                     for p in self.report.get("problems") or () if isinstance(p, dict))


def facts_of(report: Dict[str, Any]) -> Facts:
    values = report["facts"]
    unknown = {k: Unknown(str(v)) for k, v in (report.get("unknown_facts") or {}).items()}
    complete = report.get("complete")
    if complete is None:
        # Reports written before "complete" existed: an environment or -r FILE lists every
        # distribution it has, so a package it does not name is absent.
        complete = ["pkg."] if any(k.startswith("pkg.") for k in values) else []
    return Facts(values, unknown, tuple(complete))


def validate(data: object, name: str) -> Dict[str, Any]:
    """The report, or ReportError naming ``name`` and the first thing that is wrong."""
    if not isinstance(data, dict):
        raise ReportError("%s: not an envdoctor check report (a JSON %s, not an object)" % (name, type(data).__name__))
    schema = data.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, str) and schema.startswith(_FAMILY):
            raise ReportError("%s: report schema %s, but this envdoctor reads %s; make both reports with one envdoctor version" % (name, schema, SCHEMA))
        raise ReportError("%s: not an envdoctor check report (schema %r; expected %s from envdoctor check --format json)" % (name, schema, SCHEMA))
    for field, kind in (("facts", dict), ("unknown_facts", dict), ("problems", list), ("findings", list), ("exit_code", int)):
        if not isinstance(data.get(field), kind):
            raise ReportError("%s: malformed report: %r is missing or not a JSON %s" % (name, field, "object" if kind is dict else "array" if kind is list else "number"))
    for key, value in data["facts"].items():
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise ReportError("%s: malformed report: fact %s is a %s, not a value" % (name, key, type(value).__name__))
    complete = data.get("complete")
    if complete is not None and not (isinstance(complete, list) and all(isinstance(c, str) for c in complete)):
        raise ReportError("%s: malformed report: 'complete' is not an array of strings" % name)
    return data


def parse(text: str, name: str) -> Dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReportError("%s: %s" % (name, _json_problem(text, exc)))
    return validate(data, name)


def _json_problem(text: str, exc: ValueError) -> str:
    pos = getattr(exc, "pos", None)
    if not text.strip():
        return "empty file, not a JSON report (did envdoctor check fail before printing?)"
    msg = getattr(exc, "msg", "")
    if (pos is not None and not text[pos:].strip()) or msg.startswith("Unterminated string"):
        return "truncated: the JSON ends after %d bytes, in the middle of the report (was the copy or the job cut short?)" % len(text.encode("utf-8", "replace"))
    line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    return "not valid JSON (line %s, column %s: %s)" % (line, col, msg or exc)


KEPT = ("schema", "target", "exit_code", "facts", "unknown_facts", "complete", "problems")


def slim(report: Dict[str, Any], shared: Dict[Any, Any]) -> Dict[str, Any]:
    """What the comparison reads, its texts shared between nodes: ten thousand reports of
    mostly equal facts then cost the memory of a few (findings are evaluated again anyway)."""
    def one(value):
        return shared.setdefault(value, value) if isinstance(value, str) else value

    out = {k: report[k] for k in KEPT if k in report}
    out["facts"] = {one(k): one(v) for k, v in report["facts"].items()}
    out["unknown_facts"] = {one(k): one(v) for k, v in report["unknown_facts"].items()}
    return out


def read(path: str, label: Optional[str] = None, shared: Optional[Dict[Any, Any]] = None) -> NodeReport:
    name = label or path
    try:
        if os.path.isdir(path):
            raise ReportError("%s: is a folder, not a report file" % name)
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ReportError("%s: cannot read (%s)" % (name, exc.strerror or exc))
    if len(data) > MAX_BYTES:
        raise ReportError("%s: larger than %d MiB; not a check report" % (name, MAX_BYTES // (1024 * 1024)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError("%s: not UTF-8 text (byte %d); not a JSON report" % (name, exc.start))
    report = parse(text, name)
    return NodeReport(name, report if shared is None else slim(report, shared))
