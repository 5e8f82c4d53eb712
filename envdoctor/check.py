"""The check: gather facts from the sources, evaluate the knowledge base, make a report.

Knows nothing of the command line; ``cli.py`` builds the options and picks a renderer.
"""

import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from envdoctor import derive
from envdoctor.facts import Facts, Gathered, Problem, Unknown, merge
from envdoctor.kb import declared
from envdoctor.kb.evaluate import CONFIRMED, Finding, evaluate_all
from envdoctor.kb.load import KnowledgeBase, load, shipped_dir
from envdoctor.kb.record import Record, Reference, Remedy
from envdoctor.sources import code, environment, gpu, model, xtuner_config
from envdoctor.sources import run as run_facts

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
    model: Optional[str] = None  # a model folder or a hub id in the local cache
    revision: Optional[str] = None  # a hub-cache revision (branch, tag or commit)
    config: Optional[str] = None  # an XTuner config, read with ast
    gpus: Optional[int] = None
    launcher: Optional[str] = None
    requirements: Optional[str] = None  # -r FILE: facts from its pins, nothing installed
    python_version: Optional[str] = None  # with -r: the target Python (default: this one)
    set_facts: Tuple[Tuple[str, object], ...] = ()  # --fact KEY=VALUE: supplied by the user, win over probes


@dataclass(frozen=True)
class Report:
    facts: Facts
    environment: Optional[environment.Environment]
    findings: Tuple[Finding, ...]
    problems: Tuple[Problem, ...]
    kb: KnowledgeBase
    target: str = ""  # which interpreter was examined, in words
    ranges: Tuple = ()  # with -r: static.RangeVerdict for each unpinned requirement

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


def training_sources(options: CheckOptions) -> List[Gathered]:
    """The model, the XTuner config and the launch. ``--config`` alone implies the model
    its pretrained_model_name_or_path names; that one is not fatal when missing."""
    parts: List[Gathered] = []
    spec, fatal = options.model, True
    if options.config:
        config = xtuner_config.gather(options.config)
        parts.append(config)
        if spec is None:
            named = config.values.get("train.pretrained_model_name_or_path")
            if isinstance(named, str):
                spec, fatal = named, False
            else:
                why = config.unknown.get("train.pretrained_model_name_or_path")
                reason = "the config names no model (%s); pass --model" % (why.reason if why else "no pretrained_model_name_or_path")
                parts.append(Gathered(unknown={k: Unknown(reason) for k in model.KEYS}))
    if spec:
        parts.append(model.gather(spec, options.revision, fatal=fatal))
    parts.append(run_facts.gather(options.gpus, options.launcher, os.environ))
    return parts


def run(options: CheckOptions, kb: Optional[KnowledgeBase] = None) -> Report:
    report = _run(options, kb)
    if not options.set_facts:
        return report
    facts = report.facts.with_values(dict(options.set_facts))
    findings = tuple(evaluate_all(report.kb.records, facts)) if not report.fatal else report.findings
    if options.require_gpu and not facts.get("cuda.driver"):
        findings = (Finding(NO_GPU, CONFIRMED, ("cuda.driver = none visible",)),) + findings
    ranges = report.ranges
    if report.ranges:
        from envdoctor import static
        from envdoctor.sources.requirements import Unpinned

        ranges = static.judge_unpinned([Unpinned(r.name, r.specifier, r.where) for r in report.ranges], facts, report.kb)
    return Report(facts, report.environment, findings, report.problems, report.kb, report.target, ranges)


def _run(options: CheckOptions, kb: Optional[KnowledgeBase] = None) -> Report:
    kb = kb or load_kb(options.extra_kb)
    parts: List[Gathered] = []
    problems: List[Problem] = [Problem("knowledge", str(e)) for e in kb.errors]

    if options.requirements:
        return _run_requirements(options, kb, problems)
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
    parts.append(gpu.gather(options.driver, options.probe_timeout))
    parts.extend(training_sources(options))

    facts, gathered_problems = merge(parts)
    problems.extend(gathered_problems)
    facts, derived_problems = merge([Gathered(facts.values, facts.unknown, complete=facts.complete), derive.driver_facts(facts, kb.tables)])
    problems.extend(derived_problems)
    facts, _ = merge([Gathered(facts.values, facts.unknown, complete=facts.complete), derive.training_facts(facts)])
    facts, declared_problems = merge([Gathered(facts.values, facts.unknown, complete=facts.complete), declared.derive(facts, kb.dirs[0])])
    problems.extend(declared_problems)

    findings = list(evaluate_all(kb.records, facts)) if env is not None else []
    if options.require_gpu and not facts.get("cuda.driver"):
        findings.insert(0, Finding(NO_GPU, CONFIRMED, ("cuda.driver = none visible",)))
    return Report(facts, env, tuple(findings), tuple(problems), kb, target)



def _run_requirements(options: CheckOptions, kb: KnowledgeBase, problems: List[Problem]) -> Report:
    """check -r FILE: the pins are the environment; nothing is installed or imported."""
    from envdoctor import static
    from envdoctor.sources import requirements

    parsed = requirements.read(options.requirements or "", options.python_version)
    parts = [requirements.gather(parsed), gpu.gather(options.driver, options.probe_timeout)]
    facts, gathered_problems = merge(parts)
    problems.extend(gathered_problems)
    facts, derived_problems = merge([Gathered(facts.values, facts.unknown, complete=facts.complete), derive.driver_facts(facts, kb.dirs[0])])
    problems.extend(derived_problems)
    fatal = any(p.fatal for p in problems)
    findings = [] if fatal else list(evaluate_all(kb.records, facts))
    if options.require_gpu and not facts.get("cuda.driver"):
        findings.insert(0, Finding(NO_GPU, CONFIRMED, ("cuda.driver = none visible",)))
    ranges = () if fatal else static.judge_unpinned(parsed.unpinned, facts, kb)
    target = "%s (pins read statically, Python %s)" % (options.requirements, parsed.python)
    return Report(facts, None, tuple(findings), tuple(problems), kb, target, ranges)
