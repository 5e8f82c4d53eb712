"""kb list: the knowledge base as a list people read (knowledge/README.md is made from it)."""

import json
import os
from typing import List

from envdoctor.kb.load import KnowledgeBase
from envdoctor.kb.record import Record


def _affected(record: Record) -> str:
    ranges = [r.describe() for r in record.affected]
    ranges += [c.describe() for c in record.when]
    return "; ".join(ranges) or "-"


def _fixed(record: Record) -> str:
    """The first good version of each range that has one (a release, or for an upper bound
    found after release the version that works again)."""
    return ", ".join("%s %s" % (r.package, r.fixed) for r in record.affected if r.fixed) or "-"


def _needs(record: Record) -> str:
    return ", ".join(record.remedy.requires) or "-"


def _reads(record: Record) -> str:
    return ", ".join(sorted({"%s %s" % (c.package, c.file) for c in record.code}))


def rows(base: KnowledgeBase) -> List[dict]:
    return [
        {
            "id": r.id,
            "area": r.area,
            "severity": r.severity,
            "summary": r.summary,
            "affected": [{"package": a.package, "introduced": a.introduced, "fixed": a.fixed, "last_affected": a.last_affected} for a in r.affected],
            "when": [c.describe() for c in r.when],
            "fixed": [{"package": a.package, "version": a.fixed} for a in r.affected if a.fixed],
            "code": [{"package": c.package, "file": c.file, "contains": c.contains, "present": c.present} for c in r.code],
            "fix": r.remedy.summary,
            "requires": list(r.remedy.requires),
            "source": r.references[0].url,
            "file": os.path.basename(r.path),
            "evidence_level": r.evidence_level,
        }
        for r in sorted(base.records, key=lambda r: r.id)
    ]


def history_coverage(base: KnowledgeBase) -> dict:
    """What the API history covers (knowledge/history/index.json of each folder): packages, spans, build date."""
    from envdoctor.history.load import knowledge_dirs

    out: dict = {"built": [], "packages": {}}
    for folder in knowledge_dirs(base.dirs[1:]):
        try:
            with open(os.path.join(folder, "index.json"), encoding="utf-8") as handle:
                index = json.load(handle)
        except (OSError, ValueError):
            continue
        out["built"].append(index.get("built"))
        out["packages"].update(index.get("packages", {}))
    return out


def _history_lines(base: KnowledgeBase) -> List[str]:
    cover = history_coverage(base)
    if not cover["packages"]:
        return ["API history: none shipped"]
    out = ["API history (read from released files; built %s): %d packages" % (", ".join(b for b in cover["built"] if b), len(cover["packages"]))]
    for name, p in sorted(cover["packages"].items()):
        gaps = " (not examined: %s)" % ", ".join(p["not_examined"]) if p.get("not_examined") else ""
        out.append("    %-16s %s to %s, %d releases%s" % (name, p["first"], p["last"], p["releases"], gaps))
    return out


def render_json(base: KnowledgeBase) -> str:
    return json.dumps({"schema": "envdoctor.kb/1", "records": rows(base), "history": history_coverage(base)}, indent=2) + "\n"


def render_text(base: KnowledgeBase, colour: bool = False) -> str:
    records = sorted(base.records, key=lambda r: r.id)
    out = []
    for r in records:
        out.append("%-40s %-8s %s" % (r.id, r.severity, r.summary))
        out.append("    area:   %s" % (r.area or "-"))
        out.append("    when:   %s" % _affected(r))
        out.append("    fixed:  %s" % _fixed(r))
        out.append("    needs:  %s" % _needs(r))
        if r.code:
            out.append("    reads:  %s" % _reads(r))
        out.append("    source: %s" % r.references[0].url)
        out.append("    known:  %s" % r.evidence_level)
    out.append("%d records" % len(records))
    out.extend(_history_lines(base))
    return "\n".join(out) + "\n"


def render_markdown(base: KnowledgeBase) -> str:
    """The table knowledge/README.md carries (scripts/update_kb_readme.py)."""
    records = sorted(base.records, key=lambda r: r.id)

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| id | area | severity | known | summary | affected when | fixed in | remedy needs | source |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        out.append("| `%s` | %s | %s | %s | %s | %s | %s | %s | [%s](%s) |" % (
            r.id, r.area or "-", r.severity, r.evidence_level, cell(r.summary), cell(_affected(r)), cell(_fixed(r)), cell(_needs(r)),
            cell(_short(r.references[0].url)), r.references[0].url))
    return "\n".join(out) + "\n"


def _short(url: str) -> str:
    for prefix in ("https://github.com/", "https://"):
        if url.startswith(prefix):
            return url[len(prefix):]
    return url
