"""Run records' reproductions with the real releases and record what happened (maintainers).

    python scripts/reproduce.py XTUNER-HIDDEN-DEEPSPEED-IMPORT [MORE-IDS] [--all]

For each record with a [reproduction] (knowledge/README.md): build two venvs for the record's
Python, one with the affected requirements and one with the fixed ones (cached under
~/.cache/envdoctor-build/repro, keyed by Python, requirements and pip options, so a second run
installs nothing), run the script in each (CPU only: CUDA_VISIBLE_DEVICES is empty), and look
for the symptom in its output. The verdict goes to knowledge/reproductions/outcomes.toml:

    confirmed     the affected side shows the symptom and the fixed side does not
    contradicted  the affected side does not show it, or the fixed side does: fix the record
    inconclusive  a side could not be built or run to the end (timeout, install failure), or the
                  fixed side did not print its fixed_shows (it stopped before the step that matters,
                  so neither side says anything about the record)

Exit codes: 0 every verdict confirmed, 1 any other verdict, 2 usage error. Downloads only from
the package index pip is configured for (or --find-links/--no-index); CI never runs this, but
tests/test_reproduce.py runs it on a small case built from local wheels.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from envdoctor.kb.load import load, shipped_dir  # noqa: E402
from envdoctor.kb.outcomes import OUTCOMES_FILE, read_outcomes, render, spec_key  # noqa: E402
from envdoctor.kb.record import Record, Reproduction  # noqa: E402

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "envdoctor-build", "repro")
TAIL = 6000  # characters of each side's output kept in the outcome


class Side(NamedTuple):
    name: str  # "affected" or "fixed"
    requires: Sequence[str]
    installed: List[str]  # "name version" of each named package, as installed
    exit_code: Optional[int]  # None: not run to the end
    output: str
    problem: str = ""  # why the side could not be run

    def tail(self) -> str:
        text = self.problem or self.output.strip()
        return clean(text)[-TAIL:]


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def clean(text: str) -> str:
    """Output fit for the repository: no colour codes, no paths of this machine."""
    text = _ANSI.sub("", text)
    # The repository first: it is the most specific path, and a checkout may itself lie under /tmp.
    text = text.replace(os.path.dirname(HERE), "<repo>")  # the script's own path in a traceback
    text = re.sub(r"[^\s('\"]*/\.cache/envdoctor-build/repro/[^/\s]+", "<venv>", text)
    text = re.sub(r"/tmp/[^/\s'\"]+", "<tmp>", text)
    return text.replace(os.path.expanduser("~"), "~")


def find_python(version: str, given: Optional[str]) -> Optional[str]:
    """An interpreter of major.minor ``version``: --python, a pyenv version, or pythonX.Y on PATH."""
    if given:
        return given
    root = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    versions = os.path.join(root, "versions")
    if os.path.isdir(versions):
        for name in sorted(os.listdir(versions), reverse=True):
            if name == version or name.startswith(version + "."):
                candidate = os.path.join(versions, name, "bin", "python" + version)
                if os.path.exists(candidate):
                    return candidate
    return shutil.which("python" + version)


def _key(*parts: Sequence[str]) -> str:
    import zlib

    data = json.dumps([list(p) for p in parts]).encode()
    return "%08x" % zlib.crc32(data)


def build_venv(cache: str, python: str, requires: Sequence[str], pip_args: Sequence[str], timeout: float,
               no_deps: Sequence[str] = ()) -> str:
    """The cached venv for one side, built when missing. Raises RuntimeError with pip's words."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.strip()
    # Keyed by what is in it, not by record: records reproduced with the same releases share venvs.
    first = re.sub(r"[^A-Za-z0-9.]+", "-", requires[0]) if requires else "empty"
    root = os.path.join(cache, "%s-py%s-%s" % (first, version, _key([version], requires, pip_args, *([no_deps] if no_deps else []))))
    ready = os.path.join(root, ".envdoctor-ready")
    if os.path.exists(ready):
        return root
    target = os.path.join(root, "bin", "python")
    if not os.path.exists(target):
        os.makedirs(cache, exist_ok=True)
        subprocess.run([python, "-m", "venv", "--without-pip", root], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # else a run that was interrupted: pip goes on from what it installed (it checks every pin again)
    # The pip running this script installs into the venv (pip >= 22.3): no pip inside it to bootstrap.
    cmd = [sys.executable, "-m", "pip", "--python", target, "install", "--disable-pip-version-check", "-q"] + list(pip_args)
    alone = [r for r in requires if _name(r) in no_deps]
    rest = [r for r in requires if r not in alone]
    # Those installed without their declarations skip all of them, python_requires included.
    for args in ([rest] if rest else []) + ([["--no-deps", "--ignore-requires-python"] + alone] if alone else []):
        code, output = _run_group(cmd + args, timeout)
        if code != 0:
            raise RuntimeError("pip install failed: %s" % output.strip()[-TAIL:])
    with open(ready, "w") as handle:
        handle.write(" ".join(requires) + "\n")
    return root


def _run_group(cmd: Sequence[str], timeout: float, **kw) -> "tuple":
    """Run a command in its own process group, the whole group stopped at the timeout (pip
    --python runs a second pip inside the venv, which a plain kill would leave behind)."""
    import signal

    child = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                             errors="replace", start_new_session=True, **kw)
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise
    return child.returncode, output


