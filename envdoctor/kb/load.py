"""Read and validate knowledge-base records. Errors name the file and the field."""

import os
import re
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envdoctor.facts import canonical_name
from envdoctor.tomlcache import TOMLError, TomlCache, shared
from envdoctor.kb.record import (
    SEVERITIES,
    CodeCheck,
    Condition,
    Range,
    Record,
    Reference,
    Remedy,
    Symptom,
)

TOP_FIELDS = {"id", "summary", "severity", "details", "affected", "when", "code", "symptoms", "remedy", "references", "tags"}
REQUIRED = ("id", "summary", "severity", "details", "remedy", "references")
VERSION_KEYS_PREFIXES = ("pkg.",)
VERSION_KEYS = {"python", "torch.version", "torch.cuda", "cuda.driver", "nvcc", "model.transformers_version"}
COMPARISONS = ("below", "above", "at_least")
_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]+$")


class RecordError(NamedTuple):
    path: str
    field: str
    message: str

    def __str__(self) -> str:
        where = "%s: %s" % (self.path, self.field) if self.field else self.path
        return "%s: %s" % (where, self.message)


class KnowledgeBase(NamedTuple):
    records: Tuple[Record, ...]
    errors: Tuple[RecordError, ...]
    dirs: Tuple[str, ...]
    tables: Mapping[str, dict] = {}  # knowledge/tables/NAME.toml, by NAME

    def by_id(self, record_id: str) -> Optional[Record]:
        for record in self.records:
            if record.id == record_id:
                return record
        return None


def shipped_dir() -> str:
    """The knowledge base that comes with envdoctor: inside the wheel, or the source tree."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(here, "_knowledge")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(here), "knowledge")


def is_version_key(key: str) -> bool:
    return key in VERSION_KEYS or key.startswith(VERSION_KEYS_PREFIXES)


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


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
        Version(value)
    except InvalidVersion:
        raise _Invalid(field, "%r is not a version" % value)
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
    out = []
    for i, item in enumerate(items):
        field = "affected[%d]" % i
        if not isinstance(item, dict):
            raise _Invalid(field, "must be a table")
        extra = set(item) - {"package", "introduced", "fixed", "last_affected"}
        if extra:
            raise _Invalid(field, "unknown field(s): %s" % ", ".join(sorted(extra)))
        package = item.get("package")
        if not isinstance(package, str) or not package:
            raise _Invalid(field + ".package", "missing")
        rng = Range(
            canonical_name(package),
            _version(item.get("introduced"), field + ".introduced"),
            _version(item.get("fixed"), field + ".fixed"),
            _version(item.get("last_affected"), field + ".last_affected"),
        )
        if rng.fixed and rng.last_affected:
            raise _Invalid(field, "give either fixed or last_affected, not both")
        end = rng.fixed or rng.last_affected
        if rng.introduced and end:
            lo, hi = Version(rng.introduced), Version(end)
            if lo > hi or (rng.fixed and lo == hi):
                raise _Invalid(field, "empty range: introduced %s is not before its end %s" % (rng.introduced, end))
        out.append(rng)
    _no_overlap(out)
    return tuple(out)


def _no_overlap(ranges: List[Range]) -> None:
    """Two ranges of one package in one record that overlap contradict each other's ends."""
    for i, a in enumerate(ranges):
        for b in ranges[i + 1 :]:
            if a.package != b.package:
                continue
            if _overlaps(a, b):
                raise _Invalid("affected", "ranges %s and %s of %s overlap" % (a.specifier() or "*", b.specifier() or "*", a.package))


def _overlaps(a: Range, b: Range) -> bool:
    def bounds(r: Range) -> Tuple[Version, Version, bool]:
        lo = Version(r.introduced) if r.introduced else Version("0")
        if r.fixed:
            return lo, Version(r.fixed), False
        if r.last_affected:
            return lo, Version(r.last_affected), True
        return lo, Version("99999"), True

    alo, ahi, a_inc = bounds(a)
    blo, bhi, b_inc = bounds(b)
    a_before_b = ahi < blo or (ahi == blo and not a_inc)
    b_before_a = bhi < alo or (bhi == alo and not b_inc)
    return not (a_before_b or b_before_a)


