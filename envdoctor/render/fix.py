"""fix's results: the plan as text, as JSON (schema envdoctor.fix/1, docs/json-schema.md), or
as a requirements.in; the lockfile written; fix --offline's choice of a shipped lockfile."""

import json
import os
from typing import Any, Dict, List, Optional, Sequence

from envdoctor import __version__
from envdoctor.facts import Problem
from envdoctor.fix.command import FixResult
from envdoctor.fix.curated import OfflineChoice
from envdoctor.fix.locktypes import LockResult
from envdoctor.fix.plan import NO_PLAN, NOTHING_TO_DO, Plan
from envdoctor.fix.plan import requirements_in as plan_requirements_in
from envdoctor.render.json import finding_dict, problem_dicts
from envdoctor.render.style import Style
from envdoctor.render.text import problem_lines

SCHEMA = "envdoctor.fix/1"


def requirements_in(plan: Plan, header: str = "") -> str:
    lines = ["# requirements.in from envdoctor %s fix (target Python %s)" % (__version__, plan.python)]
    if header:
        lines.append("# " + header)
    lines.extend(plan_requirements_in(plan))
    return "\n".join(lines) + "\n"


def render_requirements(result: FixResult, colour: bool = False) -> str:
    """--print-requirements: the plan as a requirements.in; with no plan, nothing (the command
    line says why on stderr, so that `> requirements.in` never gets prose)."""
    if result.plan.status == NO_PLAN:
        return ""
    return requirements_in(result.plan)


def render_text(result: FixResult, colour: bool = False) -> str:
    plan, target = result.plan, result.target
    style = Style(colour)
    out = ["envdoctor %s fix: %s" % (__version__, target), "Target Python: %s" % plan.python, ""]
    if plan.status == NOTHING_TO_DO:
        out.append("%s nothing to do: no confirmed or likely error (%d records checked)" % (style("ok", "[ok]"), plan.records))
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
        if plan.checked:
            out.append("  installs: %s" % plan.checked)
    out.extend(_assumed(plan))
    left = [f for f in plan.remaining if f.severity != "info"]
    if plan.status == "plan" and left:
        out.append("")
        out.append("Left after the plan (not errors it can clear):")
        out.extend("  [%s %s] %s" % (f.status, f.severity, f.record.id) for f in left)
    if plan.status != NO_PLAN and plan.requirements:
        out.append("")
        out.append("As requirements (envdoctor fix --print-requirements):")
        out.extend("  " + line for line in plan_requirements_in(plan))
    if result.lock is not None:
        out.extend(_lock_lines(result.lock))
    out.extend(problem_lines(style, result.problems))
    return "\n".join(out) + "\n"


def _assumed(plan: Plan) -> List[str]:
    """Likely errors the plan set out to clear: what was assumed, and how to confirm it."""
    likely = [f for f in plan.errors if f.likely]
    if not likely:
        return []
    out = ["", "Assumed (likely errors, not confirmed):"]
    for f in likely:
        out.append("  %s: assuming %s; %s to confirm" % (f.record.id, "; ".join(f.assumed), f.undecided[0].hint))
    return out


def _lock_lines(lock: LockResult) -> List[str]:
    out = ["", "Lockfile: %s (%d pins, Python %s, %s)" % (lock.path, lock.pins, lock.python, lock.cuda)]
    out.extend("  level %s: %s" % (lv.name, lv.detail) for lv in lock.levels)
    if lock.not_reached:
        out.append("  not reached: %s" % lock.not_reached)
    return out


def _lock_dict(lock: LockResult) -> Dict[str, object]:
    return {"path": lock.path, "python": lock.python, "cuda": lock.cuda, "records": lock.records, "pins": lock.pins,
            "level": lock.level, "levels": [{"name": lv.name, "detail": lv.detail} for lv in lock.levels],
            "possible": list(lock.possible), "not_reached": lock.not_reached or None, "requested": lock.requested or None}


def _changes(plan: Plan) -> List[str]:
    out = []
    for change in plan.changes:
        out.append("  %-9s %-14s %s -> %s" % (change.action, change.package, change.current or "(not installed)", change.describe_target()))
        if change.clears:
            out.append("            clears: %s" % ", ".join(change.clears))
        out.append("            why: %s" % change.reason)
    return out


def plan_dict(plan: Plan, target: str, lock: Optional[Dict[str, Any]] = None, problems: Sequence[Problem] = ()) -> Dict[str, Any]:
    return {
        "schema": SCHEMA,
        "envdoctor": __version__,
        "target": target,
        "python": plan.python,
        "status": plan.status,
        "exit_code": plan.exit_code,
        "errors": [f.record.id for f in plan.errors],
        "assumed": {f.record.id: list(f.assumed) for f in plan.errors if f.likely},
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
        "checked": plan.checked or None,
        "remaining": [finding_dict(f) for f in plan.remaining],
        "records_checked": plan.records,
        "lock": lock,
        "problems": problem_dicts(problems),
    }


def render_json(result: FixResult) -> str:
    lock = _lock_dict(result.lock) if result.lock is not None else None
    return json.dumps(plan_dict(result.plan, result.target, lock, result.problems), indent=2) + "\n"


def render_offline_json(choice: OfflineChoice) -> str:
    chosen = choice.chosen
    data = {
        "schema": "envdoctor.fix-offline/1", "envdoctor": __version__, "target": choice.target,
        "chosen": chosen.path if chosen else None,
        "candidates": [{"path": c.path, "python": c.python, "cuda": c.cuda, "xtuner": c.xtuner, "level": c.level,
                        "matches": not c.reasons, "reasons": list(c.reasons)} for c in choice.candidates],
        "problems": problem_dicts(choice.problems),
    }
    return json.dumps(data, indent=2) + "\n"


def _cuda_words(cuda: Optional[str]) -> str:
    return "CUDA %s" % cuda if cuda else "no CUDA build"


def render_offline_text(choice: OfflineChoice, colour: bool = False) -> str:
    here = "Python %s, %s, XTuner %s" % (choice.python, _cuda_words(choice.cuda), choice.xtuner or "not installed")
    out = ["envdoctor %s fix --offline: %s" % (__version__, choice.target), "This environment: %s" % here, ""]
    for c in choice.candidates:
        verdict = "matches" if not c.reasons else "no: " + "; ".join(c.reasons)
        out.append("  %s (Python %s, %s, XTuner %s, level %s): %s" % (os.path.basename(c.path), c.python, _cuda_words(c.cuda),
                                                                      c.xtuner or "-", c.level, verdict))
    out.append("")
    chosen = choice.chosen
    if chosen:
        out.append("Chosen: %s" % chosen.path)
        out.append("  it matches the Python minor, the CUDA build of torch and the XTuner line, and its pins pass the static check")
        out.append("  install with: pip install -r %s" % chosen.path)
    elif not choice.candidates:
        out.append("No curated lockfile is shipped in %s." % choice.folder)
    else:
        out.append("No curated lockfile matches this environment; use envdoctor fix --write-lock PATH to make one.")
    out.extend(problem_lines(Style(colour), choice.problems))
    return "\n".join(out) + "\n"
