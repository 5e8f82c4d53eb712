"""Import-check failures as findings, with the fix the API history gives.

A failure is a fact read from the installed files (the import would fail); the history says where
the missing module or name exists and which release of the importing package stops asking for it.
"""

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from envdoctor.history.load import History, PackageHistory
from envdoctor.history.where import distribution_of, pin_for, where_exists
from envdoctor.importcheck import Failure
from envdoctor.kb.evaluate import CONFIRMED, Finding
from envdoctor.kb.record import Record, Reference, Remedy

SHOWN_IMPORTERS = 3


def release_without(ph: PackageHistory, installed: str, module: str, target: str, name: str) -> Optional[str]:
    """The first examined release of the importer, newer than installed, whose module-level unguarded
    imports no longer ask for target/name (from any of its modules)."""
    from packaging.version import Version

    try:
        have = Version(installed)
    except Exception:
        return None
    for version in ph.versions:
        if Version(version) <= have:
            continue
        imports = ph.imports(version)
        if imports is None:
            continue
        asks = any(t == target and (n == name or (not name and not n) or (not name and t == target)) and not fn and not g
                   for _, t, n, fn, g in imports)
        if not name:
            asks = any(t.split(".")[0] == target.split(".")[0] and not fn and not g for _, t, n, fn, g in imports)
        if not asks:
            return version
    return None


def _slug(failure: Failure) -> str:
    what = failure.module + ("." + failure.name if failure.name else "")
    return "IMPORT-" + re.sub(r"[^A-Za-z0-9_.]+", "-", what)


def to_finding(failure: Failure, importers: Sequence[Failure], history: History,
               installed: Dict[str, str]) -> Finding:
    importer_dist = distribution_of(failure.importer, history) if "." in failure.importer or failure.importer in installed else ""
    importer_version = installed.get(importer_dist, "")
    shown = []
    for f in importers[:SHOWN_IMPORTERS]:
        shown.append("%s line %d (%s)" % (f.path, f.line, " -> ".join(f.chain)))
    more = len(importers) - len(shown)
    details = ["%s: %s." % (failure.error, failure.message),
               "Imported at module level, with no guard, by: " + "; ".join(shown) + (" and %d more" % more if more else "") + ".",
               "Read from the installed files (nothing was run)."]
    requires: List[str] = []
    fixes: List[str] = []
    target_dist = distribution_of(failure.module, history)
    where = where_exists(history, failure.module, failure.name)
    if failure.name:
        what = "%s.%s" % (failure.module, failure.name)
    else:
        what = failure.module
    if where is not None and where.spans:
        details.append("%s exists in %s (examined releases)." % (what, where.text()))
        pin = pin_for(where, installed.get(target_dist))
        if pin and target_dist in installed:
            requires.append(pin)
            fixes.append("install %s (%s is %s here)" % (pin, target_dist, installed[target_dist]))
    elif where is not None:
        details.append("No examined release of %s has %s." % (where.package, what))
    if not failure.name and target_dist not in installed:
        requires.append(target_dist)
        fixes.append("install %s" % target_dist)
    ph = history.package(importer_dist) if importer_dist else None
    if ph is not None and importer_version:
        newer = release_without(ph, importer_version, failure.importer, failure.module, failure.name)
        if newer:
            fixes.append("or upgrade %s to %s, which no longer imports it at module level" % (importer_dist, newer))
        elif importer_dist != target_dist:
            details.append("No newer examined %s release stops importing it." % importer_dist)
    summary = "%s: %s" % (failure.error, failure.message)
    if importer_dist and importer_version:
        summary = "%s %s does not import: %s" % (importer_dist, importer_version, summary)
    record = Record(
        id=_slug(failure),
        summary=summary,
        severity="error",
        details=" ".join(details),
        affected=(),
        when=(),
        code=(),
        symptoms=(),
        remedy=Remedy("; ".join(fixes) or "make %s importable" % what, tuple(requires)),
        references=(Reference("knowledge/history/%s.json" % (target_dist or "index"),
                              "API history of %s (envdoctor), read from its released files" % target_dist),),
        path="<import check>", evidence_level="read-from-code",
        tags=("import-check",),
    )
    because = ("%s line %d imports %s" % (failure.importer, failure.line, what),)
    return Finding(record, CONFIRMED, because, (), "code")


