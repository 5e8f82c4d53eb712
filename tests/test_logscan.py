"""The scan's shortcuts never change its answer: the rare-byte filter, and the parallel scan of a
large plain log (same hits, line numbers and counts as reading it in order).

The parallel ranges are cut just after a "\\n" near equal fractions of the file; these logs have lines of one
fixed length, so the tests know where the cuts fall and put matches on both sides of each."""

import json
import os
import sys

import pytest

from builders import REPO, envdoctor

sys.path.insert(0, REPO)

from envdoctor.kb.load import load_kb  # noqa: E402
from envdoctor.explain import symptom_patterns  # noqa: E402
from envdoctor.logscan import (FILTER_SAMPLE, MAX_LINE, Progress, RareBytes, Scanner, parallel_workers,  # noqa: E402
                               scan, scan_file, scan_into, split_at_lines)

WIDTH = 100  # bytes per line, "\n" included
WORKERS = 4
ASSERTION = "    assert position_ids is not None and (position_ids.max() + 1) >= kv_seq_len"
DRIVER = "RuntimeError: The NVIDIA driver on your system is too old (found version 11040)."
KILLED = "Killed"  # matched by a pattern without a required literal: the regex path
PATTERNS = symptom_patterns(load_kb()) + (r"^\s*Killed\s*$", r"(?i)cuda out of memory")


def fixed(text: str) -> str:
    return (text + " " * WIDTH)[: WIDTH - 1]


def noise_line(i: int) -> str:
    if i % 7 == 3:  # a progress bar: lone "\r" inside the line
        return fixed(" 10%%|#         | %d/10\r 20%%|##        | %d/10" % (i, i))
    return fixed("2024/05/06 12:00:00 - mmengine - INFO - Iter(train) [%6d/60000] loss: 0.%04d" % (i, i % 9999))