def _name(requirement: str) -> str:
    from packaging.requirements import Requirement

    from envdoctor.names import canonical_name

    return canonical_name(Requirement(requirement).name)


def installed_versions(venv: str, requires: Sequence[str]) -> List[str]:
    from packaging.requirements import Requirement

    names = [Requirement(r).name for r in requires]
    code = ("import json, sys\nfrom importlib import metadata\nout = []\nfor n in json.loads(sys.argv[1]):\n"
            "    try:\n        out.append('%s %s' % (n, metadata.version(n)))\n"
            "    except metadata.PackageNotFoundError:\n        out.append('%s (not installed)' % n)\nprint(json.dumps(out))\n")
    done = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code, json.dumps(names)], stdout=subprocess.PIPE,
                          universal_newlines=True)
    return json.loads(done.stdout) if done.returncode == 0 else []


def run_side(record: Record, spec: Reproduction, side: str, script: str, python: str, cache: str,
             pip_args: Sequence[str], timeout: float) -> Side:
    requires = spec.affected if side == "affected" else spec.fixed
    try:
        venv = build_venv(cache, python, requires, tuple(spec.pip_args) + tuple(pip_args), timeout, spec.no_deps)
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        return Side(side, requires, [], None, "", "could not build the venv: %s" % exc)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    if side == "fixed":
        env.update(spec.fixed_env)
    # As an activated venv: tools that start `python` themselves (xtuner's cli) find this one.
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = venv
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="envdoctor-repro-") as work:
        try:
            code, output = _run_group([os.path.join(venv, "bin", "python"), script] + list(spec.args), timeout, cwd=work, env=env)
        except subprocess.TimeoutExpired:
            return Side(side, requires, installed_versions(venv, requires), None, "", "timed out after %gs" % timeout)
    return Side(side, requires, installed_versions(venv, requires), code, output)


def verdict(spec: Reproduction, affected: Side, fixed: Side) -> str:
    if affected.problem or fixed.problem:
        return "inconclusive"
    if spec.fixed_shows and not re.search(spec.fixed_shows, fixed.output):
        return "inconclusive"  # the fixed side stopped before the step that matters: the venv is at fault
    pattern = re.compile(spec.symptom)
    if not pattern.search(affected.output) or pattern.search(fixed.output):
        return "contradicted"
    return "confirmed"


