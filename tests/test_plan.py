"""envdoctor fix: the plan, from pins (-r) and from real venvs, run as a subprocess."""

import json

import pytest

from builders import envdoctor, pyenv_python

INTERNLM2 = ("--fact", "model.type=internlm2", "--fact", "train.use_varlen_attn=false")


def fix_json(*args, code=0):
    done = envdoctor("fix", "--format", "json", *args)
    assert done.returncode == code, done.stdout + done.stderr
    return json.loads(done.stdout)


def _changes(plan):
    return {c["package"]: c for c in plan["changes"]}


def test_position_ids_on_0117_names_xtuner_target_transformers_range_and_why(pins):
    path = pins("xtuner==0.1.17", "transformers==4.34.0", "torch==2.1.2+cu121", "flash-attn==2.5.8")
    # Eight GPUs under torchrun (plain `xtuner train`: the mmengine path, no DeepSpeed), no sequence
    # parallelism: 0.1.16-0.1.19 run sequence parallelism across all ranks there, so the nearest
    # release that clears both errors is 0.1.20, which imports deepspeed without declaring it.
    run = ("--fact", "run.gpus=8", "--fact", "run.launcher=torchrun", "--fact", "train.sequence_parallel_size=1",
           "--fact", "train.framework=mmengine")
    plan = fix_json("-r", path, "--python-version", "3.10", *(INTERNLM2 + run))
    assert plan["status"] == "plan"
    assert {"XTUNER-POSITION-IDS-COLLATE", "XTUNER-SP-GLOBAL-GROUP", "XTUNER-DECLARED-REQUIREMENTS"} <= set(plan["errors"])
    changes = _changes(plan)
    assert changes["xtuner"]["to"] == "0.1.20" and changes["xtuner"]["action"] == "upgrade"
    assert {"XTUNER-POSITION-IDS-COLLATE", "XTUNER-SP-GLOBAL-GROUP"} <= set(changes["xtuner"]["clears"])
    assert "transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0" in changes["xtuner"]["declares"]
    assert "python>=3.8,<3.11" in changes["xtuner"]["declares"]
    assert changes["transformers"]["from"] == "4.34.0" and changes["transformers"]["to"] == "!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0"
    assert changes["deepspeed"]["action"] == "install" and "XTUNER-HIDDEN-DEEPSPEED-IMPORT" in changes["deepspeed"]["reason"]
    assert "torch" not in changes
    assert "xtuner==0.1.20" in plan["requirements"] and "torch==2.1.2+cu121" in plan["requirements"]


def test_the_huggingface_path_on_several_gpus_needs_0120_for_the_padding(pins):
    path = pins("xtuner==0.1.17", "transformers==4.34.0", "torch==2.1.2+cu121", "flash-attn==2.5.8")
    run = ("--fact", "run.gpus=2", "--fact", "train.framework=huggingface", "--fact", "run.batch_length_multiple_of_gpus=false")
    xtuner = _changes(fix_json("-r", path, "--python-version", "3.10", *(INTERNLM2 + run)))["xtuner"]
    assert xtuner["to"] == "0.1.20"
    assert "0.1.18 (trips XTUNER-POSITION-IDS-SP-PADDING)" in xtuner["reason"], xtuner["reason"]


def test_unknown_run_facts_give_the_nearest_target_with_its_doubts_named(pins):
    path = pins("xtuner==0.1.17", "transformers==4.34.0", "torch==2.1.2+cu121")
    plan = fix_json("-r", path, "--python-version", "3.10", *INTERNLM2)
    xtuner = _changes(plan)["xtuner"]
    # With the GPU count unknown, 0.1.18 may pad position_ids (torch 2.1.2 is past its dispatch
    # gate); 0.1.19 patches the asserting forward only with flash-attn, which is not pinned here.
    assert xtuner["to"] == "0.1.19"
    assert "0.1.18 (may trip XTUNER-POSITION-IDS-SP-PADDING" in xtuner["reason"] and "run.gpus" in xtuner["reason"]


def test_single_gpu_run_takes_the_nearer_018(pins):
    path = pins("xtuner==0.1.17", "transformers==4.40.0")
    plan = fix_json("-r", path, "--python-version", "3.10", "--fact", "run.gpus=1", *INTERNLM2)
    changes = _changes(plan)
    assert changes["xtuner"]["to"] == "0.1.18"
    assert "transformers" not in changes  # 4.40.0 already satisfies 0.1.18's range


