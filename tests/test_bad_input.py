"""Broken environments and tools: one clear line each, no traceback, the rest still reported."""

import os
import shutil
import stat
import subprocess
import sys

import pytest

from builders import check_json, envdoctor, make_venv, make_wheel


@pytest.fixture
def broken_venv(tmp_path, wheelhouse):
    """A venv holding xtuner 0.1.20 plus damaged dist-infos of other packages."""
    venv = make_venv(str(tmp_path / "venv"))
    venv.install("--find-links", wheelhouse, "xtuner==0.1.20", "--ignore-requires-python")
    site = venv.site_packages
    garbled = os.path.join(site, "garbled-1.0.dist-info")
    os.makedirs(garbled)
    with open(os.path.join(garbled, "METADATA"), "wb") as f:
        f.write(b"\xff\xfe\x00garbage without any header\n\x00\x01")
    noversion = os.path.join(site, "noversion-1.0.dist-info")
    os.makedirs(noversion)
    with open(os.path.join(noversion, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: noversion\n\n")
    empty = os.path.join(site, "nometa-2.0.dist-info")
    os.makedirs(empty)
    return venv


def _messages(report):
    return [p["message"] for p in report["problems"]]


def test_damaged_metadata_is_named_and_the_rest_is_still_read(broken_venv):
    report = check_json("--python", broken_venv.python)
    assert report["facts"]["pkg.xtuner"] == "0.1.20"
    messages = _messages(report)
    assert any("noversion-1.0.dist-info" in m and "no Version" in m for m in messages), messages
    assert any("garbled-1.0.dist-info" in m for m in messages), messages
    assert any("nometa-2.0.dist-info" in m and "no METADATA" in m for m in messages), messages
    assert report["exit_code"] != 2  # damaged neighbours are not a failed probe


def test_damaged_metadata_in_text_output_has_no_traceback(broken_venv):
    done = envdoctor("check", "--python", broken_venv.python)
    assert done.returncode != 2
    assert "Could not read" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_two_dist_infos_of_one_package(tmp_path, wheelhouse):
    venv = make_venv(str(tmp_path / "venv"))
    venv.install("--find-links", wheelhouse, "transformers==4.40.0")
    site = venv.site_packages
    # A second copy left behind, as a failed uninstall or a manual copy does.
    shutil.copytree(os.path.join(site, "transformers-4.40.0.dist-info"), os.path.join(site, "transformers-4.36.2.dist-info"))
    meta = os.path.join(site, "transformers-4.36.2.dist-info", "METADATA")
    with open(meta) as f:
        text = f.read().replace("Version: 4.40.0", "Version: 4.36.2")
    with open(meta, "w") as f:
        f.write(text)
    report = check_json("--python", venv.python)
    twice = [m for m in _messages(report) if "installed twice" in m]
    assert len(twice) == 1 and "4.40.0" in twice[0] and "4.36.2" in twice[0]
    assert report["facts"]["pkg.transformers"] in ("4.40.0", "4.36.2")


def test_torch_folder_without_version_py(tmp_path, wheelhouse):
    venv = make_venv(str(tmp_path / "venv"))
    venv.install("--find-links", wheelhouse, "torch==2.1.2+cu121")
    os.remove(os.path.join(venv.site_packages, "torch", "version.py"))
    report = check_json("--python", venv.python)
    assert "torch.cuda" in report["unknown_facts"]
    assert any("torch/version.py" in m for m in _messages(report))
    driver_findings = [f for f in report["findings"] if f["id"].startswith("CUDA-DRIVER")]
    assert all(f["status"] == "possible" for f in driver_findings)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"),
                    reason="needs root, setpriv and /usr/bin/python3 to run the probe as an unprivileged user")
def test_unreadable_site_packages(wheelhouse):
    import json
    import tempfile
    import zipfile

    # Root reads any folder, so the probe runs as nobody, who cannot list `locked`.
    top = tempfile.mkdtemp()
    try:
        os.chmod(top, 0o755)
        readable = os.path.join(top, "readable")
        locked = os.path.join(top, "locked")
        os.makedirs(readable)
        os.makedirs(locked)
        with zipfile.ZipFile(make_wheel(os.path.join(top, "w"), "visible", "1.0")) as zf:
            zf.extractall(readable)
        make_wheel(os.path.join(top, "w"), "hidden", "1.0")
        with zipfile.ZipFile(os.path.join(top, "w", "hidden-1.0-py3-none-any.whl")) as zf:
            zf.extractall(locked)
        for root, dirs, files in os.walk(top):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        os.chmod(locked, 0)
        probe = os.path.join(top, "probe.py")
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "envdoctor", "sources", "_probe.py"), probe)
        os.chmod(probe, 0o644)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": readable + os.pathsep + locked, "HOME": top}
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", probe],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=top)
        assert done.returncode == 0, done.stderr
        inventory = json.loads(done.stdout)
        assert any(locked in p and "cannot list folder" in p for p in inventory["problems"]), inventory["problems"]
        names = {d["name"] for d in inventory["distributions"]}
        assert "visible" in names and "hidden" not in names
    finally:
        os.chmod(locked, 0o755)
        shutil.rmtree(top, ignore_errors=True)


