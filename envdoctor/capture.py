"""What is kept of a running command's output for a diagnosis, in bounded memory however long
it runs: the output itself, in an unnamed temporary file (the spool, at most ``spool`` bytes; the
system removes it when we end), searched only when a diagnosis is asked for, that is when the
command failed; and the last ``ring`` bytes in memory. A command that succeeds costs no search.
Past the spool's limit (or where no temporary file can be written) the lines are searched as they
come, through ``logscan.Scanner``, which keeps the first few matching lines of each symptom.

stdout and stderr arrive in pieces of any size; each stream's unfinished line waits for its
end, so the spool (and the scanner) get whole lines of one stream at a time, in the order they
were completed (as ``2>&1`` would interleave them). Small pieces are joined into blocks of
``block`` bytes: fewer writes, and the scanner is fastest on large blocks.
"""

import os
import re
import tempfile
from collections import deque
from typing import IO, Deque, Dict, List, Optional, Sequence, Tuple

from envdoctor.logscan import MAX_LINE, Hit, Progress, Scanner, _env_int, parallel_workers, scan_file

BLOCK = 1 << 20  # small pieces are joined into blocks of this size to be scanned ...
DIRECT = 1 << 18  # ... and a piece this large is scanned as it is
RING = 4 << 20  # the output's end kept (for the report's tail and the rival causes' clues)
# The spool's limit: a longer output's rest is searched as it comes (0: no spool, search it all so).
SPOOL = _env_int("ENVDOCTOR_RUN_SPOOL", 2 << 30)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)?|[@-Z\\-_])")


def spool_folder() -> Optional[str]:
    """Where the spool is made: $TMPDIR when set (tempfile's choice), else /var/tmp, which is on
    disk where /tmp may be held in memory."""
    if os.environ.get("TMPDIR") or not (os.path.isdir("/var/tmp") and os.access("/var/tmp", os.W_OK)):
        return None
    return "/var/tmp"


def _first_break(data: bytes) -> int:
    nl, cr = data.find(b"\n"), data.find(b"\r")
    return nl if cr == -1 else cr if nl == -1 else min(nl, cr)


