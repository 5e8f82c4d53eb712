import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from builders import make_venv, make_wheel, torch_version_py
from xtuner_code import xtuner_files

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Keep the tests' parsed-TOML cache away from the user's own.
os.environ.setdefault("ENVDOCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="envdoctor-test-cache-"))

# Real names, versions and declared requirements of the releases the records talk about
# (from each release's metadata), so the wheels look to pip and envdoctor like the real ones.
XTUNER_PY = ">=3.8, <3.11"
STACK = [
    ("xtuner", "0.1.15", ["transformers>=4.34.0", "torch<=2.1.2"], XTUNER_PY),
    ("xtuner", "0.1.17", ["transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0", "torch<=2.1.2"], XTUNER_PY),
    ("xtuner", "0.1.18", ["transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0"], XTUNER_PY),
    ("xtuner", "0.1.19", ["transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0"], XTUNER_PY),
    ("xtuner", "0.1.20", ["transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0"], XTUNER_PY),
    ("xtuner", "0.1.21", ["transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0"], XTUNER_PY),
    ("xtuner", "0.1.22", ["transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0"], XTUNER_PY),
    ("xtuner", "0.1.23", ["transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0"], XTUNER_PY),
    ("xtuner", "0.2.0", ["transformers==4.48.0"], ">=3.8, <3.13"),
    ("transformers", "4.36.2", [], ">=3.8.0"),
    ("transformers", "4.40.0", [], ">=3.8.0"),
    ("transformers", "4.42.4", [], ">=3.8.0"),
    ("transformers", "4.43.0", [], ">=3.8.0"),
    ("transformers", "4.48.0", [], ">=3.9.0"),
    ("flash-attn", "2.5.8", ["torch"], ">=3.7"),
]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("wheelhouse"))
    for name, version, requires, py in STACK:
        # XTuner wheels carry the lines of their release's code that records read.
        files = xtuner_files(version) if name == "xtuner" else None
        make_wheel(folder, name, version, requires, py, files=files)
    for version, cuda in (("2.1.2+cu121", "12.1"), ("2.4.1+cu124", "12.4"), ("2.13.0+cpu", None)):
        make_wheel(folder, "torch", version, [], ">=3.8", files={
            "torch/__init__.py": "raise ImportError('envdoctor must not import torch')\n",
            "torch/version.py": torch_version_py(version, cuda),
        })
    return folder


class VenvFactory:
    """Venvs holding given wheels; one per distinct set, shared by the whole session."""

    def __init__(self, root, wheelhouse):
        self.root = root
        self.wheelhouse = wheelhouse
        self.made = {}

    def __call__(self, *specs, python=sys.executable):
        key = (python, tuple(sorted(specs)))
        if key not in self.made:
            venv = make_venv(tempfile.mkdtemp(dir=self.root), python=python)
            if specs:
                venv.install("--ignore-requires-python", "--find-links", self.wheelhouse, *specs)
            self.made[key] = venv
        return self.made[key]


@pytest.fixture(scope="session")
def venvs(tmp_path_factory, wheelhouse):
    return VenvFactory(str(tmp_path_factory.mktemp("venvs")), wheelhouse)


@pytest.fixture(scope="session")
def index_available():
    """Whether the package index answers (some tests install real releases from it)."""
    if os.environ.get("ENVDOCTOR_TESTS_OFFLINE"):
        return False
    tmp = tempfile.mkdtemp()
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "--no-cache-dir", "six==1.16.0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
        return done.returncode == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


TORCH = "torch==2.13.0"  # the CPU build pip finds on this machine's disk, for Python 3.11


def _torch_source() -> str:
    """Where pip would take TORCH from, asked without downloading it (its metadata only)."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                           "-q", "--report", "-", TORCH], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip("pip finds no %s for Python %d.%d here: %s" % (TORCH, sys.version_info[0], sys.version_info[1], last))
    return json.loads(done.stdout)["install"][0]["download_info"]["url"]


@pytest.fixture(scope="session")
def torch_venv(tmp_path_factory):
    """A venv with the real torch (a CPU build) and envdoctor's own requirements, shared by the
    tests that need torch itself (check --distributed, the probe against import torch).
    envdoctor runs there from this source tree (builders.envdoctor sets PYTHONPATH)."""
    url = _torch_source()
    if not url.startswith("file:"):
        # A CUDA build from the index is gigabytes; a test must not pull that in.
        pytest.skip("%s would be downloaded from %s; put its CPU wheel in pip's --find-links to run this test" % (TORCH, url))
    folder = tmp_path_factory.mktemp("torch")
    try:  # torch and its requirements take about 2 GB: removed when the session ends
        venv = make_venv(str(folder / "venv"))
        subprocess.run([sys.executable, "-m", "pip", "--python", venv.python, "install", "-q", TORCH, "click", "packaging"],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        yield venv
    finally:
        shutil.rmtree(str(folder), ignore_errors=True)


@pytest.fixture()
def pins(tmp_path):
    """Write a requirements file of the given lines; each call a new file."""
    def write(*lines):
        path = tmp_path / ("req%d.txt" % len(list(tmp_path.iterdir())))
        path.write_text("\n".join(lines) + "\n")
        return str(path)
    return write


class RealReleases:
    """Real release files from the index (pip download --no-deps), fetched once per session into a temp dir."""

    def __init__(self, folder):
        self.folder = folder
        self.files = {}

    def __call__(self, name, version, *pip_args):
        key = (name, version)
        if key not in self.files:
            dest = os.path.join(self.folder, "%s-%s" % key)
            os.makedirs(dest, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python", "-q",
                            "-d", dest, *pip_args, "%s==%s" % key], check=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
            self.files[key] = os.path.join(dest, sorted(os.listdir(dest))[0])
        return self.files[key]


@pytest.fixture(scope="session")
def real_releases(tmp_path_factory, index_available):
    if not index_available:
        pytest.skip("the package index is unreachable: these tests read real release files from it")
    return RealReleases(str(tmp_path_factory.mktemp("releases")))


# CI (.ci/run sets ENVDOCTOR_STRICT_SKIPS=1) fails on any skip it does not expect: a test that
# skips because a tool or interpreter went missing would otherwise pass silently. These are
# the skips expected on the CI machine (root, the pyenv interpreters of the brief), by reason.
EXPECTED_SKIPS = (
    "running as root",  # root reads any file: a permission cannot make it fail
    "needs root",  # the unprivileged-probe test, where CI is not root
    "no Python older than 3.8",  # pyenv there has 3.8 to 3.13 only
    "this interpreter is the target",  # the wrong-Python lock test, when CI runs on 3.10
)
_UNEXPECTED_SKIPS = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(expected in reason for expected in EXPECTED_SKIPS):
            _UNEXPECTED_SKIPS.append("%s: %s" % (report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("ENVDOCTOR_STRICT_SKIPS") and _UNEXPECTED_SKIPS and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("ENVDOCTOR_STRICT_SKIPS") and _UNEXPECTED_SKIPS:
        terminalreporter.section("unexpected skips (ENVDOCTOR_STRICT_SKIPS): CI fails on these")
        for line in _UNEXPECTED_SKIPS:
            terminalreporter.write_line(line)