def test_latest_takes_the_newest_release(pins):
    path = pins("xtuner==0.1.17", "transformers==4.40.0")
    plan = fix_json("-r", path, "--python-version", "3.10", "--latest", "--fact", "run.gpus=1",
                    "--fact", "train.sequence_parallel_size=1", *INTERNLM2)
    changes = _changes(plan)
    assert changes["xtuner"]["to"] == "0.2.0"
    assert changes["transformers"]["to"] == "4.48.0"  # 0.2.0 pins it


def test_nothing_to_do_when_no_error(pins):
    path = pins("xtuner==0.1.20", "transformers==4.40.0", "deepspeed==0.14.4")
    plan = fix_json("-r", path, "--python-version", "3.10", *INTERNLM2)
    assert plan["status"] == "nothing-to-do" and plan["changes"] == []
    done = envdoctor("fix", "-r", path, "--python-version", "3.10", *INTERNLM2)
    assert done.returncode == 0 and "nothing to do" in done.stdout


def test_torch_stays_fixed_unless_allowed(pins, tmp_path):
    # Test records make every xtuner but 0.1.15 unusable here, and 0.1.15 declares torch<=2.1.2.
    kb = tmp_path / "kb" / "records"
    kb.mkdir(parents=True)
    (kb / "t.toml").write_text(RECORD % ("TEST-NO-NEWER-XTUNER", "0.1.16", "internlm2"))
    (kb / "old.toml").write_text((RECORD % ("TEST-XTUNER-OLD-BAD", "0.1.0", "internlm2")).replace(
        'introduced = "0.1.0"', 'introduced = "0.1.0"\nfixed = "0.1.15"'))
    path = pins("xtuner==0.1.17", "transformers==4.40.0", "torch==2.4.1+cu121")
    args = ("-r", path, "--python-version", "3.10", "--kb", str(tmp_path / "kb"), "--fact", "run.gpus=1") + INTERNLM2
    plan = fix_json(*args, code=1)
    assert plan["status"] == "no-plan"
    assert any("allow-change torch" in n for n in plan["needs"])
    rejected = {r["version"]: r["reasons"] for r in plan["rejected"] if r["package"] == "xtuner"}
    assert any("torch<=2.1.2" in reason for reason in rejected["0.1.15"])
    allowed = fix_json(*args, "--allow-change", "torch")
    changes = _changes(allowed)
    assert changes["xtuner"]["to"] == "0.1.15"
    assert changes["torch"]["action"] == "downgrade" and changes["torch"]["to"] == "<=2.1.2"


RECORD = """\
id = "%s"
summary = "test record: these xtuner releases fail with this model"
severity = "error"
details = "A record of the test's own knowledge base."
[[affected]]
package = "xtuner"
introduced = "%s"
[when]
"model.type" = "%s"
[remedy]
summary = "use an older release"
[[references]]
url = "https://example.org/test"
"""