def _condition(key: str, raw: object) -> Condition:
    field = "when.%s" % key
    if not isinstance(key, str) or not re.match(r"^[a-z][a-z0-9_.:/-]*$", key):
        raise _Invalid(field, "fact names are lower-case dotted words, e.g. model.type")
    if isinstance(raw, (str, bool, int, float)):
        if isinstance(raw, str) and is_version_key(key) and raw[:1] in "<>=!~":
            return Condition(key, "version", _specifier(raw, field))
        return Condition(key, "equals", raw)
    if isinstance(raw, list):
        if not raw or not all(isinstance(v, (str, bool, int, float)) for v in raw):
            raise _Invalid(field, "a list must hold plain values")
        return Condition(key, "one_of", tuple(raw))
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise _Invalid(field, "a table holds exactly one of: version, installed, not, below, above, at_least")
        (kind, value), = raw.items()
        if kind == "version":
            return Condition(key, "version", _specifier(value, field + ".version"))
        if kind == "installed":
            if not isinstance(value, bool) or not key.startswith("pkg."):
                raise _Invalid(field, "installed = true/false applies to pkg.<name> facts")
            return Condition(key, "installed", value)
        if kind == "not":
            if not isinstance(value, (str, bool, int, float)):
                raise _Invalid(field, "not = <value>")
            return Condition(key, "not", value)
        if kind in COMPARISONS:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise _Invalid(field, "%s needs a number or version" % kind)
            if isinstance(value, str):
                _version(value, field + "." + kind)
            return Condition(key, kind, value)
        raise _Invalid(field, "unknown condition %r (use version, installed, not, below, above, at_least)" % kind)
    raise _Invalid(field, "unsupported value %r" % (raw,))


def _conditions(data: dict) -> Tuple[Condition, ...]:
    when = data.get("when", {})
    if not isinstance(when, dict):
        raise _Invalid("when", "must be a table")
    conditions = []
    for key, raw in when.items():
        if key.startswith("pkg."):
            key = "pkg." + canonical_name(key[4:])
        conditions.append(_condition(key, raw))
    return tuple(conditions)


def _code(data: dict) -> Tuple[CodeCheck, ...]:
    items = data.get("code", [])
    if not isinstance(items, list):
        raise _Invalid("code", "must be an array of tables ([[code]])")
    out = []
    for i, item in enumerate(items):
        field = "code[%d]" % i
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
        out.append(CodeCheck(canonical_name(item["package"]), item["file"], item["contains"], present, if_missing))
    return tuple(out)


def _symptoms(data: dict, trusted: bool = False) -> Tuple[Symptom, ...]:
    items = data.get("symptoms", [])
    if not isinstance(items, list):
        raise _Invalid("symptoms", "must be an array of tables ([[symptoms]])")
    out = []
    for i, item in enumerate(items):
        field = "symptoms[%d]" % i
        if not isinstance(item, dict) or not isinstance(item.get("pattern"), str) or not item["pattern"]:
            raise _Invalid(field + ".pattern", "missing")
        if set(item) - {"pattern", "example", "weak", "traceback"}:
            raise _Invalid(field, "fields are pattern, example, weak, traceback")
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
            if example and not compiled.search(example):
                raise _Invalid(field + ".example", "the pattern does not match its own example")
        out.append(Symptom(item["pattern"], example, weak, traceback.strip()))
    return tuple(out)


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
            except InvalidRequirement:
                raise _Invalid("remedy.requires", "%r is not a requirement (e.g. 'xtuner>=0.1.18')" % req)
    return Remedy(_text(raw, "summary"), tuple(requires), _text(raw, "note", required=False))


def _references(data: dict) -> Tuple[Reference, ...]:
    items = data.get("references")
    if not isinstance(items, list) or not items:
        raise _Invalid("references", "every record cites at least one source ([[references]] url = ...)")
    out = []
    for i, item in enumerate(items):
        field = "references[%d]" % i
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise _Invalid(field + ".url", "missing")
        if not item["url"].startswith(("https://", "http://")):
            raise _Invalid(field + ".url", "must be a web address")
        out.append(Reference(item["url"], str(item.get("title", ""))))
    return tuple(out)


