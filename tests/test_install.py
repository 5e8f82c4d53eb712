"""The installed envdoctor, across Python versions, and what it never imports."""

import glob
import json
import os
import subprocess
import sys

import pytest

from builders import REPO, make_venv, pyenv_python

SUPPORTED = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def test_check_never_imports_probed_packages(venvs):
    """In-process probe of an environment whose torch, transformers and xtuner refuse to import."""
    venv = venvs("xtuner==0.1.20", "transformers==4.40.0", "torch==2.1.2+cu121")
    site = venv.site_packages
    for name in ("transformers", "xtuner"):
        with open(os.path.join(site, name.replace("-", "_"), "__init__.py"), "w") as f:
            f.write("raise ImportError('envdoctor must not import %s')\n" % name)
    script = (
        "import sys\n"
        "sys.argv = ['envdoctor', 'check', '--format', 'json']\n"
        "from envdoctor.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'xtuner', 'deepspeed', 'flash_attn'))\n"
        "sys.stderr.write('IMPORTED=%r EXIT=%r\\n' % (bad, code))\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + site)
    done = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert "IMPORTED=[]" in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["facts"]["pkg.xtuner"] == "0.1.20"
    assert report["facts"]["torch.cuda"] == "12.1"


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory, index_available):
    if not index_available:
        pytest.skip("the package index is not reachable: building needs hatchling from it")
    out = str(tmp_path_factory.mktemp("dist"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, REPO],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, done.stdout
    (wheel,) = glob.glob(os.path.join(out, "envdoctor-*.whl"))
    return wheel


def test_wheel_carries_the_knowledge_base(built_wheel):
    import zipfile

    names = zipfile.ZipFile(built_wheel).namelist()
    records = [n for n in names if n.startswith("envdoctor/_knowledge/records/") and n.endswith(".toml")]
    shipped = glob.glob(os.path.join(REPO, "knowledge", "records", "**", "*.toml"), recursive=True)
    assert len(records) == len(shipped) > 0
    assert "envdoctor/_knowledge/tables/cuda-driver.toml" in names


@pytest.mark.parametrize("minor", SUPPORTED)
def test_installed_wheel_runs_on_each_python(minor, built_wheel, tmp_path):
    python = pyenv_python(minor)
    if python is None:
        pytest.skip("Python %s is not installed under pyenv on this machine" % minor)
    venv = make_venv(str(tmp_path / "venv"), python=python, with_pip=True)
    done = subprocess.run([venv.python, "-m", "pip", "install", "-q", built_wheel],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, done.stdout
    # Outside the source tree, so only the installed copy (and its knowledge base) can answer.
    exe = os.path.join(venv.root, "bin", "envdoctor")
    ran = subprocess.run([exe, "check", "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=""))
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["facts"]["python"].startswith(minor + ".")
    assert report["records_checked"] > 0 and not report["problems"]
    lint = subprocess.run([exe, "kb", "lint"], stdout=subprocess.PIPE, text=True, cwd=str(tmp_path))
    assert lint.returncode == 0 and "_knowledge" in lint.stdout
    # And `python -m envdoctor` works the same.
    assert subprocess.run([venv.python, "-m", "envdoctor", "--version"], stdout=subprocess.PIPE, cwd=str(tmp_path)).returncode == 0


@pytest.mark.parametrize("runner,target", [("3.11", "3.8"), ("3.8", "3.11"), ("3.13", "3.10")])
def test_python_option_across_versions(runner, target, built_wheel, tmp_path, wheelhouse):
    run_py, target_py = pyenv_python(runner), pyenv_python(target)
    if run_py is None or target_py is None:
        pytest.skip("Python %s or %s is not installed under pyenv on this machine" % (runner, target))
    tool = make_venv(str(tmp_path / "tool"), python=run_py, with_pip=True)
    subprocess.run([tool.python, "-m", "pip", "install", "-q", built_wheel], check=True, stdout=subprocess.PIPE)
    env_venv = make_venv(str(tmp_path / "env"), python=target_py)
    env_venv.install("--ignore-requires-python", "--find-links", wheelhouse, "xtuner==0.1.17", "torch==2.1.2+cu121")
    ran = subprocess.run([os.path.join(tool.root, "bin", "envdoctor"), "check", "--python", env_venv.python, "--format", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    report = json.loads(ran.stdout)
    assert report["facts"]["python"].startswith(target + ".")
    assert report["facts"]["pkg.xtuner"] == "0.1.17"
    assert report["facts"]["torch.cuda"] == "12.1"
    fired = {f["id"] for f in report["findings"] if f["status"] == "confirmed"}
    assert ("XTUNER-PYTHON-RANGE" in fired) is (tuple(map(int, target.split("."))) >= (3, 11))


def test_probe_reads_real_torch_like_import_torch(torch_venv):
    """The real torch 2.13.0 CPU wheel: facts read as text equal import torch's."""
    venv = torch_venv
    truth = subprocess.run([venv.python, "-c", "import json, torch; print(json.dumps([torch.__version__, torch.version.cuda]))"],
                           stdout=subprocess.PIPE, text=True, check=True)
    version, cuda = json.loads(truth.stdout)
    from builders import check_json

    report = check_json("--python", venv.python)
    assert report["facts"]["torch.version"] == version
    assert report["facts"]["torch.cuda"] == cuda