def _fake_tool(folder, name, script):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(folder)


def test_hanging_nvidia_smi_times_out(tmp_path, venvs):
    bin_dir = _fake_tool(tmp_path / "bin", "nvidia-smi", "sleep 60\n")
    env = {"PATH": bin_dir + os.pathsep + "/usr/bin:/bin"}
    done = envdoctor("check", "--python", venvs("torch==2.1.2+cu121").python, "--probe-timeout", "1", "--format", "json", env=env, timeout=30)
    assert done.returncode == 0
    import json

    report = json.loads(done.stdout)
    assert any("nvidia-smi" in m and "no answer within 1s" in m for m in _messages(report))
    assert "gpu.count" in report["unknown_facts"]


def test_nvidia_smi_printing_garbage(tmp_path, venvs):
    bin_dir = _fake_tool(tmp_path / "bin", "nvidia-smi", "echo 'Segmentation fault in libnvidia-ml'\n")
    report = check_json("--python", venvs("torch==2.1.2+cu121").python, env={"PATH": bin_dir + os.pathsep + "/usr/bin:/bin"})
    assert any("unexpected" in m for m in _messages(report))


def test_nvidia_smi_with_two_gpus(tmp_path, venvs):
    rows = "535.104.05, NVIDIA A100-SXM4-80GB, 8.0, 81920\\n535.104.05, Tesla V100-SXM2-32GB, 7.0, 32768\\n"
    bin_dir = _fake_tool(tmp_path / "bin", "nvidia-smi", "printf '%s'\n" % rows)
    report = check_json("--python", venvs("torch==2.1.2+cu121").python, env={"PATH": bin_dir + os.pathsep + "/usr/bin:/bin"})
    facts = report["facts"]
    assert facts["gpu.count"] == 2
    assert facts["gpu.capability"] == "7.0"  # the weakest GPU decides
    assert facts["cuda.driver"] == "535.104.05"


@pytest.mark.parametrize("target,expect", [
    ("/bin/echo", "did not answer like a Python interpreter"),
    ("/bin/false", "exited with 1"),
    ("/nonexistent/python", "no such file"),
    ("/tmp", "is a folder"),
])
def test_python_option_that_is_not_python(target, expect):
    done = envdoctor("check", "--python", target)
    assert done.returncode == 2
    assert expect in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_python_option_pointing_at_a_text_file(tmp_path):
    text = tmp_path / "python"
    text.write_text("not a program\n")
    done = envdoctor("check", "--python", str(text), "--format", "json")
    assert done.returncode == 2
    assert "not executable" in done.stderr or "could not run" in done.stderr


def test_python_too_old():
    from builders import pyenv_python

    old = pyenv_python("3.7") or pyenv_python("3.6")
    if old is None:
        pytest.skip("no Python older than 3.8 under pyenv on this machine")
    done = envdoctor("check", "--python", old)
    assert done.returncode == 2
    assert "older than 3.8" in done.stdout + done.stderr


def test_bad_record_in_a_team_knowledge_base(tmp_path, venvs):
    team = tmp_path / "team-kb"
    team.mkdir()
    (team / "bad-range.toml").write_text(
        'id = "TEAM-BAD"\nsummary = "s"\nseverity = "error"\ndetails = "d"\n'
        '[[affected]]\npackage = "xtuner"\nintroduced = "0.1.18"\nfixed = "0.1.16"\n'
        '[remedy]\nsummary = "x"\n[[references]]\nurl = "https://example.org/x"\n'
    )
    (team / "not-toml.toml").write_text("id = [unclosed\n")
    done = envdoctor("check", "--python", venvs("torch==2.1.2+cu121").python, "--kb", str(team), "--driver", "520.61.05")
    # A broken record of the user's own stops the check (exit 2) and says where, rather than
    # reporting a verdict without it.
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bad-range.toml:5: affected[0]: empty range" in done.stdout
    assert "not-toml.toml:1: not valid TOML" in done.stdout
    assert "Traceback" not in done.stderr
    lint = envdoctor("kb", "lint", str(team))
    assert lint.returncode == 1
    assert "0 records valid, 2 invalid" in lint.stdout


def test_kb_lint_of_the_shipped_base_passes():
    done = envdoctor("kb", "lint")
    assert done.returncode == 0, done.stdout
    assert " 0 invalid" in done.stdout


def test_bad_driver_override(venvs):
    done = envdoctor("check", "--python", venvs("torch==2.1.2+cu121").python, "--driver", "latest")
    assert done.returncode == 2
    assert "not like 535.104.05" in done.stdout + done.stderr


def test_running_under_each_python_is_not_needed_for_the_probe_itself():
    # The probe is stdlib-only: it must parse on the oldest supported Python's grammar.
    import ast

    probe = os.path.join(os.path.dirname(__file__), "..", "envdoctor", "sources", "_probe.py")
    ast.parse(open(probe).read(), feature_version=(3, 8))
    assert sys.version_info >= (3, 8)
