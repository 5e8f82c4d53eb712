"""envdoctor check against real venvs holding real wheels, run as a subprocess."""

import json
import os
import sys

import pytest

from builders import check_json, envdoctor, finding_ids, pyenv_python


def test_lists_the_distributions_of_another_interpreter(venvs):
    venv = venvs("xtuner==0.1.20", "transformers==4.40.0", "torch==2.1.2+cu121")
    report = check_json("--python", venv.python)
    facts = report["facts"]
    assert facts["pkg.xtuner"] == "0.1.20"
    assert facts["pkg.transformers"] == "4.40.0"
    assert facts["torch.version"] == "2.1.2+cu121"
    assert facts["torch.cuda"] == "12.1"
    assert facts["python"] == "%d.%d.%d" % sys.version_info[:3]
    # Only what the venv holds: nothing of the interpreter running envdoctor.
    assert "pkg.click" not in facts and "pkg.pytest" not in facts


def test_in_process_probe_sees_the_same_facts_as_python_option(venvs):
    venv = venvs("xtuner==0.1.20", "torch==2.1.2+cu121")
    site = venv.site_packages
    here = check_json(env={"PYTHONPATH": site})  # this interpreter, with the venv's packages on the path
    there = check_json("--python", venv.python)
    for key in ("pkg.xtuner", "torch.version", "torch.cuda"):
        assert here["facts"][key] == there["facts"][key]


def test_cpu_build_of_torch_has_no_cuda(venvs):
    report = check_json("--python", venvs("torch==2.13.0+cpu").python)
    assert report["facts"]["torch.version"] == "2.13.0+cpu"
    assert report["facts"]["torch.cuda"] is None


def test_xtuner_0117_on_internlm2_is_possible_until_the_model_is_known(venvs):
    venv = venvs("xtuner==0.1.17", "transformers==4.40.0", python=pyenv_python("3.10") or sys.executable)
    report = check_json("--python", venv.python)
    possible = {f["id"]: f for f in report["findings"] if f["status"] == "possible"}
    assert "XTUNER-POSITION-IDS-COLLATE" in possible
    facts = {u["fact"] for u in possible["XTUNER-POSITION-IDS-COLLATE"]["undecided"]}
    assert "model.type" in facts
    assert report["exit_code"] == 0 or "XTUNER-PYTHON-RANGE" in finding_ids(report)


@pytest.mark.parametrize("version,fires", [("0.1.11", False), ("0.1.12", True), ("0.1.23", True), ("0.2.0", False)])
def test_xtuner_python_range(venvs, wheelhouse, version, fires, tmp_path):
    from builders import make_wheel

    if version == "0.1.11":
        make_wheel(wheelhouse, "xtuner", "0.1.11", [], None)
    if version == "0.1.12":
        make_wheel(wheelhouse, "xtuner", "0.1.12", [], ">=3.8, <3.11")
    report = check_json("--python", venvs("xtuner==" + version).python)  # this venv is Python 3.11+
    assert ("XTUNER-PYTHON-RANGE" in finding_ids(report)) is fires
    assert report["exit_code"] == (1 if fires else 0)


@pytest.mark.skipif(pyenv_python("3.10") is None, reason="no Python 3.10 interpreter under pyenv on this machine")
def test_xtuner_python_range_near_miss_on_310(venvs):
    report = check_json("--python", venvs("xtuner==0.1.23", python=pyenv_python("3.10")).python)
    assert "XTUNER-PYTHON-RANGE" not in finding_ids(report) | finding_ids(report, "possible")
    assert report["facts"]["python"].startswith("3.10.")


@pytest.mark.parametrize("driver,expect", [
    ("520.61.05", {"CUDA-DRIVER-TOO-OLD"}),          # below the 12.x family floor 525.60.13
    ("525.60.13", {"CUDA-DRIVER-BELOW-TOOLKIT"}),    # family floor met, 12.1 wants 530.30.02
    ("530.30.02", set()),                            # exactly the toolkit floor
    ("535.104.05", set()),
])
def test_driver_floor_for_torch_cuda_121(venvs, driver, expect):
    report = check_json("--python", venvs("torch==2.1.2+cu121").python, "--driver", driver)
    fired = finding_ids(report) & {"CUDA-DRIVER-TOO-OLD", "CUDA-DRIVER-BELOW-TOOLKIT"}
    assert fired == expect
    assert report["exit_code"] == (1 if "CUDA-DRIVER-TOO-OLD" in expect else 0)


def test_driver_from_the_environment_variable(venvs):
    report = check_json("--python", venvs("torch==2.1.2+cu121").python, env={"ENVDOCTOR_CUDA_DRIVER": "520.61.05"})
    assert "CUDA-DRIVER-TOO-OLD" in finding_ids(report)
    assert report["facts"]["cuda.driver.source"] == "override"


def test_container_build_without_driver_passes_and_says_so(venvs):
    venv = venvs("torch==2.1.2+cu121")
    done = envdoctor("check", "--python", venv.python, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout
    assert "NVIDIA driver: none visible" in done.stdout
    assert "[possible error] CUDA-DRIVER-TOO-OLD" in done.stdout
    required = envdoctor("check", "--python", venv.python, "--require-gpu", env={"PATH": "/usr/bin:/bin"})
    assert required.returncode == 1
    assert "ENVDOCTOR-NO-GPU" in required.stdout


def test_cpu_torch_needs_no_driver(venvs):
    report = check_json("--python", venvs("torch==2.13.0+cpu").python)
    assert not [f for f in report["findings"] if f["id"].startswith("CUDA-")]


def test_fail_on_warning_turns_a_warning_into_exit_1(venvs):
    venv = venvs("torch==2.1.2+cu121")
    assert envdoctor("check", "--python", venv.python, "--driver", "525.60.13").returncode == 0
    assert envdoctor("check", "--python", venv.python, "--driver", "525.60.13", "--fail-on", "warning").returncode == 1


def test_text_report_sections_and_no_colour_when_piped(venvs):
    done = envdoctor("check", "--python", venvs("xtuner==0.1.20", "torch==2.1.2+cu121").python)
    for section in ("Python", "Packages", "torch / CUDA", "Findings"):
        assert "\n%s\n" % section in "\n" + done.stdout
    assert "torch 2.1.2+cu121, built for CUDA 12.1" in done.stdout
    assert "\033[" not in done.stdout


def test_markdown_report(venvs):
    done = envdoctor("check", "--python", venvs("torch==2.1.2+cu121").python, "--driver", "520.61.05", "--format", "markdown")
    assert done.returncode == 1
    assert "| `torch.cuda` | 12.1 |" in done.stdout
    assert "`CUDA-DRIVER-TOO-OLD`" in done.stdout


def test_json_schema_is_versioned_and_documented(venvs):
    report = check_json("--python", venvs("torch==2.1.2+cu121").python)
    assert report["schema"] == "envdoctor.check/1"
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "json-schema.md")).read()
    for key in report:
        assert "`%s`" % key in doc, "docs/json-schema.md does not describe %r" % key
    for key in ("id", "severity", "status", "because", "undecided", "remedy", "references"):
        assert "`%s`" % key in doc


def test_help_documents_exit_codes():
    done = envdoctor("check", "--help")
    assert done.returncode == 0
    assert "Exit codes" in done.stdout and "--fail-on" in done.stdout


def test_usage_error_exits_2():
    done = envdoctor("check", "--format", "yaml")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def _json_lines(text):
    return json.loads(text)
