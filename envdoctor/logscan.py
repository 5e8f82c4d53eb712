"""Find the lines of a log that match symptom patterns: streamed, constant memory, one pass.

A pattern is a regular expression over one log line. The scan reads the log in large binary
chunks and never holds more than a chunk and one bounded line. Lines break at ``\\n`` and also at
a lone ``\\r`` (progress bars redraw themselves with it); line numbers count ``\\n`` only, as
``grep -n`` and editors do. ANSI colour codes are removed before a line is matched.

Speed: most lines of a training log match nothing. Each pattern's required literal (a text every
match must contain, e.g. ``kv_seq_len``) is looked for in the raw bytes with ``bytes.find``;
only the lines holding one are cleaned of colour codes, decoded and matched with the full
pattern. (So a colour code *inside* that literal, as in syntax-highlighted source, hides it;
stripping every code from every line first would cost more than all the rest of the scan.) Patterns without such a
literal are matched over the decoded chunk with one alternation, once per chunk.
One ``bytes.find`` pass per literal and chunk is what made the scan slow as records were added;
so a chunk is first reduced to its rare bytes (``RareBytes``) and a literal is searched for only
in the chunks where its rare bytes appear. A large plain file is also split into line-aligned
byte ranges scanned at once in forked workers (``scan_file``).
"""

import os
import re
import signal
import sys
from dataclasses import dataclass
from typing import BinaryIO, Dict, List, Optional, Sequence, Tuple

if sys.version_info >= (3, 11):
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
else:  # pragma: no cover - exercised on 3.8-3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

CHUNK = 1 << 20  # bytes read at a time
MAX_LINE = 1 << 20  # a longer line is scanned in pieces of this size ...
OVERLAP = 1 << 12  # ... that overlap by this much, so a match across a cut is still found
SHOWN = 300  # characters of a matching line kept for the report
MIN_LITERAL = 3  # shorter required literals would make too many lines candidates
FILTER_MIN = 1 << 16  # blocks from this size are filtered by their rare bytes (see RareBytes) ...
FILTER_SAMPLE = 1 << 18  # ... which the first of them picks from this many of its bytes
RARE_SHARE = 0.04  # the rare bytes make up at most this share of the sample ...
RARER_SHARE = 0.01  # ... and the rarer ones this share


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:  # a setting for tests: a bad one is ignored, not a crash
        return default


# A regular file at least this large is scanned in parallel byte ranges, one per free core (at
# most MAX_WORKERS): below it, starting the workers (~25 ms) costs about what they save. Where
# no core is free, workers only compete with each other and the others, and the scan gets slower.
PARALLEL_MIN = _env_int("ENVDOCTOR_SCAN_PARALLEL_MIN", 64 << 20)
MAX_WORKERS = 4
# The number of ranges, when set (>0): for tests and benchmarks, whatever the cores.
WORKERS = _env_int("ENVDOCTOR_SCAN_WORKERS", 0)

def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# The time one pattern may spend on one line (or, for patterns without a literal, on one block)
# before it is dropped for the rest of the log: a pattern that backtracks catastrophically
# (kb lint refuses the known shapes, kb/regex_risk.py) must not hang the scan. Python's re checks
# for signals as it works, so an interval timer interrupts it.
PATTERN_BUDGET = _env_float("ENVDOCTOR_PATTERN_BUDGET", 2.0)


class _TooSlow(Exception):
    pass


class _Budget:
    """The time limit of each pattern search, by an interval timer (SIGALRM), armed once per
    block: most blocks finish in milliseconds, so a search running when it fires is the slow
    one. An alarm between searches only re-arms the timer, so other code is never interrupted.
    Only in the main thread (elsewhere signals cannot be used): there, no bound."""

    def __init__(self) -> None:
        self.active = False  # between __enter__ and __exit__, with our handler in place
        self.previous = None
        self.searching = False
        self.expired = False

    def __enter__(self) -> "_Budget":
        import threading

        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread() and not self.active:
            self.previous = signal.signal(signal.SIGALRM, self._on_alarm)
            self.active = True
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous if self.previous is not None else signal.SIG_DFL)
            self.active = False

    def _on_alarm(self, signum, frame) -> None:
        if self.searching:
            raise _TooSlow()
        self.expired = True

    def arm(self) -> None:
        if self.active:
            self.expired = False
            signal.setitimer(signal.ITIMER_REAL, PATTERN_BUDGET)

    def disarm(self) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def search(self, regex: "re.Pattern[str]", text: str, pos: int = 0) -> "Optional[re.Match[str]]":
        if self.expired:
            self.arm()
        self.searching = True
        try:
            return regex.search(text, pos)
        except _TooSlow:
            self.arm()  # a fresh budget for what follows in this block
            raise
        finally:
            self.searching = False


