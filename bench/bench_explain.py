"""Benchmark: `envdoctor explain` against `grep -E -c` with the same patterns, on one synthetic
training log of about 300 MB (progress bars, loss lines, warnings, unrelated tracebacks and a few
real error lines), in the same run. Prints the wall times, the ratio (target: at most 2x grep)
and envdoctor's peak memory (target: under 64 MiB), its scan workers included.

    python bench/bench_explain.py [--size-mb 300] [--repeat 3] [--keep] [--log PATH]

The log is written to a temporary folder and removed afterwards (unless --keep).
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from envdoctor.kb.load import load_kb  # noqa: E402
from envdoctor.explain import symptom_patterns  # noqa: E402
from envdoctor.logscan import MAX_WORKERS, free_cores  # noqa: E402

NOISE_TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/opt/conda/lib/python3.10/site-packages/torch/utils/data/dataloader.py", line 1328, in _next_data',
    "    idx, data = self._get_data()",
    '  File "/opt/conda/lib/python3.10/site-packages/datasets/arrow_dataset.py", line 2795, in __getitem__',
    "    return self._getitem(key)",
    "KeyError: 'conversation'",
]


def _noise_lines(rng: random.Random, n: int) -> list:
    lines = []
    for step in range(n):
        kind = rng.random()
        if kind < 0.55:
            lines.append("%s - mmengine - INFO - Iter(train) [%5d/60000]  lr: %.4e  eta: 1 day, 2:%02d:%02d  time: %.4f  "
                         "data_time: %.4f  memory: %d  loss: %.4f  grad_norm: %.4f" % (
                             "2024/05/06 12:%02d:%02d" % (step % 60, step % 60), step, 2e-5 * rng.random(), step % 60,
                             step % 60, rng.random(), rng.random() / 10, 18000 + step % 999, rng.random() * 2, rng.random() * 5))
        elif kind < 0.75:
            pct = step % 101
            bar = "\r".join(" %3d%%|%s%s| %d/1000 [00:%02d<01:00, %.2fit/s]" % (
                p, "#" * (p // 10), " " * (10 - p // 10), p * 10, p % 60, 3 + rng.random()) for p in range(pct, min(pct + 4, 101)))
            lines.append(bar)
        elif kind < 0.85:
            lines.append("{'loss': %.4f, 'grad_norm': %.3f, 'learning_rate': %.3e, 'epoch': %.2f}" % (
                rng.random() * 2, rng.random() * 4, rng.random() * 1e-4, step / 1000.0))
        elif kind < 0.95:
            lines.append(rng.choice([
                "/opt/conda/lib/python3.10/site-packages/torch/utils/checkpoint.py:429: UserWarning: torch.utils.checkpoint: "
                "please pass in use_reentrant=True or use_reentrant=False explicitly.",
                "\x1b[33mWARNING\x1b[0m: `use_cache=True` is incompatible with gradient checkpointing. Setting `use_cache=False`.",
                "[2024-05-06 12:00:01,123] [INFO] [real_accelerator.py:203:get_accelerator] Setting ds_accelerator to cuda (auto detect)",
                "position_ids are built from attention_mask in this dataset map function (kv cache disabled)",
            ]))
        else:
            lines.extend(NOISE_TRACEBACK)
    return lines


def build_log(path: str, size_mb: int, errors: list) -> int:
    """Write about ``size_mb`` MB of noise with the error lines at random places; returns bytes."""
    rng = random.Random(20240506)
    blocks = ["\n".join(_noise_lines(rng, 6000)) + "\n" for _ in range(16)]
    count = max(1, size_mb * 1000 * 1000 // len(blocks[0]))
    after = {}  # block index -> error lines written after it
    for line in errors:
        after.setdefault(rng.randrange(count), []).append(line)
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        for index in range(count):
            block = blocks[index % len(blocks)] + "".join(line + "\n" for line in after.get(index, ()))
            out.write(block)
            written += len(block.encode("utf-8"))
    return written


def ere(pattern: str) -> str:
    """Python's regex shorthands in POSIX ERE, for grep -E."""
    # "(?:" is a group that captures nothing: ERE has only plain groups, which match the same.
    return (pattern.replace("(?:", "(").replace(r"\d", "[0-9]").replace(r"\s", "[[:space:]]")
            .replace(r"\w", "[[:alnum:]_]"))


def _tree(root: int) -> list:
    """``root`` and its descendants (the scan's forked workers), from /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _memory_kib(pids: list) -> tuple:
    """(sum of RSS, sum of PSS) in KiB. RSS counts the pages a worker shares with its parent
    after fork in both; PSS splits them, so its sum is what the processes take together."""
    rss = pss = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def peak_memory(cmd: list, env: dict) -> tuple:
    """Run ``cmd`` once, sampling its process tree every 20 ms: (peak RSS sum, peak PSS sum,
    peak of one process) in KiB. Not timed: sampling costs CPU."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss, pss = _memory_kib(_tree(proc.pid))
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.02)
    return peak_rss, peak_pss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


CPU = []  # (command, CPU seconds of it and its workers) per timed run


