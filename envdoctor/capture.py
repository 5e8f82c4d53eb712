"""What is kept of a running command's output for a diagnosis, in bounded memory however long
it runs: every line that matches a symptom (through ``logscan.Scanner``, which keeps the first
few of each and counts the rest) and the last ``ring`` bytes.

stdout and stderr arrive in pieces of any size; each stream's unfinished line waits for its
end, so the scanner sees whole lines of one stream at a time, in the order they were
completed (as ``2>&1`` would interleave them). Lines are scanned in blocks of ``block`` bytes:
the scanner is fastest on large blocks, and the scan may lag the live output a little.
"""

import re
from collections import deque
from typing import Deque, Dict, List, Sequence, Tuple


from envdoctor.logscan import MAX_LINE, Hit, Progress, Scanner

BLOCK = 1 << 20  # small pieces are joined into blocks of this size to be scanned ...
DIRECT = 1 << 18  # ... and a piece this large is scanned as it is
RING = 4 << 20  # the output's end kept (for the report's tail and the rival causes' clues)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)?|[@-Z\\-_])")


def _first_break(data: bytes) -> int:
    nl, cr = data.find(b"\n"), data.find(b"\r")
    return nl if cr == -1 else cr if nl == -1 else min(nl, cr)


class Capture:
    def __init__(self, patterns: Sequence[str], keep: int = 5, block: int = BLOCK, ring: int = RING) -> None:
        self.scanner = Scanner(patterns, keep)
        self.progress = Progress(self.scanner)
        self.block = block
        self.ring_size = ring
        self.pending: Dict[int, List[bytes]] = {1: [], 2: []}
        self.pending_size: Dict[int, int] = {1: 0, 2: 0}
        self.batch: List[object] = []  # bytes and memoryviews of whole lines, joined when scanned
        self.batch_size = 0
        self.ring: Deque[Tuple[int, object]] = deque()  # (number of its first line, bytes or a view of them)
        self.ring_held = 0

    def feed(self, stream: int, data: bytes) -> None:
        self.progress.size += len(data)
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last == -1:
            self.pending[stream].append(data)
            self.pending_size[stream] += len(data)
            if self.pending_size[stream] > MAX_LINE:  # no line end in sight: scan what we have
                self._finish_line(stream)
        else:
            self._finish_line(stream)
            if last + 1 >= DIRECT:  # a large read: scanned where it lies, after what came before it
                first = _first_break(data)
                self._add(memoryview(data)[: first + 1], first + 1)
                self._scan()
                self._scan_block(data, first + 1, last + 1)
            else:
                self._add(memoryview(data)[: last + 1], last + 1)
            if last + 1 < len(data):
                self.pending[stream].append(data[last + 1:])
                self.pending_size[stream] = len(data) - last - 1
        if self.batch_size >= self.block:
            self._scan()

    def _finish_line(self, stream: int) -> None:
        for part in self.pending[stream]:
            self._add(part, len(part))
        self.pending[stream] = []
        self.pending_size[stream] = 0

    def _add(self, part: object, size: int) -> None:
        self.batch.append(part)
        self.batch_size += size

    def _scan(self) -> None:
        if not self.batch:
            return
        block = b"".join(self.batch)  # type: ignore[arg-type]
        self.batch, self.batch_size = [], 0
        self._scan_block(block, 0, len(block))

    def _scan_block(self, block: bytes, lo: int, hi: int) -> None:
        """Scan ``block[lo:hi]`` (whole lines) and keep it in the ring, without copying it."""
        if hi <= lo:
            return
        self.progress.ends_in_newline = block[hi - 1] == 0x0A
        self.ring.append((self.scanner.line, memoryview(block)[lo:hi] if lo or hi < len(block) else block))
        self.scanner.feed(block, lo, hi)
        self.ring_held += hi - lo
        while self.ring_held - len(self.ring[0][1]) >= self.ring_size:
            self.ring_held -= len(self.ring.popleft()[1])

    def finish(self) -> None:
        """The command has ended: scan what is left, unfinished lines too."""
        for stream in (1, 2):
            self._finish_line(stream)
        self._scan()

    def tail(self, lines: int) -> List[str]:
        """The last ``lines`` lines kept (colour codes removed, ``\\r`` redraws reduced to the last)."""
        text = b"".join(block for _, block in self.ring)[-self.ring_size:].decode("utf-8", "replace")
        out = []
        for line in text.split("\n")[-lines - 1:]:
            shown = [part for part in line.split("\r") if part.strip()]  # a redrawn bar: its last state
            out.append(_ANSI.sub("", shown[-1] if shown else "").rstrip())
        while out and not out[-1]:
            out.pop()
        return out[-lines:]

    def scan_tail(self, patterns: Sequence[str], keep: int = 1) -> Tuple[Hit, ...]:
        """Look for more patterns in the output's end (the ring), with the line numbers of the
        whole output: what a traceback just before the failure says."""
        if not self.ring or not patterns:
            return ()
        scanner = Scanner(patterns, keep)
        scanner.line = self.ring[0][0]
        for _, block in self.ring:
            scanner.feed(bytes(block))
        return scanner.hits()
