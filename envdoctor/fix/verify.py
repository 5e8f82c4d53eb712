"""--verify: build a throwaway venv from the lockfile with the target Python, install it,
run pip check, and import the stack's modules (knowledge/tables/import-checks.toml).

Each level is claimed only when reached; the first step that fails ends the climb and is
reported in words (the lockfile is still written, at the level reached).
"""

import json
import os
import sys
from typing import List, Optional, Sequence, Tuple

from envdoctor import subproc
from envdoctor.fix import smoke
from envdoctor.check import Report
from envdoctor.fix.locktypes import Level, LockError, LockRequest, today
from envdoctor.kb.tables import Tables
from envdoctor.sources import requirements

# Runs inside the throwaway venv: imports each module, answers in JSON, one line.
_IMPORTER = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "failed": failed}))
"""


def import_checks(tables: Tables) -> List[Tuple[str, Tuple[str, ...]]]:
    """(package, modules to import) from tables/import-checks.toml of every knowledge-base folder."""
    return [(row.data["package"], tuple(row.data["modules"])) for row in tables.rows("import-checks", "stack")]


def _interpreter(report: Report, explicit: Optional[str], target: str) -> str:
    minor = ".".join(target.split(".")[:2])
    if explicit:
        return explicit
    executable = report.facts.get("python.executable")
    if report.environment is not None and isinstance(executable, str) and os.path.exists(executable):
        return executable
    if "%d.%d" % sys.version_info[:2] == minor:
        return sys.executable
    from envdoctor.fix.piptools import interpreters, python_minor

    found = next((p for p in interpreters(minor) if python_minor(p) == minor), None)
    if found:
        return found
    raise LockError("--verify needs a Python %s interpreter for the throwaway venv: pass --verify-python PATH" % minor)


def _step(argv: Sequence[str], timeout: float, what: str) -> Optional[str]:
    ran = subproc.run(argv, timeout=timeout)
    if ran.ok:
        return None
    tail = [l.strip() for l in (ran.stderr + "\n" + ran.stdout).splitlines() if l.strip()]
    return "%s failed: %s" % (what, ran.error or (tail[-1][:300] if tail else "exit %s" % ran.returncode))


def verify(text: str, report: Report, request: LockRequest, work: str) -> Tuple[List[Level], str]:
    """Returns (levels reached beyond 'resolved', what was not reached, in words)."""
    python = _interpreter(report, request.verify_python, str(report.facts.get("python")))
    lock_path = os.path.join(work, "lock-verify.txt")
    with open(lock_path, "w", encoding="utf-8") as handle:
        handle.write(text)
    venv = os.path.join(work, "venv")
    request.progress("verifying: a throwaway venv with %s" % python)
    failed = _step([python, "-m", "venv", venv], request.timeout, "creating a venv with %s" % python)
    if failed:
        raise LockError(failed)
    vpy = os.path.join(venv, "bin", "python")
    version = subproc.run([vpy, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], timeout=60).stdout.strip()
    minor = ".".join(str(report.facts.get("python")).split(".")[:2])
    if not version.startswith(minor + "."):
        raise LockError("--verify: %s is Python %s, the target is Python %s" % (python, version, minor))
    request.progress("verifying: installing the lockfile")
    failed = _step([vpy, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", "-r", lock_path]
                   + request.index.pip_args(), request.timeout, "installing the lockfile")
    if failed:
        return [], failed
    failed = _step([vpy, "-m", "pip", "check"], request.timeout, "pip check")
    if failed:
        return [], failed
    levels = [Level("consistent", "installed with --no-deps into a fresh venv, pip check clean, %s, Python %s" % (today(), version))]
    if request.verify_level == "consistent":
        return levels, ""
    pinned = {p.name for p in requirements.read(lock_path, version).pins}
    modules = [m for package, mods in import_checks(report.kb.tables) if package in pinned for m in mods]
    if not modules:
        return levels, "imports: the knowledge base names no modules to import for these packages"
    request.progress("verifying: importing %s" % ", ".join(modules))
    ran = subproc.run([vpy, "-c", _IMPORTER] + modules, timeout=request.timeout)
    try:
        answer = json.loads(ran.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return levels, "imports: the import check gave no answer (%s)" % (ran.error or ran.stderr.strip()[-200:])
    if answer["failed"]:
        return levels, "imports: " + "; ".join("%s (%s)" % kv for kv in sorted(answer["failed"].items()))
    levels.append(Level("imports", "%s imported without a GPU, %s, Python %s" % (", ".join(modules), today(), answer["python"])))
    if request.verify_level == "imports":
        return levels, ""
    request.progress("verifying: a CPU training step of a tiny model")
    ran = subproc.run([vpy, "-c", smoke.SCRIPT], timeout=request.timeout)
    result = smoke.parse(ran.stdout, ran.stderr, ran.error)
    if not result.passed:
        return levels, "smoke: " + result.failed
    exercised = ", ".join(result.steps) + (" (not locked: %s)" % ", ".join(result.skipped) if result.skipped else "")
    levels.append(Level("smoke", "%s on the CPU, %s, Python %s" % (exercised, today(), answer["python"])))
    return levels, ""
