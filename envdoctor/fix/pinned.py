"""envdoctor's own check of a pinned set (a lockfile, made or shipped): its pins in place of
the environment's packages, every other fact kept, every record evaluated."""

import os
from typing import NamedTuple, Tuple

from envdoctor.check import Report
from envdoctor.facts import Facts
from envdoctor.kb.derive import derive_all
from envdoctor.kb.evaluate import CONFIRMED, evaluate_all
from envdoctor.sources import requirements

# What a pinned set replaces: the packages, torch's build and the interpreter it was made for.
_REPLACED = ("pkg.", "torch.", "python", "code.")


class PinCheck(NamedTuple):
    errors: Tuple[str, ...]  # record ids confirmed as errors
    possible: Tuple[str, ...]  # record ids left possible errors (a fact they need is unknown)
    facts: Facts  # the facts with the pins, derived facts included
    pins: int  # how many exact pins the set has


def check_pins(text: str, report: Report, python: str, work: str) -> PinCheck:
    """The pinned text judged with the report's other facts; ``work`` is a scratch folder."""
    path = os.path.join(work, "lock-check.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    parsed = requirements.read(path, python)
    pinned = requirements.gather(parsed)
    values = {k: v for k, v in report.facts.values.items() if not k.startswith(_REPLACED)}
    unknown = {k: v for k, v in report.facts.unknown.items() if not k.startswith(_REPLACED)}
    values.update(pinned.values)
    unknown.update(pinned.unknown)
    facts, _ = derive_all(Facts(values, unknown, ("pkg.",)), report.kb)
    findings = evaluate_all(report.kb.records, facts)
    errors = tuple(f.record.id for f in findings if f.severity == "error" and f.status == CONFIRMED)
    possible = tuple(f.record.id for f in findings if f.severity == "error" and f.status != CONFIRMED)
    return PinCheck(errors, possible, facts, len(parsed.pins))
