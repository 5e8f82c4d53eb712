"""Doctor-style text: what was found about the environment, then the findings."""

from typing import Callable, List, Sequence

from envdoctor import __version__
from envdoctor.check import Report
from envdoctor.facts import Facts, Problem, Unknown, describe
from envdoctor.kb.evaluate import CONFIRMED, Finding
from envdoctor.kb.record import EVIDENCE_WORDS
from envdoctor.render.style import Style

KEY_PACKAGES = (
    "xtuner", "transformers", "torch", "torchvision", "accelerate", "peft", "deepspeed",
    "flash-attn", "bitsandbytes", "mmengine", "datasets", "triton", "xformers",
)


def _fact(facts: Facts, key: str, absent: str = "none") -> str:
    value = facts.get(key)
    if isinstance(value, Unknown):
        return "unknown (%s)" % value.reason
    return absent if value is None else describe(value)


def _python(report: Report) -> List[str]:
    f = report.facts
    if not f.known("python"):
        return []
    return ["Python %s (%s) %s on %s %s" % (
        _fact(f, "python"), _fact(f, "python.implementation"), _fact(f, "python.executable"),
        _fact(f, "platform.system"), _fact(f, "platform.machine"))]


def _packages(report: Report) -> List[str]:
    if report.environment is None:
        return []
    installed = report.facts.packages()
    lines = ["%-14s %s" % (name, installed[name]) for name in KEY_PACKAGES if name in installed]
    missing = [name for name in ("xtuner", "transformers", "torch") if name not in installed]
    if missing:
        lines.append("not installed: %s" % ", ".join(missing))
    lines.append("%d distributions in all" % len(report.environment.distributions))
    return lines


def _cuda(report: Report) -> List[str]:
    f = report.facts
    lines = []
    if f.get("torch.version") is not None:
        cuda = f.get("torch.cuda")
        build = "CPU build" if cuda is None else "built for CUDA %s" % _fact(f, "torch.cuda")
        lines.append("torch %s, %s" % (_fact(f, "torch.version"), build))
    driver = f.get("cuda.driver")
    if driver is None:
        lines.append("NVIDIA driver: none visible (pass --driver VERSION to check against one)")
    else:
        source = f.get("cuda.driver.source")
        lines.append("NVIDIA driver: %s%s" % (_fact(f, "cuda.driver"), " (from %s)" % source if isinstance(source, str) else ""))
    toolkit, family = f.values.get("cuda.driver.toolkit_floor"), f.values.get("cuda.driver.family_floor")
    if toolkit or family:
        wants = ["driver >= %s" % toolkit] if toolkit else []
        if family:
            wants.append(">= %s with minor-version compatibility" % family)
        lines.append("CUDA %s wants %s" % (_fact(f, "torch.cuda"), ", ".join(wants)))
    count = f.get("gpu.count")
    if count == 0:
        lines.append("GPUs: none visible")
    elif isinstance(count, int):
        lines.append("GPUs: %d x %s, compute capability %s" % (count, _fact(f, "gpu.name"), _fact(f, "gpu.capability")))
    else:
        lines.append("GPUs: %s" % _fact(f, "gpu.count"))
    lines.append("nvcc: %s" % _fact(f, "nvcc", absent="not found"))
    return lines


def _shown(facts: Facts, keys) -> List[str]:
    """One line per fact that was asked for: known, or unknown with its reason."""
    lines = []
    for label, key in keys:
        value = facts.get(key)
        if isinstance(value, Unknown) and value.reason == "not probed":
            continue
        lines.append("%-24s %s" % (label, _fact(facts, key)))
    return lines


def _model(report: Report) -> List[str]:
    f = report.facts
    if not (f.known("model.path") or "model.type" in f.unknown):
        return []
    failed = f.unknown.get("model.type")
    if failed is not None and f.unknown.get("model.remote_code") == failed:
        # The whole model could not be read: say why once, not per fact.
        return _shown(f, (("folder", "model.path"),)) + ["not read: %s" % failed.reason]
    lines = _shown(f, (("folder", "model.path"), ("revision", "model.revision"), ("type", "model.type"),
                       ("architectures", "model.architectures"),
                       ("max_position_embeddings", "model.max_position_embeddings"),
                       ("rope_scaling", "model.rope_scaling"), ("torch_dtype", "model.torch_dtype"),
                       ("attn_implementation", "model.attn_implementation"),
                       ("written by transformers", "model.transformers_version")))
    code = f.get("model.remote_code")
    if code is None:
        lines.append("%-24s none (no auto_map)" % "remote code")
    else:
        digest = f.get("model.remote_code.sha256")
        suffix = ", sha256 %s" % digest[:12] if isinstance(digest, str) else ""
        lines.append("%-24s %s%s" % ("remote code", _fact(f, "model.remote_code"), suffix))
    return lines


