"""Which releases define a key of a package's top-level dict: `PROMPT_TEMPLATE.internlm2_chat` in XTuner.

An XTuner config names a template as ``PROMPT_TEMPLATE.<key>`` (after ``from xtuner.utils import
PROMPT_TEMPLATE``); a release whose dict lacks the key fails when the config loads. The history
records the keys of dicts written as literals (``ConfigDict(a=..., b=...)``, ``{'a': ...}``), where
they are defined and where a package re-exports them, so ``xtuner.utils`` and
``xtuner.utils.templates`` both answer. Where the keys are not all visible, the answer is unknown.
"""

from typing import NamedTuple, Optional, Sequence, Tuple

from envdoctor.history.load import PackageHistory, Span, load_history
from envdoctor.history.ranges import decode


class MemberRange(NamedTuple):
    """Where one key of one dict exists, among the examined releases of its package."""

    package: str  # distribution name, e.g. "xtuner"
    dict_name: str  # "xtuner.utils.PROMPT_TEMPLATE" (module and name as imported)
    key: str  # "internlm2_chat"
    defined: Tuple[str, ...]  # examined releases whose dict has the key, oldest first
    known: Tuple[str, ...]  # examined releases where the dict's keys are all known (the rest: unknown)
    spans: Tuple[Span, ...]  # `defined` as runs of consecutive examined releases

    def specifier(self) -> str:
        """A pin range for the releases that have the key ('>=0.1.12'); '' where they are not one run."""
        return self.spans[0].specifier() if len(self.spans) == 1 else ""


def _history(package: str, kb_dirs: Sequence[str]) -> Optional[PackageHistory]:
    return load_history(kb_dirs).package(package)


def member_range(package: str, module: str, name: str, key: str,
                 kb_dirs: Sequence[str] = ()) -> Optional[MemberRange]:
    """Which examined releases of `package` define `module`.`name`[`key`]; None where the history has
    no such dict (package not covered, name not a literal dict there, module not where it is exported)."""
    h = _history(package, kb_dirs)
    if h is None:
        return None
    qualified = module + "." + name
    known = h.member_ranges(qualified, "")
    if not known:
        return None
    defined = h.member_ranges(qualified, key)
    return MemberRange(package, qualified, key, tuple(h.versions[i] for i in sorted(decode(defined))),
                       tuple(h.versions[i] for i in sorted(decode(known))), tuple(h.span(defined)) if defined else ())


def member_defined(package: str, module: str, name: str, key: str, version: str,
                   kb_dirs: Sequence[str] = ()) -> Optional[bool]:
    """Does `version` of `package` define the key? True/False where known; None where not (a release
    between examined ones that disagree, or a dict whose keys are not all visible there)."""
    h = _history(package, kb_dirs)
    return None if h is None else h.has_member(module + "." + name, key, version)