# CSI (colours, cursor moves), OSC (window titles, links) and two-byte escapes.
_ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)?|[@-Z\\-_])")


@dataclass(frozen=True)
class LogLine:
    number: int  # 1-based, counting "\n"
    text: str  # the matching line (the part between line breaks), shortened around the match


@dataclass(frozen=True)
class Hit:
    """The lines that matched one pattern."""

    pattern: str
    lines: Tuple[LogLine, ...]  # the first ``keep`` of them
    count: int  # matching lines in all


@dataclass(frozen=True)
class Scan:
    hits: Tuple[Hit, ...]  # patterns that matched, in the order given
    lines: int  # lines read
    size: int  # bytes read (after decompression)
    binary: bool  # NUL bytes near the start: probably not a text log


def required_literals(pattern: str) -> Optional[Tuple[str, ...]]:
    """Texts of which every match contains at least one, or None when there are none worth using."""
    try:
        parsed = _sre_parse.parse(pattern)
        if parsed.state.flags & re.IGNORECASE:
            return None
        best = _best_literals(parsed)
    except Exception:  # a private parser: when it changes, scan without the shortcut
        return None
    if best is None or min(len(s) for s in best) < MIN_LITERAL:
        return None
    return best


# What one ``bytes.find`` pass costs, in passes of a long needle: a fixed part plus a part that
# shrinks with the needle's length (the search skips about that many bytes per step). Measured:
# a 7-byte needle costs about 4x a 60-byte one.
PASS_COST = 1.0
SKIP_COST = 32.0


def find_cost(literal) -> float:
    return PASS_COST + SKIP_COST / max(1, len(literal))


def _score(option: Tuple[str, ...]) -> float:
    """Higher is better: the cheapest set of passes (every alternative needs its own)."""
    return -sum(find_cost(s) for s in option)


def _best_literals(items) -> Optional[Tuple[str, ...]]:
    options: List[Tuple[str, ...]] = []
    run: List[str] = []

    def flush() -> None:
        if run:
            options.append(("".join(run),))
            del run[:]

    for op, av in items:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        flush()
        inner = None
        if op is _sre.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if not add_flags & re.IGNORECASE:
                inner = _best_literals(sub)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            low, _high, sub = av
            if low >= 1:
                inner = _best_literals(sub)
        elif op is _sre.BRANCH:
            alternatives = [_best_literals(alt) for alt in av[1]]
            if all(alternatives):
                inner = tuple(s for alt in alternatives for s in alt)  # type: ignore[union-attr]
        if inner:
            options.append(inner)
    flush()
    return max(options, key=_score) if options else None


class _Pattern:
    def __init__(self, index: int, text: str) -> None:
        self.index = index
        self.text = text
        self._regex: Optional["re.Pattern[str]"] = None
        literals = required_literals(text)
        self.literals = tuple(s.encode("utf-8") for s in literals) if literals else ()

    @property
    def regex(self) -> "re.Pattern[str]":
        # Compiled on first use: most logs hold the literals of few patterns, if any.
        if self._regex is None:
            self._regex = re.compile(self.text)
        return self._regex


def _combined(patterns: Sequence[_Pattern]) -> List[Tuple[Tuple[_Pattern, ...], "re.Pattern[str]"]]:
    """One alternation over all, or one regex each where inline flags forbid joining them;
    each with the patterns it stands for."""
    if not patterns:
        return []
    try:
        return [(tuple(patterns), re.compile("|".join("(?:%s)" % p.text for p in patterns), re.MULTILINE))]
    except re.error:
        return _singles(patterns)


def _singles(patterns: Sequence[_Pattern]) -> List[Tuple[Tuple[_Pattern, ...], "re.Pattern[str]"]]:
    return [((p,), re.compile(p.text, re.MULTILINE)) for p in patterns]


