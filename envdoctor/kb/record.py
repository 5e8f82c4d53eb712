"""A knowledge-base record and its parts, as read from one TOML file.

Conditions are data: a version specifier, a value, a list of values, or a comparison. The
format is documented in knowledge/README.md.
"""

from typing import NamedTuple, Optional, Tuple, Union

SEVERITIES = ("error", "warning", "info")
# How a record is known, strongest first: a run of the real releases showed it (scripts/reproduce.py),
# its cause was read in the released code, or it rests on a report (an issue, release notes, docs).
EVIDENCE_LEVELS = ("reproduced", "read-from-code", "reported")
EVIDENCE_WORDS = {"reproduced": "reproduced with the real releases", "read-from-code": "read from the released code",
                  "reported": "reported upstream, not reproduced here"}
Scalar = Union[str, int, float, bool]


class Range(NamedTuple):
    """One affected version range of one package (OSV's introduced / fixed / last_affected)."""

    package: str  # canonical name
    introduced: Optional[str] = None  # first affected version (inclusive); None: all before
    fixed: Optional[str] = None  # first good version (exclusive end)
    last_affected: Optional[str] = None  # last affected version (inclusive end)

    def specifier(self) -> str:
        parts = []
        if self.introduced:
            parts.append(">=" + self.introduced)
        if self.fixed:
            parts.append("<" + self.fixed)
        if self.last_affected:
            parts.append("<=" + self.last_affected)
        return ",".join(parts)

    def describe(self) -> str:
        spec = self.specifier()
        return "%s %s" % (self.package, spec) if spec else "%s (all versions)" % self.package


class Condition(NamedTuple):
    """What one fact must be. Exactly one of the fields is set (see ``kind``)."""

    key: str
    kind: str  # "equals" | "one_of" | "not" | "version" | "installed" | "below" | "above" | "at_least"
    value: Union[Scalar, Tuple[Scalar, ...], None]

    def describe(self) -> str:
        if self.kind == "equals":
            return "%s = %s" % (self.key, _show(self.value))
        if self.kind == "one_of":
            return "%s in (%s)" % (self.key, ", ".join(_show(v) for v in self.value))  # type: ignore[union-attr]
        if self.kind == "not":
            return "%s != %s" % (self.key, _show(self.value))
        if self.kind == "version":
            return "%s %s" % (self.key, self.value)
        if self.kind == "installed":
            return "%s %s" % (self.key[4:] if self.key.startswith("pkg.") else self.key, "installed" if self.value else "not installed")
        symbol = {"below": "<", "above": ">", "at_least": ">="}[self.kind]
        return "%s %s %s" % (self.key, symbol, _show(self.value))


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Symptom(NamedTuple):
    pattern: str  # a regular expression over one log line
    example: str = ""  # the exact text users see; tests check the pattern matches it
    # An everyday line (CUDA out of memory, an NCCL timeout) that this record is only one of many
    # causes of: alone it names a candidate, shown where the environment meets the record.
    weak: bool = False
    # A path fragment of the traceback frames above the line when this record is the cause
    # (e.g. "peft/tuners/"): it ranks the records that share the line.
    traceback: str = ""


class CodeCheck(NamedTuple):
    """Evidence read from an installed file, for when version numbers lie (source installs)."""

    package: str
    file: str  # path relative to the distribution's location, e.g. xtuner/model/...
    contains: str  # the record holds when the file contains this text (or lacks it, see ``present``)
    present: bool = True
    # What a missing file says: "unknown" (the code may live elsewhere, e.g. an older layout;
    # the version decides) or "no" (the text cannot be there: the check fails).
    if_missing: str = "unknown"

    @property
    def key(self) -> str:
        return "code.%s:%s" % (self.file, self.contains)

    @property
    def file_key(self) -> str:
        """The fact saying whether the file exists at all."""
        return "code.%s" % self.file


class Remedy(NamedTuple):
    summary: str  # one line: what to do
    requires: Tuple[str, ...] = ()  # requirement strings the fix needs, e.g. "xtuner>=0.1.18"
    note: str = ""


class Reference(NamedTuple):
    url: str
    title: str = ""


class Reproduction(NamedTuple):
    """A script that runs the failing code path with the real releases (scripts/reproduce.py)."""

    script: str  # file name under knowledge/reproductions/
    python: str  # the interpreter's major.minor, e.g. "3.10"
    symptom: str  # a regular expression the affected run prints and the fixed run does not
    affected: Tuple[str, ...]  # requirement strings installed for the affected side
    fixed: Tuple[str, ...]  # ... and for the fixed side
    pip_args: Tuple[str, ...] = ()  # e.g. --no-deps for releases whose declarations cannot be met
    args: Tuple[str, ...] = ()  # arguments for the script
    # Packages installed without their declared requirements, after the rest (an old release
    # whose torch cap cannot be met on the Python used; its imports come from the other pins).
    no_deps: Tuple[str, ...] = ()
    # A regular expression the fixed run must print (that it got past the failing step), not
    # only the symptom's absence, which an unrelated early failure would also give.
    fixed_shows: str = ""
    # Environment variables for the fixed side only, where the fix is a setting, not a release
    # (torch's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD); both sides then share one venv.
    fixed_env: Tuple[Tuple[str, str], ...] = ()


class Record(NamedTuple):
    id: str
    summary: str
    severity: str
    details: str
    affected: Tuple[Range, ...]
    when: Tuple[Condition, ...]
    code: Tuple[CodeCheck, ...]
    symptoms: Tuple[Symptom, ...]
    remedy: Remedy
    references: Tuple[Reference, ...]
    path: str  # the file it came from
    tags: Tuple[str, ...] = ()
    evidence_level: str = "reported"  # one of EVIDENCE_LEVELS
    reproduction: Optional[Reproduction] = None
    area: str = ""  # the folder under records/ it lives in (xtuner, peft, cuda ...); "" at the top
