"""Benchmark: `envdoctor compare` on 1,000 and 10,000 synthetic node reports.

    python bench/bench_compare.py [--sizes 1000,10000] [--runs 3]

One real report of `envdoctor check --format json` (this interpreter, a driver given) is the
template, with 200 more distributions as a training venv has; each synthetic node gets its own venv path (python.executable, harmless drift), so
every node is a distinct environment for the drift scan; every 100th node has another
transformers and every 1,000th another NVIDIA driver (drift that must agree), so the knowledge
base runs on 3 distinct environments whatever the node count. Times the real command (a
subprocess, files read from disk) and prints the time per node: linear growth keeps it flat.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def envdoctor(*args, **kw):
    env = dict(os.environ, PYTHONPATH=REPO, NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "envdoctor", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, **kw)


def template() -> dict:
    done = envdoctor("check", "--format", "json", "--driver", "535.104.05")
    if done.returncode not in (0, 1):
        sys.exit("envdoctor check failed: %s" % done.stderr)
    return json.loads(done.stdout)


def write_nodes(folder: str, base: dict, count: int) -> list:
    paths = []
    for i in range(count):
        report = json.loads(json.dumps(base))
        facts = report["facts"]
        facts["python.executable"] = "/nodes/n%05d/venv/bin/python" % i
        if i % 100 == 99:
            facts["pkg.transformers"] = "4.40.0"
        if i % 1000 == 999:
            facts["cuda.driver"] = "470.57.02"
        path = os.path.join(folder, "node%05d.json" % i)
        with open(path, "w") as handle:
            json.dump(report, handle)
        paths.append(path)
    return paths


def timed(paths: list, fmt: str) -> float:
    start = time.perf_counter()
    done = envdoctor("compare", "--format", fmt, *paths)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit("compare failed: %s" % done.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--packages", type=int, default=200, help="synthetic distributions added to each report")
    args = parser.parse_args()
    base = template()
    base["facts"].setdefault("pkg.transformers", "4.42.4")
    for i in range(args.packages):  # a training venv lists a few hundred distributions
        base["facts"].setdefault("pkg.dep-%03d" % i, "1.%d.0" % i)
    print("template: %d facts, %d bytes of JSON per node" % (len(base["facts"]), len(json.dumps(base))))
    empty = tempfile.mkdtemp(prefix="bench-compare-")
    try:
        floor = statistics.median(timed([write_nodes(empty, base, 1)[0]], "text") for _ in range(args.runs))
        print("%7s nodes: %6.2f s (start-up and one report)" % (1, floor))
        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            folder = tempfile.mkdtemp(prefix="bench-compare-%d-" % size)
            try:
                paths = write_nodes(folder, base, size)
                for fmt in ("text", "json"):
                    best = statistics.median(timed(paths, fmt) for _ in range(args.runs))
                    rows.append((size, fmt, best))
                    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                    print("%7s nodes, %-4s: %6.2f s, %.3f ms per node beyond start-up (peak memory so far %.0f MiB)" % (
                        format(size, ","), fmt, best, (best - floor) * 1000 / size, peak), flush=True)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        sizes = sorted({r[0] for r in rows})
        if len(sizes) >= 2:
            for fmt in ("text", "json"):
                small = next(r[2] for r in rows if r[0] == sizes[0] and r[1] == fmt) - floor
                large = next(r[2] for r in rows if r[0] == sizes[-1] and r[1] == fmt) - floor
                print("%s: %dx the nodes took %.1fx the time beyond start-up (linear: %dx)" % (
                    fmt, sizes[-1] // sizes[0], large / small, sizes[-1] // sizes[0]))
    finally:
        shutil.rmtree(empty, ignore_errors=True)


if __name__ == "__main__":
    main()
