"""How much envdoctor adds to the resolver: `envdoctor fix --write-lock` with each resolver
(uv, the default, and `--resolver pip-tools`) against bare `uv pip compile` and bare
`pip-compile` on the same requirements, offline, against a local wheel folder, runs alternating.

    python bench/bench_lock.py [--rounds N] [--packages N ...]

Prints the median wall time of each and the ratios, for a tiny stack and for one the size of a
real XTuner stack (the shipped XTuner 0.1.23 lockfile has 211 pins). envdoctor's own work (the
-r read, the knowledge base, the plan, the static check of the pins, the header, the atomic
write) is a fixed cost, so its share shrinks as the resolver's work grows; the target (under
10%) is for the realistic size. With a real index the resolvers take seconds to minutes.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from builders import make_wheel  # noqa: E402


def wheel_folder(root: str, packages: int) -> str:
    """A stack of real-looking wheels: each pkg depends on the next two, several versions each,
    plus the XTuner / transformers releases, so the resolver has real work to do."""
    folder = os.path.join(root, "wheels")
    for i in range(packages):
        for minor in range(3):
            deps = ["bench-pkg-%d>=1.%d" % (j, minor) for j in (i + 1, i + 2) if j < packages]
            make_wheel(folder, "bench-pkg-%d" % i, "1.%d.0" % minor, deps, ">=3.8")
    # XTuner 0.1.10 / 0.1.11 declare Python >=3.8, so the bench runs on any Python envdoctor supports.
    for version in ("0.1.10", "0.1.11"):
        make_wheel(folder, "xtuner", version, ["transformers!=4.34.1,!=4.35.0,!=4.35.1,!=4.35.2,>=4.32.1", "bench-pkg-0"], ">=3.8")
    for version in ("4.36.2", "4.40.0", "4.42.4"):
        make_wheel(folder, "transformers", version, [], ">=3.8")
    return folder


def timed(argv, env) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(argv), done.stdout, done.stderr))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--packages", type=int, nargs="+", default=[30, 200])
    args = parser.parse_args()
    for size in args.packages:
        measure(args.rounds, size)


def measure(rounds: int, packages: int) -> None:
    pip_compile = shutil.which("pip-compile") or os.path.join(os.path.dirname(sys.executable), "pip-compile")
    uv = shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")
    if not (os.access(pip_compile, os.X_OK) and os.access(uv, os.X_OK)):
        sys.exit("pip-compile and uv are needed (pip install envdoctor installs both)")
    root = tempfile.mkdtemp(prefix="envdoctor-bench-")
    try:
        folder = wheel_folder(root, packages)
        requirements = os.path.join(root, "requirements.in")
        with open(requirements, "w") as handle:
            handle.write("transformers==4.42.4\nxtuner==0.1.11\n")
        # As installed: byte-compiled (this machine sets PYTHONDONTWRITEBYTECODE, which would make
        # every run compile envdoctor's sources again, a cost no installed copy pays).
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "envdoctor")], check=True)
        env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PYTHONPATH=REPO, UV_PYTHON_DOWNLOADS="never")
        env.pop("ENVDOCTOR_PIP_COMPILE", None)
        python = "%d.%d" % sys.version_info[:2]
        ours = [sys.executable, "-m", "envdoctor", "fix", "-r", requirements, "--python-version", python,
                "--no-index", "--find-links", folder]
        runs = {
            "bare pip-compile": [pip_compile, "--quiet", "--strip-extras", "--no-emit-find-links", "--no-index", "--find-links", folder,
                                 "--output-file", os.path.join(root, "bare.txt"), requirements],
            "envdoctor --resolver pip-tools": ours + ["--resolver", "pip-tools", "--write-lock", os.path.join(root, "ours-pt.txt")],
            "bare uv pip compile": [uv, "pip", "compile", "--quiet", "--python-version", python, "--python-platform",
                                    "x86_64-manylinux_2_28", "--no-index", "--find-links", folder, "-o", os.path.join(root, "uv.txt"),
                                    requirements],
            "envdoctor (uv)": ours + ["--write-lock", os.path.join(root, "ours-uv.txt")],
        }
        for argv in runs.values():  # warm the caches each uses
            timed(argv, env)
        times = {name: [] for name in runs}
        for _ in range(rounds):  # interleaved, so drift hits all alike
            for name, argv in runs.items():
                times[name].append(timed(argv, env))
        median = {name: statistics.median(t) for name, t in times.items()}
        pins = sum(1 for line in open(os.path.join(root, "bare.txt")) if "==" in line)
        print("requirements: 2 top-level, %d pins resolved from %d wheels; %d rounds, medians" % (pins, len(os.listdir(folder)), rounds))
        for name, value in median.items():
            print("%-32s %.3f s" % (name + ":", value))
        for ours_name, bare_name in (("envdoctor --resolver pip-tools", "bare pip-compile"), ("envdoctor (uv)", "bare uv pip compile")):
            a, b = median[bare_name], median[ours_name]
            print("%s / %s: %.3f (envdoctor adds %.3f s, %+.1f%%)" % (ours_name, bare_name, b / a, b - a, 100 * (b / a - 1)))
        print()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
