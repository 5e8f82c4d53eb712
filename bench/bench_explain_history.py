"""Benchmark: `envdoctor explain` on a log with an import error the API history answers, against the
same log without it (a clean log must not pay for the history; goal: the import-error log under 2x).

    python bench/bench_explain_history.py [--size-mb 20] [--repeat 5]

Both logs hold the same noise (progress bars, loss lines, an unrelated traceback); the second ends in
`ImportError: cannot import name 'LlamaFlashAttention2' from ...`, which no record names. Runs with
--log-only (the environment probe is check's cost, measured by bench_check). Median wall and CPU.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ERROR = ('  File "/opt/conda/lib/python3.10/site-packages/xtuner/model/modules/dispatch/llama.py", line 12, in <module>\n'
         "ImportError: cannot import name 'LlamaFlashAttention2' from 'transformers.models.llama.modeling_llama' "
         "(/opt/conda/lib/python3.10/site-packages/transformers/models/llama/modeling_llama.py)\n")


def write_noise(path: str, size_mb: int) -> None:
    rng = random.Random(16)
    with open(path, "w") as out:
        written = 0
        while written < size_mb << 20:
            line = "%d/%d [%02d:%02d<%02d:%02d, %.2fit/s] loss=%.4f lr=%.2e grad_norm=%.3f\n" % (
                rng.randint(0, 9999), 10000, rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 59),
                rng.randint(0, 59), rng.random() * 9, rng.random() * 3, rng.random() * 1e-4, rng.random() * 5)
            out.write(line)
            written += len(line)


def run(argv) -> tuple:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=REPO))
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="envdoctor-bench-")
    try:
        clean = os.path.join(folder, "clean.log")
        write_noise(clean, args.size_mb)
        broken = os.path.join(folder, "broken.log")
        shutil.copy(clean, broken)
        with open(broken, "a") as out:
            out.write("Traceback (most recent call last):\n" + ERROR)
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "envdoctor")], check=True)
        rows = {"clean": [], "import error": []}
        for _ in range(args.repeat):
            for name, log in (("clean", clean), ("import error", broken)):
                wall, cpu, rc = run([sys.executable, "-m", "envdoctor", "explain", log, "--log-only", "--format", "json"])
                assert rc == (0 if name == "clean" else 1), (name, rc)
                rows[name].append((wall, cpu))
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
        for k, (w, c) in med.items():
            print("explain, %-12s wall %.3f s  cpu %.3f s" % (k, w, c))
        print("import error / clean: %.2fx wall, %.2fx cpu (goal < 2x)" % (
            med["import error"][0] / med["clean"][0], med["import error"][1] / med["clean"][1]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
