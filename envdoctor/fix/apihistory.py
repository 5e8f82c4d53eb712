"""The API history's word on a planned set (knowledge/history/): does a package the plan moves
import a module or name the other pinned releases lack, or declare a requirement the pins
contradict? The planner refuses such a candidate; the resolver's picks are held to the same,
with the history's bounds (e.g. transformers<5.0.0 for xtuner 0.1.23) as constraints.

Only breaks that involve a package the plan moves count, between releases the history has
examined (an import of a package that is not pinned is left to the records and the resolver;
it may come in unseen through another requirement); a break between two pins the plan
keeps is the environment's own, not the plan's. A kept pin whose declared requirement a move
contradicts (torchvision built for the old torch) is the resolver's to move, not a refusal.
The user's config is held to a candidate the same way: its imports, and the keys it reads of the
dicts it imports (PROMPT_TEMPLATE.internlm2_chat is not in xtuner 0.1.11).
Like check's import check, ENVDOCTOR_IMPORT_CHECK=0 turns this off.
"""

import os
from typing import TYPE_CHECKING, AbstractSet, Dict, List, Sequence

from envdoctor.kb.load import KnowledgeBase, shipped_dir

if TYPE_CHECKING:
    from envdoctor.sources.xtuner_config import Use


def enabled() -> bool:
    return os.environ.get("ENVDOCTOR_IMPORT_CHECK", "1") != "0"


def _extra_dirs(kb: KnowledgeBase) -> Sequence[str]:
    """The --kb folders (the shipped history is always read): the key check's own lookup uses."""
    shipped = os.path.realpath(shipped_dir())
    return tuple(d for d in kb.dirs if os.path.realpath(d) != shipped)


# The breaks of a pinned set, by (history folders, pins, Python): the planner judges the same
# set again for each Python and option set it tries (~0.2 s each); what moved is applied after.
_FOUND: Dict[tuple, tuple] = {}


def _found(pins: Dict[str, str], python: str, kb: KnowledgeBase) -> tuple:
    from envdoctor.history.load import load_history
    from envdoctor.history.pins import import_breaks, requirement_breaks

    dirs = _extra_dirs(kb)
    key = (dirs, tuple(sorted(pins.items())), python)
    if key not in _FOUND:
        history = load_history(dirs)
        _FOUND[key] = (tuple(import_breaks(history, pins, python, {})), tuple(requirement_breaks(history, pins, python, {})))
    return _FOUND[key]


def breaks(pins: Dict[str, str], python: str, kb: KnowledgeBase, moved: AbstractSet[str]) -> List[str]:
    """Why the pinned set cannot work, in words, for breaks that involve a moved package."""
    if not enabled():
        return []
    imports, declared = _found(pins, python, kb)
    out: List[str] = []
    for b in imports:
        # A package that is not pinned may still come in through a requirement the history does
        # not follow (peft brings accelerate): only a module or name missing from a known release counts.
        if b.other_version and (b.package in moved or b.other in moved):
            words = "%s %s imports from %s %s, which fails (API history): %s" % (b.package, b.version, b.other, b.other_version, b.message)
            if words not in out:
                out.append(words)
    for b in declared:
        # Both sides chosen by the plan (or the target Python): a kept pin on the other side is
        # for the resolver to move with the plan.
        if b.package in moved and (b.other in moved or b.other == "python") and b.message not in out:
            out.append(b.message + " (declared requirements)")
    return out


def brought_in(pins: Dict[str, str], python: str, kb: KnowledgeBase) -> List[str]:
    """The packages these pins bring in, by the releases' declared requirements the history holds
    (numpy with transformers); empty when the history's check is off."""
    if not enabled():
        return []
    from envdoctor.history.load import load_history
    from envdoctor.history.pins import brought_in as closure

    return sorted(closure(load_history(_extra_dirs(kb)), pins, python))


def bounds(pins: Dict[str, str], python: str, kb: KnowledgeBase) -> List[str]:
    """Requirements that clear the history's import breaks between these pins (constraints_for)."""
    if not enabled():
        return []
    from envdoctor.history.pins import constraints_for

    return [c for c in constraints_for(pins, python, _extra_dirs(kb)) if any(op in c for op in "<>=!~")]


def config_breaks(uses: Sequence["Use"], config: str, pins: Dict[str, str], kb: KnowledgeBase,
                  moved: AbstractSet[str]) -> List[str]:
    """What the user's config uses (its imports, the template keys it reads) that a release the
    plan moves to lacks, in words; from the history, where it knows (an unknown is no refusal)."""
    if not enabled() or not uses:
        return []
    from envdoctor.history.load import load_history
    from envdoctor.history.where import where_exists

    history = load_history(_extra_dirs(kb))
    out: List[str] = []
    for use in uses:
        package = history.package_of(use.module)
        ph = history.package(package) if package in moved and package in pins else None
        if ph is None:
            continue
        version = pins[package]
        if use.key:
            lacks = ph.has_member("%s.%s" % (use.module, use.name), use.key, version) is False
            spans = ph.span(ph.member_ranges("%s.%s" % (use.module, use.name), use.key)) if lacks else ()
            where = "%s %s" % (package, ", ".join(s.text() for s in spans)) if spans else ""
        else:
            lacks = ph.has_module(use.module, version) is False or bool(use.name) and ph.has_name(use.module, use.name, version) is False
            found = where_exists(history, use.module, use.name) if lacks else None
            where = found.text() if found is not None and found.spans else ""
        if lacks:
            out.append("%s %s lacks %s, which %s uses (line %d)%s" % (
                package, version, use.text(), config, use.line, "; it is in %s" % where if where else ""))
    return out
