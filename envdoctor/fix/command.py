"""envdoctor fix: probe, plan, and optionally lock. Knows nothing of the command line;
returns a result object that cli renders."""

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, FrozenSet, NamedTuple, Optional, Tuple, Union

from envdoctor import check
from envdoctor.facts import Problem
from envdoctor.fix.plan import NO_PLAN, PLAN, Plan, PlanOptions, make_plan
from envdoctor.fix.locktypes import Index, LockError, LockRequest, LockResult, Progress, silent
from envdoctor.kb.releases import release_table
from envdoctor.options import CheckOptions

if TYPE_CHECKING:  # each imported where it is used: a run needs one or two of them
    from envdoctor.fix import curated


class FixError(Exception):
    """One clear line for the user (exit 2)."""


@dataclass(frozen=True)
class FixOptions:
    latest: bool = False
    allow_change: FrozenSet[str] = frozenset()
    write_lock: Optional[str] = None
    force: bool = False
    verify: bool = False
    verify_python: Optional[str] = None
    offline: bool = False
    index: Index = Index()
    timeout: float = 900.0
    pip_compile: Optional[str] = None
    allow_downgrade: bool = False  # the main package (xtuner) may move back across lines
    resolver: str = "uv"  # what writes the lockfile: "uv" or "pip-tools"
    verify_level: str = "smoke"  # with verify: the level asked for
    resolve: bool = True  # put each candidate plan to uv before showing it
    uv: Optional[str] = None  # the uv to run (default: beside this interpreter, then PATH)
    command: str = "envdoctor fix"  # the command line, as the lockfile header records it
    progress: Progress = field(default=silent, compare=False)


class FixResult(NamedTuple):
    """What fix found: the plan for the environment examined, and the lockfile if one was written."""

    plan: Plan
    target: str  # the environment examined, in words
    lock: Optional[LockResult] = None
    problems: Tuple[Problem, ...] = ()  # what the check could not read (a model the config names), shown as check shows it

    @property
    def exit_code(self) -> int:
        # The lockfile is written at the level reached; asking for more and not getting it is a failure.
        if self.plan.exit_code == 0 and self.lock is not None and self.lock.short:
            return 1
        return self.plan.exit_code


def _config_uses(check_options: CheckOptions) -> dict:
    """--config: what it imports and the template keys it reads, for the planner to hold candidates to."""
    if not check_options.config:
        return {}
    import os

    from envdoctor.sources.xtuner_config import uses

    return {"config_uses": uses(check_options.config), "config": os.path.basename(check_options.config)}


def run(check_options: CheckOptions, options: FixOptions) -> Union[FixResult, "curated.OfflineChoice"]:
    """Probe, plan, then lock (--write-lock) or pick a shipped lockfile (--offline).
    Raises FixError when the environment cannot be probed or no lockfile could be made."""
    # The plan is made from the facts; the report's findings are not read here.
    report = check.run(check_options, history=False)
    fatal = [p for p in report.problems if p.fatal]
    if fatal:
        raise FixError(fatal[0].message)
    pinned = report.requirements.pins if report.requirements is not None else ()
    # Every plan is put to a real resolver before it is shown, unless the user says not to
    # (--offline, --no-resolve): then the plan says it was not checked.
    accept, memo = None, None  # memo: uv's answers in this run, shared by the plan's check and the lockfile
    if options.resolve and not options.offline:
        from envdoctor.fix.judge import ResolverJudge
        from envdoctor.fix.resolve import Memo

        memo = Memo()
        accept = ResolverJudge(report, options.index, options.timeout, options.uv, options.progress, memo)
    made = make_plan(report.facts, report.kb, release_table(report.kb.tables), PlanOptions(
        options.latest, options.allow_change, whole_environment=report.static,
        loose=tuple(r.name + r.specifier for r in report.ranges), extras=tuple((p.name, p.extras) for p in pinned if p.extras),
        allow_downgrade=options.allow_downgrade, **_config_uses(check_options)), accept)
    if accept is None and made.status == PLAN:
        made = replace(made, checked="not checked with a resolver (%s)" % ("--offline" if options.offline else "--no-resolve"))
    if options.offline:
        from envdoctor.fix import curated

        return curated.choose(report, made)
    if not options.write_lock or made.status == NO_PLAN:
        return FixResult(made, report.target, problems=report.problems)
    request = LockRequest(options.write_lock, options.force, options.index, options.timeout, options.pip_compile,
                          options.verify, options.verify_python, options.command, options.progress, resolver=options.resolver, uv=options.uv, verify_level=options.verify_level,
                          memo=memo)
    from envdoctor.fix import lock

    try:
        return FixResult(made, report.target, lock.write(made, report, request), report.problems)
    except LockError as exc:
        raise FixError(str(exc))
