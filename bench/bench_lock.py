"""How much envdoctor adds to the resolver: `envdoctor fix --write-lock` with each resolver
(uv, the default, and `--resolver pip-tools`) against bare `uv pip compile` and bare
`pip-compile` on the same requirements, offline, against a local wheel folder, runs alternating.

    python bench/bench_lock.py [--rounds N] [--packages N ...]
    python bench/bench_lock.py --real-index [-r FILE] [--python-version X.Y] [--resolver uv pip-tools]

Offline (the default): prints the median wall time of each and the ratios, for a tiny stack and
for one the size of a real XTuner stack (the shipped XTuner 0.1.23 lockfile has 211 pins).
envdoctor's own work (the -r read, the knowledge base, the plan, the static check of the pins,
the header, the atomic write) is a fixed cost, so its share shrinks as the resolver's work grows;
the target (under 10%) is for the realistic size.

--real-index: the same comparison against the package index (network needed), on the XTuner
0.2.0 stack (or -r FILE) for a target Python: bare `uv pip compile` with the flags envdoctor
gives it, against `envdoctor fix -r FILE --write-lock`, alternating. The index's answer time
swings by seconds from run to run, so beside the medians it prints envdoctor's own time measured
inside each of its runs: its wall time less the resolver's (the resolver is run through a
timing wrapper), which the network does not move.
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
    parser.add_argument("--real-index", action="store_true", help="resolve against the package index instead of a wheel folder")
    parser.add_argument("-r", "--requirements", help="with --real-index: the pins to lock (default: an XTuner 0.2.0 stack)")
    parser.add_argument("--python-version", default="3.11", help="with --real-index: the target Python")
    parser.add_argument("--resolver", nargs="+", choices=["uv", "pip-tools"], default=["uv"],
                        help="with --real-index: pip-tools needs the target Python to be the one running the bench")
    args = parser.parse_args()
    if args.real_index:
        measure_index(args.rounds, args.requirements, args.python_version, args.resolver)
        return
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


# The XTuner 0.2.0 stack as a user pins it (issue 12's real-index measurement).
XTUNER_020 = """xtuner==0.2.0
transformers==4.48.0
torch==2.5.1
torchvision==0.20.1
peft==0.14.0
mmengine==0.10.6
bitsandbytes==0.45.0
datasets==3.2.0
deepspeed==0.16.2
"""

# Runs the resolver and appends its wall time to a log: envdoctor's own time is its wall time
# less this. Python's own start-up is not in the timed span.
WRAPPER = """#!%s
import subprocess, sys, time
start = time.perf_counter()
code = subprocess.call([%r] + sys.argv[1:])
with open(%r, "a") as log:
    log.write("%%.4f\\n" %% (time.perf_counter() - start))
sys.exit(code)
"""


def measure_index(rounds: int, requirements: str, python: str, resolvers) -> None:
    uv = shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")
    pip_compile = shutil.which("pip-compile") or os.path.join(os.path.dirname(sys.executable), "pip-compile")
    if "pip-tools" in resolvers and python != "%d.%d" % sys.version_info[:2]:
        sys.exit("bare pip-compile resolves for the Python it runs on: run the bench on Python %s" % python)
    root = tempfile.mkdtemp(prefix="envdoctor-bench-")
    try:
        infile = os.path.join(root, "requirements.in")
        if requirements:
            shutil.copyfile(requirements, infile)
        else:
            with open(infile, "w") as handle:
                handle.write(XTUNER_020)
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "envdoctor")], check=True)
        log = os.path.join(root, "resolver-times.log")
        wrapped = {}
        for name, program in (("uv", uv), ("pip-compile", pip_compile)):
            wrapped[name] = os.path.join(root, name)
            with open(wrapped[name], "w") as handle:
                handle.write(WRAPPER % (sys.executable, program, log))
            os.chmod(wrapped[name], 0o755)
        env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PYTHONPATH=REPO, UV_PYTHON_DOWNLOADS="never")
        env.pop("ENVDOCTOR_PIP_COMPILE", None)
        ours = [sys.executable, "-m", "envdoctor", "fix", "-r", infile, "--python-version", python, "--force"]
        # As envdoctor runs it (resolve.py), so that the only difference is envdoctor.
        runs = {"bare uv pip compile": [uv, "pip", "compile", "--quiet", "--no-header", "--no-emit-index-url", "--no-emit-find-links",
                                        "--python-version", python, "--python-platform", "x86_64-manylinux_2_28",
                                        "--annotation-style=split", "--output-file", os.path.join(root, "uv.txt"), infile],
                "envdoctor (uv)": ours + ["--uv", wrapped["uv"], "--write-lock", os.path.join(root, "ours-uv.txt")]}
        if "pip-tools" in resolvers:
            runs["bare pip-compile"] = [pip_compile, "--quiet", "--strip-extras", "--no-emit-find-links", "--no-emit-index-url",
                                        "--output-file", os.path.join(root, "bare.txt"), infile]
            runs["envdoctor --resolver pip-tools"] = ours + ["--resolver", "pip-tools", "--pip-compile", wrapped["pip-compile"],
                                                             "--write-lock", os.path.join(root, "ours-pt.txt")]
        if "uv" not in resolvers:
            del runs["bare uv pip compile"], runs["envdoctor (uv)"]
        times = {name: [] for name in runs}
        own = {name: [] for name in runs if name.startswith("envdoctor")}
        for round_ in range(rounds + 1):  # round 0 warms the caches and is not counted
            for name, argv in runs.items():
                for output in ("uv.txt", "bare.txt"):  # an existing output file would steer the bare resolvers
                    if os.path.exists(os.path.join(root, output)):
                        os.unlink(os.path.join(root, output))
                open(log, "w").close()
                elapsed = timed(argv, env)
                if round_:
                    times[name].append(elapsed)
                    if name in own:
                        own[name].append(elapsed - sum(float(line) for line in open(log)))
        print("real index: %s, Python %s; %d rounds, alternating" % (
            "-r " + os.path.basename(requirements) if requirements else "the XTuner 0.2.0 stack", python, rounds))
        for name, values in times.items():
            print("%-32s median %.2f s, least %.2f s" % (name + ":", statistics.median(values), min(values)))
        for ours_name, bare_name in (("envdoctor (uv)", "bare uv pip compile"), ("envdoctor --resolver pip-tools", "bare pip-compile")):
            if ours_name not in times:
                continue
            a, b = statistics.median(times[bare_name]), statistics.median(times[ours_name])
            mine = statistics.median(own[ours_name])
            print("%s / %s: %.3f by medians (%+.1f%%), %.3f by least; envdoctor's own time inside its runs: "
                  "median %.2f s = %.1f%% of the bare resolver's median" % (
                      ours_name, bare_name, b / a, 100 * (b / a - 1), min(times[ours_name]) / min(times[bare_name]), mine, 100 * mine / a))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