def parse_record(data: dict, path: str, trusted: bool = False) -> Record:
    """Build a Record from parsed TOML, or raise _Invalid naming the field. ``trusted``: these
    exact bytes passed every check before (tomlcache), so the costly ones are skipped."""
    extra = set(data) - TOP_FIELDS
    if extra:
        raise _Invalid(sorted(extra)[0], "unknown field (known: %s)" % ", ".join(sorted(TOP_FIELDS)))
    for name in REQUIRED:
        if name not in data:
            raise _Invalid(name, "missing" + (": every record cites at least one source ([[references]] url = ...)" if name == "references" else ""))
    record_id = _text(data, "id")
    if not _ID_RE.match(record_id):
        raise _Invalid("id", "%r: use upper-case letters, digits and dashes" % record_id)
    severity = _text(data, "severity")
    if severity not in SEVERITIES:
        raise _Invalid("severity", "%r is not one of %s" % (severity, ", ".join(SEVERITIES)))
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _Invalid("tags", "must be a list of strings")
    affected = _ranges(data)
    when = _conditions(data)
    code = _code(data)
    if not affected and not when and not code:
        raise _Invalid("when", "a record needs affected ranges, when conditions or code checks, or it would always fire")
    return Record(
        id=record_id,
        summary=_text(data, "summary"),
        severity=severity,
        details=_text(data, "details"),
        affected=affected,
        when=when,
        code=code,
        symptoms=_symptoms(data, trusted),
        remedy=_remedy(data, trusted),
        references=_references(data),
        path=path,
        tags=tuple(tags),
    )


def load_file(path: str, cache: Optional[TomlCache] = None) -> Tuple[Optional[Record], Optional[RecordError]]:
    cache = cache or TomlCache(path="")
    try:
        data, digest = cache.parsed(path)
    except OSError as exc:
        return None, RecordError(path, "", "cannot read (%s)" % (exc.strerror or exc))
    except TOMLError as exc:
        return None, RecordError(path, "", str(exc))
    try:
        record = parse_record(data, path, trusted=cache.is_valid(digest))
    except _Invalid as exc:
        return None, RecordError(path, exc.field, exc.message)
    cache.mark_valid(digest)
    return record, None


def record_files(directory: str) -> List[str]:
    return [path for path, _area in _record_files(directory)]


def _record_files(directory: str) -> List[Tuple[str, str]]:
    """(path, area) of every record file; the area is its folder under records/ ("" at the top)."""
    records = os.path.join(directory, "records")
    base = records if os.path.isdir(records) else directory
    found = []
    for root, dirs, files in os.walk(base):
        dirs.sort()
        area = os.path.relpath(root, base).replace(os.sep, "/")
        for name in sorted(files):
            if name.endswith(".toml"):
                found.append((os.path.join(root, name), "" if area == "." else area))
    return found


def _tables(directory: str, cache: TomlCache, tables: Dict[str, dict], errors: List[RecordError]) -> None:
    folder = os.path.join(directory, "tables")
    if not os.path.isdir(folder):
        return
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".toml"):
            continue
        path = os.path.join(folder, name)
        try:
            tables[name[:-5]] = cache.load(path)
        except OSError as exc:
            errors.append(RecordError(path, "", "cannot read (%s)" % (exc.strerror or exc)))
        except TOMLError as exc:
            errors.append(RecordError(path, "", str(exc)))


def load(dirs: Sequence[str], cache: Optional[TomlCache] = None) -> KnowledgeBase:
    cache = cache or shared()
    records: List[Record] = []
    errors: List[RecordError] = []
    tables: Dict[str, dict] = {}
    seen: Dict[str, str] = {}
    for directory in dirs:
        if not os.path.isdir(directory):
            errors.append(RecordError(directory, "", "knowledge-base folder not found"))
            continue
        _tables(directory, cache, tables, errors)
        for path, area in _record_files(directory):
            record, error = load_file(path, cache)
            if error:
                errors.append(error)
                continue
            assert record is not None
            record = record._replace(area=area)
            if record.id in seen:
                errors.append(RecordError(path, "id", "%s is already defined in %s" % (record.id, seen[record.id])))
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