def explained_by(failure: Failure, findings: Iterable[Finding]) -> bool:
    """A confirmed record already names this error (its symptom matches the line): it says more."""
    return explained_by_line("%s: %s" % (failure.error, failure.message), findings)


def explained_by_line(line: str, findings: Iterable[Finding]) -> bool:
    for f in findings:
        if f.status != CONFIRMED:
            continue
        for s in f.record.symptoms:
            try:
                if re.search(s.pattern, line):
                    return True
            except re.error:
                continue
    return False


def import_findings(env, files: Sequence[str], kb_dirs: Sequence[str], existing: Sequence[Finding]) -> List[Finding]:
    """Run the import check on an examined environment; findings not already explained by a record."""
    from envdoctor.history.keywords import keyword_findings
    from envdoctor.history.load import load_history
    from envdoctor.importcheck import examine

    history = load_history(kb_dirs)
    installed = {d.name: d.version for d in env.distributions}
    folders = [d.location for d in env.distributions if d.location]
    checker = examine(folders, installed, files, known_top=history.index["modules"])
    out = []
    for failure in checker.result:
        if explained_by(failure, existing):
            continue
        out.append(to_finding(failure, checker.failures.get((failure.message, failure.error), [failure]), history, installed))
    for finding in keyword_findings(checker, history, installed, env.python):
        if not explained_by_line(finding.record.summary.split(": ", 1)[1], existing):
            out.append(finding)
    return out


def _pin_record(b, history: History) -> Record:

    if b.kind == "import":
        error = "ModuleNotFoundError" if b.message.startswith("No module") else "ImportError"
        what = "%s.%s" % (b.target, b.name) if b.name else b.target
        details = ["%s %s imports %s at module level, with no guard, in %s (reached from its entry modules);" % (
            b.package, b.version, what, b.module)]
        requires: List[str] = []
        fixes: List[str] = []
        if b.other_version:
            details.append("the pinned %s %s lacks it: %s: %s." % (b.other, b.other_version, error, b.message))
            where = where_exists(history, b.target, b.name)
            if where is not None and where.spans:
                details.append("%s exists in %s." % (what, where.text()))
                pin = pin_for(where, b.other_version)
                if pin:
                    requires.append(pin)
                    fixes.append("pin %s" % pin)
        else:
            details.append("%s is neither pinned nor declared by any pin: %s: %s." % (b.other, error, b.message))
            requires.append(b.other)
            fixes.append("add %s to the pins" % b.other)
        ph = history.package(b.package)
        if ph is not None:
            newer = release_without(ph, b.version, b.module, b.target, b.name)
            if newer:
                fixes.append("or pin %s==%s, which no longer imports it at module level" % (b.package, newer))
        summary = "%s %s does not import with these pins: %s: %s" % (b.package, b.version, error, b.message)
        fix = "; ".join(fixes) or "change the pins"
        rid = "PINS-IMPORT-%s" % re.sub(r"[^A-Za-z0-9_.]+", "-", what)
    else:
        summary = b.message
        details = ["Declared by %s %s (its Requires-%s), read from the released files." % (
            b.package, b.version, "Python" if b.other == "python" else "Dist")]
        requires = []
        fix = "change the pin of %s or of %s" % (b.package, b.other)
        rid = "PINS-REQUIRES-%s-%s" % (b.package, b.other)
    return Record(id=rid, summary=summary, severity="error", details=" ".join(details), affected=(), when=(), code=(),
                  symptoms=(), remedy=Remedy(fix, tuple(requires)),
                  references=(Reference("knowledge/history/%s.json" % b.package, "API history of %s (envdoctor)" % b.package),),
                  path="<api history>", tags=("api-history",), evidence_level="read-from-code")


