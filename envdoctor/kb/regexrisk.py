"""Symptom patterns that can backtrack catastrophically: refused before they are ever run.

Python's ``re`` backtracks, and a pattern such as ``(a+)+$`` takes time exponential in the
length of a line it almost matches: one such pattern in a ``--kb`` folder would hang ``explain``,
``check`` and ``kb lint`` (which match each record's example). The shapes refused here are the
ones that cause it: a repetition inside an unbounded repetition (``(a+)+``, ``(\\w*\\s?)*``,
``(.*x){9}``), and an unbounded repetition of alternatives that can start with the same
character (``(a|ab)*``). The log scan also bounds every pattern's time per line (logscan), for
what this static look cannot see.
"""

import sys
from typing import FrozenSet, Optional

if sys.version_info >= (3, 11):
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
else:  # pragma: no cover - exercised on 3.8-3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT) + ((_sre.POSSESSIVE_REPEAT,) if hasattr(_sre, "POSSESSIVE_REPEAT") else ())


def backtracking_risk(pattern: str) -> str:
    """Why ``pattern`` may backtrack catastrophically, in words; "" when none of the known shapes
    is in it (or it does not compile: that is reported elsewhere)."""
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:  # re.error, or a change of the private parser: not ours to judge
        return ""
    return _walk(parsed, inside_unbounded=False)


def _walk(items, inside_unbounded: bool) -> str:
    flat = _flat(items)
    for before, after in zip(flat, flat[1:]):
        if _unbounded(before) and _unbounded(after) and _first(before[1][2]) & _first(after[1][2]):
            return "two adjacent unbounded repetitions that take the same characters (as in \\s*\\s*): it can take polynomial time on a long line"
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            unbounded = high == _sre.MAXREPEAT
            possessive = op is getattr(_sre, "POSSESSIVE_REPEAT", None)  # never backtracks into
            if high > 1 and not possessive and _ambiguous(_flat(sub)):
                return "a repetition whose body can match the same text in more than one way (as in (a+)+, (\\w+\\s?)+ or (.*x){9}): it can take exponential time"
            if unbounded and not possessive and _overlapping_branches(sub):
                return "a repeated alternation whose alternatives can match the same text (as in (\\w|\\d)+): it can take exponential time"
            found = _walk(sub, inside_unbounded or unbounded)
        elif op is _sre.SUBPATTERN:
            found = _walk(av[-1], inside_unbounded)
        elif op is _sre.BRANCH:
            found = next((why for why in (_walk(alt, inside_unbounded) for alt in av[1]) if why), "")
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            found = _walk(av[1], inside_unbounded)
        else:
            found = ""
        if found:
            return found
    return ""


def _unbounded(item) -> bool:
    return item[0] in _REPEATS and item[1][1] == _sre.MAXREPEAT


def _flat(items) -> list:
    """The items of a repetition's body, groups opened (a group of one item is that item)."""
    out = []
    for op, av in items:
        if op is _sre.SUBPATTERN:
            out.extend(_flat(av[-1]))
        else:
            out.append((op, av))
    return out


def _variable(item) -> Optional[FrozenSet[int]]:
    """The first characters of a part that may match texts of different lengths, else None."""
    op, av = item
    if op in _REPEATS and av[0] != av[1]:
        return _first(av[2])
    if op is _sre.BRANCH and len({_width(alt) for alt in av[1]}) > 1:
        return frozenset().union(*(_first(alt) for alt in av[1]))
    return None


def _width(items):
    try:
        return _sre_parse.SubPattern(_sre_parse.State() if hasattr(_sre_parse, "State") else _sre_parse.Pattern(), list(items)).getwidth()
    except Exception:
        return None


def _ambiguous(body: list) -> bool:
    """Whether one pass of the body can split a text in several ways: it holds a variable-length
    part (a repetition, an optional part) and every other part either may be empty or can
    start with a character that variable part takes. ``(\\d+\\.)+`` is not: the dot ends each
    pass. ``(\\w+\\s?)+`` is: the \\s? may be empty, so \\w+\\w+ splits a word anywhere."""
    for i, item in enumerate(body):
        if item[0] is _sre.BRANCH and len({repr(alt) for alt in item[1][1]}) < len(item[1][1]):
            return True  # two alternatives alike (the parser leaves (?:a|a) as an empty pair)
        chars = _variable(item)
        if chars is None:
            continue
        others = body[:i] + body[i + 1:]
        if all(_may_be_empty(o) or _overlaps(chars, _first([o])) for o in others):
            return True
    return False


def _may_be_empty(item) -> bool:
    op, av = item
    if op in _REPEATS:
        return av[0] == 0
    if op is _sre.BRANCH:
        return any(not alt for alt in av[1])
    return op is _sre.AT


def _overlaps(a: FrozenSet[int], b: FrozenSet[int]) -> bool:
    return bool(a & b)


def _overlapping_branches(items) -> bool:
    for op, av in items:
        if op is _sre.SUBPATTERN:
            return _overlapping_branches(av[-1])
        if op is _sre.BRANCH:
            starts = [_first(alt) for alt in av[1]]  # an empty alternative starts with nothing
            for i, a in enumerate(starts):
                if any(_overlaps(a, b) for b in starts[i + 1:]):
                    return True
        return False  # only the first item decides where each alternative starts
    return False


# The characters first-character sets are computed over: ASCII and a few others, enough to see
# whether two parts of a pattern can start alike.
_ALPHABET = [chr(c) for c in range(128)] + ["\u00e9", "\u00a0", "\u4e2d", "\u2028"]
_EVERY = frozenset(range(len(_ALPHABET)))


def _first(items) -> FrozenSet[int]:
    """Indexes in _ALPHABET of the characters a match of ``items`` can start with."""
    for op, av in items:
        if op is _sre.LITERAL:
            return frozenset(i for i, ch in enumerate(_ALPHABET) if ord(ch) == av) or frozenset((-av - 1,))
        if op in (_sre.IN, _sre.ANY, _sre.NOT_LITERAL):
            return _matched_by(op, av)
        if op is _sre.SUBPATTERN:
            return _first(av[-1])
        if op in _REPEATS:
            first = _first(av[2])
            return first | _first(items[1:]) if av[0] == 0 else first
        if op is _sre.BRANCH:
            return frozenset().union(*(_first(alt) or _first(items[1:]) for alt in av[1]))
        if op is _sre.AT:
            continue
        return _EVERY  # back references, look-arounds...: assume anything
    return frozenset()


def _matched_by(op, av) -> FrozenSet[int]:
    try:
        from re import _compiler  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - 3.8-3.10
        import sre_compile as _compiler
    try:
        state = _sre_parse.State() if hasattr(_sre_parse, "State") else _sre_parse.Pattern()
        regex = _compiler.compile(_sre_parse.SubPattern(state, [(op, av)]), 0)
        return frozenset(i for i, ch in enumerate(_ALPHABET) if regex.match(ch))
    except Exception:  # a private API: when it changes, assume the widest set
        return _EVERY
