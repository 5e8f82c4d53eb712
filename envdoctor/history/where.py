"""Where a module or name exists among the examined releases, and the pin that brings it.

Shared by the import check's findings and the pins' constraints (a plan's bounds); kept apart from
both so neither imports the other.
"""

from typing import NamedTuple, Optional, Tuple

from envdoctor.history.load import History, Span
from envdoctor.names import canonical_name


class Where(NamedTuple):
    """Where a module or name exists, from the history."""

    package: str
    spans: Tuple[Span, ...]

    def text(self) -> str:
        return "%s %s" % (self.package, ", ".join(s.text() for s in self.spans))


def distribution_of(module: str, history: History) -> str:
    top = module.split(".")[0]
    return history.package_of(top) or canonical_name(top)


def where_exists(history: History, module: str, name: str = "") -> Optional[Where]:
    ph = history.for_module(module)
    if ph is None:
        return None
    ranges = ph.name_ranges(module, name) if name else ph.module_ranges(module)
    if not ranges:
        return Where(ph.package, ())
    return Where(ph.package, tuple(ph.span(ranges)))


def pin_for(where: Where, installed: Optional[str]) -> Optional[str]:
    """A requirement that brings a release where the module/name exists: the newest span's range."""
    if not where.spans:
        return None
    span = where.spans[-1]
    spec = span.specifier()
    return "%s%s" % (where.package, spec) if spec else None
