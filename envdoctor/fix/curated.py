"""fix --offline: pick the curated lockfile (lockfiles/) that matches this environment.

A lockfile matches when its Python minor, its torch CUDA build and its XTuner line (0.1, 0.2)
equal the environment's (XTuner: the plan's target if the plan changes it), and envdoctor's
static check of its pins, with this environment's other facts (model, config, driver), finds
no error. Each lockfile's verdict is explained; with no match, that is said and the exit is 1.
"""

import glob
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple

from envdoctor.check import Report
from envdoctor.facts import Problem
from envdoctor.fix.pinned import check_pins
from envdoctor.fix.plan import Plan
from envdoctor.sources import requirements


@dataclass(frozen=True)
class Candidate:
    path: str
    python: str  # minor
    cuda: Optional[str]  # torch's CUDA build, None for a CPU build or no torch
    xtuner: Optional[str]
    level: str  # the last level its header claims
    reasons: Tuple[str, ...]  # why it does not match; empty: it matches


def shipped_dir() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the envdoctor package
    installed = os.path.join(here, "_lockfiles")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(here), "lockfiles")


def _minor(version: object) -> str:
    return ".".join(str(version).split(".")[:2])


def _line(version: Optional[str]) -> Optional[str]:
    return _minor(version) if version else None


def _header_field(path: str, prefix: str) -> List[str]:
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            if line.startswith(prefix):
                out.append(line[len(prefix):].strip())
    return out


def _wanted_xtuner(report: Report, plan: Plan) -> Optional[str]:
    change = next((c for c in plan.changes if c.package == "xtuner"), None)
    if change is not None:
        return change.target
    value = report.facts.get("pkg.xtuner")
    return value if isinstance(value, str) else None


def judge(path: str, report: Report, plan: Plan) -> Candidate:
    target = _header_field(path, "# target: Python ")
    python = _minor(target[0].split(",")[0]) if target else ""
    parsed = requirements.read(path, python + ".0" if python else None)
    facts = requirements.gather(parsed)
    pins = {p.name: p.version for p in parsed.pins}
    cuda = facts.values.get("torch.cuda")
    levels = [l.split(":")[0] for l in _header_field(path, "# level ")]
    reasons = []
    here_python = _minor(report.facts.get("python"))
    if python != here_python:
        reasons.append("made for Python %s, this is %s" % (python or "?", here_python))
    here_cuda = report.facts.get("torch.cuda")
    if "torch" in pins and isinstance(here_cuda, str) and (not isinstance(cuda, str) or _minor(cuda) != _minor(here_cuda)):
        reasons.append("torch built for %s, this torch for CUDA %s" % ("CUDA %s" % cuda if cuda else "no CUDA", here_cuda))
    wanted = _wanted_xtuner(report, plan)
    if wanted and _line(pins.get("xtuner")) != _line(wanted):
        reasons.append("XTuner %s, this environment needs the %s line" % (pins.get("xtuner", "absent"), _line(wanted)))
    if not reasons:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        work = tempfile.mkdtemp(prefix="envdoctor-offline-")
        try:
            errors = check_pins(text, report, python + ".0", work).errors
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if errors:
            reasons.append("its pins trip %s with this environment's facts" % ", ".join(errors))
    return Candidate(path, python, cuda if isinstance(cuda, str) else None, pins.get("xtuner"), levels[-1] if levels else "none", tuple(reasons))


class OfflineChoice(NamedTuple):
    """fix --offline's answer: every shipped lockfile judged, and the one chosen (if any)."""

    target: str  # the environment examined, in words
    python: str  # its Python minor
    cuda: Optional[str]  # its torch's CUDA build
    xtuner: Optional[str]  # the XTuner it needs (the plan's target when the plan changes it)
    folder: str  # where the lockfiles were looked for
    candidates: Tuple[Candidate, ...]
    problems: Tuple[Problem, ...] = ()  # what the check could not read, shown as check shows it

    @property
    def chosen(self) -> Optional[Candidate]:
        return next((c for c in self.candidates if not c.reasons), None)

    @property
    def exit_code(self) -> int:
        return 0 if self.chosen else 1


def choose(report: Report, plan: Plan, folder: Optional[str] = None) -> OfflineChoice:
    folder = folder or shipped_dir()
    paths = sorted(glob.glob(os.path.join(folder, "*.txt")))
    cuda = report.facts.get("torch.cuda")
    return OfflineChoice(report.target, _minor(report.facts.get("python")), cuda if isinstance(cuda, str) else None,
                         _wanted_xtuner(report, plan), folder, tuple(judge(p, report, plan) for p in paths), report.problems)