def test_no_plan_on_python_311_names_the_base_image(pins, tmp_path):
    # Every release that clears the error declares Python < 3.11, except 0.2.0, which the test's
    # own record rules out; and releases before the bug are ruled out too.
    kb = tmp_path / "kb" / "records"
    kb.mkdir(parents=True)
    (kb / "new.toml").write_text(RECORD % ("TEST-XTUNER-02-BAD", "0.2.0rc0", "internlm2"))
    (kb / "old.toml").write_text((RECORD % ("TEST-XTUNER-OLD-BAD", "0.1.0", "internlm2")).replace(
        'introduced = "0.1.0"', 'introduced = "0.1.0"\nfixed = "0.1.16"'))
    path = pins("xtuner==0.1.17", "transformers==4.40.0", "torch==2.1.2+cu121")
    args = ("-r", path, "--python-version", "3.11", "--kb", str(tmp_path / "kb"), "--fact", "run.gpus=1") + INTERNLM2
    done = envdoctor("fix", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "No plan works in this environment" in done.stdout
    assert "use a Python 3.10 base image" in done.stdout
    assert "needs Python >=3.8, <3.11 (this is 3.11)" in done.stdout
    lock = tmp_path / "never.lock"
    assert envdoctor("fix", *args, "--write-lock", str(lock)).returncode == 1 and not lock.exists()
    # Allowed to change Python, the same plan goes through.
    plan = fix_json(*args, "--allow-change", "python")
    changes = _changes(plan)
    assert changes["python"]["to"] == "3.10" and changes["xtuner"]["to"] == "0.1.18"


def test_print_requirements_is_a_requirements_in(pins):
    path = pins("xtuner[deepspeed]==0.1.17", "transformers==4.34.0", "torch==2.1.2+cu121")
    done = envdoctor("fix", "-r", path, "--python-version", "3.10", "--print-requirements", "--fact", "run.gpus=1", *INTERNLM2)
    assert done.returncode == 0
    lines = [l for l in done.stdout.splitlines() if l and not l.startswith("#")]
    # <5.0.0: transformers 5 switches PyTorch off below torch 2.2 (TRANSFORMERS-5-TORCH-BELOW-22).
    assert lines == ["torch==2.1.2+cu121", "transformers!=4.38.0,!=4.38.1,!=4.38.2,>=4.36.0,<5.0.0", "xtuner[deepspeed]==0.1.18"]


def test_plan_for_an_installed_venv(venvs):
    python = pyenv_python("3.10")
    if python is None:
        pytest.skip("no Python 3.10 here")
    venv = venvs("xtuner==0.1.17", "transformers==4.36.2", "torch==2.1.2+cu121", python=python)
    plan = fix_json("--python", venv.python, "--fact", "run.gpus=8", "--fact", "run.launcher=deepspeed", *INTERNLM2)
    changes = _changes(plan)
    assert changes["xtuner"]["from"] == "0.1.17" and changes["xtuner"]["to"] == "0.1.18"
    assert plan["requirements"] == ["torch==2.1.2+cu121", "transformers==4.36.2", "xtuner==0.1.18"]


@pytest.mark.parametrize("args,needle", [
    (["--verify"], "only with --write-lock"),
    (["--offline", "--write-lock", "x.txt"], "cannot be combined"),
    (["--fact", "model.type"], "expected KEY=VALUE"),
    (["--python", "/nonexistent/python"], "/nonexistent/python: no such file"),
])
def test_fix_usage_errors(args, needle):
    done = envdoctor("fix", *args)
    assert done.returncode == 2 and needle in done.stderr and "Traceback" not in done.stderr


def test_an_error_no_package_clears_gives_exit_1_with_the_partial_plan(pins):
    # An NVIDIA driver below CUDA 12's floor: the host must change; xtuner can still be fixed.
    path = pins("xtuner==0.1.17", "transformers==4.40.0", "torch==2.1.2+cu121")
    plan = fix_json("-r", path, "--python-version", "3.10", "--driver", "470.57.02", "--fact", "run.gpus=1", *INTERNLM2, code=1)
    assert plan["status"] == "no-plan"
    assert plan["unresolved"] == ["CUDA-DRIVER-TOO-OLD"]
    assert any(n.startswith("CUDA-DRIVER-TOO-OLD: ") for n in plan["needs"])
    assert _changes(plan)["xtuner"]["to"] == "0.1.18"
    # Near miss: a driver new enough leaves a plain plan.
    assert fix_json("-r", path, "--python-version", "3.10", "--driver", "535.104.05", "--fact", "run.gpus=1", *INTERNLM2)["status"] == "plan"


def test_an_upgrade_across_0122_follows_the_models_remote_code(pins):
    # XTuner 0.1.22 rewrote its InternLM2 dispatch for the June-2024 remote code (with flash-attn).
    path = pins("xtuner==0.1.17", "transformers==4.40.0", "flash-attn==2.5.8")
    args = ("-r", path, "--python-version", "3.10", "--latest", "--fact", "run.gpus=1",
            "--fact", "train.sequence_parallel_size=1") + INTERNLM2
    old = _changes(fix_json(*args, "--fact", "model.remote_code=internlm2-tuple-cache"))
    assert old["xtuner"]["to"] == "0.1.21"
    assert "0.1.22 (trips XTUNER-INTERNLM2-OLD-REMOTE-CODE" in old["xtuner"]["reason"]
    new = fix_json(*args, "--fact", "model.remote_code=internlm2-cache-class")
    assert "XTUNER-INTERNLM2-NEW-REMOTE-CODE" in new["errors"]
    assert _changes(new)["xtuner"]["to"] == "0.2.0"
    unknown = _changes(fix_json(*args))
    assert unknown["xtuner"]["to"] == "0.1.21"  # unknown remote code: 0.1.22+ may trip the old-code record
