"""envdoctor fix: probe, plan, and optionally lock. Knows nothing of the command line."""

from dataclasses import dataclass, field
from typing import FrozenSet, Optional, Tuple

from envdoctor import check
from envdoctor.fix import lock, plan
from envdoctor.fix.locktypes import Index, LockError, LockRequest, Progress, silent
from envdoctor.kb.releases import release_table
from envdoctor.options import CheckOptions
from envdoctor.render import fix as out
from envdoctor.render import style


class FixError(Exception):
    """One clear line for the user (exit 2)."""


@dataclass(frozen=True)
class FixOptions:
    latest: bool = False
    allow_change: FrozenSet[str] = frozenset()
    fmt: str = "text"
    print_requirements: bool = False
    write_lock: Optional[str] = None
    force: bool = False
    verify: bool = False
    verify_python: Optional[str] = None
    offline: bool = False
    index: Index = Index()
    timeout: float = 900.0
    pip_compile: Optional[str] = None
    command: str = "envdoctor fix"  # the command line, as the lockfile header records it
    progress: Progress = field(default=silent, compare=False)


def run(check_options: CheckOptions, options: FixOptions) -> Tuple[str, int]:
    report = check.run(check_options)
    fatal = [p for p in report.problems if p.fatal]
    if fatal:
        raise FixError(fatal[0].message)
    releases = release_table(report.kb.tables)
    extras: Tuple = ()
    if check_options.requirements:
        from envdoctor.sources import requirements

        parsed = requirements.read(check_options.requirements, str(report.facts.get("python")))
        extras = tuple((p.name, p.extras) for p in parsed.pins if p.extras)
    made = plan.make_plan(report.facts, report.kb, releases, plan.PlanOptions(
        options.latest, options.allow_change, whole_environment=report.static,
        loose=tuple(r.name + r.specifier for r in report.ranges), extras=extras))
    if options.offline:
        from envdoctor.fix import curated

        return curated.choose(report, made, options.fmt)
    if options.print_requirements:
        if made.status == plan.NO_PLAN:
            return out.render_text(made, report.target, style.use_colour()), made.exit_code
        return out.requirements_in(made), 0
    lock_lines, lock_info = None, None
    if options.write_lock and made.status != plan.NO_PLAN:
        request = LockRequest(options.write_lock, options.force, options.index, options.timeout, options.pip_compile,
                              options.verify, options.verify_python, options.command, options.progress)
        try:
            result = lock.write(made, report, request)
        except LockError as exc:
            raise FixError(str(exc))
        lock_lines, lock_info = result.lines(), result.as_dict()
    if options.fmt == "json":
        return out.render_json(made, report.target, lock_info), made.exit_code
    return out.render_text(made, report.target, style.use_colour(), lock_lines), made.exit_code
