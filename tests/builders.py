"""Real artefacts for tests: wheels written by hand (valid, installable by pip), venvs,
model folders. Small and fast, so the suite stays quick on two cores."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence

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
