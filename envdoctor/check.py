"""The check: gather facts from the sources, evaluate the knowledge base, make a report.

Knows nothing of the command line; ``cli.py`` builds the options and picks a renderer.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from envdoctor import derive
from envdoctor.facts import Facts, Gathered, Problem, merge
from envdoctor.kb import declared
from envdoctor.kb.evaluate import CONFIRMED, Finding, evaluate_all
from envdoctor.kb.load import KnowledgeBase, load, shipped_dir
from envdoctor.kb.record import Record, Reference, Remedy
from envdoctor.sources import binary, code, environment, gpu

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}

# Not knowledge but the user's own demand (--require-gpu), shown like any finding.
NO_GPU = Record(
    id="ENVDOCTOR-NO-GPU",
    summary="No NVIDIA driver or GPU is visible, and --require-gpu was given",
    severity="error",
    details="Training needs a GPU. Inside a container build this is normal; at run time it "
    "usually means the container was started without GPU access.",
    affected=(),
    when=(),
    code=(),
    symptoms=(),
    remedy=Remedy("Start the container with GPU access (docker run --gpus all), or drop --require-gpu during the build"),
    references=(Reference("https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html"),),
    path="<envdoctor>",
)


@dataclass(frozen=True)
class CheckOptions:
    python: Optional[str] = None  # another interpreter; None: this one
    extra_kb: Tuple[str, ...] = ()
    driver: Optional[str] = None
    probe_timeout: float = 10.0
    require_gpu: bool = False


@dataclass(frozen=True)
class Report:
    facts: Facts
    environment: Optional[environment.Environment]
    findings: Tuple[Finding, ...]
    problems: Tuple[Problem, ...]
    kb: KnowledgeBase
    target: str = ""  # which interpreter was examined, in words

    @property
    def fatal(self) -> bool:
        return any(p.fatal for p in self.problems)

    def confirmed(self, at_least: str = "info") -> Tuple[Finding, ...]:
        floor = SEVERITY_RANK[at_least]
        return tuple(f for f in self.findings if f.status == CONFIRMED and SEVERITY_RANK[f.severity] >= floor)


def exit_code(report: Report, fail_on: str) -> int:
    if report.fatal:
        return 2
    return 1 if report.confirmed(fail_on) else 0


def load_kb(extra: Tuple[str, ...] = ()) -> KnowledgeBase:
    return load((shipped_dir(),) + tuple(extra))


def run(options: CheckOptions, kb: Optional[KnowledgeBase] = None) -> Report:
    kb = kb or load_kb(options.extra_kb)
    parts: List[Gathered] = []
    problems: List[Problem] = [Problem("knowledge", str(e)) for e in kb.errors]

    if options.python:
        inventory, problem = environment.probe_interpreter(options.python)
        target = options.python
    else:
        inventory, problem = environment.probe_here(), None
        target = "this interpreter"
    env = None
    if problem:
        problems.append(problem)
    else:
        assert inventory is not None
        env = environment.to_environment(inventory)
        parts.append(environment.gather(inventory))
        checks = [c for r in kb.records for c in r.code]
        if checks:
            parts.append(code.gather(env, checks))
        parts.append(binary.gather(env))
    parts.append(gpu.gather(options.driver, options.probe_timeout))

    facts, gathered_problems = merge(parts)
    problems.extend(gathered_problems)
    facts, derived_problems = merge([Gathered(facts.values, facts.unknown, complete=facts.complete), derive.driver_facts(facts, kb.dirs[0])])
    problems.extend(derived_problems)
    facts, declared_problems = merge([Gathered(facts.values, facts.unknown, complete=facts.complete), declared.derive(facts, kb.dirs[0])])
    problems.extend(declared_problems)

    findings = list(evaluate_all(kb.records, facts)) if env is not None else []
    if options.require_gpu and not facts.get("cuda.driver"):
        findings.insert(0, Finding(NO_GPU, CONFIRMED, ("cuda.driver = none visible",)))
    return Report(facts, env, tuple(findings), tuple(problems), kb, target)

