"""The shipped lockfiles: each passes the static check (what CI runs), and fix --offline picks
the one matching the environment, or says none does."""

import glob
import json
import os

import pytest

from builders import REPO, envdoctor

LOCKFILES = sorted(glob.glob(os.path.join(REPO, "lockfiles", "*.txt")))
NEW_INTERNLM2 = ("--fact", "model.type=internlm2", "--fact", "model.remote_code=internlm2-cache-class",
                 "--fact", "train.use_varlen_attn=false")


def _python_of(path):
    for line in open(path):
        if line.startswith("# target: Python "):
            return line.split()[3].rstrip(",")
    raise AssertionError("%s: no target line in the header" % path)


@pytest.mark.parametrize("path", LOCKFILES, ids=os.path.basename)
def test_shipped_lockfile_passes_the_static_check(path):
    assert open(path).readline().rstrip("\n") == "# envdoctor lockfile"
    done = envdoctor("check", "-r", path, "--python-version", _python_of(path), "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 0, [f["id"] for f in report["findings"] if f["status"] == "confirmed"]
    assert report["problems"] == []
    assert report["facts"]["pkg.xtuner"] and report["facts"]["torch.cuda"] == "12.1"
    header = [l for l in open(path) if l.startswith("#")]
    assert any(l.startswith("# level resolved:") for l in header)
    # Each shipped lockfile was installed into a fresh venv of its Python and ran the CPU smoke
    # step, and its header says so, with that Python; it records no path of the machine it was made on.
    smoke = [l for l in header if l.startswith("# level smoke:")]
    assert len(smoke) == 1 and smoke[0].rstrip().endswith("Python %s" % _full_python(smoke[0], _python_of(path))), header
    assert not any(root in l for l in header for root in ("/root", "/tmp", "/work", "/home")), header


def _full_python(line, minor):
    """The interpreter's version the smoke line ends with, checked to be of the lockfile's minor."""
    version = line.rstrip().rsplit(" ", 1)[-1]
    assert version.startswith(minor + "."), (line, minor)
    return version


def offline(tmp_path, *pins_and_args, pins=()):
    req = tmp_path / "env.txt"
    req.write_text("\n".join(pins) + "\n")
    done = envdoctor("fix", "--offline", "-r", str(req), "--format", "json", *pins_and_args)
    return done.returncode, json.loads(done.stdout)


@pytest.mark.skipif(not LOCKFILES, reason="no lockfiles shipped")
def test_offline_picks_the_xtuner_0123_lockfile_for_its_environment(tmp_path):
    code, answer = offline(tmp_path, "--python-version", "3.10", *NEW_INTERNLM2,
                           pins=("xtuner==0.1.23", "torch==2.1.2+cu121", "transformers==4.42.4"))
    assert code == 0
    assert os.path.basename(answer["chosen"]) == "xtuner-0.1.23-internlm2-py310-cu121.txt"
    verdicts = {os.path.basename(c["path"]): c for c in answer["candidates"]}
    assert any("XTuner 0.2.0" in r for r in verdicts["xtuner-0.2.0-py310-cu121.txt"]["reasons"])


@pytest.mark.skipif(not LOCKFILES, reason="no lockfiles shipped")
@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12"])
def test_offline_picks_the_xtuner_020_lockfile_for_the_020_line(tmp_path, python):
    code, answer = offline(tmp_path, "--python-version", python, pins=("xtuner==0.2.0", "torch==2.4.1+cu121"))
    name = "xtuner-0.2.0-py%s-cu121.txt" % python.replace(".", "")
    assert code == 0 and os.path.basename(answer["chosen"]) == name
    assert {c["level"] for c in answer["candidates"] if os.path.basename(c["path"]) == name} == {"smoke"}


@pytest.mark.skipif(not LOCKFILES, reason="no lockfiles shipped")
@pytest.mark.parametrize("python,torch,needle", [
    ("3.13", "torch==2.4.1+cu121", "this is 3.13"),
    ("3.10", "torch==2.1.2+cu118", "this torch for CUDA 11.8"),
])
def test_offline_says_when_nothing_matches(tmp_path, python, torch, needle):
    code, answer = offline(tmp_path, "--python-version", python, pins=("xtuner==0.2.0", torch))
    assert code == 1 and answer["chosen"] is None
    assert all(any(needle in r for r in c["reasons"]) for c in answer["candidates"])
    text = envdoctor("fix", "--offline", "-r", str(tmp_path / "env.txt"), "--python-version", python)
    assert text.returncode == 1 and "No curated lockfile matches this environment" in text.stdout
