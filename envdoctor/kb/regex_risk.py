"""Symptom patterns that could make a log scan take for ever.

Python's ``re`` backtracks: a repeat inside a repeat (``(a+)+``), or a repeat over
alternatives that can match the same text (``(a|ab)*``), tries exponentially many ways to
split a long line before it gives up. ``backtracking_risk`` finds those shapes in the parsed
pattern (cheap: the loader runs it on every record it has not validated before); ``slow_on``
runs a pattern against long hostile lines under a time budget in a child process (only
``kb lint`` does, since it costs a process).
"""

import subprocess
import sys
from typing import List, Optional, Sequence, Tuple

if sys.version_info >= (3, 11):
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
else:  # pragma: no cover - exercised on 3.8-3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

_REPEATS = tuple(getattr(_sre, name) for name in ("MAX_REPEAT", "MIN_REPEAT") if hasattr(_sre, name))
# Possessive repeats and atomic groups (3.11+) never backtrack into themselves.
_SAFE = tuple(getattr(_sre, name) for name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP") if hasattr(_sre, name))


def backtracking_risk(pattern: str) -> Optional[str]:
    """Why the pattern can backtrack catastrophically, or None when it has no such shape.
    A pattern that does not parse is someone else's error (the loader compiles it)."""
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:
        return None
    return _walk(list(parsed))


def _walk(items) -> Optional[str]:
    for op, av in items:
        if op in _SAFE:
            continue
        if op in _REPEATS:
            low, high, body = av
            body = list(body)
            if high == _sre.MAXREPEAT or high > 16:
                if _ambiguous(body):
                    return "a repeated group holds a repeat that can end in more than one place (nested quantifiers, e.g. (a+)+)"
                if _overlapping_branches(body):
                    return "a repeat over alternatives that can match the same text (e.g. (a|ab)*)"
            found = _walk(body)
            if found:
                return found
        elif op is _sre.SUBPATTERN:
            found = _walk(list(av[-1]))
            if found:
                return found
        elif op is _sre.BRANCH:
            for branch in av[1]:
                found = _walk(list(branch))
                if found:
                    return found
    return None


def _flatten(items) -> list:
    """Groups opened up, so that a repeat and what follows it sit side by side."""
    out = []
    for op, av in items:
        if op is _sre.SUBPATTERN:
            out.extend(_flatten(list(av[-1])))
        else:
            out.append((op, av))
    return out


def _ambiguous(body) -> bool:
    r"""Whether a repeated body holds a variable-length repeat not pinned down by a following
    character it cannot match itself (``\w+\s`` is pinned; ``a+`` and ``\w+\s?`` are not)."""
    items = _flatten(body)
    for i, (op, av) in enumerate(items):
        if op is _sre.BRANCH and any(_ambiguous(list(b)) for b in av[1]):
            return True
        if op not in _REPEATS or av[0] == av[1]:
            continue
        rest = items[i + 1 :]
        if not rest or (rest[0][0] in _REPEATS and rest[0][1][0] == 0):
            return True
        inner, after = _first_chars(list(av[2])), _first_chars(rest)
        if inner is None or after is None or inner & after:
            return True
    return False


def _overlapping_branches(items) -> bool:
    for op, av in items:
        if op is _sre.SUBPATTERN:
            if _overlapping_branches(list(av[-1])):
                return True
        elif op is _sre.BRANCH:
            firsts = [_first_chars(list(b)) for b in av[1]]
            for i, a in enumerate(firsts):
                for b in firsts[i + 1 :]:
                    if a is None or b is None or a & b:
                        return True
    return False


_PROBE = tuple(chr(c) for c in range(32, 127)) + ("\t", "\u00e9")
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}


def _first_chars(items) -> Optional[frozenset]:
    """The characters (of a printable sample) a match of these items can start with; None
    when that is not simply known (it may start with anything, or match nothing)."""
    for op, av in items:
        if op is _sre.AT:  # anchors take no character
            continue
        if op is _sre.LITERAL:
            return frozenset((chr(av),))
        if op is _sre.IN:
            return frozenset(c for c in _PROBE if _in_set(av, c))
        if op is _sre.SUBPATTERN:
            return _first_chars(list(av[-1]))
        if op in _REPEATS and av[0] > 0:
            return _first_chars(list(av[2]))
        if op is _sre.BRANCH:
            sets = [_first_chars(list(b)) for b in av[1]]
            if any(s is None for s in sets):
                return None
            return frozenset().union(*sets)  # type: ignore[arg-type]
        return None
    return None


def _in_set(members, char: str) -> bool:
    import re

    negate = False
    hit = False
    for op, av in members:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            hit = hit or char == chr(av)
        elif op is _sre.RANGE:
            hit = hit or av[0] <= ord(char) <= av[1]
        elif op is _sre.CATEGORY:
            klass = _CATEGORIES.get(str(av))
            hit = hit or klass is None or re.match(klass, char) is not None
        else:  # anything unusual: assume it may match
            hit = True
    return hit != negate


# A child process, so that a pattern that never finishes can be stopped: ``re`` holds the
# interpreter while it matches. It reads patterns and lines as JSON, prints each index done.
_RUNNER = """
import json, re, sys, time
job = json.loads(sys.stdin.read())
for i, (pattern, lines) in enumerate(job):
    compiled = re.compile(pattern)
    start = time.process_time()
    for line in lines:
        compiled.search(line)
    print(i, time.process_time() - start, flush=True)
"""
# The budget is CPU time, which other work on the machine does not inflate; a pattern still
# running after this many times the budget in wall time counts as slow and is stopped.
WALL_FACTOR = 10


def hostile_lines(pattern: str, example: str, length: int = 20000) -> List[str]:
    """Long lines that make a backtracking pattern work hard: runs of each character the
    pattern names (a repeat eats them, then the match fails at the end), and the example
    repeated without its last character."""
    chars = sorted({c for c in pattern if c.isprintable()} | {"a", "0", " ", "_"})
    lines = [c * length + "\x00" for c in chars]
    lines.append("".join(chars) * (length // max(1, len(chars))) + "\x00")
    if example:
        lines.append((example[:-1] + " ") * max(1, length // max(1, len(example))))
    return lines


def slow_patterns(items: Sequence[Tuple[str, str]], budget: float = 1.0) -> List[int]:
    """The indices of (pattern, example) pairs whose search over their hostile lines takes more
    than ``budget`` seconds of CPU. One child process runs them in turn; one that overruns by far
    is stopped, and a new child goes on with the rest."""
    import json
    import queue
    import threading

    slow: List[int] = []
    todo = list(range(len(items)))
    while todo:
        job = json.dumps([(items[i][0], hostile_lines(*items[i])) for i in todo])
        child = subprocess.Popen([sys.executable, "-c", _RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, universal_newlines=True)
        done: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [done.put(line) for line in child.stdout], daemon=True).start()  # type: ignore[union-attr]
        assert child.stdin is not None
        child.stdin.write(job)
        child.stdin.close()
        finished = 0
        try:
            while finished < len(todo):
                line = done.get(timeout=budget * WALL_FACTOR + (10.0 if finished == 0 else 0.0))
                if float(line.split()[1]) > budget:
                    slow.append(todo[finished])
                finished += 1
        except queue.Empty:
            slow.append(todo[finished])
            finished += 1
        finally:
            child.kill()
            child.wait()
        todo = todo[finished:]
    return slow