def outcome(record: Record, spec: Reproduction, script: str, python: str, affected: Side, fixed: Side) -> Dict[str, object]:
    pattern = re.compile(spec.symptom)
    with open(script, "rb") as handle:
        key = spec_key(spec, handle.read())
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    entry: Dict[str, object] = {
        "verdict": verdict(spec, affected, fixed),
        "date": datetime.date.today().isoformat(),
        "python": version,
        "script": spec.script,
        "spec": key,
    }
    for side in (affected, fixed):
        entry[side.name] = list(side.requires)
        entry[side.name + "_installed"] = side.installed
        entry[side.name + "_symptom"] = bool(pattern.search(side.output)) if not side.problem else False
        entry[side.name + "_exit"] = side.exit_code if side.exit_code is not None else -1
        entry[side.name + "_tail"] = side.tail()
    return entry


def write_outcomes(path: str, outcomes: Dict[str, Dict[str, object]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".outcomes-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render(outcomes))
    os.replace(tmp, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", metavar="RECORD-ID")
    parser.add_argument("--all", action="store_true", help="every record that has a reproduction")
    parser.add_argument("--kb", default=shipped_dir(), metavar="DIR", help="the knowledge folder (default: the shipped one)")
    parser.add_argument("--cache", default=DEFAULT_CACHE, metavar="DIR", help="where the venvs are kept (default: %(default)s)")
    parser.add_argument("--python", metavar="PATH", help="the interpreter for both venvs (default: one of the record's Python)")
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR", help="passed to pip (repeatable)")
    parser.add_argument("--no-index", action="store_true", help="passed to pip")
    parser.add_argument("--timeout", type=float, default=1800, metavar="SECONDS", help="for each install and each run")
    args = parser.parse_args(argv)

    base = load([args.kb])
    if base.errors:
        for error in base.errors:
            print("reproduce: %s" % error, file=sys.stderr)
        return 2
    chosen = [r for r in base.records if r.reproduction is not None and (args.all or r.id in args.ids)]
    missing = sorted(set(args.ids) - {r.id for r in chosen})
    if missing or not chosen:
        print("reproduce: no reproduction for %s" % (", ".join(missing) or "any record given (name ids or --all)"), file=sys.stderr)
        return 2
    pip_args = ["--find-links=%s" % d for d in args.find_links] + (["--no-index"] if args.no_index else [])
    folder = os.path.join(args.kb, "reproductions")
    path = os.path.join(folder, OUTCOMES_FILE)
    outcomes, problem = read_outcomes(path)
    if problem:
        print("reproduce: %s: %s" % (path, problem), file=sys.stderr)
        return 2
    worst = 0
    for record in chosen:
        spec = record.reproduction
        assert spec is not None
        script = os.path.join(folder, spec.script)
        python = find_python(spec.python, args.python)
        if python is None or not os.path.isfile(script):
            print("reproduce: %s: %s" % (record.id, "no Python %s found (give --python)" % spec.python if python is None
                                         else "%s is missing" % script), file=sys.stderr)
            return 2
        sides = [run_side(record, spec, side, script, python, args.cache, pip_args, args.timeout) for side in ("affected", "fixed")]
        entry = outcome(record, spec, script, python, *sides)
        # Read again before writing: another run may have recorded its own outcome meanwhile.
        outcomes, _ = read_outcomes(path)
        outcomes[record.id] = entry
        write_outcomes(path, outcomes)  # after each record: a long run keeps what it found
        print("%s: %s (affected: symptom %s; fixed: symptom %s)" % (
            record.id, entry["verdict"], "seen" if entry["affected_symptom"] else "not seen",
            "seen" if entry["fixed_symptom"] else "not seen"))
        if entry["verdict"] != "confirmed":
            worst = 1
            for side in sides:
                print("  %s: %s" % (side.name, side.tail().replace("\n", "\n    ")))
    return worst


if __name__ == "__main__":
    sys.exit(main())