class Capture:
    def __init__(self, patterns: Sequence[str], keep: int = 5, block: int = BLOCK, ring: int = RING,
                 spool: int = SPOOL) -> None:
        self.patterns = list(patterns)
        self.keep = keep
        self.live = Scanner(patterns, keep)  # the lines past the spool (all of them without one)
        self.block = block
        self.ring_size = ring
        self.spool_limit = spool
        self.spool: Optional[IO[bytes]] = None  # made at the first write
        self.spooling = spool > 0
        self.spooled = 0  # bytes in the spool
        self.size = 0
        self.ends_in_newline = True
        self.pending: Dict[int, List[bytes]] = {1: [], 2: []}
        self.pending_size: Dict[int, int] = {1: 0, 2: 0}
        self.batch: List[object] = []  # bytes and memoryviews of whole lines, joined when handed on
        self.batch_size = 0
        self.ring: Deque[object] = deque()  # bytes or views of them, whole lines
        self.ring_held = 0
        self._result: Optional[Tuple[Scanner, Progress]] = None

    @property
    def budget(self):
        """The live scanner's time limit per search: held around the command's run."""
        return self.live.budget

    def feed(self, stream: int, data: bytes) -> None:
        self.size += len(data)
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last == -1:
            self.pending[stream].append(data)
            self.pending_size[stream] += len(data)
            if self.pending_size[stream] > MAX_LINE:  # no line end in sight: scan what we have
                self._finish_line(stream)
        else:
            self._finish_line(stream)
            if last + 1 >= DIRECT:  # a large read: handed on where it lies, after what came before it
                first = _first_break(data)
                self._add(memoryview(data)[: first + 1], first + 1)
                self._flush()
                self._hand_on(data, first + 1, last + 1)
            else:
                self._add(memoryview(data)[: last + 1], last + 1)
            if last + 1 < len(data):
                self.pending[stream].append(data[last + 1:])
                self.pending_size[stream] = len(data) - last - 1
        if self.batch_size >= self.block:
            self._flush()

    def _finish_line(self, stream: int) -> None:
        for part in self.pending[stream]:
            self._add(part, len(part))
        self.pending[stream] = []
        self.pending_size[stream] = 0

    def _add(self, part: object, size: int) -> None:
        self.batch.append(part)
        self.batch_size += size

    def _flush(self) -> None:
        if not self.batch:
            return
        block = b"".join(self.batch)  # type: ignore[arg-type]
        self.batch, self.batch_size = [], 0
        self._hand_on(block, 0, len(block))

    def _hand_on(self, block: bytes, lo: int, hi: int) -> None:
        """Keep ``block[lo:hi]`` (whole lines) in the ring, without copying it, and in the spool,
        or search it now when the spool is full."""
        if hi <= lo:
            return
        self.ends_in_newline = block[hi - 1] == 0x0A
        view = memoryview(block)[lo:hi] if lo or hi < len(block) else block
        self.ring.append(view)
        self.ring_held += hi - lo
        while self.ring_held - len(self.ring[0]) >= self.ring_size:  # type: ignore[arg-type]
            self.ring_held -= len(self.ring.popleft())  # type: ignore[arg-type]
        if not (self.spooling and self._spool(view)):
            self.live.feed(block, lo, hi)

    def _spool(self, data: object) -> bool:
        """Write to the spool; False once it is full or cannot be written (then the rest is
        searched as it comes: the spool keeps what it has)."""
        size = len(data)  # type: ignore[arg-type]
        if self.spooled + size > self.spool_limit:
            self.spooling = False
            return False
        try:
            if self.spool is None:
                self.spool = tempfile.TemporaryFile(prefix="envdoctor-run-", dir=spool_folder())
            view = memoryview(data)  # type: ignore[arg-type]
            while view:
                view = view[os.write(self.spool.fileno(), view):]
        except OSError:  # a full disk, a read-only folder: what was written stays, up to spooled
            self.spooling = False
            return False
        self.spooled += size
        return True

    def finish(self) -> None:
        """The command has ended: hand on what is left, unfinished lines too."""
        for stream in (1, 2):
            self._finish_line(stream)
        self._flush()

    def result(self) -> Tuple[Scanner, Progress]:
        """The search of the whole output (the spool's part now, in parallel where cores are
        free, then the lines searched as they came), with line numbers of the whole output."""
        if self._result is None:
            scanner = self.live
            if self.spooled:
                scanner = Scanner(self.patterns, self.keep)
                fd = self.spool.fileno()  # type: ignore[union-attr]
                scan_file(fd, scanner, Progress(scanner), parallel_workers(fd), self.spooled)
                scanner.absorb(self.live.part(self.size - self.spooled, self.ends_in_newline))
            progress = Progress(scanner)
            progress.size, progress.ends_in_newline = self.size, self.ends_in_newline
            self._result = (scanner, progress)
            self.close()
        return self._result

    def close(self) -> None:
        """Give the spool back (the system would at our exit)."""
        if self.spool is not None:
            self.spool.close()
            self.spool = None
            self.spooling = False

    def tail(self, lines: int) -> List[str]:
        """The last ``lines`` lines kept (colour codes removed, ``\\r`` redraws reduced to the last)."""
        text = b"".join(self.ring)[-self.ring_size:].decode("utf-8", "replace")  # type: ignore[arg-type]
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
        whole, _ = self.result()
        scanner = Scanner(patterns, keep)
        # The ring holds the output's last lines: it starts after all "\n" but its own.
        scanner.line = whole.line - sum(bytes(block).count(b"\n") for block in self.ring)  # type: ignore[arg-type]
        for block in self.ring:
            scanner.feed(bytes(block))  # type: ignore[arg-type]
        return scanner.hits()
