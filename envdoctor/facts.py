"""Facts: the flat, typed mapping every later stage reads.

A fact is known (a value, where ``None`` means *absent*, e.g. no CUDA in a CPU build of
torch) or *unknown* (it could not be gathered; the reason travels with it). Sources only
produce facts and problems; they never judge.

The results on every run's path (facts, records, findings, reports) are ``typing.NamedTuple``
classes: immutable like frozen dataclasses, and about six times cheaper to define, a cost each
run pays at start-up (measured with bench/bench_check.py). Elsewhere, frozen dataclasses.
"""

from typing import Dict, Iterable, Mapping, NamedTuple, Optional, Tuple, Union

Value = Union[str, int, float, bool, None]


class Unknown(NamedTuple):
    """A fact that could not be gathered, and why (shown to the user as a hint)."""

    reason: str


class Problem(NamedTuple):
    """Something a source could not read. The run goes on; the report shows it."""

    source: str  # e.g. "installed", "nvidia-smi", "knowledge"
    message: str  # one line, naming the file and the problem
    fatal: bool = False  # the requested probe as a whole failed (exit 2)


class Facts(NamedTuple):
    values: Mapping[str, Value] = {}
    unknown: Mapping[str, Unknown] = {}
    # Namespaces listed here were probed completely, so a missing key means absent
    # ("pkg." once the installed distributions were listed).
    complete: Tuple[str, ...] = ()

    def get(self, key: str) -> Union[Value, Unknown]:
        if key in self.values:
            return self.values[key]
        if key in self.unknown:
            return self.unknown[key]
        if any(key.startswith(prefix) for prefix in self.complete):
            return None
        return Unknown("not probed")

    def known(self, key: str) -> bool:
        return not isinstance(self.get(key), Unknown)

    def with_values(self, values: Mapping[str, Value]) -> "Facts":
        merged = dict(self.values)
        merged.update(values)
        unknown = {k: v for k, v in self.unknown.items() if k not in values}
        return Facts(merged, unknown, self.complete)

    def packages(self) -> Dict[str, str]:
        return {k[4:]: v for k, v in self.values.items() if k.startswith("pkg.") and isinstance(v, str)}


class Gathered(NamedTuple):
    """What one source returns: facts it knows, facts it could not learn, problems."""

    values: Mapping[str, Value] = {}
    unknown: Mapping[str, Unknown] = {}
    problems: Tuple[Problem, ...] = ()
    complete: Tuple[str, ...] = ()


def merge(parts: Iterable[Gathered]) -> Tuple[Facts, Tuple[Problem, ...]]:
    """Combine sources in order; a later known value wins over an earlier unknown."""
    values: Dict[str, Value] = {}
    unknown: Dict[str, Unknown] = {}
    problems = []
    complete = []
    for part in parts:
        for key, reason in part.unknown.items():
            if key not in values:
                unknown[key] = reason
        for key, value in part.values.items():
            values[key] = value
            unknown.pop(key, None)
        problems.extend(part.problems)
        complete.extend(part.complete)
    return Facts(values, unknown, tuple(complete)), tuple(problems)


def describe(value: Optional[Value]) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