def _shorten(text: str, start: int) -> str:
    text = text.strip()
    if len(text) <= SHOWN:
        return text
    begin = max(0, min(start - SHOWN // 3, len(text) - SHOWN))
    return ("…" if begin else "") + text[begin:begin + SHOWN] + ("…" if begin + SHOWN < len(text) else "")


class RareBytes:
    """A filter that spares most ``bytes.find`` passes over a block: the block is copied without
    its common bytes (one C loop), and only the literals whose rare bytes, in order, appear in
    that copy (a twentieth of the block or so) are then searched for in the block itself. A
    literal found in the block is always found in the copy, so nothing is missed."""

    def __init__(self, sample: bytes, literals: List[bytes]) -> None:
        used = sorted({b for literal in literals for b in literal} - {0x0A})
        seen = {b: sample.count(bytes((b,))) for b in used}
        rarest_first = sorted(used, key=seen.__getitem__)

        def deleting(share: float, keep: Tuple[int, ...]) -> bytes:
            """All bytes but the rarest of ``used`` that make up at most ``share`` of the sample."""
            kept, total = set(keep), 0
            for b in rarest_first:
                total += seen[b]
                if total > share * len(sample):
                    break
                kept.add(b)
            return bytes(b for b in range(256) if b not in kept)

        # "\n" stays, so the copy also counts lines, and a literal's bytes cannot join across two
        self.delete = deleting(RARE_SHARE, (0x0A,))
        # A second, smaller copy (of the first) is checked first: most literals stop there.
        self.delete_more = deleting(RARER_SHARE, ())
        self.rare_of = [(literal, literal.translate(None, self.delete), literal.translate(None, self.delete_more))
                        for literal in literals]

    def filter(self, block: bytes, lo: int, hi: int) -> Tuple[List[bytes], int]:
        """The literals that may be in ``block[lo:hi]``, and the number of "\\n" in it. The whole
        block is filtered (a slice would copy it): more candidates, never fewer."""
        rare = block.translate(None, self.delete)
        rarer = rare.translate(None, self.delete_more)
        newlines = rare.count(b"\n")
        if lo:
            newlines -= block.count(b"\n", 0, lo)
        if hi < len(block):
            newlines -= block.count(b"\n", hi)
        return [literal for literal, mark, rarer_mark in self.rare_of
                if not mark or (rarer_mark in rarer and mark in rare)], newlines


class Scanner:
    """Feed it blocks of whole lines (or pieces of an overlong line); it keeps the hits.

    With ``count_all`` False a pattern is looked for only until its first ``keep`` lines are
    kept (its count then says nothing of the rest); once every pattern has them (``done``) the
    lines are only counted. For a reader that wants where each pattern first matches, not how often."""

    def __init__(self, patterns: Sequence[str], keep: int = 5, count_all: bool = True) -> None:
        self.patterns = [_Pattern(i, p) for i, p in enumerate(patterns)]
        self.by_literal: Dict[bytes, List[_Pattern]] = {}
        for p in self.patterns:
            for literal in p.literals:
                self.by_literal.setdefault(literal, []).append(p)
        self.rare: Optional[RareBytes] = None  # set from the first large block
        self.unfiltered = [p for p in self.patterns if not p.literals]
        self.searchers = _combined(self.unfiltered)
        self.budget = _Budget()
        self.slow: Dict[int, int] = {}  # pattern index -> the line it ran out of time on
        self.keep = keep
        self.count_all = count_all
        self.counts = [0] * len(self.patterns)
        self.kept: List[List[LogLine]] = [[] for _ in self.patterns]
        self.last_line = [0] * len(self.patterns)
        self.line = 1  # the number of the line the next block starts in

    @property
    def done(self) -> bool:
        """Every pattern has its lines and is no longer looked for (only with ``count_all`` False)."""
        return not self.count_all and not self.by_literal and not self.unfiltered

    def feed(self, block: bytes, lo: int = 0, hi: Optional[int] = None) -> None:
        """Scan ``block[lo:hi]``, which ends at a line break (or is a piece of a long line).
        Bounds instead of a slice: copying every chunk would cost more than searching it."""
        hi = len(block) if hi is None else hi
        if self.done:  # nothing left to look for: the line numbers of what follows still count
            self.line += block.count(b"\n", lo, hi)
            return
        self.budget.arm()
        try:
            self._feed(block, lo, hi)
        finally:
            self.budget.disarm()

    def _feed(self, block: bytes, lo: int, hi: int) -> None:
        if self.rare is None and hi - lo >= FILTER_MIN and self.by_literal:
            self.rare = RareBytes(block[lo:lo + FILTER_SAMPLE], list(self.by_literal))
        if self.rare is not None and hi - lo >= FILTER_MIN:
            literals, newlines = self.rare.filter(block, lo, hi)
        else:
            literals, newlines = list(self.by_literal), block.count(b"\n", lo, hi)
        found = self._by_literals(block, lo, hi, literals)
        if self.unfiltered:
            part = block[lo:hi]
            found.extend(self._by_regex(_ANSI.sub(b"", part) if b"\x1b" in part else part))
        found.sort(key=lambda item: item[0])
        for number, pattern, text in found:
            self._record(number, pattern, text)
        self.line += newlines

    def _by_literals(self, block: bytes, lo: int, hi: int, literals: List[bytes]) -> List[Tuple[int, _Pattern, str]]:
        segments: Dict[int, Tuple[int, List[_Pattern]]] = {}
        for literal in literals:
            patterns = self.by_literal.get(literal)
            if patterns is None:  # its patterns have all their lines (count_all False)
                continue
            pos = block.find(literal, lo, hi)
            while pos != -1:
                start, end = _segment(block, pos, lo, hi)
                entry = segments.setdefault(start, (end, []))
                entry[1].extend(p for p in patterns if p not in entry[1])
                pos = block.find(literal, end + 1, hi)
        found = []
        counted, line = lo, self.line
        for start in sorted(segments):
            end, patterns = segments[start]
            line += block.count(b"\n", counted, start)
            counted = start
            raw = block[start:end]
            text = (_ANSI.sub(b"", raw) if b"\x1b" in raw else raw).decode("utf-8", "replace")
            for p in patterns:
                match = self._search(p, text, line)
                if match:
                    found.append((line, p, _shorten(text, match.start())))
        return found

    def _search(self, p: _Pattern, text: str, line: int) -> "Optional[re.Match[str]]":
        if p.index in self.slow:
            return None
        try:
            return self.budget.search(p.regex, text)
        except _TooSlow:
            self._too_slow(p, line)
            return None

    def _too_slow(self, p: _Pattern, line: int) -> None:
        self.slow[p.index] = line
        self._drop_unfiltered(p)  # out of the block-wide search, which would stall again

    def _drop_unfiltered(self, p: _Pattern) -> None:
        if p in self.unfiltered:
            self.unfiltered.remove(p)
            self.searchers = [(covered, regex) for covered, regex in self.searchers if p not in covered]
            if not self.searchers:
                self.searchers = _singles(self.unfiltered)

    def _retire(self, p: _Pattern) -> None:
        """No longer look for ``p``: no literal search and no block-wide search names it."""
        for literal in p.literals:
            others = [q for q in self.by_literal.get(literal, ()) if q is not p]
            if others:
                self.by_literal[literal] = others
            else:
                self.by_literal.pop(literal, None)
        self._drop_unfiltered(p)

    def _by_regex(self, block: bytes) -> List[Tuple[int, _Pattern, str]]:
        original = block.decode("utf-8", "replace")
        # Same offsets, every "\r" a line end: so "^", "$" and "." see the lines people see.
        text = original.replace("\r", "\n") if "\r" in original else original
        del block
        seen: Dict[int, int] = {}
        for covered, searcher in list(self.searchers):
            pos = 0
            while True:
                try:
                    match = self.budget.search(searcher, text, pos)
                except _TooSlow:
                    # Joined: search with each alone to learn which is slow. Alone: drop it.
                    if len(covered) > 1:
                        self.searchers = _singles(self.unfiltered)
                    else:
                        self._too_slow(covered[0], self.line + original.count("\n", 0, pos))
                    return self._by_regex(original.encode("utf-8", "surrogateescape")) if self.unfiltered else []
                if not match:
                    break
                start = text.rfind("\n", 0, match.start()) + 1
                end = text.find("\n", match.start())
                end = len(text) if end == -1 else end
                seen.setdefault(start, end)
                pos = end + 1
        found = []
        counted, line = 0, self.line
        for start in sorted(seen):
            line += original.count("\n", counted, start)
            counted = start
            segment = text[start:seen[start]]
            for p in list(self.unfiltered):
                match = self._search(p, segment, line)
                if match:
                    found.append((line, p, _shorten(segment, match.start())))
        return found

    def _record(self, line: int, pattern: _Pattern, text: str) -> None:
        i = pattern.index
        if self.last_line[i] == line:  # one line counts once (pieces of a long line, "\r" parts)
            return
        self.last_line[i] = line
        self.counts[i] += 1
        if len(self.kept[i]) < self.keep:
            self.kept[i].append(LogLine(line, text))
        if not self.count_all and len(self.kept[i]) >= self.keep:
            self._retire(pattern)

    def absorb(self, part: "RangeResult") -> None:
        """Add the hits of the byte range that follows what this scanner has read (it starts a line)."""
        offset = self.line - 1
        for i, (count, kept) in enumerate(zip(part.counts, part.kept)):
            if not count:
                continue
            self.counts[i] += count
            room = self.keep - len(self.kept[i])
            self.kept[i].extend(LogLine(line.number + offset, line.text) for line in kept[:max(0, room)])
            self.last_line[i] = part.last_line[i] + offset
        for i, line in part.slow:
            self.slow.setdefault(i, line + offset)
        self.line += part.newlines

    def part(self, size: int, ends_in_newline: bool) -> "RangeResult":
        """What this scanner found, as the part of a longer log that another scanner absorbs."""
        return RangeResult(tuple(self.counts), tuple(tuple(k) for k in self.kept), tuple(self.last_line),
                           self.line - 1, size, ends_in_newline, tuple(self.slow.items()))

    def hits(self) -> Tuple[Hit, ...]:
        return tuple(Hit(p.text, tuple(self.kept[p.index]), self.counts[p.index]) for p in self.patterns if self.counts[p.index])


def _segment(block: bytes, pos: int, lo: int, hi: int) -> Tuple[int, int]:
    """The bounds of the line around ``pos``: between "\\n" or "\\r" on either side."""
    start = block.rfind(b"\n", lo, pos) + 1 or lo
    start = max(start, block.rfind(b"\r", start, pos) + 1)
    end = block.find(b"\n", pos, hi)
    end = hi if end == -1 else end
    cr = block.find(b"\r", pos, end)
    return start, (end if cr == -1 else cr)


def scan(stream: BinaryIO, patterns: Sequence[str], keep: int = 5) -> Scan:
    """Read ``stream`` to its end and report the matching lines. Read errors propagate; to keep
    what was found before one, use ``scan_into`` with your own Scanner and Progress."""
    scanner = Scanner(patterns, keep)
    progress = Progress(scanner)
    scan_into(stream, scanner, progress)
    return Scan(scanner.hits(), progress.lines, progress.size, progress.binary)


class Progress:
    """How far a scan got; kept outside the loop so a read error can still report it."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.size = 0
        self.ends_in_newline = True
        self.binary = False

    @property
    def lines(self) -> int:
        return self.scanner.line - 1 + (0 if self.ends_in_newline else 1)


def _first_break(data: bytes) -> int:
    nl, cr = data.find(b"\n"), data.find(b"\r")
    return nl if cr == -1 else cr if nl == -1 else min(nl, cr)


def scan_into(stream: BinaryIO, scanner: Scanner, progress: Progress) -> None:
    with scanner.budget:
        _scan_into(stream, scanner, progress)


def _scan_into(stream: BinaryIO, scanner: Scanner, progress: Progress) -> None:
    pending = b""  # the start of a line whose end was not read yet
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        if progress.size == 0 and b"\x00" in chunk[:8192]:
            progress.binary = True
        progress.size += len(chunk)
        progress.ends_in_newline = chunk.endswith(b"\n")
        first = _first_break(chunk)
        if first == -1:
            pending += chunk
        else:
            last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            scanner.feed(pending + chunk[: first + 1])  # finish the pending line: small
            scanner.feed(chunk, first + 1, last + 1)
            pending = chunk[last + 1:]
        del chunk
        while len(pending) > MAX_LINE:  # no line break in sight: scan it in overlapping pieces
            scanner.feed(pending, 0, MAX_LINE)
            pending = pending[MAX_LINE - OVERLAP:]
    if pending:
        scanner.feed(pending)


# -- parallel scan of a regular file --------------------------------------------------------------


@dataclass(frozen=True)
class RangeResult:
    """What a worker found in its byte range; line numbers count from the range's first line."""

    counts: Tuple[int, ...]
    kept: Tuple[Tuple[LogLine, ...], ...]
    last_line: Tuple[int, ...]
    newlines: int
    size: int
    ends_in_newline: bool
    slow: Tuple[Tuple[int, int], ...] = ()  # (pattern index, line) of patterns that ran out of time


class _FileRange:
    """``read`` over bytes [start, end) of an open file, with ``pread``: no shared file offset,
    so forked workers can read the same descriptor at once."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd, self.pos, self.end = fd, start, end

    def read(self, size: int) -> bytes:
        data = os.pread(self.fd, max(0, min(size, self.end - self.pos)), self.pos)
        self.pos += len(data)
        return data


def parallel_workers(fd: int) -> int:
    """How many ranges to scan ``fd`` in at once: 1 (sequential) unless it is a regular file of
    PARALLEL_MIN bytes or more, several cores are free and processes can be forked."""
    import stat

    try:
        info = os.fstat(fd)
    except OSError:
        return 1
    if not stat.S_ISREG(info.st_mode) or info.st_size < max(1, PARALLEL_MIN) or not hasattr(os, "pread"):
        return 1
    try:
        import multiprocessing

        multiprocessing.get_context("fork")
    except (ImportError, ValueError):  # no fork (Windows): sequential
        return 1
    if WORKERS > 0:
        return WORKERS
    return max(1, min(MAX_WORKERS, free_cores()))


def free_cores() -> int:
    """The cores we may run on, less those fully busy on average over the last minute (a
    partly busy core still gives a worker most of its time)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = int(os.getloadavg()[0])
    except (AttributeError, OSError):  # no load average (Windows)
        busy = 0
    return cores - busy


def split_at_lines(fd: int, size: int, parts: int) -> List[Tuple[int, int]]:
    """``parts`` byte ranges of about equal size, each ending just after a "\\n" (except the last):
    so no line spans two ranges. A cut with no "\\n" within MAX_LINE bytes after it is dropped."""
    cuts = [0]
    for k in range(1, parts):
        at = max(cuts[-1], size * k // parts)
        ahead = os.pread(fd, MAX_LINE, at)
        nl = ahead.find(b"\n")
        if nl != -1 and at + nl + 1 < size:
            cuts.append(at + nl + 1)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def scan_range(fd: int, start: int, end: int, patterns: Sequence[str], keep: int, count_all: bool = True) -> RangeResult:
    scanner = Scanner(patterns, keep, count_all)
    progress = Progress(scanner)
    scan_into(_FileRange(fd, start, end), scanner, progress)
    return scanner.part(progress.size, progress.ends_in_newline)


def _worker_signals() -> None:
    """A worker leaves Ctrl-C to its parent, which ends the pool, and dies quietly when ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def scan_file(fd: int, scanner: Scanner, progress: Progress, workers: int, size: Optional[int] = None) -> None:
    """Scan the regular file ``fd`` from its start (to ``size``, or its end): the first range here,
    the others in forked workers at the same time, each reading its own range in CHUNK pieces
    (constant memory each)."""
    size = os.fstat(fd).st_size if size is None else size
    ranges = split_at_lines(fd, size, workers) if workers > 1 else [(0, size)]
    if len(ranges) == 1:
        scan_into(_FileRange(fd, 0, size), scanner, progress)
        return
    import multiprocessing

    patterns = [p.text for p in scanner.patterns]
    with multiprocessing.get_context("fork").Pool(len(ranges) - 1, initializer=_worker_signals) as pool:
        others = pool.starmap_async(scan_range, [(fd, a, b, patterns, scanner.keep, scanner.count_all) for a, b in ranges[1:]], chunksize=1)
        first = ranges[0]
        scan_into(_FileRange(fd, first[0], first[1]), scanner, progress)
        parts = others.get()
    for part in parts:
        scanner.absorb(part)
        progress.size += part.size
        progress.ends_in_newline = part.ends_in_newline
