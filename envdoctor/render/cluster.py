"""A cluster report (check --distributed, compare) as text, JSON (schema envdoctor.cluster/1 in
docs/json-schema.md) or markdown. Findings are drawn as `check` draws them."""

import json
from typing import Any, Dict, List, Sequence

from envdoctor import __version__
from envdoctor.cluster.drift import Cluster, Drift
from envdoctor.history.ranges import runs
from envdoctor.kb.evaluate import CONFIRMED
from envdoctor.render.json import finding_dict
from envdoctor.render.style import Style

SCHEMA = "envdoctor.cluster/1"
SHOWN = 6  # node names per value in text; the JSON lists all


def _plural(n: int, word: str, plural: str = "") -> str:
    return "%s %s" % (format(n, ","), word if n == 1 else plural or word + "s")


def rank_ranges(ranks: Sequence[int]) -> str:
    """0-7, 9, 12-15"""
    return ", ".join(runs(ranks))


def where(cluster: Cluster, nodes: Sequence[int]) -> str:
    """Which nodes, and their ranks: "node 0 (a), node 2 (c) [ranks 0-7, 16-23]"."""
    names = [cluster.nodes[i].label for i in nodes[:SHOWN]]
    text = ", ".join(names)
    if len(nodes) > SHOWN:
        text += " and %s more" % format(len(nodes) - SHOWN, ",")
    if len(nodes) > 1 and len(nodes) == len(cluster.nodes):
        text = "all %s nodes" % format(len(nodes), ",")
    ranks = cluster.ranks(nodes)
    if ranks:
        text += " [rank%s %s]" % ("" if len(ranks) == 1 else "s", rank_ranges(ranks))
    return text


def headline(cluster: Cluster, command: str) -> str:
    ranks = cluster.ranks(range(len(cluster.nodes)))
    parts = [_plural(len(cluster.nodes), "node")]
    if ranks:
        parts[0] += " (%s)" % _plural(len(ranks), "rank")
    parts.append(_plural(cluster.environments, "distinct environment"))
    return "envdoctor %s %s: %s" % (__version__, command, ", ".join(parts))


def summary_line(cluster: Cluster) -> str:
    counts = {"error": 0, "warning": 0, "info": 0, "possible": 0}
    for nf in cluster.findings:
        counts[nf.finding.severity if nf.finding.status == CONFIRMED else "possible"] += 1
    parts = ["%s must agree but differ%s" % (_plural(len(cluster.must_agree), "fact"), "s" if len(cluster.must_agree) == 1 else ""),
             _plural(len(cluster.harmless), "harmless difference"),
             _plural(counts["error"], "error"), _plural(counts["warning"], "warning"),
             "%d info" % counts["info"], "%d possible" % counts["possible"]]
    if cluster.missing:
        parts.append(_plural(len(cluster.missing), "rank") + " missing")
    return "Summary: " + ", ".join(parts)


# -- text --------------------------------------------------------------------------------------


def _drift_lines(cluster: Cluster, drift: Drift, style: Style) -> List[str]:
    out = [style("bold", drift.key)]
    width = min(max(len(h.describe()) for h in drift.values), 40)
    for holding in drift.values:
        out.append("  %-*s  %s" % (width, holding.describe(), where(cluster, holding.nodes)))
    out.append("  why: %s" % drift.rule.why)
    return out


def render_text(cluster: Cluster, command: str, colour: bool = False) -> str:
    from envdoctor.render.text import finding_lines

    style = Style(colour)
    out = [headline(cluster, command), ""]
    if cluster.missing:
        out.append(style("bold", "Missing ranks"))
        out += ["  %s %s" % (style("error", "[!]"), line) for line in cluster.missing]
        out.append("")
    if cluster.must_agree:
        out.append(style("bold", "Must agree, but differ between nodes"))
        for drift in cluster.must_agree:
            out += ["  " + line for line in _drift_lines(cluster, drift, style)]
        out.append("")
    elif cluster.nodes and not cluster.missing:
        out += ["%s every fact that must agree does (%s compared)" % (style("ok", "[ok]"), _plural(len(cluster.nodes), "node")), ""]
    if cluster.harmless:
        out.append(style("bold", "Differ, harmless by knowledge/tables/drift.toml"))
        for drift in cluster.harmless:
            values = "; ".join("%s on %s" % (h.describe(), where(cluster, h.nodes)) for h in drift.values[:3])
            more = " (%s in all)" % _plural(len(drift.values), "value") if len(drift.values) > 3 else ""
            out.append("  %s: %s%s" % (drift.key, values, more))
        out.append("")
    if cluster.nodes:
        out.append(style("bold", "Findings (once per distinct environment)"))
        if not cluster.findings:
            out.append("  %s no known problem (%d records checked)" % (style("ok", "[ok]"), cluster.records))
        for nf in cluster.findings:
            lines = finding_lines(style, nf.finding)
            out.append("  " + lines[0])
            out.append("      on: %s" % where(cluster, nf.nodes))
            out += ["  " + line for line in lines[1:]]
        out.append("")
    if cluster.problems:
        out.append(style("bold", "Could not read"))
        for np in cluster.problems:
            mark = style("error" if np.problem.fatal else "warning", "[!]")
            out.append("  %s %s: %s" % (mark, where(cluster, np.nodes), np.problem.message))
        out.append("")
    out.append(summary_line(cluster))
    return "\n".join(out) + "\n"


