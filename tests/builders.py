"""Real artefacts for tests: wheels written by hand (valid, installable by pip), venvs,
model folders. Small and fast, so the suite stays quick on two cores."""

import base64
import functools
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def make_wheel(
    folder: str,
    name: str,
    version: str,
    requires: Iterable[str] = (),
    requires_python: Optional[str] = None,
    files: Optional[Dict[str, str]] = None,
    extras: Optional[Dict[str, Sequence[str]]] = None,
) -> str:
    """A wheel with real metadata. ``files`` maps paths in site-packages to text (or bytes)."""
    os.makedirs(folder, exist_ok=True)
    dist = name.replace("-", "_")
    info = "%s-%s.dist-info" % (dist, version)
    meta = ["Metadata-Version: 2.1", "Name: %s" % name, "Version: %s" % version]
    if requires_python:
        meta.append("Requires-Python: %s" % requires_python)
    for req in requires:
        meta.append("Requires-Dist: %s" % req)
    for extra, reqs in (extras or {}).items():
        meta.append("Provides-Extra: %s" % extra)
        for req in reqs:
            sep = ";" if ";" not in req else " and"
            meta.append('Requires-Dist: %s%s extra == "%s"' % (req, sep, extra))
    contents = dict(files or {})
    if not contents:
        contents["%s/__init__.py" % dist] = "__version__ = %r\n" % version
    contents["%s/METADATA" % info] = "\n".join(meta) + "\n\n"
    contents["%s/WHEEL" % info] = "Wheel-Version: 1.0\nGenerator: envdoctor-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    path = os.path.join(folder, "%s-%s-py3-none-any.whl" % (dist, version))
    lines = []
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in contents.items():
            data = text if isinstance(text, bytes) else text.encode()  # compiled libraries come as bytes
            zf.writestr(member, data)
            lines.append(_record_line(member, data))
        lines.append("%s/RECORD,," % info)
        zf.writestr("%s/RECORD" % info, "\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Venv:
    root: str

    @property
    def python(self) -> str:
        return os.path.join(self.root, "bin", "python")

    def install(self, *args: str) -> None:
        """pip (this interpreter's) installs into the venv, offline unless told otherwise."""
        cmd = [sys.executable, "-m", "pip", "--python", self.python, "install", "-q", "--no-deps", "--no-index", *args]
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    @property
    def site_packages(self) -> str:
        out = subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, stdout=subprocess.PIPE, text=True)
        return out.stdout.strip()


def make_venv(root: str, python: str = sys.executable, with_pip: bool = False) -> Venv:
    cmd = [python, "-m", "venv", root]
    if not with_pip:
        cmd.insert(3, "--without-pip")
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return Venv(root)


def envdoctor(*args: str, env: Optional[Dict[str, str]] = None, python: str = sys.executable,
              input: Optional[str] = None, cwd: Optional[str] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run envdoctor as a user would: a real subprocess, from this source tree."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    return subprocess.run([python, "-m", "envdoctor", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=full_env, input=input, cwd=cwd or REPO, timeout=timeout)


def check_json(*args: str, **kw) -> dict:
    done = envdoctor("check", "--format", "json", *args, **kw)
    assert done.returncode in (0, 1), done.stderr + done.stdout
    return json.loads(done.stdout)


def finding_ids(report: dict, status: str = "confirmed") -> set:
    return {f["id"] for f in report["findings"] if f["status"] == status}


def pin_reports(folder, spec_of: Callable[[str], Tuple[Sequence[str], Sequence[str]]],
                env: Optional[Dict[str, str]] = None) -> Callable[[str], dict]:
    """name -> the JSON report of `envdoctor check -r` on that pin set. ``spec_of(name)`` gives
    the pins (a requirements file's lines) and the further arguments of check; each set is
    written to ``folder``/NAME.txt and checked once, in a subprocess, on first use."""

    @functools.lru_cache(maxsize=None)
    def get(name: str) -> dict:
        pins, args = spec_of(name)
        path = os.path.join(str(folder), name + ".txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(pins) + "\n")
        return check_json("-r", path, *args, env=env)

    return get


def fact_args(facts: Iterable[str]) -> List[str]:
    """``--fact KEY=VALUE`` arguments of check, one pair a fact."""
    return [arg for fact in facts for arg in ("--fact", fact)]


def assert_row(report: dict, record_id: str, status: Optional[str], where: str) -> Optional[dict]:
    """One row of a record table: the finding ``record_id`` of ``report`` with ``status`` and
    its reason, or (``status`` None) no such finding at all. ``where`` names the row's input."""
    found = {f["id"]: f for f in report["findings"]}
    if status is None:
        assert record_id not in found, "%s fired in %s: %s" % (record_id, where, found.get(record_id))
        return None
    assert record_id in found, "%s did not fire in %s; findings: %s" % (record_id, where, sorted(found))
    assert found[record_id]["status"] == status, found[record_id]
    assert found[record_id]["because"], "a finding says why it fired"
    return found[record_id]


# A valid knowledge record: the kb tests break it one field at a time.
GOOD_RECORD = '''id = "TEAM-GOOD"
summary = "a record"
severity = "warning"
evidence_level = "reported"
details = "why"

[[affected]]
package = "xtuner"
introduced = "0.1.16"
fixed = "0.1.18"

[when]
"model.type" = "internlm2"

[[symptoms]]
pattern = 'boom \\d+'
example = "RuntimeError: boom 42"

[remedy]
summary = "upgrade"

[[references]]
url = "https://github.com/InternLM/xtuner/issues/643"
title = "an issue"
'''


def kb_folder(folder, records: Iterable[Tuple[str, str]] = (), tables: Iterable[Tuple[str, str]] = ()) -> str:
    """A knowledge folder as a team writes one: (file name, TOML text) pairs under
    ``folder``/records and ``folder``/tables. Returns the folder's path."""
    for part, files in (("records", records), ("tables", tables)):
        for name, text in files:
            os.makedirs(os.path.join(str(folder), part), exist_ok=True)
            with open(os.path.join(str(folder), part, name), "w", encoding="utf-8") as handle:
                handle.write(text)
    return str(folder)


def torch_version_py(version: str, cuda: Optional[str]) -> str:
    """torch/version.py as a released wheel writes it (tools/generate_torch_version.py)."""
    return (
        "from typing import Optional\n\n"
        "__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']\n"
        "__version__ = '%s'\n"
        "debug = False\n"
        "cuda: Optional[str] = %s\n"
        "git_version = '0123456789abcdef0123456789abcdef01234567'\n"
        "hip: Optional[str] = None\n"
        "xpu: Optional[str] = None\n" % (version, repr(cuda) if cuda else "None")
    )


def pyenv_python(minor: str) -> Optional[str]:
    """The pyenv interpreter for e.g. '3.8', or None when this machine lacks it."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions = os.path.join(root, "versions")
    if not os.path.isdir(versions):
        return None
    for name in sorted(os.listdir(versions), reverse=True):
        if name.startswith(minor + ".") and name.replace(".", "").isdigit():
            path = os.path.join(versions, name, "bin", "python" + minor)
            if os.path.exists(path):
                return path
    return None