def cut_lines(count: int, parts: int) -> list:
    """Index of the first line of each range after the first, as split_at_lines cuts them."""
    size = count * WIDTH
    return [(size * k // parts) // WIDTH + 1 for k in range(1, parts)]


def write_log(path, count: int, planted: dict, end_newline: bool = True) -> str:
    with open(str(path), "wb") as out:
        for i in range(count):
            line = planted.get(i, noise_line(i))
            assert len(line) == WIDTH - 1, line
            out.write(line.encode() + (b"\n" if end_newline or i < count - 1 else b""))
    return str(path)


def in_order(path: str, keep: int = 5):
    with open(path, "rb") as stream:
        return scan(stream, PATTERNS, keep)


def in_parallel(path: str, workers: int = WORKERS, keep: int = 5, count_all: bool = True):
    scanner = Scanner(PATTERNS, keep, count_all)
    progress = Progress(scanner)
    with open(path, "rb") as stream:
        scan_file(stream.fileno(), scanner, progress, workers)
    return scanner.hits(), progress


@pytest.fixture(scope="module")
def boundary_log(tmp_path_factory):
    """Matches on the first and last line and on both sides of every cut."""
    count = 20000
    planted = {0: fixed(DRIVER), count - 1: fixed(ASSERTION)}
    for first in cut_lines(count, WORKERS):
        planted[first - 1] = fixed(ASSERTION)  # the last line of a range
        planted[first] = fixed("\x1b[31m" + DRIVER + "\x1b[0m")  # the first line of the next
        planted[first + 2] = fixed("  " + KILLED)
    return write_log(tmp_path_factory.mktemp("parallel") / "train.log", count, planted), planted, count


def test_the_cuts_fall_where_the_test_planted_matches(boundary_log):
    path, _, count = boundary_log
    with open(path, "rb") as stream:
        ranges = split_at_lines(stream.fileno(), count * WIDTH, WORKERS)
    assert [start // WIDTH for start, _ in ranges[1:]] == cut_lines(count, WORKERS)
    assert ranges[0][0] == 0 and ranges[-1][1] == count * WIDTH
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_parallel_equals_sequential_on_range_boundaries(boundary_log):
    path, planted, count = boundary_log
    hits, progress = in_parallel(path, keep=100)
    expected = in_order(path, keep=100)
    assert hits == expected.hits
    assert (progress.lines, progress.size, progress.binary) == (expected.lines, expected.size, expected.binary) == (count, count * WIDTH, False)
    by_pattern = {hit.pattern: [line.number for line in hit.lines] for hit in hits}
    driver = [i + 1 for i, text in planted.items() if "NVIDIA" in text]
    assertion = [i + 1 for i, text in planted.items() if "kv_seq_len" in text]
    killed = [i + 1 for i, text in planted.items() if KILLED in text]
    assert by_pattern[next(p for p in by_pattern if "NVIDIA driver" in p)] == sorted(driver)
    assert by_pattern[next(p for p in by_pattern if "kv_seq_len" in p)] == sorted(assertion)
    assert by_pattern[r"^\s*Killed\s*$"] == sorted(killed)
    assert min(driver) == 1 and max(assertion) == count


def test_parallel_keeps_the_first_lines_and_counts_them_all(boundary_log):
    path, planted, _ = boundary_log
    hits, _ = in_parallel(path, keep=2)
    assertion = next(hit for hit in hits if "kv_seq_len" in hit.pattern)
    planted_lines = sorted(i + 1 for i, text in planted.items() if "kv_seq_len" in text)
    assert [line.number for line in assertion.lines] == planted_lines[:2]
    assert assertion.count == len(planted_lines) == WORKERS
    assert hits == in_order(path, keep=2).hits


def test_no_final_newline_and_more_workers_than_cores(tmp_path):
    count = 5003
    path = write_log(tmp_path / "cut.log", count, {count - 1: fixed(DRIVER), 2500: fixed(ASSERTION)}, end_newline=False)
    hits, progress = in_parallel(path, workers=7)
    expected = in_order(path)
    assert hits == expected.hits and progress.lines == expected.lines == count
    assert [hit.lines[0].number for hit in hits] == [count, 2501]


def test_a_cut_inside_an_overlong_line_is_dropped(tmp_path):
    """No "\\n" within MAX_LINE after a nominal cut: that range is merged with the next."""
    path = tmp_path / "long.log"
    head = "".join(noise_line(i) + "\n" for i in range(100)).encode()
    long_line = b"x" * (3 * MAX_LINE) + DRIVER.encode() + b"\n"
    tail = "".join(noise_line(i) + "\n" for i in range(100)).encode() + ASSERTION.encode() + b"\n"
    path.write_bytes(head + long_line + tail)
    size = path.stat().st_size
    with open(str(path), "rb") as stream:
        ranges = split_at_lines(stream.fileno(), size, WORKERS)
    assert len(ranges) < WORKERS and ranges[-1][1] == size
    hits, progress = in_parallel(str(path))
    expected = in_order(str(path))
    assert hits == expected.hits and progress.lines == expected.lines == 202
    assert sorted(hit.lines[0].number for hit in hits) == [101, 202]


def test_small_files_pipes_and_empty_files_stay_sequential(tmp_path):
    small = tmp_path / "small.log"
    small.write_bytes(b"x\n" * 100)
    read_fd, write_fd = os.pipe()
    try:
        with open(str(small), "rb") as stream:
            assert parallel_workers(stream.fileno()) == 1  # below PARALLEL_MIN
        assert parallel_workers(read_fd) == 1
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_explain_gives_the_same_report_in_parallel(boundary_log):
    path, _, _ = boundary_log
    reports = []
    for env in ({"ENVDOCTOR_SCAN_PARALLEL_MIN": "1", "ENVDOCTOR_SCAN_WORKERS": "3"}, {"ENVDOCTOR_SCAN_PARALLEL_MIN": str(1 << 40)}):
        done = envdoctor("explain", path, "--log-only", "--format", "json", env=env)
        assert done.returncode == 1, done.stderr
        reports.append(json.loads(done.stdout))
    assert reports[0] == reports[1]
    assert reports[0]["lines_read"] == 20000 and reports[0]["matches"]


# -- the rare-byte filter -----------------------------------------------------------------------------


def test_rare_bytes_are_those_of_the_literals_least_seen_in_the_sample():
    sample = b"INFO loss loss\n" * 1000 + b"Q"  # each letter here is over RARE_SHARE of it, but Q
    rare = RareBytes(sample, [b"INFO Quux", b"loss"])
    kept = set(range(256)) - set(rare.delete)
    assert kept == {ord("Q"), ord("u"), ord("x"), ord("\n")}
    assert {literal: mark for literal, mark, _ in rare.rare_of} == {b"INFO Quux": b"Quux", b"loss": b""}
    literals, newlines = rare.filter(b"a\nINFO Quux\nloss\n", 0, 17)
    assert literals == [b"INFO Quux", b"loss"] and newlines == 3  # no rare bytes: always searched
    literals, newlines = rare.filter(b"a\nx u u Q\nb\n", 2, 12)  # its rare bytes, but out of order
    assert literals == [b"loss"] and newlines == 2


def test_matches_after_the_sample_are_found_whatever_bytes_it_made_look_rare(tmp_path):
    """The sample says upper case and punctuation are common; later the log changes its ways."""
    shouting = fixed("ERROR: WARNING: NVIDIA CUDA (IN) 'XTUNER' `PTX` A B C D E F G H I J K L M N O P Q R S T U V W X Y Z")
    count = (2 * FILTER_SAMPLE) // WIDTH
    planted = {i: shouting for i in range(count // 2)}
    planted.update({count // 2 + 5: fixed(DRIVER), count - 3: fixed(ASSERTION), count - 1: fixed("Killed")})
    path = write_log(tmp_path / "moody.log", count, planted)
    found = {hit.pattern: [line.number for line in hit.lines] for hit in in_order(path).hits}
    assert found[next(p for p in found if "NVIDIA driver" in p)] == [count // 2 + 6]
    assert found[next(p for p in found if "kv_seq_len" in p)] == [count - 2]
    assert found[r"^\s*Killed\s*$"] == [count]


def test_first_lines_only_give_the_same_first_lines(tmp_path):
    """count_all=False (explain's second read, for rival causes): each pattern's first lines as
    a full scan finds them, a pattern no longer looked for once it has them, and once every
    pattern has them (done) the lines still counted."""
    count = 20000
    # The first lines in the first 1 MiB read, the second ones after it (lines of 100 bytes).
    planted = {5: fixed(DRIVER), 6: fixed(ASSERTION), 9001: fixed(KILLED), 15000: fixed(DRIVER),
               16000: fixed("\x1b[31m" + ASSERTION + "\x1b[0m")}
    log = write_log(tmp_path / "first.log", count, planted)
    present = [r"too old \(found version \d+\)", r"position_ids\.max\(\) \+ 1", r"^\s*Killed\s*$"]
    with open(log, "rb") as stream:
        counted = scan(stream, present, keep=1).hits
    assert [h.count for h in counted] == [2, 2, 1]
    full = {h.pattern: h.lines[0] for h in counted}
    assert sorted(line.number for line in full.values()) == [6, 7, 9002]
    for patterns, to_the_end in ((present, False), (present + ["never in this log"], True)):
        scanner = Scanner(patterns, keep=1, count_all=False)
        progress = Progress(scanner)
        with open(log, "rb") as stream:
            scan_into(stream, scanner, progress)
        hits = scanner.hits()
        assert {h.pattern: h.lines[0] for h in hits} == full
        assert all(h.count == 1 for h in hits)  # a pattern that has its line was looked for no more
        assert scanner.done is not to_the_end
        assert (progress.lines, progress.size) == (count, count * WIDTH)


def test_first_lines_only_in_parallel_are_those_read_in_order(boundary_log):
    """Ranges scanned at once with count_all=False: the first line of each pattern and the line
    numbers of the later ranges as a scan in order gives them (a range done early still counts
    its lines)."""
    path, _, count = boundary_log
    hits, progress = in_parallel(path, keep=1, count_all=False)
    expected = in_order(path, keep=1)
    assert [(h.pattern, h.lines) for h in hits] == [(h.pattern, h.lines) for h in expected.hits]
    assert (progress.lines, progress.size) == (count, count * WIDTH)
