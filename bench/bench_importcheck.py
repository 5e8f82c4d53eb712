"""Benchmark: `envdoctor check` with the import check, cold and warm, against check without it.

    python bench/bench_importcheck.py [--venv DIR] [--runs N]

Makes (once, in .bench/importcheck-venv, needs the package index) a Python 3.11 venv holding a real
XTuner 0.1.23 stack (transformers 4.42.4, mmengine, peft, accelerate, datasets, deepspeed's stand-in
is NOT made: the real install is what users have) with torch 2.13.0 (a CPU build, from the wheel folder pip is configured with, e.g. PIP_FIND_LINKS),
then times, in that venv:

  check, import check off   ENVDOCTOR_IMPORT_CHECK=0 (today's check)
  check, warm               the parsed-module cache filled by an earlier run
  check, cold               an empty cache folder each run (every module parsed)

Goals (issue 16): warm <= 2x today's check; cold < 3 s on the 2-core machine.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["torch==2.13.0", "xtuner==0.1.23", "transformers==4.42.4", "mmengine==0.10.4", "peft==0.11.1",
            "accelerate==0.32.1", "datasets==2.20.0"]


def ensure_venv(root: str) -> str:
    python = os.path.join(root, "bin", "python")
    if not os.path.exists(python):
        print("making %s (once) ..." % root, flush=True)
        subprocess.run([sys.executable, "-m", "venv", root], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--ignore-requires-python", "--prefer-binary",
                        *PACKAGES], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", REPO], check=True)
    return python


def run_once(argv, env):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit("%s failed" % " ".join(argv))
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default=os.path.join(REPO, ".bench", "importcheck-venv"))
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    python = ensure_venv(args.venv)
    argv = [os.path.join(os.path.dirname(python), "envdoctor"), "check", "--format", "json"]
    warm_cache = tempfile.mkdtemp(prefix="envdoctor-bench-warm-")
    base = dict(os.environ, ENVDOCTOR_CACHE_DIR=warm_cache)
    run_once(argv, base)  # fill the warm cache (and the page cache)
    samples = {"off": [], "warm": [], "cold": []}
    for _ in range(args.runs):
        samples["off"].append(run_once(argv, dict(base, ENVDOCTOR_IMPORT_CHECK="0")))
        samples["warm"].append(run_once(argv, base))
        cold = tempfile.mkdtemp(prefix="envdoctor-bench-cold-")
        samples["cold"].append(run_once(argv, dict(base, ENVDOCTOR_CACHE_DIR=cold)))
        shutil.rmtree(cold, ignore_errors=True)
    shutil.rmtree(warm_cache, ignore_errors=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}
    for k, (wall, cpu) in med.items():
        print("check, %-5s  wall %.3f s  cpu %.3f s" % (k, wall, cpu))
    print("warm / off: %.2fx wall, %.2fx cpu (goal <= 2x)" % (med["warm"][0] / med["off"][0], med["warm"][1] / med["off"][1]))
    print("cold: %.2f s wall, %.2f s cpu (goal < 3 s)" % med["cold"])


if __name__ == "__main__":
    main()
