"""Benchmark: `envdoctor check` against the tools people run today, in one run, same environment.

    python bench/bench_check.py [--venv DIR] [--runs N]

Makes (once, in .bench/venv, needs the package index) a Python 3.11 venv with torch 2.13.0
(a CPU build, from the wheel folder pip is configured with, e.g. PIP_FIND_LINKS), transformers, accelerate, peft, datasets, mmengine and pipdeptree,
then times, in that venv:

  envdoctor check                       (installed in the venv, probing its own interpreter)
  python -m torch.utils.collect_env     (imports torch)
  pipdeptree                            (importlib.metadata over every distribution)

and prints median wall times, peak memory and the ratios (targets: <= 0.10x collect_env,
<= 2x pipdeptree). Then it measures how check's cost grows with the number of installed
distributions: 100 against 2,000 synthetic dist-infos.
"""

import argparse
from dataclasses import dataclass
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["torch==2.13.0", "transformers", "accelerate", "peft", "datasets", "mmengine", "pipdeptree"]


def ensure_venv(root: str) -> str:
    python = os.path.join(root, "bin", "python")
    if not os.path.exists(python):
        print("making %s (once) ..." % root, flush=True)
        subprocess.run([sys.executable, "-m", "venv", root], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *PACKAGES], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", REPO], check=True)
    return python


@dataclass(frozen=True)
class Timing:
    wall: float  # median seconds
    cpu: float  # median user+sys seconds: robust when other work shares the machine
    peak_mib: float  # largest resident set of any run


def _run_once(argv, env):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit("%s failed with %d" % (" ".join(argv), proc.returncode))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def time_commands(commands, runs: int, env):
    """Run the commands round-robin (so a busy moment hurts them all alike); medians per command."""
    samples = {name: [] for name in commands}
    for argv in commands.values():
        _run_once(argv, env)  # warm the page cache
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(_run_once(argv, env))
    return {
        name: Timing(statistics.median(s[0] for s in rows), statistics.median(s[1] for s in rows), max(s[2] for s in rows))
        for name, rows in samples.items()
    }


def synthetic_site(folder: str, count: int) -> None:
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        info = os.path.join(folder, "synthetic_pkg_%05d-1.%d.0.dist-info" % (i, i % 7))
        os.makedirs(info)
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: synthetic-pkg-%05d\nVersion: 1.%d.0\n"
                    "Requires-Dist: packaging>=20\nRequires-Dist: click\n\nA long description.\n" % (i, i % 7))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=os.path.join(REPO, ".bench", "venv"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    python = ensure_venv(args.venv)
    bindir = os.path.dirname(python)
    count = subprocess.run([python, "-c", "import importlib.metadata as m; print(len(list(m.distributions())))"],
                           stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PYTHONPATH", None)
    commands = {
        "envdoctor check": [os.path.join(bindir, "envdoctor"), "check"],
        "envdoctor check --format json": [os.path.join(bindir, "envdoctor"), "check", "--format", "json"],
        "python -m torch.utils.collect_env": [python, "-m", "torch.utils.collect_env"],
        "pipdeptree": [os.path.join(bindir, "pipdeptree")],
        "python -c pass": [python, "-c", "pass"],
    }
    print("environment: %s (%s distributions), %d runs each, %d cores" % (args.venv, count, args.runs, os.cpu_count() or 0))
    results = time_commands(commands, args.runs, env)
    for name, t in results.items():
        print("  %-36s wall %7.3f s  cpu %7.3f s  peak %6.1f MiB" % (name, t.wall, t.cpu, t.peak_mib))
    check = results["envdoctor check"]
    collect = results["python -m torch.utils.collect_env"]
    tree = results["pipdeptree"]
    print("ratios (wall; cpu in brackets):")
    print("  check / collect_env = %.3fx [%.3fx]   (target <= 0.10x)" % (check.wall / collect.wall, check.cpu / collect.cpu))
    print("  check / pipdeptree  = %.2fx [%.2fx]    (target <= 2x)" % (check.wall / tree.wall, check.cpu / tree.cpu))

    print("growth with the number of distributions (synthetic dist-infos on PYTHONPATH):")
    tmp = tempfile.mkdtemp()
    try:
        per = {}
        for n in (100, 2000):
            site = os.path.join(tmp, "site%d" % n)
            synthetic_site(site, n)
            run_env = dict(env, PYTHONPATH=site)
            t = time_commands({"check": [os.path.join(bindir, "envdoctor"), "check"]}, args.runs, run_env)["check"]
            per[n] = t
            print("  %5d extra distributions: wall %.3f s  cpu %.3f s  peak %.1f MiB" % (n, t.wall, t.cpu, t.peak_mib))
        base = results["envdoctor check"].cpu
        slope = (per[2000].cpu - per[100].cpu) / 1900 * 1000
        print("  from 100 to 2,000 extra distributions: +%.0f ms cpu, %.3f ms per distribution;"
              " 2,000 extra at that rate predicts %.3f s, measured %.3f s (linear when these agree)"
              % ((per[2000].cpu - per[100].cpu) * 1000, slope, base + 2000 * slope / 1000, per[2000].cpu))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
