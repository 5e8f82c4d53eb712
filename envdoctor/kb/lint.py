"""kb lint: everything the loader rejects, plus what only a contributor's check can afford.

On top of the loader (every error of every file, with its line; tables against their schemas):
ids that duplicate a shipped record, symptom patterns that run too long on hostile lines (a
child process, timed), and the record template in the folder's README.md.
"""

import os
import re
from typing import List, NamedTuple, Tuple

from envdoctor.kb.load import KnowledgeBase, RecordError, load, shipped_dir
from envdoctor.kb.locate import line_in, line_of
from envdoctor.tomlcache import TomlCache

PATTERN_BUDGET = 1.0  # seconds a pattern may spend on its hostile lines


class LintResult(NamedTuple):
    base: KnowledgeBase
    errors: Tuple[RecordError, ...]  # the loader's and lint's own, in file order

    @property
    def invalid_files(self) -> int:
        return len({e.path for e in self.errors})


def lint(directory: str, budget: float = PATTERN_BUDGET) -> LintResult:
    # A cache that forgets: every file is validated in full, never trusted from an earlier run.
    base = load([directory], TomlCache(path=""))
    errors: List[RecordError] = list(base.errors)
    errors.extend(_duplicates_of_shipped(base, directory))
    errors.extend(_undeclared_levels(base))
    errors.extend(_reproductions(base, directory))
    errors.extend(_slow_patterns(base, budget))
    errors.extend(template_errors(directory))
    errors.sort(key=lambda e: (e.path, e.line))
    return LintResult(base, tuple(errors))


def _duplicates_of_shipped(base: KnowledgeBase, directory: str) -> List[RecordError]:
    shipped = shipped_dir()
    if os.path.realpath(directory) == os.path.realpath(shipped):
        return []
    theirs = {r.id: r.path for r in load([shipped]).records}
    return [RecordError(r.path, "id", "%s duplicates a record shipped with envdoctor (%s): choose another id"
                        % (r.id, os.path.relpath(theirs[r.id], shipped)), line_of(r.path, "id"))
            for r in base.records if r.id in theirs]


def _undeclared_levels(base: KnowledgeBase) -> List[RecordError]:
    """Every record says how it is known; the loader lets a team's record leave it out."""
    cache = TomlCache(path="")
    out = []
    for record in base.records:
        if "evidence_level" not in cache.load(record.path):
            out.append(RecordError(record.path, "evidence_level", "missing: say how the record is known "
                                   "(reproduced, read-from-code or reported)", line_of(record.path, "severity")))
    return out


def _reproductions(base: KnowledgeBase, directory: str) -> List[RecordError]:
    """A reproduction's script must exist; "reproduced" needs an outcome that confirmed it."""
    from envdoctor.kb.outcomes import OUTCOMES_FILE, confirmed, read_outcomes

    folder = os.path.join(directory, "reproductions")
    outcomes, problem = read_outcomes(os.path.join(folder, OUTCOMES_FILE))
    out = []
    if problem:
        out.append(RecordError(os.path.join(folder, OUTCOMES_FILE), "", problem))
    for record in base.records:
        spec = record.reproduction
        if spec is not None and not os.path.isfile(os.path.join(folder, spec.script)):
            out.append(RecordError(record.path, "reproduction.script", "%s is not in %s" % (spec.script, folder),
                                   line_of(record.path, "reproduction.script")))
        if record.evidence_level == "reproduced" and not confirmed(outcomes, record, folder):
            out.append(RecordError(record.path, "evidence_level", "\"reproduced\", but %s has no confirming outcome for "
                                   "this reproduction: run python scripts/reproduce.py %s" % (OUTCOMES_FILE, record.id),
                                   line_of(record.path, "evidence_level")))
    return out


def _slow_patterns(base: KnowledgeBase, budget: float) -> List[RecordError]:
    from envdoctor.kb.regex_risk import slow_patterns

    where = [(r, i) for r in base.records for i in range(len(r.symptoms))]
    items = [(r.symptoms[i].pattern, r.symptoms[i].example) for r, i in where]
    out = []
    for index in slow_patterns(items, budget):
        record, i = where[index]
        field = "symptoms[%d].pattern" % i
        out.append(RecordError(record.path, field, "takes longer than %gs on a long hostile line: it backtracks too much "
                               "(avoid nested or adjacent repeats that can match the same text)" % budget,
                               line_of(record.path, field)))
    return out


_TEMPLATE = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)


def template_errors(directory: str) -> List[RecordError]:
    """The record template (the first ```toml block) of the folder's README.md must be a
    valid record: contributors copy it."""
    path = os.path.join(directory, "README.md")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return []
    match = _TEMPLATE.search(text)
    if not match:
        return []
    first = text[: match.start(1)].count("\n") + 1
    block = match.group(1)
    return [RecordError(path, field, message, first + line - 1 if line else first)
            for field, message, line in _template_problems(block)]


def _template_problems(block: str) -> List[Tuple[str, str, int]]:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.8-3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(block)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        return [("", "the record template is not valid TOML: %s" % exc, int(found.group(1)) if found else 0)]
    from envdoctor.kb.load import record_problems

    lines = block.splitlines()
    return [(field, "the record template: " + message, line_in(lines, field)) for field, message in record_problems(data)]


def summary(result: LintResult, directory: str) -> str:
    tables = len({e.path for e in result.errors if os.sep + "tables" + os.sep in e.path})
    records = result.invalid_files - tables
    text = "%d records valid, %d invalid in %s" % (len(result.base.records), records, directory)
    if tables:
        text += "; %d table%s invalid" % (tables, "" if tables == 1 else "s")
    return text
