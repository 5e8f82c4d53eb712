"""capture.Capture: output arriving in pieces of any size, from two streams, is scanned as the
whole log would be by explain's scanner."""

import io
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from envdoctor.capture import DIRECT, Capture  # noqa: E402
from envdoctor.logscan import scan  # noqa: E402

PATTERNS = [r"position_ids\.max\(\) \+ 1\) >= kv_seq_len", r"CUDA out of memory", r"^Killed$"]


def _log(rng: random.Random) -> bytes:
    lines = []
    for i in range(40000):
        kind = rng.random()
        if kind < 0.001:
            lines.append("    assert position_ids is not None and (position_ids.max() + 1) >= kv_seq_len")
        elif kind < 0.002:
            lines.append("\x1b[31mtorch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\x1b[0m")
        elif kind < 0.003:
            lines.append("Killed")
        elif kind < 0.1:
            lines.append("\r".join(" %d%%|%s|" % (p, "#" * (p // 10)) for p in range(0, 101, 25)))
        else:
            lines.append("step %d loss %.4f lr 2e-05" % (i, rng.random()))
    return ("\n".join(lines) + "\nno newline at the end").encode()


def test_pieces_of_any_size_scan_like_the_whole_log():
    rng = random.Random(7)
    data = _log(rng)
    expected = scan(io.BytesIO(data), PATTERNS)
    everything = scan(io.BytesIO(data), PATTERNS, keep=1000)
    # The spool holds it all, none of it (every line searched as it comes), or its first part.
    for sizes, spool in (((1, 700), 1 << 30), ((4000, 70000), 0), ((DIRECT, DIRECT * 3), len(data) // 3),
                         ((4000, 70000), len(data) // 2)):
        capture = Capture(PATTERNS, block=1 << 16, ring=1 << 16, spool=spool)
        at = 0
        while at < len(data):
            n = rng.randint(*sizes)
            capture.feed(1, data[at:at + n])
            at += n
        capture.finish()
        assert 0 < capture.spooled < len(data) if 0 < spool < len(data) else capture.spooled == min(spool, len(data))
        scanner, progress = capture.result()
        assert scanner.hits() == expected.hits, (sizes, spool)
        assert progress.lines == expected.lines and progress.size == len(data)
        # The end's own search numbers its lines as the whole output does.
        first = data[:len(data) - capture.ring_held].count(b"\n") + 1
        in_ring = {hit.pattern: [line for line in hit.lines if line.number >= first] for hit in everything.hits}
        assert {hit.pattern: list(hit.lines) for hit in capture.scan_tail(PATTERNS, keep=1000)} == {
            pattern: lines for pattern, lines in in_ring.items() if lines}
        assert capture.tail(2) == ["step 39999 loss %s lr 2e-05" % data.split(b"\n")[-2].split()[3].decode(), "no newline at the end"]
        assert capture.ring_held < (1 << 16) * 2 + sizes[1]  # the ring and at most one block more


def test_two_streams_keep_their_lines_whole():
    capture = Capture(PATTERNS)
    capture.feed(1, b"step 1 ok\nCUDA out ")
    capture.feed(2, b"a warning\n")
    capture.feed(1, b"of memory\nstep 2\n")
    capture.finish()
    (hit,) = capture.result()[0].hits()
    assert [(line.number, line.text) for line in hit.lines] == [(3, "CUDA out of memory")]
    assert capture.tail(10) == ["step 1 ok", "a warning", "CUDA out of memory", "step 2"]