def _training(report: Report) -> List[str]:
    f = report.facts
    lines = _shown(f, (("config", "train.config"), ("model", "train.pretrained_model_name_or_path"),
                       ("max_length", "train.max_length"), ("pack_to_max_length", "train.pack_to_max_length"),
                       ("use_varlen_attn", "train.use_varlen_attn"),
                       ("sequence_parallel_size", "train.sequence_parallel_size"),
                       ("batch_size", "train.batch_size"), ("accumulative_counts", "train.accumulative_counts"),
                       ("prompt_template", "train.prompt_template"), ("quantization", "train.quantization"),
                       ("lora", "train.lora")))
    if not lines:
        return []
    return lines + _shown(f, (("gpus", "run.gpus"), ("launcher", "run.launcher")))



def _requirements(report: Report) -> List[str]:
    """With -r: the pins of interest, and what each unpinned range allows."""
    if not report.static:
        return []
    pinned = report.facts.packages()
    lines = ["%-14s %s" % (name, pinned[name]) for name in KEY_PACKAGES if name in pinned]
    lines.append("%d pinned in all" % len(pinned))
    lines.extend("unpinned: " + verdict.describe() for verdict in report.ranges)
    return lines


# Later sources (model, training config) add their own section here.
# Each section returns its lines, or none when it has nothing to say about this report.
SECTIONS = [("Python", _python), ("Packages", _packages), ("Requirements", _requirements), ("torch / CUDA", _cuda),
            ("Model", _model), ("Training config", _training)]


def finding_lines(style: Style, finding: Finding) -> List[str]:
    """One finding as check prints it (compare shows its findings the same way)."""
    record = finding.record
    if finding.status == CONFIRMED:
        mark = style(record.severity, "[%s]" % record.severity)
    else:
        mark = style("possible", "[%s %s]" % ("likely" if finding.likely else "possible", record.severity))
    lines = ["%s %s  %s" % (mark, style("bold", record.id), record.summary)]
    if finding.because:
        lines.append("    because: %s" % "; ".join(finding.because))
    if finding.likely:
        lines.append("    assuming: %s; %s to confirm" % ("; ".join(finding.assumed), finding.undecided[0].hint))
    if finding.evidence:
        lines.append("    decided by: %s" % finding.evidence)
    for u in finding.undecided:
        lines.append("    undecided: %s is unknown (%s): %s" % (u.key, u.reason, u.hint))
    lines.extend(_wrapped("    cause: ", record.details.strip().split("\n\n")[0]))
    lines.extend(_wrapped("    fix: ", record.remedy.summary))
    if record.remedy.note:
        lines.extend(_wrapped("         ", record.remedy.note.strip()))
    lines.append("    see: %s" % record.references[0].url)
    lines.append("    known: %s" % EVIDENCE_WORDS.get(record.evidence_level, record.evidence_level))
    return lines


def _wrapped(head: str, text: str, width: int = 100) -> List[str]:
    import textwrap

    return textwrap.wrap(" ".join(text.split()), width=width, initial_indent=head,
                         subsequent_indent=" " * len(head), break_on_hyphens=False)


def render(report: Report, colour: bool = False, sections: "List[tuple]" = None) -> str:
    style = Style(colour)
    out = ["envdoctor %s: %s" % (__version__, report.target), ""]
    for title, section in sections or SECTIONS:
        lines = section(report)
        if lines:
            out.append(style("bold", title))
            out.extend("  " + line for line in lines)
            out.append("")
    out.append(style("bold", "Findings"))
    if report.fatal:  # nothing was examined: never claim health
        out.append("  %s not checked: the environment could not be probed (see below)" % style("error", "[!]"))
    elif not report.findings:
        ok = style("ok", "[ok]")
        out.append("  %s no known problem (%d records checked)" % (ok, len(report.kb.records)))
    for finding in report.findings:
        out.extend("  " + line for line in finding_lines(style, finding))
    out.extend(problem_lines(style, report.problems))
    out.append("")
    out.append(summary_line(report))
    return "\n".join(out) + "\n"


def problem_lines(style: Style, problems: Sequence[Problem]) -> List[str]:
    """The "Could not read" section (check and fix alike): a source that was named but not read,
    such as a config's hub model missing from the local cache."""
    if not problems:
        return []
    out = ["", style("bold", "Could not read")]
    out.extend("  %s %s" % (style("warning" if not p.fatal else "error", "[!]"), p.message) for p in problems)
    return out


def summary_line(report: Report) -> str:
    counts = {"error": 0, "warning": 0, "info": 0}
    possible = likely = 0
    for f in report.findings:
        if f.status == CONFIRMED:
            counts[f.severity] += 1
        elif f.likely:
            likely += 1
        else:
            possible += 1
    parts = ["%d error%s" % (counts["error"], "" if counts["error"] == 1 else "s"),
             "%d warning%s" % (counts["warning"], "" if counts["warning"] == 1 else "s"),
             "%d info" % counts["info"]] + (["%d likely" % likely] if likely else []) + ["%d possible" % possible]
    return "Summary: " + ", ".join(parts) + (" (probe failed)" if report.fatal else "")


Section = Callable[[Report], List[str]]