def pin_findings(parsed, python: str, kb_dirs: Sequence[str], existing: Sequence[Finding]) -> List[Finding]:
    """check -r: breaks between the pins, from the history (nothing installed)."""
    from envdoctor.history.load import load_history
    from envdoctor.history.pins import import_breaks, requirement_breaks

    history = load_history(kb_dirs)
    pins = {p.name: p.version for p in parsed.pins}
    extras = {p.name: tuple(p.extras) for p in parsed.pins}
    out = []
    confirmed_ids = {f.record.id for f in existing if f.status == CONFIRMED}
    for b in import_breaks(history, pins, python, extras):
        line = "%s: %s" % ("ModuleNotFoundError" if b.message.startswith("No module") else "ImportError", b.message)
        if any(f.status == CONFIRMED and any(_matches(s.pattern, line) for s in f.record.symptoms) for f in existing):
            continue
        out.append(Finding(_pin_record(b, history), CONFIRMED, ("%s %s, %s %s" % (b.package, b.version, b.other, b.other_version or "not pinned"),), (), "code"))
    declared_by_records = {r.package for f in existing if f.status == CONFIRMED for r in f.record.affected
                           if "requirements" in f.record.tags or "python" in f.record.tags}
    for b in requirement_breaks(history, pins, python, extras):
        if b.package in declared_by_records:
            continue
        out.append(Finding(_pin_record(b, history), CONFIRMED, (b.message,), (), "code"))
    return out


def _matches(pattern: str, line: str) -> bool:
    try:
        return re.search(pattern, line) is not None
    except re.error:
        return False


def installed_model_types(env) -> Optional[Tuple[str, ...]]:
    """The model types the installed transformers knows, from its configuration_auto.py on disk."""
    from envdoctor.history.scan import model_types

    for d in env.distributions:
        if d.name == "transformers" and d.location:
            path = "%s/transformers/models/auto/configuration_auto.py" % d.location
            try:
                with open(path, "rb") as handle:
                    return model_types(handle.read()) or None
            except (OSError, SyntaxError, ValueError):
                return None
    return None


def model_type_finding(facts, kb_dirs: Sequence[str], env=None) -> Optional[Finding]:
    """--model: a model_type the transformers here does not know, with no remote code for it, cannot load."""
    from envdoctor.history.load import load_history

    model_type = facts.values.get("model.type")
    version = facts.values.get("pkg.transformers")
    if not isinstance(model_type, str) or not isinstance(version, str) or "model.remote_code" not in facts.values \
            or facts.values.get("model.remote_code") is not None:
        return None
    history = load_history(kb_dirs)
    ph = history.package("transformers")
    if env is not None:
        known_types = installed_model_types(env)
        if known_types is None:
            return None
        known: Optional[bool] = model_type in known_types
        how = "read from the installed transformers/models/auto/configuration_auto.py"
    else:
        known = ph.knows_model_type(model_type, version) if ph else None
        how = "from the API history of transformers"
    if known is not False:
        return None
    spans = ph.span(ph.model_type_ranges(model_type)) if ph and ph.model_type_ranges(model_type) else []
    if spans:
        pin = "transformers%s" % spans[-1].specifier() if spans[-1].specifier() else "transformers"
        fix = "install %s (model type %r exists in transformers %s)" % (pin, model_type, spans[-1].text())
        requires: Tuple[str, ...] = (pin,)
    else:
        fix = "no examined transformers release knows %r: use the model's own code (trust_remote_code, an auto_map in config.json) or a newer transformers" % model_type
        requires = ()
    record = Record(
        id="MODEL-TYPE-UNKNOWN", severity="error",
        summary="transformers %s does not know model type %r, and the model has no remote code" % (version, model_type),
        details="Loading fails: the checkpoint has model type %r but Transformers does not recognize this architecture "
                "(%s)." % (model_type, how),
        affected=(), when=(), code=(), symptoms=(), remedy=Remedy(fix, requires),
        references=(Reference("knowledge/history/transformers.json", "API history of transformers (envdoctor)"),),
        path="<api history>", tags=("api-history",), evidence_level="read-from-code")
    return Finding(record, CONFIRMED, ("model.type = %s" % model_type, "pkg.transformers = %s" % version), (), "code")
