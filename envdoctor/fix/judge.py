"""The resolver's word on a plan: does the planned set install for the target, and does what
the resolver picks for the plan's open ranges pass the knowledge base?

A plan leaves ranges open (transformers>=4.36,!=4.38.*) and the records were checked at one
version inside them; the resolver picks another (the newest). So the pins it picks are
judged again, with every other fact of the environment kept.
"""

import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

from envdoctor.check import Report
from envdoctor.fix import apihistory, resolve
from envdoctor.fix.locktypes import Index, Progress, silent
from envdoctor.fix.pinned import check_pins
from envdoctor.fix.plan import Moved, Plan, Verdict
from envdoctor.names import requirement_name

MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def target_of(report: Report, python: str) -> resolve.Target:
    """The target Python and a Linux platform of this machine's kind (training runs on Linux)."""
    machine = report.facts.get("platform.machine")
    arch = MACHINES.get(str(machine).lower(), "x86_64") if isinstance(machine, str) else "x86_64"
    return resolve.Target(python, "%s-manylinux_2_28" % arch)


class ResolverJudge:
    """Plan -> Verdict, through uv; a resolver that cannot answer refuses nothing (the
    plan then says it was not checked, and why)."""

    def __init__(self, report: Report, index: Index, timeout: float, uv: Optional[str] = None,
                 progress: Progress = silent, memo: Optional[resolve.Memo] = None) -> None:
        self.report = report
        self.sources = index
        self.timeout = timeout
        self.uv = uv
        self.progress = progress
        self.memo = resolve.Memo() if memo is None else memo
        # The planner asks again about a plan it judged before (each Python and option set it
        # tries plans anew): the verdict depends only on the set, the target and what moved.
        self.verdicts: Dict[tuple, Verdict] = {}

    def __call__(self, plan: Plan) -> Verdict:
        key = (plan.python, plan.requirements, plan.constraints, frozenset(c.package for c in plan.changes))
        if key not in self.verdicts:
            self.verdicts[key] = self.judge(plan)
        return self.verdicts[key]

    def judge(self, plan: Plan) -> Verdict:
        target = target_of(self.report, plan.python)
        moves = ", ".join("%s %s" % (c.package, c.describe_target()) for c in plan.changes) or "the stack as it is"
        self.progress("checking that %s installs for Python %s (%s) with uv" % (moves, target.python, target.platform))
        work = tempfile.mkdtemp(prefix="envdoctor-resolve-")
        try:
            try:
                lines, kept = list(plan.requirements), []  # type: Tuple[List[str], List[str]]
                # Annotated as the lockfile is: locking the plan taken then reuses this answer (memo).
                done = resolve.resolve(lines, plan.constraints, target, self.sources, self.timeout, work, self.uv,
                                       annotate=True, hashes=self.sources.generate_hashes, memo=self.memo, cached=True)
                if not done.ok:
                    # The pins the plan keeps may be what conflicts (torchvision built for the old
                    # torch, a kept fsspec): let uv move those, and only those that must move.
                    relaxed, keep = _relaxed(plan)
                    if keep:
                        again = resolve.resolve(relaxed, plan.constraints, target, self.sources, self.timeout, work, self.uv, prefer=keep,
                                                annotate=True, hashes=self.sources.generate_hashes, memo=self.memo, cached=True)
                        if again.ok:
                            done, lines, kept = again, relaxed, keep
                bounds: Tuple[str, ...] = ()
                if done.ok:
                    done, bounds, broken = self.history(plan, lines, kept, target, done, work)
                    if broken:
                        return Verdict("uv picks %s" % broken)
                moved = _moves(kept, done.pins) if done.ok else ()
            except resolve.ResolverError as exc:
                return Verdict("", "not checked with a resolver: %s" % exc)
            if not done.ok:
                return Verdict("does not install for Python %s: %s" % (target.minor, done.reason))
            pins = check_pins(done.text, self.report, plan.python, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if pins.errors:
            picked = ", ".join("%s %s" % p for p in done.pins if p[0] in _open_names(plan))
            return Verdict("uv picks %s, which trips %s" % (picked or "its versions", ", ".join(pins.errors)))
        words = "resolves with uv for Python %s on %s (%d pins)" % (target.minor, target.platform, len(done.pins))
        if bounds:
            words += ", held to the API history's %s" % ", ".join(bounds)
        return Verdict("", words, moved, bounds, tuple(sorted(name for name, _ in done.pins)))

    def history(self, plan: Plan, lines: List[str], kept: List[str], target: resolve.Target, done: resolve.Resolution,
                work: str) -> Tuple[resolve.Resolution, Tuple[str, ...], str]:
        """The resolved set held to the API history: where what uv picks for the open ranges (or
        moves) breaks an import, the history's bounds go to uv as constraints, once. Returns the
        resolution, the bounds added, and why the set still breaks ("" when it does not)."""
        pins = dict(done.pins)
        before = self.report.facts.packages()
        changed = {p for p, v in pins.items() if before.get(p) != v}
        found = apihistory.breaks(pins, target.python, self.report.kb, changed)
        if not found:
            return done, (), ""
        exact = {requirement_name(line) for line in lines if "==" in line}
        extra = tuple(b for b in apihistory.bounds(pins, target.python, self.report.kb)
                      if requirement_name(b) not in exact and b not in plan.constraints)
        if extra:
            again = resolve.resolve(lines, tuple(plan.constraints) + extra, target, self.sources, self.timeout, work, self.uv,
                                    prefer=kept, annotate=True, hashes=self.sources.generate_hashes, memo=self.memo, cached=True)
            if again.ok:
                repinned = dict(again.pins)
                left = apihistory.breaks(repinned, target.python, self.report.kb, {p for p, v in repinned.items() if before.get(p) != v})
                if not left:
                    return again, extra, ""
        words = "%s, which breaks: %s" % (", ".join("%s %s" % (p, pins[p]) for p in sorted(changed)) or "its versions", "; ".join(found))
        return done, (), words


# The packages a plan keeps where they are even when a kept pin conflicts: they come from the
# base image, and moving them is the user's call (--allow-change), which the plan already made.
FIXED = ("torch", "python")


def _relaxed(plan: Plan) -> Tuple[List[str], List[str]]:
    """The plan's lines with each kept pin opened to its bare name, and those pins (preferred)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    changed = {c.package for c in plan.changes}
    lines, kept = [], []
    for line in plan.requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            lines.append(line)
            continue
        name = canonicalize_name(req.name)
        pinned = [s for s in req.specifier if s.operator == "=="]
        if name in changed or name in FIXED or len(pinned) != 1:
            lines.append(line)
            continue
        lines.append(req.name + ("[%s]" % ",".join(sorted(req.extras)) if req.extras else ""))
        kept.append("%s==%s" % (name, pinned[0].version))
    return lines, kept


def _moves(kept: List[str], pins: Tuple[Tuple[str, str], ...]) -> Tuple[Moved, ...]:
    resolved = dict(pins)
    out = []
    for line in kept:
        name, _, version = line.partition("==")
        if resolved.get(name) not in (None, version):
            out.append(Moved(name, version, resolved[name]))
    return tuple(out)


def _open_names(plan: Plan):
    """The packages the plan leaves as ranges: the resolver chose their versions."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    out = set()
    for line in plan.requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if not any(s.operator in ("==", "===") for s in req.specifier):
            out.add(canonicalize_name(req.name))
    return out
