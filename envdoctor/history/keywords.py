"""Keyword checks at literal call sites: `LoraConfig(..., use_dora=True)` with a peft that lacks it.

The import check collects module-level calls with literal keywords, in the XTuner config and in the
modules it follows, of callables imported from the stack (and a config's ``dict(type=Callee, ...)``,
which mmengine builds with those keywords). A keyword is an error only where all of these hold:

- the installed callable's whole signature is read from its file (envdoctor.signatures: no
  ``**kwargs``, no decorator that may change it) and lacks the keyword;
- the API history knows the callable at the installed release (where it is defined), and does not
  say it accepts the keyword there.

Anything unknown says nothing. The fix is the history's range of releases that accept the keyword.
"""

from typing import Dict, List, Optional, Tuple

from envdoctor.history.load import History, PackageHistory
from envdoctor.history.where import distribution_of
from envdoctor.kb.evaluate import CONFIRMED, Finding
from envdoctor.kb.record import Record, Reference, Remedy

# A config's dict(type=Callee, ...) is checked only for these libraries' callables: XTuner and
# mmengine build theirs through code that takes some keys out first (mmengine's schedulers drop
# `convert_to_iter_based`, its optimizer wrappers `paramwise_cfg`), which the dict does not show.
BUILT_AS_WRITTEN = {"peft", "transformers", "trl", "accelerate", "datasets", "bitsandbytes"}
SHOWN_SITES = 3


def _qualified(ph: PackageHistory, defined_in: Optional[str], name: str, version: str) -> Optional[str]:
    """The history's name for the callable at `version`: where the files say it is defined, else the one
    callable of that name the history knows there."""
    if defined_in and ph._holds(ph.keyword_ranges(defined_in + "." + name, ""), version):
        return defined_in + "." + name
    known = [q for q in ph.callables_named(name) if ph._holds(ph.keyword_ranges(q, ""), version)]
    return known[0] if len(known) == 1 else None


def _fix(ph: PackageHistory, qual: str, keyword: str, dist: str, version: str) -> Tuple[str, Tuple[str, ...], str]:
    """(fix in words, requirements, where the keyword exists in words)."""
    ranges = ph.keyword_ranges(qual, keyword)
    if not ranges:
        return ("drop %s=: no examined %s release (%s to %s) accepts it" % (keyword, dist, ph.versions[0], ph.versions[-1]),
                (), "in no examined release")
    spans = ph.span(ranges)
    where = ", ".join(s.text() for s in spans)
    spec = spans[-1].specifier()
    if not spec:
        return "drop %s= (%s %s accepts it)" % (keyword, dist, where), (), where
    pin = dist + spec
    return "install %s (%s is %s here), or drop %s=" % (pin, dist, version, keyword), (pin,), where


def keyword_findings(checker, history: History, installed: Dict[str, str], python: str) -> List[Finding]:
    """Error findings for literal keywords the installed callables do not accept (see the module's doc)."""
    from envdoctor.signatures import Signatures

    signatures = Signatures(checker)
    groups: Dict[Tuple[str, str, str], list] = {}
    found: Dict[Tuple[str, str, str], tuple] = {}
    for site in checker.sites:
        dist = distribution_of(site.module, history)
        version = installed.get(dist)
        ph = history.package(dist) if version else None
        if ph is None or (site.built and dist not in BUILT_AS_WRITTEN):
            continue
        qual = _qualified(ph, None, site.name, version)
        if qual is not None and all(ph.accepts(qual, k, version) is True for k in site.keywords):
            continue  # the history already says every keyword is taken: no file read
        where = signatures.definition(site.module, site.name)
        qual = _qualified(ph, where[1] if where else None, site.name, version)
        if qual is None:
            continue
        accepts = signatures.accepts(site.module, site.name) if where else None
        if accepts is None:  # a lazy module (transformers): read the callable where the history says it is
            accepts = signatures.accepts(qual.rsplit(".", 1)[0], site.name)
        if accepts is None:
            continue
        for keyword in site.keywords:
            if keyword in accepts.names or ph.accepts(qual, keyword, version) is True:
                continue
            key = (qual, keyword, dist)
            groups.setdefault(key, []).append(site)
            found.setdefault(key, (accepts, ph, version))
    out = []
    for (qual, keyword, dist), sites in sorted(groups.items()):
        accepts, ph, version = found[(qual, keyword, dist)]
        out.append(_finding(qual, keyword, dist, version, sites, accepts, ph, python))
    return out


def _finding(qual, keyword, dist, version, sites, accepts, ph, python) -> Finding:
    message = "TypeError: " + accepts.message(keyword, python)
    fix, requires, where = _fix(ph, qual, keyword, dist, version)
    shown = []
    for s in sites[:SHOWN_SITES]:
        how = "dict(type=%s, %s=...), built with these keywords" % (s.name, keyword) if s.built else \
            "%s(..., %s=...)" % (s.name, keyword)
        shown.append("%s line %d: %s" % (s.path, s.line, how))
    more = len(sites) - len(shown)
    details = [message + ".",
               "Called at module level with this keyword: " + "; ".join(shown) + (" and %d more" % more if more else "") + ".",
               "%s %s's %s takes no such keyword (its signature read from the installed files, nothing run); "
               "the API history has %s accepting it in: %s." % (dist, version, qual, keyword, where)]
    record = Record(
        id="KEYWORD-%s.%s" % (qual, keyword),
        summary="%s %s: %s" % (dist, version, message),
        severity="error",
        details=" ".join(details),
        affected=(), when=(), code=(), symptoms=(),
        remedy=Remedy(fix, requires),
        references=(Reference("knowledge/history/%s.json" % dist,
                              "API history of %s (envdoctor), read from its released files" % dist),),
        path="<import check>", evidence_level="read-from-code",
        tags=("import-check",),
    )
    because = tuple("%s line %d passes %s= to %s" % (s.importer, s.line, keyword, s.name) for s in sites[:SHOWN_SITES])
    return Finding(record, CONFIRMED, because, (), "code")

