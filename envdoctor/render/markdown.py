"""A report as GitHub-flavoured markdown, for a pull-request comment."""

from typing import List

from envdoctor import __version__
from envdoctor.check import Report
from envdoctor.facts import describe
from envdoctor.kb.evaluate import CONFIRMED
from envdoctor.render.text import KEY_PACKAGES, summary_line

ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️", "possible": "❔"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    f = report.facts
    out: List[str] = ["### envdoctor %s: %s" % (__version__, _cell(report.target)), ""]
    installed = f.packages()
    facts = [("python", describe(f.values.get("python")))]
    facts += [(name, installed[name]) for name in KEY_PACKAGES if name in installed]
    for key in ("torch.cuda", "cuda.driver", "gpu.count", "gpu.capability", "model.type", "model.remote_code",
                "train.use_varlen_attn", "train.sequence_parallel_size", "train.quantization", "run.gpus", "run.launcher"):
        if key in f.values:
            facts.append((key, describe(f.values[key])))
    out += ["| fact | value |", "|---|---|"]
    out += ["| `%s` | %s |" % (k, _cell(v)) for k, v in facts]
    out.append("")
    if report.fatal:  # nothing was examined: never claim health
        out.append("❌ Not checked: the environment could not be probed (see below).")
    elif not report.findings:
        out.append("✅ No known problem (%d records checked)." % len(report.kb.records))
    else:
        out += ["| | id | summary | fix | source |", "|---|---|---|---|---|"]
        for finding in report.findings:
            r = finding.record
            icon = ICON[r.severity] if finding.status == CONFIRMED else ICON["possible"]
            summary = r.summary
            if finding.likely:
                summary += " (likely, assuming %s)" % "; ".join(finding.assumed)
            elif finding.undecided:
                summary += " (possible: needs %s)" % ", ".join("`%s`" % u.key for u in finding.undecided)
            out.append("| %s | `%s` | %s | %s | [link](%s) |" % (
                icon, r.id, _cell(summary), _cell(r.remedy.summary), r.references[0].url))
    if report.problems:
        out += ["", "<details><summary>Could not read</summary>", ""]
        out += ["- %s" % _cell(p.message) for p in report.problems]
        out += ["", "</details>"]
    out += ["", summary_line(report)]
    return "\n".join(out) + "\n"
