"""Benchmark: the overhead of `envdoctor run --no-check -- CMD` against running CMD bare, for a
command that prints about 1 GB of training-log lines; runs alternate (bare, run, bare, run ...)
so a busy machine weighs on both alike. Prints each pair, the ratio of the medians (target: at
most 1.10 wall) and envdoctor's peak memory. The pre-flight (`envdoctor run -- true` with the
check, against this interpreter) is timed apart, from the --report it writes.

A third arm, the pipe floor, runs the command under a minimal relay (a pipe of the same size,
read and written on as `run` does, nothing kept or searched): what capturing the output through
a pipe costs any tool, so the rest of the ratio is envdoctor's own.

    python bench/bench_run.py [--size-mb 1000] [--repeat 3] [--printer lines|blocks] [--out PATH]

--printer lines: the command prints line by line (print(), as a logger does; the default).
--printer blocks: it writes 1 MiB blocks at once, the fastest a command can print and so the
worst case for the overhead. Output goes to /dev/null in both arms (the strictest comparison:
writing there costs the bare command nothing), or to the file --out (removed afterwards).
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

from bench_explain import _noise_lines  # noqa: E402

PRINTER = r"""
import sys
lines = open(sys.argv[1]).read().split("\n")[:-1]
size = int(sys.argv[2])
block = "".join(line + "\n" for line in lines)
written = 0
if sys.argv[3] == "lines":
    while written < size:
        for line in lines:
            print(line)
        written += len(block)
else:
    data = block.encode()
    out = sys.stdout.buffer
    while written < size:
        out.write(data)
        written += len(data)
"""

# The pipe floor: what `run` does with the output minus the capture (see supervise._pump).
RELAY = r"""
import fcntl, os, subprocess, sys, time
read_fd, write_fd = os.pipe()
try:
    fcntl.fcntl(write_fd, 1031, 1 << 20)  # F_SETPIPE_SZ, as supervise asks
except OSError:
    pass
child = subprocess.Popen(sys.argv[1:], stdout=write_fd)
os.close(write_fd)
while True:
    data = os.read(read_fd, 1 << 20)
    if not data:
        break
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
    if len(data) < 1 << 16:
        time.sleep(0.005)
sys.exit(child.wait())
"""


def _timed(argv, env, out=os.devnull):
    """Wall seconds, peak RSS (KiB) and CPU seconds (with its children's) of the process started
    with argv, via wait4."""
    with open(out, "wb") as null:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE, env=env)
        err = proc.stderr.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    if os.WEXITSTATUS(status) != 0:
        sys.exit("failed (%d): %s\n%s" % (os.WEXITSTATUS(status), " ".join(argv), err.decode(errors="replace")))
    return seconds, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--printer", choices=["lines", "blocks"], default="lines")
    parser.add_argument("--out", default=os.devnull, help="where the output goes (default: /dev/null)")
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=REPO)
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "envdoctor")], check=True)
    folder = tempfile.mkdtemp(prefix="envdoctor-bench-run-")
    try:
        lines_file = os.path.join(folder, "lines.txt")
        with open(lines_file, "w", encoding="utf-8") as out:
            out.write("\n".join(_noise_lines(random.Random(20240506), 20000)) + "\n")
        script = os.path.join(folder, "printer.py")
        with open(script, "w", encoding="utf-8") as out:
            out.write(PRINTER)
        relay = os.path.join(folder, "relay.py")
        with open(relay, "w", encoding="utf-8") as out:
            out.write(RELAY)
        command = [sys.executable, script, lines_file, str(args.size_mb * 1000 * 1000), args.printer]
        wrapped = [sys.executable, "-m", "envdoctor", "run", "--no-check", "--"] + command
        piped = [sys.executable, relay] + command

        bare, floor, run, peaks, extra_cpu = [], [], [], [], []
        print("printer: %s, %d MB to %s, %d rounds (bare, pipe floor, envdoctor run)" % (
            args.printer, args.size_mb, args.out, args.repeat))
        for i in range(args.repeat):
            b, _, b_cpu = _timed(command, env, args.out)
            f, _, f_cpu = _timed(piped, env, args.out)
            r, peak, r_cpu = _timed(wrapped, env, args.out)
            bare.append(b)
            floor.append(f)
            run.append(r)
            peaks.append(peak)
            extra_cpu.append(r_cpu - b_cpu)
            print("  round %d: bare %.2f s, floor %.2f s (%.3fx), run %.2f s (%.3fx), peak RSS %d MiB; "
                  "CPU bare %.2f s, floor %.2f s, run %.2f s" % (
                      i + 1, b, f, f / b, r, r / b, peak // 1024, b_cpu, f_cpu, r_cpu))
        print("pipe floor: median ratio %.3f, least %.3f (a pipe and a relay alone, over bare)" % (
            statistics.median(floor) / statistics.median(bare), min(floor) / min(bare)))
        print("run over the pipe floor: median ratio %.3f, least %.3f (envdoctor's own share)" % (
            statistics.median(run) / statistics.median(floor), min(run) / min(floor)))
        ratio = statistics.median(run) / statistics.median(bare)
        print("median: bare %.2f s, run %.2f s, ratio %.3f (target <= 1.10) %s" % (
            statistics.median(bare), statistics.median(run), ratio, "ok" if ratio <= 1.10 else "OVER"))
        # The least of each arm is the run the machine disturbed least (a shared machine's
        # single-core speed can swing by half between runs): the steadier comparison.
        print("least: bare %.2f s, run %.2f s, ratio %.3f" % (min(bare), min(run), min(run) / min(bare)))
        print("peak RSS of envdoctor run: %d MiB (largest)" % (max(peaks) // 1024))
        # On a machine with a free core the extra CPU runs beside the command; on a saturated one
        # it adds to the wall time.
        print("extra CPU of run (envdoctor and the pipe): median %.2f s" % statistics.median(extra_cpu))

        report = os.path.join(folder, "run.json")
        pre = []
        for _ in range(args.repeat):
            _timed([sys.executable, "-m", "envdoctor", "run", "--report", report, "--keep-going", "--", sys.executable, "-c", ""], env)
            with open(report, encoding="utf-8") as data:
                pre.append(json.load(data)["preflight"]["seconds"])
        print("pre-flight (check of this interpreter, from --report): median %.3f s (runs: %s)" % (
            statistics.median(pre), ", ".join("%.3f" % s for s in pre)))
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        if args.out != os.devnull and os.path.isfile(args.out):
            os.unlink(args.out)


if __name__ == "__main__":
    main()
