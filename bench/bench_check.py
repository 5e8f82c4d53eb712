"""Benchmark: `envdoctor check` against the tools people run today, in one run, same environment.

    python bench/bench_check.py [--venv DIR] [--runs N]

Makes (once, in .bench/venv, needs the package index) a Python 3.11 venv with torch 2.13.0
(CPU build from local disk), transformers, accelerate, peft, datasets, mmengine and pipdeptree,
then times, in that venv:

  envdoctor check                       (installed in the venv, probing its own interpreter)
  python -m torch.utils.collect_env     (imports torch)
  pipdeptree                            (importlib.metadata over every distribution)

and prints median wall times, peak memory and the ratios (targets: <= 0.10x collect_env,
<= 2x pipdeptree). Then it measures how check's cost grows with the number of installed
distributions: 100 against 2,000 synthetic dist-infos.
"""

import argparse
import os
import resource
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
        subprocess.run([python, "-m", "pip", "install", "-q", "--find-links", "/opt/wheels", *PACKAGES], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", REPO], check=True)
    return python


def time_command(argv, runs: int, env=None):
    """Median wall seconds over `runs`, and the peak RSS (MiB) of any single run."""
    walls = []
    peak = 0.0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        walls.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit("%s failed: %s" % (" ".join(argv), done.stderr.decode()[-400:]))
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, before / 1024.0)
    return statistics.median(walls), peak


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
    results = {}
    for name, argv in commands.items():
        time_command(argv, 1, env)  # warm the page cache
        results[name] = time_command(argv, args.runs, env)
        print("  %-36s %7.3f s  peak %6.1f MiB" % (name, results[name][0], results[name][1]), flush=True)
    check = results["envdoctor check"][0]
    print("ratios:")
    print("  check / collect_env = %.3fx   (target <= 0.10x)" % (check / results["python -m torch.utils.collect_env"][0]))
    print("  check / pipdeptree  = %.2fx    (target <= 2x)" % (check / results["pipdeptree"][0]))

    print("growth with the number of distributions (synthetic dist-infos on PYTHONPATH):")
    tmp = tempfile.mkdtemp()
    try:
        per = {}
        for n in (100, 2000):
            site = os.path.join(tmp, "site%d" % n)
            synthetic_site(site, n)
            run_env = dict(env, PYTHONPATH=site)
            wall, peak = time_command([os.path.join(bindir, "envdoctor"), "check"], args.runs, run_env)
            base, _ = time_command([python, "-c", "pass"], args.runs, run_env)
            per[n] = wall
            print("  %5d extra distributions: %.3f s (peak %.1f MiB)" % (n, wall, peak))
        slope = (per[2000] - per[100]) / 1900
        print("  cost per extra distribution: %.3f ms; 2,000 vs 100: %.2fx time for 20x distributions"
              % (slope * 1000, per[2000] / per[100]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