def timed(cmd: list, env: dict) -> tuple:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((cmd[0], after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
    return wall, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the log and print its path")
    parser.add_argument("--log", help="use this log (a --keep one) instead of writing a new one")
    args = parser.parse_args()

    kb = load_kb()
    patterns = symptom_patterns(kb)
    examples = [s.example for r in kb.records for s in r.symptoms if s.example]
    folder = tempfile.mkdtemp(prefix="envdoctor-bench-")
    log = os.path.join(folder, "train.log")
    try:
        if args.log:
            log = args.log
            size = os.path.getsize(log)
        else:
            size = build_log(log, args.size_mb, list(examples))
        print("log: %.1f MB, %d patterns, %d error lines planted" % (size / 1e6, len(patterns), len(examples)))
        # As installed: byte-compiled (this machine sets PYTHONDONTWRITEBYTECODE, which would make
        # every run compile envdoctor's sources again).
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "envdoctor")], check=True)
        env = dict(os.environ, PYTHONPATH=REPO)
        ours_cmd = [sys.executable, "-m", "envdoctor", "explain", log, "--format", "json"]
        grep_args = [a for p in patterns for a in ("-e", ere(p))]
        grep_cmd = ["grep", "-E", "-c"] + grep_args
        c_env = dict(env, LC_ALL="C")
        in_order_env = dict(env, ENVDOCTOR_SCAN_WORKERS="1")  # the scan without workers
        two_env = dict(env, ENVDOCTOR_SCAN_WORKERS="2")  # two ranges at once, free cores or not
        ours, scan_only, in_order, two, grep_loc, grep_c = [], [], [], [], [], []
        cpu_ours, cpu_grep = [], []
        for _ in range(args.repeat):
            t, done = timed(ours_cmd, env)
            assert done.returncode == 1, done.stderr.decode()
            ours.append(t)
            cpu_ours.append(CPU[-1][1])
            report = json.loads(done.stdout)
            t, done = timed(ours_cmd + ["--log-only"], env)
            scan_only.append(t)
            t, done = timed(ours_cmd + ["--log-only"], in_order_env)
            in_order.append(t)
            t, done = timed(ours_cmd + ["--log-only"], two_env)
            two.append(t)
        one_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # only envdoctor has run so far
        tree_rss = tree_pss = None
        if os.path.exists("/proc/self/smaps_rollup"):
            tree_rss, tree_pss, _ = peak_memory(ours_cmd, env)
        t, _ = timed([sys.executable, "-m", "envdoctor", "explain", os.devnull, "--log-only"], env)
        startup = t
        for _ in range(args.repeat):
            t, done = timed(grep_cmd + [log], env)
            grep_loc.append(t)
            cpu_grep.append(CPU[-1][1])
            grep_count = int(done.stdout)
            t, _ = timed(grep_cmd + [log], c_env)
            grep_c.append(t)
        ours_count = sum(m["line_count"] for m in report["matches"])
        print("matching lines: envdoctor %d, grep %d%s" % (ours_count, grep_count, "" if ours_count == grep_count else "  (DIFFER)"))
        print("envdoctor explain : %.2f s (best of %d; scan, then probe this interpreter)" % (min(ours), args.repeat))
        print("envdoctor explain --log-only: %.2f s (scan only; of which %.2f s start-up on an empty log)" % (min(scan_only), startup))
        print("envdoctor explain --log-only: %.2f s with 1 process, %.2f s with 2 (ENVDOCTOR_SCAN_WORKERS; "
              "without it, one per free core: %d now)" % (min(in_order), min(two), max(1, min(MAX_WORKERS, free_cores()))))
        print("grep -E -c        : %.2f s (locale %s)" % (min(grep_loc), os.environ.get("LC_ALL") or os.environ.get("LANG") or "unset"))
        print("grep -E -c, LC_ALL=C: %.2f s" % min(grep_c))
        fastest_grep = min(min(grep_loc), min(grep_c))
        ratio = min(ours) / fastest_grep
        print("ratio envdoctor / fastest grep: %.2fx (target <= 2x)%s" % (ratio, "" if ratio <= 2 else "  OVER TARGET"))
        print("CPU time (user+sys, least of %d): envdoctor explain %.2f s, grep -E -c %.2f s: %.2fx "
              "(less sensitive than wall time to other work on the machine)" % (
                  args.repeat, min(cpu_ours), min(cpu_grep), min(cpu_ours) / max(1e-3, min(cpu_grep))))
        print("peak RSS of the largest single process (envdoctor, a scan worker or the probe): %.1f MiB" % (one_kib / 1024.0))
        if tree_pss is not None:
            print("envdoctor peak memory, scan workers included: %.1f MiB PSS (target < 64 MiB); "
                  "RSS summed over processes %.1f MiB (counts shared pages once per process)" % (tree_pss / 1024.0, tree_rss / 1024.0))
        print("ratio --log-only / fastest grep: %.2fx" % (min(scan_only) / fastest_grep))
        print("scan throughput (without start-up): %.0f MB/s" % (size / 1e6 / max(1e-3, min(scan_only) - startup)))
        if args.keep:
            print("kept: %s" % log)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
