"""The plan as text, as JSON (schema envdoctor.fix/1, docs/json-schema.md), or as a
requirements.in."""

import json
from typing import Any, Dict, List, Optional

from envdoctor import __version__
from envdoctor.fix.plan import NO_PLAN, NOTHING_TO_DO, Plan
from envdoctor.render.json import finding_dict
from envdoctor.render.style import Style

SCHEMA = "envdoctor.fix/1"


def requirements_in(plan: Plan, header: str = "") -> str:
    lines = ["# requirements.in from envdoctor %s fix (target Python %s)" % (__version__, plan.python)]
    if header:
        lines.append("# " + header)
    lines.extend(plan.requirements)
    return "\n".join(lines) + "\n"


def render_text(plan: Plan, target: str, colour: bool = False, lock: Optional[List[str]] = None) -> str:
    style = Style(colour)
    out = ["envdoctor %s fix: %s" % (__version__, target), "Target Python: %s" % plan.python, ""]
    if plan.status == NOTHING_TO_DO:
        out.append("%s nothing to do: no confirmed error (%d records checked)" % (style("ok", "[ok]"), plan.records))
    elif plan.status == NO_PLAN:
        out.append(style("error", "No plan works in this environment.") + " Errors to clear:")
        out.extend("  %s  %s" % (style("bold", f.record.id), f.record.summary) for f in plan.errors)
        if plan.rejected:
            out.append("Tried:")
            out.extend("  %s %s: %s" % (r.package, r.version, "; ".join(r.reasons)) for r in plan.rejected)
        out.append("What would have to change:")
        out.extend("  - %s" % need for need in plan.needs)
        if plan.changes:
            out.append("Package changes that clear the other errors:")
            out.extend(_changes(plan))
    else:
        count = len(plan.errors)
        out.append(style("bold", "Plan: %d change%s clear%s %d error%s" % (
            len(plan.changes), "" if len(plan.changes) == 1 else "s", "s" if len(plan.changes) == 1 else "", count, "" if count == 1 else "s")))
        out.extend(_changes(plan))
        if plan.constraints:
            out.append("  bounds from the knowledge base: %s" % ", ".join(plan.constraints))
    left = [f for f in plan.remaining if f.severity != "info"]
    if plan.status == "plan" and left:
        out.append("")
        out.append("Left after the plan (not errors it can clear):")
        out.extend("  [%s %s] %s" % (f.status, f.severity, f.record.id) for f in left)
    if plan.status != NO_PLAN and plan.requirements:
        out.append("")
        out.append("As requirements (envdoctor fix --print-requirements):")
        out.extend("  " + line for line in plan.requirements)
    for line in lock or ():
        out.append(line)
    return "\n".join(out) + "\n"


def _changes(plan: Plan) -> List[str]:
    out = []
    for change in plan.changes:
        out.append("  %-9s %-14s %s -> %s" % (change.action, change.package, change.current or "(not installed)", change.describe_target()))
        if change.clears:
            out.append("            clears: %s" % ", ".join(change.clears))
        out.append("            why: %s" % change.reason)
    return out


def plan_dict(plan: Plan, target: str, lock: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {
        "schema": SCHEMA,
        "envdoctor": __version__,
        "target": target,
        "python": plan.python,
        "status": plan.status,
        "exit_code": plan.exit_code,
        "errors": [f.record.id for f in plan.errors],
        "changes": [
            {"action": c.action, "package": c.package, "from": c.current, "to": c.describe_target() if c.action != "remove" else None,
             "tried": c.target, "requirement": c.requirement, "clears": list(c.clears), "reason": c.reason,
             "declares": list(c.declares)}
            for c in plan.changes
        ],
        "requirements": list(plan.requirements),
        "constraints": list(plan.constraints),
        "rejected": [{"package": r.package, "version": r.version, "reasons": list(r.reasons)} for r in plan.rejected],
        "unresolved": [f.record.id for f in plan.unresolved],
        "needs": list(plan.needs),
        "remaining": [finding_dict(f) for f in plan.remaining],
        "records_checked": plan.records,
        "lock": lock,
    }


def render_json(plan: Plan, target: str, lock: Optional[Dict[str, Any]] = None) -> str:
    return json.dumps(plan_dict(plan, target, lock), indent=2) + "\n"