# -- json --------------------------------------------------------------------------------------


def _nodes_ranks(cluster: Cluster, nodes: Sequence[int]) -> Dict[str, Any]:
    return {"nodes": [cluster.nodes[i].label for i in nodes], "ranks": list(cluster.ranks(nodes))}


def cluster_dict(cluster: Cluster) -> Dict[str, Any]:
    counts = {"error": 0, "warning": 0, "info": 0, "possible": 0}
    for nf in cluster.findings:
        counts[nf.finding.severity if nf.finding.status == CONFIRMED else "possible"] += 1
    return {
        "schema": SCHEMA,
        "envdoctor": __version__,
        "source": cluster.source,
        "exit_code": cluster.exit_code,
        "nodes": [{"node": n.label, "ranks": list(n.ranks), "target": n.report.get("target"),
                   "exit_code": n.report.get("exit_code")} for n in cluster.nodes],
        "environments": cluster.environments,
        "missing": list(cluster.missing),
        "drift": [
            {"fact": d.key, "must_agree": d.rule.agree, "why": d.rule.why,
             "values": [dict({"value": h.value, "unknown": h.reason}, **_nodes_ranks(cluster, h.nodes)) for h in d.values]}
            for d in cluster.drift
        ],
        "findings": [dict(finding_dict(nf.finding), **_nodes_ranks(cluster, nf.nodes)) for nf in cluster.findings],
        "problems": [dict({"source": p.problem.source, "message": p.problem.message, "fatal": p.problem.fatal},
                          **_nodes_ranks(cluster, p.nodes)) for p in cluster.problems],
        "summary": dict(counts, must_agree=len(cluster.must_agree), harmless=len(cluster.harmless),
                        nodes=len(cluster.nodes), missing=len(cluster.missing)),
        "records_checked": cluster.records,
    }


def render_json(cluster: Cluster) -> str:
    return json.dumps(cluster_dict(cluster), indent=2) + "\n"


# -- markdown ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(cluster: Cluster, command: str) -> str:
    from envdoctor.render.markdown import ICON

    out = ["### " + headline(cluster, command), ""]
    out += ["> ❌ %s" % _cell(line) for line in cluster.missing]
    if cluster.missing:
        out.append("")
    if cluster.drift:
        out += ["| fact | must agree | value | where |", "|---|---|---|---|"]
        for d in cluster.drift:
            for i, h in enumerate(d.values):
                head = ("`%s`" % d.key, "❌ yes" if d.rule.agree else "no") if i == 0 else ("", "")
                out.append("| %s | %s | %s | %s |" % (head + (_cell(h.describe()), _cell(where(cluster, h.nodes)))))
        out.append("")
    elif cluster.nodes and not cluster.missing:
        out += ["✅ Every fact that must agree does (%s compared)." % _plural(len(cluster.nodes), "node"), ""]
    if cluster.findings:
        out += ["| | id | summary | on | fix | source |", "|---|---|---|---|---|---|"]
        for nf in cluster.findings:
            r = nf.finding.record
            icon = ICON[r.severity] if nf.finding.status == CONFIRMED else ICON["possible"]
            out.append("| %s | `%s` | %s | %s | %s | [link](%s) |" % (
                icon, r.id, _cell(r.summary), _cell(where(cluster, nf.nodes)), _cell(r.remedy.summary), r.references[0].url))
        out.append("")
    elif cluster.nodes:
        out += ["✅ No known problem (%d records checked)." % cluster.records, ""]
    if cluster.problems:
        out += ["<details><summary>Could not read</summary>", ""]
        out += ["- %s: %s" % (_cell(where(cluster, p.nodes)), _cell(p.problem.message)) for p in cluster.problems]
        out += ["", "</details>", ""]
    out.append(summary_line(cluster))
    return "\n".join(out) + "\n"
