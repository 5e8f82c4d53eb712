"""The check: gather facts from the sources, evaluate the knowledge base, make a report.

Knows nothing of the command line; ``cli.py`` builds the options and picks a renderer.
"""

import os
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple

from envdoctor.facts import Facts, Gathered, Problem, Unknown, merge
from envdoctor.kb import defaults
from envdoctor.kb.derive import derive_all
from envdoctor.kb.evaluate import CONFIRMED, Finding, evaluate_all
from envdoctor.kb.load import KnowledgeBase, is_shipped, load_kb
from envdoctor.kb.record import Record, Reference, Remedy
from envdoctor.options import CheckOptions
from envdoctor.sources import binary, code, environment, gpu
from envdoctor.sources import run as run_facts

if TYPE_CHECKING:  # imported by run() only with -r: the reader brings in packaging.requirements
    from envdoctor.sources.requirements import RequirementsFile

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


class Report(NamedTuple):
    facts: Facts
    environment: Optional[environment.Environment]
    findings: Tuple[Finding, ...]
    problems: Tuple[Problem, ...]
    kb: KnowledgeBase
    target: str = ""  # which interpreter was examined, in words
    ranges: Tuple = ()  # with -r: static.RangeVerdict for each unpinned requirement
    static: bool = False  # the facts come from a requirements file (-r), nothing installed
    requirements: Optional["RequirementsFile"] = None  # with -r: the file as read
    fail_on: str = "error"  # the lowest severity that makes the exit code 1

    @property
    def fatal(self) -> bool:
        return any(p.fatal for p in self.problems)

    @property
    def exit_code(self) -> int:
        if self.fatal:
            return 2
        return 1 if self.confirmed(self.fail_on) else 0

    def confirmed(self, at_least: str = "info") -> Tuple[Finding, ...]:
        floor = SEVERITY_RANK[at_least]
        return tuple(f for f in self.findings if f.status == CONFIRMED and SEVERITY_RANK[f.severity] >= floor)


def training_sources(options: CheckOptions) -> List[Gathered]:
    """The model, the XTuner config and the launch. ``--config`` alone implies the model
    its pretrained_model_name_or_path names; that one is not fatal when missing."""
    parts: List[Gathered] = []
    spec, fatal = options.model, True
    if options.model or options.config:  # imported only when asked for: they bring in ast
        from envdoctor.sources import model, xtuner_config
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


def run(options: CheckOptions, kb: Optional[KnowledgeBase] = None, fail_on: str = "error", history: bool = True) -> Report:
    """Sources -> facts -> derived facts -> findings. ``history=False`` leaves out the API
    history's import check of the environment or pins (fix, whose planner judges each candidate
    with the history itself and reads no finding of the report, saves its 0.3 s to seconds)."""
    kb = kb or load_kb(options.extra_kb)
    # A broken record or table of the user's own (--kb) stops the check: its verdicts would be
    # missing without a word, or wrong.
    problems: List[Problem] = [Problem("knowledge", str(e), fatal=not is_shipped(e.path)) for e in kb.errors]
    parts: List[Gathered] = []
    env = None
    parsed = None

    if options.requirements:
        from envdoctor.sources import requirements

        parsed = requirements.read(options.requirements, options.python_version)
        parts.append(requirements.gather(parsed))
        target = "%s (pins read statically, Python %s)" % (options.requirements, parsed.python)
    else:
        if options.python:
            inventory, problem = environment.probe_interpreter(options.python, options.probe_timeout)
            target = options.python
        else:
            inventory, problem = environment.probe_here(), None
            target = "this interpreter"
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
    parts.extend(training_sources(options))
    parts.append(defaults.gather(kb.tables))  # read only where the fact itself is unknown
    if options.set_facts:  # the user's word wins over any probe
        parts.append(Gathered(values=dict(options.set_facts)))

    facts, gathered = merge(parts)
    problems.extend(gathered)
    facts, derived = derive_all(facts, kb)
    problems.extend(derived)

    fatal = any(p.fatal for p in problems)
    findings = [] if fatal else list(evaluate_all(kb.records, facts))
    if options.require_gpu and not facts.get("cuda.driver"):
        findings.insert(0, Finding(NO_GPU, CONFIRMED, ("cuda.driver = none visible",)))
    if history and not fatal and os.environ.get("ENVDOCTOR_IMPORT_CHECK", "1") != "0":  # the API history's import check
        from envdoctor.history.findings import import_findings, pin_findings

        from envdoctor.history.findings import model_type_finding

        if env is not None:
            findings.extend(import_findings(env, [options.config] if options.config else [], options.extra_kb, findings))
        elif parsed is not None:
            findings.extend(pin_findings(parsed, parsed.python, options.extra_kb, findings))
        unknown_type = model_type_finding(facts, options.extra_kb, env) if env is not None else None
        if unknown_type is not None:
            findings.append(unknown_type)
    ranges: Tuple = ()
    if parsed is not None and not fatal:
        from envdoctor import static

        ranges = static.judge_unpinned(parsed.unpinned, facts, kb)
    return Report(facts, env, tuple(findings), tuple(problems), kb, target, ranges, static=parsed is not None,
                  requirements=parsed, fail_on=fail_on)
