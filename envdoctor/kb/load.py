"""Read and validate knowledge-base records. Errors name the file and the field."""

import os
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envdoctor.kb import vocabulary
from envdoctor.kb.locate import line_of
from envdoctor.kb.shipped import shipped_dir  # noqa: F401  (its users import it from here too)
from envdoctor.kb.tables import Tables
from envdoctor.names import canonical_name
from envdoctor.tomlcache import TOMLError, TomlCache, shared
from envdoctor.kb.record import (
    EVIDENCE_LEVELS,
    SEVERITIES,
    CodeCheck,
    Condition,
    Range,
    Record,
    Reference,
    Remedy,
    Reproduction,
    Symptom,
)

TOP_FIELDS = {"id", "summary", "severity", "details", "affected", "when", "code", "symptoms", "remedy", "references", "tags",
              "evidence_level", "reproduction"}
REQUIRED = ("id", "summary", "severity", "details", "remedy", "references")
COMPARISONS = ("below", "above", "at_least")
_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]+$")


class RecordError(NamedTuple):
    path: str
    field: str
    message: str
    line: int = 0  # 1-based line of the file where the field is; 0: not known

    def __str__(self) -> str:
        where = "%s:%d" % (self.path, self.line) if self.line else self.path
        if self.field:
            where = "%s: %s" % (where, self.field)
        return "%s: %s" % (where, self.message)


class KnowledgeBase(NamedTuple):
    records: Tuple[Record, ...]
    errors: Tuple[RecordError, ...]
    dirs: Tuple[str, ...]
    tables: Tables = Tables()  # tables/NAME.toml of every folder, by NAME


def is_shipped(path: str) -> bool:
    """Whether a knowledge file comes with envdoctor (not from a --kb folder)."""
    shipped = os.path.realpath(shipped_dir())
    return os.path.realpath(path).startswith(shipped + os.sep)


