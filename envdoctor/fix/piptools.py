"""pip-compile for a target Python: pip-compile resolves for the interpreter it runs on, so a
lock for Python 3.10 made from an envdoctor on 3.11 needs pip-tools installed for 3.10.

The interpreter is the target's own (--python) when it has pip-compile beside it, else one of
that version found on this machine (PATH, pyenv); pip-tools goes into a venv of it, kept in
envdoctor's cache folder and reused.
"""

import glob
import os
import shutil
import sys
from typing import List, Optional

from envdoctor import subproc
from envdoctor.fix.locktypes import Index, LockError, Progress, silent


def cache_root() -> str:
    base = os.environ.get("ENVDOCTOR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "envdoctor")
    return os.path.join(base, "pip-tools")


def interpreters(minor: str, beside: Optional[str] = None) -> List[str]:
    """Interpreters that may be Python ``minor``, most likely first (each is asked, never assumed)."""
    out = [beside] if beside else []
    found = shutil.which("python" + minor)
    if found:
        out.append(found)
    root = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    out.extend(sorted(glob.glob(os.path.join(root, "versions", minor + ".*", "bin", "python" + minor)), reverse=True))
    return [p for i, p in enumerate(out) if p not in out[:i]]


def python_minor(python: str) -> str:
    """X.Y of an interpreter, asked of it; "" when it does not answer."""
    ran = subproc.run([python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=30)
    return ran.stdout.strip() if ran.ok else ""


def pip_compile_for(minor: str, beside: Optional[str], index: Index, timeout: float, progress: Progress = silent) -> str:
    """A pip-compile that runs on Python ``minor``; raises LockError saying what is missing."""
    for python in ([beside] if beside else []) + [sys.executable]:
        # The target's own pip-tools, or envdoctor's (a dependency) when envdoctor runs on the target Python.
        sibling = os.path.join(os.path.dirname(python), "pip-compile")
        if os.access(sibling, os.X_OK) and python_minor(python) == minor:
            return sibling
    python = next((p for p in interpreters(minor, beside) if python_minor(p) == minor), None)
    if python is None:
        raise LockError("--resolver pip-tools needs a Python %s interpreter (none on PATH or under pyenv); "
                        "use the default resolver (uv), or pass --pip-compile PATH" % minor)
    venv = os.path.join(cache_root(), "py" + minor)
    program = os.path.join(venv, "bin", "pip-compile")
    if os.access(program, os.X_OK) and python_minor(os.path.join(venv, "bin", "python")) == minor:
        return program
    progress("installing pip-tools for Python %s into %s (once)" % (minor, venv))
    shutil.rmtree(venv, ignore_errors=True)
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    made = subproc.run([python, "-m", "venv", venv], timeout=timeout)
    if not made.ok:
        raise LockError("could not make a Python %s venv for pip-tools at %s: %s" % (minor, venv, made.error or made.stderr.strip()[-200:]))
    # pip-tools comes from the user's index (not from --find-links, which holds the stack's files).
    where = (["--index-url", index.index_url] if index.index_url else []) + [a for u in index.extra_index_url for a in ("--extra-index-url", u)]
    installed = subproc.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             "pip-tools"] + where, timeout=timeout)
    if not installed.ok or not os.access(program, os.X_OK):
        shutil.rmtree(venv, ignore_errors=True)
        tail = [l for l in (installed.stderr or installed.stdout).splitlines() if l.strip()]
        raise LockError("could not install pip-tools for Python %s: %s" % (minor, installed.error or (tail[-1][:200] if tail else "no output")))
    return program