def is_version_key(key: str) -> bool:
    return vocabulary.is_version_key(key)


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Errors(Exception):
    """Every problem found in one record, so that a contributor fixes them in one go."""

    def __init__(self, errors: List[_Invalid]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


class _Collect:
    """Runs the checks of one record, keeping each _Invalid instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: List[_Invalid] = []

    def run(self, check, *args, default=None):
        try:
            return check(*args)
        except _Errors as many:
            self.errors.extend(many.errors)
        except _Invalid as exc:
            self.errors.append(exc)
        return default

    def done(self) -> None:
        if self.errors:
            raise _Errors(self.errors)


def _text(data: dict, field: str, required: bool = True) -> str:
    value = data.get(field)
    if value is None:
        if required:
            raise _Invalid(field, "missing")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Invalid(field, "must be a non-empty string")
    return value.strip()


def _version(value: object, field: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(field, "must be a version string, got %r" % (value,))
    try:
        parsed = Version(value)
    except InvalidVersion:
        raise _Invalid(field, "%r is not a version" % value)
    if parsed.local is not None:  # ">=0.1.0+x" is no specifier: it would fail at check time
        raise _Invalid(field, "%r: a local version label (+...) cannot bound a range; use %s" % (value, parsed.public))
    return value


def _specifier(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(field, "must be a version specifier string such as '>=4.43', got %r" % (value,))
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        raise _Invalid(field, "%r is not a version specifier (e.g. '>=4.36,<4.38')" % value)
    return value


def _ranges(data: dict) -> Tuple[Range, ...]:
    items = data.get("affected", [])
    if not isinstance(items, list):
        raise _Invalid("affected", "must be an array of tables ([[affected]])")
    collect = _Collect()
    out = [r for r in (collect.run(_range, item, "affected[%d]" % i) for i, item in enumerate(items)) if r]
    collect.run(_no_overlap, out)
    collect.done()
    return tuple(out)


def _range(item: object, field: str) -> Range:
    if not isinstance(item, dict):
        raise _Invalid(field, "must be a table")
    extra = set(item) - {"package", "introduced", "fixed", "last_affected"}
    if extra:
        raise _Invalid("%s.%s" % (field, sorted(extra)[0]), "unknown field(s): %s" % ", ".join(sorted(extra)))
    package = item.get("package")
    if not isinstance(package, str) or not package:
        raise _Invalid(field + ".package", "missing")
    collect = _Collect()
    bounds = [collect.run(_version, item.get(name), "%s.%s" % (field, name)) for name in ("introduced", "fixed", "last_affected")]
    collect.done()
    rng = Range(canonical_name(package), *bounds)
    if rng.fixed and rng.last_affected:
        raise _Invalid(field, "give either fixed or last_affected, not both")
    end = rng.fixed or rng.last_affected
    if rng.introduced and end:
        lo, hi = Version(rng.introduced), Version(end)
        if lo > hi or (rng.fixed and lo == hi):
            raise _Invalid(field, "empty range: introduced %s is not before its end %s" % (rng.introduced, end))
    return rng


def _no_overlap(ranges: List[Range]) -> None:
    """Two ranges of one package in one record that overlap contradict each other's ends."""
    for i, a in enumerate(ranges):
        for b in ranges[i + 1 :]:
            if a.package != b.package:
                continue
            if _overlaps(a, b):
                raise _Invalid("affected", "ranges %s and %s of %s overlap" % (a.specifier() or "*", b.specifier() or "*", a.package))


def _overlaps(a: Range, b: Range) -> bool:
    """Whether two ranges share a version. An open end is unbounded (no stand-in version)."""
    return not (_before(a, b) or _before(b, a))


def _before(a: Range, b: Range) -> bool:
    """Every version of ``a`` is below every version of ``b``."""
    end = a.fixed or a.last_affected
    if end is None or b.introduced is None:  # a open above, or b open below
        return False
    hi, lo = Version(end), Version(b.introduced)
    return hi < lo or (hi == lo and a.fixed is not None)  # fixed is exclusive, last_affected inclusive


def _condition(key: str, raw: object) -> Condition:
    field = "when.%s" % key
    if not isinstance(key, str) or not re.match(r"^[a-z][a-z0-9_.:/-]*$", key):
        raise _Invalid(field, "fact names are lower-case dotted words, e.g. model.type")
    kind = vocabulary.fact_type(key)
    if kind is None:  # a typo would leave the finding "possible" for ever
        raise _Invalid(field, "%r is not a fact envdoctor gathers (the vocabulary: docs/facts.md)" % key)
    condition = _condition_value(key, raw, field, kind)
    _check_type(condition, kind, field)
    return condition


def _condition_value(key: str, raw: object, field: str, kind: str) -> Condition:
    if isinstance(raw, (str, bool, int, float)):
        if isinstance(raw, str) and raw[:1] in "<>=!~":
            if kind != vocabulary.VERSION:  # it would silently be compared as text
                raise _Invalid(field, "%r looks like a version specifier, but %s is not a version fact (%s): "
                               "use { below = ... }, { above = ... } or { at_least = ... }" % (raw, key, kind))
            return Condition(key, "version", _specifier(raw, field))
        return Condition(key, "equals", raw)
    if isinstance(raw, list):
        if not raw or not all(isinstance(v, (str, bool, int, float)) for v in raw):
            raise _Invalid(field, "a list must hold plain values")
        return Condition(key, "one_of", tuple(raw))
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise _Invalid(field, "a table holds exactly one of: version, installed, not, below, above, at_least")
        (how, value), = raw.items()
        if how == "version":
            if kind != vocabulary.VERSION:
                raise _Invalid(field + ".version", "%s is not a version fact (%s)" % (key, kind))
            return Condition(key, "version", _specifier(value, field + ".version"))
        if how == "installed":
            if not isinstance(value, bool) or not key.startswith("pkg."):
                raise _Invalid(field, "installed = true/false applies to pkg.<name> facts")
            return Condition(key, "installed", value)
        if how == "not":
            if not isinstance(value, (str, bool, int, float)):
                raise _Invalid(field, "not = <value>")
            return Condition(key, "not", value)
        if how in COMPARISONS:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise _Invalid(field, "%s needs a number or version" % how)
            if kind in (vocabulary.STR, vocabulary.BOOL):
                raise _Invalid(field + "." + how, "%s holds a %s: it cannot be %s a value" % (key, kind, how.replace("_", " ")))
            if isinstance(value, str):
                _version(value, field + "." + how)
            return Condition(key, how, value)
        raise _Invalid(field, "unknown condition %r (use version, installed, not, below, above, at_least)" % how)
    raise _Invalid(field, "unsupported value %r" % (raw,))


def parse_conditions(raw: object) -> Tuple[Condition, ...]:
    """A ``[when]`` table in the record syntax (the drift table's rules use it too).
    Raises ValueError naming the condition and the problem."""
    try:
        return _conditions({"when": raw})
    except _Invalid as exc:
        raise ValueError(exc.message)


_PYTHON_TYPES = {vocabulary.BOOL: (bool,), vocabulary.INT: (int,), vocabulary.FLOAT: (int, float), vocabulary.STR: (str,),
                 vocabulary.VERSION: (str,), vocabulary.NUMBER: (int, float, str)}


def _check_type(condition: Condition, kind: str, field: str) -> None:
    """A value of the wrong type never equals the fact (run.gpus = "8" is never 8)."""
    if condition.kind not in ("equals", "one_of", "not"):
        return
    values = condition.value if condition.kind == "one_of" else (condition.value,)
    allowed = _PYTHON_TYPES[kind]
    for value in values:  # type: ignore[union-attr]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise _Invalid(field, "%s holds values of type %s; %r can never equal it" % (condition.key, kind, value))
        if kind == vocabulary.VERSION:
            _version(value, field)  # "python" = "3.1O" would never match anything


def _conditions(data: dict) -> Tuple[Condition, ...]:
    when = data.get("when", {})
    if not isinstance(when, dict):
        raise _Invalid("when", "must be a table")
    collect = _Collect()
    conditions = []
    for key, raw in when.items():
        if key.startswith("pkg."):
            key = "pkg." + canonical_name(key[4:])
        conditions.append(collect.run(_condition, key, raw))
    collect.done()
    return tuple(conditions)


def _code(data: dict) -> Tuple[CodeCheck, ...]:
    items = data.get("code", [])
    if not isinstance(items, list):
        raise _Invalid("code", "must be an array of tables ([[code]])")
    collect = _Collect()
    out = [collect.run(_one_code, item, "code[%d]" % i) for i, item in enumerate(items)]
    collect.done()
    return tuple(out)


def _one_code(item: object, field: str) -> CodeCheck:
    if not isinstance(item, dict) or set(item) - {"package", "file", "contains", "present", "if_missing"}:
        raise _Invalid(field, "fields are package, file, contains, present, if_missing")
    for name in ("package", "file", "contains"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise _Invalid("%s.%s" % (field, name), "missing")
    present = item.get("present", True)
    if not isinstance(present, bool):
        raise _Invalid(field + ".present", "must be true or false")
    if_missing = item.get("if_missing", "unknown")
    if if_missing not in ("unknown", "no"):
        raise _Invalid(field + ".if_missing", "must be \"unknown\" (the version decides) or \"no\" (a missing file fails the check)")
    return CodeCheck(canonical_name(item["package"]), item["file"], item["contains"], present, if_missing)


def _symptoms(data: dict, trusted: bool = False) -> Tuple[Symptom, ...]:
    items = data.get("symptoms", [])
    if not isinstance(items, list):
        raise _Invalid("symptoms", "must be an array of tables ([[symptoms]])")
    collect = _Collect()
    out = [collect.run(_symptom, item, "symptoms[%d]" % i, trusted) for i, item in enumerate(items)]
    collect.done()
    return tuple(out)


def _symptom(item: object, field: str, trusted: bool) -> Symptom:
    if not isinstance(item, dict) or not isinstance(item.get("pattern"), str) or not item["pattern"]:
        raise _Invalid(field + ".pattern", "missing")
    if set(item) - {"pattern", "example", "weak", "traceback"}:
        raise _Invalid("%s.%s" % (field, sorted(set(item) - {"pattern", "example", "weak", "traceback"})[0]),
                       "unknown field (fields are pattern, example, weak, traceback)")
    example = item.get("example", "")
    if not isinstance(example, str):
        raise _Invalid(field + ".example", "must be a string")
    weak = item.get("weak", False)
    if not isinstance(weak, bool):
        raise _Invalid(field + ".weak", "must be true or false")
    traceback = item.get("traceback", "")
    if not isinstance(traceback, str):
        raise _Invalid(field + ".traceback", "must be a path fragment such as \"peft/tuners/\"")
    if not trusted:
        try:
            compiled = re.compile(item["pattern"])
        except re.error as exc:
            raise _Invalid(field + ".pattern", "does not compile: %s" % exc)
        from envdoctor.kb.regex_risk import backtracking_risk

        risk = backtracking_risk(item["pattern"])
        if risk:  # a long log line would keep explain busy for ever
            raise _Invalid(field + ".pattern", "can backtrack catastrophically: %s" % risk)
        if example and not compiled.search(example):
            raise _Invalid(field + ".example", "the pattern does not match its own example")
    return Symptom(item["pattern"], example, weak, traceback.strip())


def _remedy(data: dict, trusted: bool = False) -> Remedy:
    raw = data.get("remedy")
    if not isinstance(raw, dict):
        raise _Invalid("remedy", "missing (a table with summary, and requires where a version fixes it)")
    if set(raw) - {"summary", "requires", "note"}:
        raise _Invalid("remedy", "fields are summary, requires, note")
    requires = raw.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise _Invalid("remedy.requires", "must be a list of requirement strings")
    if not trusted:
        from packaging.requirements import InvalidRequirement, Requirement

        for req in requires:
            try:
                Requirement(req)
            except InvalidRequirement as exc:
                raise _Invalid("remedy.requires", "%r is not a requirement (e.g. 'xtuner>=0.1.18'): %s" % (req, exc))
    return Remedy(_text(raw, "summary"), tuple(requires), _text(raw, "note", required=False))


def _references(data: dict) -> Tuple[Reference, ...]:
    items = data.get("references")
    if not isinstance(items, list) or not items:
        raise _Invalid("references", "every record cites at least one source ([[references]] url = ...)")
    collect = _Collect()
    out = [collect.run(_reference, item, "references[%d]" % i) for i, item in enumerate(items)]
    collect.done()
    return tuple(out)


def _reference(item: object, field: str) -> Reference:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise _Invalid(field + ".url", "missing")
    extra = set(item) - {"url", "title"}
    if extra:
        raise _Invalid("%s.%s" % (field, sorted(extra)[0]), "unknown field(s) %s (fields are url and title)" % ", ".join(sorted(extra)))
    if not item["url"].startswith(("https://", "http://")):
        raise _Invalid(field + ".url", "must be a web address")
    if not isinstance(item.get("title", ""), str):
        raise _Invalid(field + ".title", "must be a string")
    return Reference(item["url"], item.get("title", ""))


def parse_record(data: dict, path: str, trusted: bool = False) -> Record:
    """Build a Record from parsed TOML, or raise _Invalid naming the field. ``trusted``: these
    exact bytes passed every check before (tomlcache), so the costly ones are skipped."""
    collect = _Collect()
    for name in sorted(set(data) - TOP_FIELDS):
        collect.errors.append(_Invalid(name, "unknown field (known: %s)" % ", ".join(sorted(TOP_FIELDS))))
    for name in REQUIRED:
        if name not in data:
            collect.errors.append(_Invalid(name, "missing" + (": every record cites at least one source ([[references]] url = ...)" if name == "references" else "")))
    record_id = collect.run(_record_id, data, default="")
    severity = collect.run(_severity, data, default="")
    tags = collect.run(_tags, data, default=())
    summary = collect.run(_text, data, "summary", default="") if "summary" in data else ""
    details = collect.run(_text, data, "details", default="") if "details" in data else ""
    affected = collect.run(_ranges, data, default=())
    when = collect.run(_conditions, data, default=())
    code = collect.run(_code, data, default=())
    if not (affected or when or code) and not any(e.field.startswith(("affected", "when", "code")) for e in collect.errors):
        collect.errors.append(_Invalid("when", "a record needs affected ranges, when conditions or code checks, or it would always fire"))
    symptoms = collect.run(_symptoms, data, trusted, default=())
    remedy = collect.run(_remedy, data, trusted) if "remedy" in data else None
    references = collect.run(_references, data, default=()) if "references" in data else ()
    # A team's own record may leave it out (it is then "reported"); kb lint asks for it.
    level = collect.run(_evidence_level, data, default="") if "evidence_level" in data else "reported"
    reproduction = collect.run(_reproduction, data) if "reproduction" in data else None
    if level == "reproduced" and "reproduction" not in data:
        collect.errors.append(_Invalid("evidence_level", "\"reproduced\" needs a [reproduction] that scripts/reproduce.py runs"))
    collect.done()
    return Record(
        id=record_id,
        summary=summary,
        severity=severity,
        details=details,
        affected=affected,
        when=when,
        code=code,
        symptoms=symptoms,
        remedy=remedy,
        references=references,
        path=path,
        tags=tags,
        evidence_level=level,
        reproduction=reproduction,
    )


def _evidence_level(data: dict) -> str:
    level = data.get("evidence_level")
    if level not in EVIDENCE_LEVELS:
        raise _Invalid("evidence_level", "%r is not one of %s (how the record is known)" % (level, ", ".join(EVIDENCE_LEVELS)))
    return level


_REPRODUCTION_FIELDS = {"script", "python", "symptom", "affected", "fixed", "pip_args", "args", "no_deps", "fixed_shows", "fixed_env"}


def _reproduction(data: dict) -> Reproduction:
    raw = data.get("reproduction")
    if not isinstance(raw, dict):
        raise _Invalid("reproduction", "must be a table ([reproduction])")
    extra = set(raw) - _REPRODUCTION_FIELDS
    if extra:
        raise _Invalid("reproduction.%s" % sorted(extra)[0], "unknown field (known: %s)" % ", ".join(sorted(_REPRODUCTION_FIELDS)))
    script = _text(raw, "script")
    if "/" in script or "\\" in script or not script.endswith(".py"):
        raise _Invalid("reproduction.script", "a .py file name under knowledge/reproductions/")
    python = _text(raw, "python")
    if not re.match(r"^3\.\d+$", python):
        raise _Invalid("reproduction.python", "%r: give major.minor, e.g. \"3.10\"" % python)
    symptom = _text(raw, "symptom")
    shows = _text(raw, "fixed_shows", required=False)
    for name, pattern in (("symptom", symptom), ("fixed_shows", shows)):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _Invalid("reproduction.%s" % name, "does not compile: %s" % exc)
    lists = {}
    for name in ("affected", "fixed", "pip_args", "args", "no_deps"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _Invalid("reproduction.%s" % name, "must be a list of strings")
        lists[name] = tuple(value)
    from packaging.requirements import InvalidRequirement, Requirement

    for name in ("affected", "fixed"):
        if not lists[name]:
            raise _Invalid("reproduction.%s" % name, "missing: the requirements installed for this side")
        for text in lists[name]:
            try:
                Requirement(text)
            except InvalidRequirement as exc:
                raise _Invalid("reproduction.%s" % name, "%r is not a requirement: %s" % (text, exc))
    return Reproduction(script, python, symptom, lists["affected"], lists["fixed"], lists["pip_args"], lists["args"],
                        tuple(canonical_name(n) for n in lists["no_deps"]), shows, _environment(raw.get("fixed_env", {})))


def _environment(raw: object) -> Tuple[Tuple[str, str], ...]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise _Invalid("reproduction.fixed_env", "must be a table of NAME = \"value\" strings")
    return tuple(sorted(raw.items()))


def record_problems(data: dict) -> List[Tuple[str, str]]:
    """(field, message) for every problem of a parsed record; empty when it is valid."""
    try:
        parse_record(data, "")
    except (_Invalid, _Errors) as exc:
        return [(e.field, e.message) for e in (exc.errors if isinstance(exc, _Errors) else [exc])]
    return []


def _record_id(data: dict) -> str:
    record_id = _text(data, "id")
    if not _ID_RE.match(record_id):
        raise _Invalid("id", "%r: use upper-case letters, digits and dashes" % record_id)
    return record_id


def _severity(data: dict) -> str:
    severity = _text(data, "severity")
    if severity not in SEVERITIES:
        raise _Invalid("severity", "%r is not one of %s" % (severity, ", ".join(SEVERITIES)))
    return severity


def _tags(data: dict) -> Tuple[str, ...]:
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _Invalid("tags", "must be a list of strings")
    return tuple(tags)


def load_file(path: str, cache: Optional[TomlCache] = None) -> Tuple[Optional[Record], Optional[RecordError]]:
    """The record of one file, or its first error (``file_errors`` has them all)."""
    record, errors = read_file(path, cache)
    return record, (errors[0] if errors else None)


def read_file(path: str, cache: Optional[TomlCache] = None) -> Tuple[Optional[Record], Tuple[RecordError, ...]]:
    """The record of one file, or every error found in it, each with its line."""
    cache = cache or TomlCache(path="")
    try:
        data, digest = cache.parsed(path)
    except OSError as exc:
        return None, (RecordError(path, "", "cannot read (%s)" % (exc.strerror or exc)),)
    except TOMLError as exc:
        return None, (RecordError(path, "", str(exc), _toml_error_line(str(exc))),)
    try:
        record = parse_record(data, path, trusted=cache.is_valid(digest))
    except (_Invalid, _Errors) as exc:
        found = exc.errors if isinstance(exc, _Errors) else [exc]
        return None, tuple(RecordError(path, e.field, e.message, line_of(path, e.field)) for e in found)
    cache.mark_valid(digest)
    return record, ()


def _toml_error_line(message: str) -> int:
    found = re.search(r"at line (\d+)", message)
    return int(found.group(1)) if found else 0


def record_files(directory: str) -> List[str]:
    return [path for path, _area in _record_files(directory)]


def _record_files(directory: str) -> List[Tuple[str, str]]:
    """(path, area) of every record file; the area is its folder under records/ ("" at the top)."""
    records = os.path.join(directory, "records")
    base = records if os.path.isdir(records) else directory
    found = []
    for root, dirs, files in os.walk(base):
        if root == directory and "tables" in dirs:  # a folder without records/: its tables are not records
            dirs.remove("tables")
        dirs.sort()
        area = os.path.relpath(root, base).replace(os.sep, "/")
        for name in sorted(files):
            if name.endswith(".toml"):
                found.append((os.path.join(root, name), "" if area == "." else area))
    return found


def _tables(directory: str, cache: TomlCache, tables: Tables, errors: List[RecordError]) -> None:
    folder = os.path.join(directory, "tables")
    if not os.path.isdir(folder):
        return
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".toml"):
            continue
        path = os.path.join(folder, name)
        try:
            data, digest = cache.parsed(path)
        except OSError as exc:
            errors.append(RecordError(path, "", "cannot read (%s)" % (exc.strerror or exc)))
            continue
        except TOMLError as exc:
            errors.append(RecordError(path, "", str(exc), _toml_error_line(str(exc))))
            continue
        if not cache.is_valid(digest):
            from envdoctor.kb.table_schema import table_problems

            problems = table_problems(name[:-5], data)
            if problems:  # a malformed table is left out rather than half used
                errors.extend(RecordError(path, p.field, p.message, line_of(path, p.field)) for p in problems)
                continue
            cache.mark_valid(digest)
        tables.add(name[:-5], path, data)


def load(dirs: Sequence[str], cache: Optional[TomlCache] = None) -> KnowledgeBase:
    cache = cache or shared()
    records: List[Record] = []
    errors: List[RecordError] = []
    tables = Tables()
    seen: Dict[str, str] = {}
    for directory in dirs:
        if not os.path.isdir(directory):
            errors.append(RecordError(directory, "", "knowledge-base folder not found"))
            continue
        _tables(directory, cache, tables, errors)
        for path, area in _record_files(directory):
            record, found = read_file(path, cache)
            if found:
                errors.extend(found)
                continue
            assert record is not None
            record = record._replace(area=area)
            if record.id in seen:
                errors.append(RecordError(path, "id", "%s is already defined in %s" % (record.id, seen[record.id]), line_of(path, "id")))
                continue
            seen[record.id] = path
            records.append(record)
    cache.save()
    return KnowledgeBase(tuple(records), tuple(errors), tuple(dirs), tables)


EXCLUDE_ENV = "ENVDOCTOR_EXCLUDE_RECORDS"  # ids to leave out: what would envdoctor find without them?


def load_kb(extra: Sequence[str] = ()) -> KnowledgeBase:
    """The shipped knowledge base, then a team's own folders (``--kb``)."""
    kb = load((shipped_dir(),) + tuple(extra))
    excluded = {x.strip() for x in os.environ.get(EXCLUDE_ENV, "").split(",") if x.strip()}
    if excluded:
        kb = kb._replace(records=tuple(r for r in kb.records if r.id not in excluded))
    return kb


def areas(base: KnowledgeBase) -> List[str]:
    return sorted({r.area for r in base.records})


def only_area(base: KnowledgeBase, area: str) -> KnowledgeBase:
    """The records of one area (the folder under records/, e.g. xtuner)."""
    wanted = area.strip("/")
    return base._replace(records=tuple(r for r in base.records if r.area == wanted))
