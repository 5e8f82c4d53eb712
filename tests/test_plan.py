"""envdoctor fix: the plan, from pins (-r) and from real venvs, run as a subprocess."""

import json

import pytest

from builders import envdoctor, pyenv_python

INTERNLM2 = ("--fact", "model.type=internlm2", "--fact", "train.use_varlen_attn=false")


def fix_json(*args, code=0):
    done = envdoctor("fix", "--no-resolve", "--format", "json", *args)
    assert code is None or done.returncode == code, done.stdout + done.stderr
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
    assert "XTUNER-SP-GLOBAL-GROUP-TRAINER" in xtuner["clears"]  # 0.1.17 cuts every sample on this path


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
    done = envdoctor("fix", "--no-resolve", "-r", path, "--python-version", "3.10", *INTERNLM2)
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
    done = envdoctor("fix", "--no-resolve", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "No plan works in this environment" in done.stdout
    assert "use a Python 3.10 base image" in done.stdout
    assert "needs Python >=3.8, <3.11 (this is 3.11)" in done.stdout
    lock = tmp_path / "never.lock"
    assert envdoctor("fix", "--no-resolve", *args, "--write-lock", str(lock)).returncode == 1 and not lock.exists()
    # `> requirements.in` gets nothing on no plan; the reasons go to stderr.
    printed = envdoctor("fix", "--no-resolve", *args, "--print-requirements")
    assert printed.returncode == 1 and printed.stdout == ""
    assert "use a Python 3.10 base image" in printed.stderr
    # Allowed to change Python, the same plan goes through.
    plan = fix_json(*args, "--allow-change", "python")
    changes = _changes(plan)
    assert changes["python"]["to"] == "3.10" and changes["xtuner"]["to"] == "0.1.18"


def test_print_requirements_is_a_requirements_in(pins):
    path = pins("xtuner[deepspeed]==0.1.17", "transformers==4.34.0", "torch==2.1.2+cu121")
    done = envdoctor("fix", "--no-resolve", "-r", path, "--python-version", "3.10", "--print-requirements", "--fact", "run.gpus=1", *INTERNLM2)
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
    done = envdoctor("fix", "--no-resolve", *args)
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


def test_the_seed_case_plans_from_xtuners_defaults_and_says_what_it_assumed(venvs, tmp_path):
    """A real XTuner 0.1.17 venv and an InternLM2 model folder, no config: use_varlen_attn is
    XTuner's default (False), so the position_ids assertion is likely and fix plans for it."""
    from model_builders import make_model_folder

    python = pyenv_python("3.10")
    if python is None:
        pytest.skip("no Python 3.10 interpreter under pyenv on this machine")
    venv = venvs("xtuner==0.1.17", "transformers==4.36.2", "torch==2.1.2+cu121", python=python)
    model = make_model_folder(str(tmp_path / "internlm2"), remote="old")
    plan = fix_json("--python", venv.python, "--model", model)
    assert plan["status"] == "plan"
    assert plan["assumed"]["XTUNER-POSITION-IDS-COLLATE"] == ["train.use_varlen_attn = false (XTuner's default)"]
    target = _changes(plan)["xtuner"]["to"]
    assert tuple(map(int, target.split("."))) >= (0, 1, 18)
    text = envdoctor("fix", "--no-resolve", "--python", venv.python, "--model", model).stdout
    assert "assuming train.use_varlen_attn = false (XTuner's default); pass --config FILE" in text
    # Eight GPUs under torchrun: 0.1.18 and 0.1.19 are passed over for 0.1.20 or later.
    multi = fix_json("--python", venv.python, "--model", model, "--gpus", "8", "--launcher", "torchrun")
    assert tuple(map(int, _changes(multi)["xtuner"]["to"].split("."))) >= (0, 1, 20)
    # Near miss: the config says use_varlen_attn = True (with flash-attn missing that is its own
    # error), so the collate record is no longer assumed.
    confirmed = fix_json("--python", venv.python, "--model", model, "--fact", "train.use_varlen_attn=true", code=None)
    assert "XTUNER-POSITION-IDS-COLLATE" not in confirmed["assumed"]


def _folder_without(wheelhouse, tmp_path, *missing):
    """A copy of the test wheelhouse lacking the named wheel files."""
    import os
    import shutil

    folder = tmp_path / "links"
    folder.mkdir()
    for name in os.listdir(wheelhouse):
        if not any(name.startswith(m) for m in missing):
            shutil.copy(os.path.join(wheelhouse, name), str(folder / name))
    return str(folder)


def test_a_plan_is_checked_by_a_real_resolver_before_it_is_shown(pins, wheelhouse):
    path = pins("xtuner==0.1.17", "transformers==4.36.2", "torch==2.1.2+cu121")
    args = ("-r", path, "--python-version", "3.10", "--fact", "run.gpus=1", *INTERNLM2)
    done = envdoctor("fix", "--format", "json", *args, "--no-index", "--find-links", wheelhouse)
    plan = json.loads(done.stdout)
    assert done.returncode == 0 and _changes(plan)["xtuner"]["to"] == "0.1.18"
    assert plan["checked"] == "resolves with uv for Python 3.10 on x86_64-manylinux_2_28 (3 pins)"
    # --no-resolve says the plan was not checked.
    assert fix_json(*args)["checked"] == "not checked with a resolver (--no-resolve)"


def test_a_plan_that_does_not_resolve_is_passed_over_for_the_next(pins, wheelhouse, tmp_path):
    # The index lacks xtuner 0.1.18: the nearest release that clears the error cannot install,
    # so the plan takes 0.1.19 and says why 0.1.18 was passed over.
    links = _folder_without(wheelhouse, tmp_path, "xtuner-0.1.18-")
    path = pins("xtuner==0.1.17", "transformers==4.36.2", "torch==2.1.2+cu121", "flash-attn==2.5.8")
    done = envdoctor("fix", "--format", "json", "-r", path, "--python-version", "3.10", "--fact", "run.gpus=1",
                     "--fact", "train.sequence_parallel_size=1", *INTERNLM2, "--no-index", "--find-links", links)
    plan = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    xtuner = _changes(plan)["xtuner"]
    assert xtuner["to"] == "0.1.19"
    assert "0.1.18 (does not install for Python 3.10: no release xtuner 0.1.18 is available from the index)" in xtuner["reason"]



FULL_0123 = ("xtuner==0.1.23", "transformers==4.42.4", "torch==2.3.1", "torchvision==0.18.1", "peft==0.12.0", "mmengine==0.10.4",
             "bitsandbytes==0.43.1", "datasets==2.20.0", "deepspeed==0.14.4", "accelerate==0.32.1")


def test_the_full_0123_stack_on_311_moves_to_020_with_its_extra(pins):
    # 0.1.23 declares Python < 3.11; 0.2.0 allows 3.11 and pins deepspeed==0.16.2 in its deepspeed
    # extra: the installed deepspeed moves with it instead of ruling 0.2.0 out.
    plan = fix_json("-r", pins(*FULL_0123), "--python-version", "3.11")
    changes = _changes(plan)
    assert changes["xtuner"]["to"] == "0.2.0" and changes["deepspeed"]["to"] == "0.16.2"
    assert changes["transformers"]["to"] == "4.48.0" and "torch" not in changes


def test_the_full_0123_stack_on_313_names_the_base_image_or_moves_python(pins):
    path = pins(*FULL_0123)
    no_plan = fix_json("-r", path, "--python-version", "3.13", code=1)
    assert any(n.startswith("use a Python 3.12 base image; then: xtuner 0.1.23 -> 0.2.0") for n in no_plan["needs"])
    moved = _changes(fix_json("-r", path, "--python-version", "3.13", "--allow-change", "python"))
    assert moved["python"]["to"] == "3.12" and moved["xtuner"]["to"] == "0.2.0"


def test_no_far_downgrade_of_xtuner_unless_allowed(pins, tmp_path):
    # A test record breaks every 0.2.x and 0.1.2x release with this model; only a downgrade to
    # an older line or far back (0.1.19) would clear it.
    kb = tmp_path / "kb" / "records"
    kb.mkdir(parents=True)
    (kb / "bad.toml").write_text(RECORD % ("TEST-XTUNER-RECENT-BAD", "0.1.20", "internlm2"))
    path = pins("xtuner==0.2.0", "transformers==4.48.0")
    args = ("-r", path, "--python-version", "3.10", "--kb", str(tmp_path / "kb"), "--fact", "run.gpus=1") + INTERNLM2
    refused = fix_json(*args, code=1)
    assert refused["status"] == "no-plan"
    allowed = _changes(fix_json(*args, "--allow-downgrade"))
    assert allowed["xtuner"]["action"] == "downgrade"
    assert tuple(map(int, allowed["xtuner"]["to"].split("."))) < (0, 1, 20)


def test_a_kept_pin_that_conflicts_with_the_plan_moves_with_it(pins, wheelhouse, tmp_path):
    # torch 2.1.2 has no Python 3.12 build; --allow-change torch moves it, and torchvision 0.16.2,
    # built for torch 2.1.2, would keep the set from installing: the resolver moves it too.
    from builders import make_wheel, torch_version_py

    links = _folder_without(wheelhouse, tmp_path)
    make_wheel(links, "torch", "2.1.2", [], ">=3.8", files={"torch/version.py": torch_version_py("2.1.2", "12.1")})
    make_wheel(links, "torch", "2.6.0", [], ">=3.9", files={"torch/version.py": torch_version_py("2.6.0", "12.4")})
    make_wheel(links, "torchvision", "0.16.2", ["torch==2.1.2"], ">=3.8")
    make_wheel(links, "torchvision", "0.21.0", ["torch==2.6.0"], ">=3.9")
    path = pins("torch==2.1.2", "torchvision==0.16.2", "transformers==4.40.0")
    done = envdoctor("fix", "--format", "json", "-r", path, "--python-version", "3.12", "--allow-change", "torch",
                     "--no-index", "--find-links", links)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    changes = _changes(plan)
    assert changes["torch"]["to"] == "2.6.0"
    assert changes["torchvision"]["from"] == "0.16.2" and changes["torchvision"]["to"] == "0.21.0"
    assert changes["torchvision"]["reason"].startswith("moved with the plan")
    assert "torchvision==0.21.0" in plan["requirements"] and "transformers==4.40.0" in plan["requirements"]


def test_a_config_naming_an_uncached_hub_model_is_reported_by_fix_as_by_check(pins, tmp_path):
    # The config names a hub model that is not in the (empty) local cache: check says it could
    # not read it, and fix, which runs the same check, says the same in text, JSON and --offline.
    config = tmp_path / "cfg.py"
    config.write_text("pretrained_model_name_or_path = 'internlm/internlm2-chat-7b'\nuse_varlen_attn = False\n")
    env = {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": ""}
    args = ("-r", pins("xtuner==0.1.23", "transformers==4.42.4", "torch==2.1.2+cu121"), "--python-version", "3.10",
            "--config", str(config))
    checked = envdoctor("check", *args, env=env)
    line = next(l for l in checked.stdout.splitlines() if "internlm/internlm2-chat-7b: not in the Hugging Face cache" in l and "[!]" in l)
    fixed = envdoctor("fix", "--no-resolve", *args, env=env)
    assert fixed.returncode in (0, 1), fixed.stderr
    assert "Could not read\n" + line + "\n" in fixed.stdout
    offline = envdoctor("fix", "--offline", *args, env=env)
    assert "Could not read\n" + line + "\n" in offline.stdout
    problems = json.loads(envdoctor("fix", "--no-resolve", "--format", "json", *args, env=env).stdout)["problems"]
    assert [(p["source"], p["fatal"]) for p in problems] == [("model", False)] and line.endswith(problems[0]["message"])
    # Near miss: the model given as a folder is read, and fix reports nothing unread.
    from model_builders import make_model_folder

    model = make_model_folder(str(tmp_path / "internlm2"), remote="old")
    assert json.loads(envdoctor("fix", "--no-resolve", "--format", "json", *args, "--model", model, env=env).stdout)["problems"] == []


BEFORE_0123 = RECORD.replace('introduced = "%s"', 'introduced = "%s"\nfixed = "0.1.23"')
# The records on transformers 5 left out: the API history alone must decide.
NO_T5_RECORD = {"ENVDOCTOR_EXCLUDE_RECORDS": "XTUNER-TRANSFORMERS-5,TRANSFORMERS-5-TORCH-BELOW-22,TRANSFORMERS-5-HUB-2-RUNTIME-CHECK,"
                                             "PEFT-HYBRID-CACHE-TRANSFORMERS-5"}


def test_the_api_history_rules_out_a_candidate_whose_imports_fail(pins, tmp_path):
    # A test record asks for xtuner >= 0.1.23; transformers 5.0.0 stays pinned. xtuner 0.1.23
    # imports is_safetensors_available from transformers.utils, which 5.0.0 no longer has (the
    # shipped API history, with the record that says so left out): 0.1.23 is passed over.
    kb = tmp_path / "kb" / "records"
    kb.mkdir(parents=True)
    (kb / "t.toml").write_text(BEFORE_0123 % ("TEST-XTUNER-BEFORE-0123", "0.1.0", "internlm2"))
    path = pins("xtuner==0.1.21", "transformers==5.0.0", "torch==2.4.1", "deepspeed==0.14.4", "accelerate==0.32.1")
    args = ("-r", path, "--python-version", "3.10", "--kb", str(tmp_path / "kb"), "--fact", "run.gpus=1") + INTERNLM2
    done = envdoctor("fix", "--no-resolve", "--format", "json", *args, env=NO_T5_RECORD)
    plan = json.loads(done.stdout)
    changes = _changes(plan)
    assert changes["xtuner"]["to"] != "0.1.23" and changes["transformers"]["to"] != "5.0.0", done.stdout
    rejected = {r["version"]: r["reasons"] for r in plan["rejected"] if r["package"] == "xtuner"}
    assert rejected["0.1.23"] == ["xtuner 0.1.23 imports from transformers 5.0.0, which fails (API history): "
                                  "cannot import name 'is_safetensors_available' from 'transformers.utils'"]
    # Near miss: with the history's check off, nothing else stands in the way of 0.1.23.
    off = json.loads(envdoctor("fix", "--no-resolve", "--format", "json", *args, env=dict(NO_T5_RECORD, ENVDOCTOR_IMPORT_CHECK="0")).stdout)
    assert _changes(off)["xtuner"]["to"] == "0.1.23" and "transformers" not in _changes(off)


def test_the_resolver_is_held_to_the_api_historys_bounds(pins, wheelhouse, tmp_path):
    # The plan moves xtuner to 0.1.20 and leaves transformers open (>=4.36.0,!=4.38.*); the index
    # has transformers 5.0.0, which uv would pick and with which 0.1.20's imports fail: the
    # history's bound transformers<5.0.0 goes to uv as a constraint, and into the plan.
    from builders import make_wheel

    links = _folder_without(wheelhouse, tmp_path)
    make_wheel(links, "transformers", "5.0.0", [], ">=3.9")
    make_wheel(links, "deepspeed", "0.14.4", [], ">=3.8")  # 0.1.20 imports it without declaring it
    path = pins("xtuner==0.1.17", "transformers==4.34.0", "torch==2.1.2+cu121", "flash-attn==2.5.8")
    run = ("--fact", "run.gpus=2", "--fact", "train.framework=huggingface", "--fact", "run.batch_length_multiple_of_gpus=false")
    args = ("fix", "--format", "json", "-r", path, "--python-version", "3.10") + INTERNLM2 + run + ("--no-index", "--find-links", links)
    done = envdoctor(*args, env=NO_T5_RECORD)
    plan = json.loads(done.stdout)
    assert done.returncode == 0 and _changes(plan)["xtuner"]["to"] == "0.1.20", done.stdout + done.stderr
    assert "transformers<5.0.0" in plan["constraints"]
    assert plan["checked"].endswith("held to the API history's transformers<5.0.0"), plan["checked"]
    # Near miss: without the history, uv's pick (5.0.0) stands and no such bound is added.
    off = json.loads(envdoctor(*args, env=dict(NO_T5_RECORD, ENVDOCTOR_IMPORT_CHECK="0")).stdout)
    assert "transformers<5.0.0" not in off["constraints"] and "API history" not in off["checked"]


def test_a_release_that_lacks_a_template_the_config_uses_is_never_proposed(pins, tmp_path):
    # The full 0.1.23 stack on Python 3.11: 0.1.12-0.1.23 declare Python < 3.11 and a test record
    # rules out 0.2.0, so only a far downgrade is left. The InternLM2 config reads
    # PROMPT_TEMPLATE.internlm2_chat, which XTuner defines from 0.1.12 on (the API history):
    # 0.1.11 and older are passed over, and the no-plan output names what they lack.
    from model_builders import xtuner_config

    kb = tmp_path / "kb" / "records"
    kb.mkdir(parents=True)
    (kb / "new.toml").write_text(RECORD % ("TEST-XTUNER-02-BAD", "0.2.0rc0", "internlm2"))
    config = tmp_path / "internlm2_chat_qlora.py"
    config.write_text(xtuner_config())
    args = ("-r", pins(*FULL_0123), "--python-version", "3.11", "--kb", str(tmp_path / "kb"), "--allow-downgrade",
            "--fact", "model.type=internlm2", "--fact", "run.gpus=1")
    done = envdoctor("fix", "--no-resolve", *args, "--config", str(config))
    assert done.returncode == 1 and "No plan works in this environment" in done.stdout, done.stdout + done.stderr
    assert ("  xtuner 0.1.11: xtuner 0.1.11 lacks PROMPT_TEMPLATE.internlm2_chat (from xtuner.utils), which "
            "internlm2_chat_qlora.py uses (line 27); it is in xtuner 0.1.12 to 0.2.0") in done.stdout
    # Near miss: a config that reads a template 0.1.11 has (internlm_chat) gets 0.1.11.
    config.write_text(xtuner_config().replace("PROMPT_TEMPLATE.internlm2_chat", "PROMPT_TEMPLATE.internlm_chat"))
    plan = json.loads(envdoctor("fix", "--no-resolve", "--format", "json", *args, "--config", str(config)).stdout)
    assert _changes(plan)["xtuner"]["to"] == "0.1.11"


def test_a_bound_comes_from_a_record_that_fires_not_from_one_that_only_may(pins):
    # torch 2.4.1 without a local label: its CUDA build is unknown, so the bitsandbytes record
    # for CUDA 12.8 only may fire; its bound (>=0.45.3) would overrule xtuner 0.2.0's own
    # bitsandbytes==0.45.0 and no set would resolve. Near miss: told CUDA 12.8, the bound holds.
    args = ("-r", pins("xtuner==0.2.0", "torch==2.4.1"), "--python-version", "3.11")
    assert "bitsandbytes>=0.45.3" not in fix_json(*args)["constraints"]
    assert "bitsandbytes>=0.45.3" in fix_json(*args, "--fact", "torch.cuda=12.8")["constraints"]


def test_an_unpinned_package_that_would_trip_a_record_is_bounded_for_the_resolver(pins, wheelhouse, tmp_path):
    # torch 2.1.2 is built against NumPy 1 (TORCH-NUMPY-2); numpy is not pinned, and datasets
    # brings it in: uv would pick numpy 2.0.0 and every candidate would trip the record. The plan
    # holds numpy below 2 instead, and the set resolves with numpy 1.26.4.
    from builders import make_wheel

    links = _folder_without(wheelhouse, tmp_path)
    make_wheel(links, "datasets", "2.18.0", ["numpy>=1.17"], ">=3.8")
    make_wheel(links, "numpy", "1.26.4", [], ">=3.9")
    make_wheel(links, "numpy", "2.0.0", [], ">=3.9")
    path = pins("xtuner==0.1.17", "transformers==4.36.2", "torch==2.1.2+cu121", "datasets==2.18.0")
    args = ("fix", "--format", "json", "-r", path, "--python-version", "3.10", "--fact", "run.gpus=1") + INTERNLM2
    done = envdoctor(*args, "--no-index", "--find-links", links)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    assert plan["status"] == "plan" and _changes(plan)["xtuner"]["to"] == "0.1.18"
    assert "numpy<2.0.0" in plan["constraints"] and plan["checked"].startswith("resolves with uv"), plan["checked"]
    # The requirements.in it prints carries the bound for numpy, which the set holds (datasets
    # brings it in), so compiling it never picks numpy 2; a bound on a package not in the set stays out.
    printed = envdoctor(*args, "--print-requirements", "--no-index", "--find-links", links)
    lines = [l for l in printed.stdout.splitlines() if l and not l.startswith("#")]
    assert printed.returncode == 0 and "numpy<2.0.0" in lines, printed.stdout + printed.stderr
    assert [l for l in lines if l.startswith("peft")] == [] and "peft<0.14.0" in plan["constraints"], plan["constraints"]
    # Near miss: torch 2.4.1 runs with NumPy 2, so numpy is left to the resolver.
    newer = fix_json("-r", pins("xtuner==0.1.17", "transformers==4.36.2", "torch==2.4.1+cu124", "datasets==2.18.0"),
                     "--python-version", "3.10", "--fact", "run.gpus=1", *INTERNLM2)
    assert not any(c.startswith("numpy") for c in newer["constraints"])


def test_a_config_the_installed_release_cannot_load_is_an_error_fix_clears(pins, tmp_path):
    # XTuner 0.1.9 has no PROMPT_TEMPLATE.internlm2_chat (the API history: 0.1.12 on), which the
    # InternLM2 config reads: the config cannot load, so there is something to do, and the plan
    # takes the nearest release that has it (the model's remote code is the old one: 0.1.12 runs it).
    from model_builders import xtuner_config

    config = tmp_path / "internlm2_chat_qlora.py"
    config.write_text(xtuner_config())
    args = ("-r", pins("xtuner==0.1.9", "transformers==4.34.0", "torch==2.1.2+cu121", "bitsandbytes==0.43.1"), "--python-version", "3.10",
            "--fact", "run.gpus=1", "--fact", "model.remote_code=internlm2-tuple-cache", "--config", str(config))
    plan = fix_json(*args)
    assert plan["status"] == "plan" and "CONFIG-USES-MISSING" in plan["errors"], plan
    xtuner = _changes(plan)["xtuner"]
    assert xtuner["to"] == "0.1.12" and "CONFIG-USES-MISSING" in xtuner["clears"]
    assert "0.1.11 (xtuner 0.1.11 lacks PROMPT_TEMPLATE.internlm2_chat" in xtuner["reason"]
    # peft is not pinned: beside transformers 4.34 peft >= 0.14 fails to import (PEFT-ENCODER-DECODER-CACHE),
    # so it is held below 0.14, not sent past 0.18.0 (a closed range of another record) to 0.18.1.
    assert "peft<0.14.0" in plan["constraints"] and not any(c.startswith("peft>=") for c in plan["constraints"]), plan["constraints"]
    text = envdoctor("fix", "--no-resolve", *args).stdout
    assert "0.1.9 -> 0.1.12\n            clears: CONFIG-USES-MISSING\n" in text, text
    # Near miss: a config reading a template 0.1.9 has leaves nothing to do.
    config.write_text(xtuner_config().replace("PROMPT_TEMPLATE.internlm2_chat", "PROMPT_TEMPLATE.internlm_chat"))
    assert fix_json(*args)["status"] == "nothing-to-do"


def test_nothing_to_do_prints_the_bounds_on_what_the_pins_bring_in(pins):
    # Nothing to do for these pins, but transformers brings numpy in (its declared requirements,
    # from the API history) and torch 2.1.2 cannot use NumPy 2: the printed requirements.in holds
    # numpy below 2, so compiling it does not pick numpy 2. A bound on a package nothing brings in stays out.
    args = ("fix", "--no-resolve", "--python-version", "3.10", "--print-requirements", "--fact", "run.gpus=1") + INTERNLM2
    done = envdoctor(*args, "-r", pins("xtuner==0.1.20", "transformers==4.40.0", "torch==2.1.2+cu121", "deepspeed==0.14.4"))
    lines = [l for l in done.stdout.splitlines() if l and not l.startswith("#")]
    assert done.returncode == 0 and "numpy<2.0.0" in lines, done.stdout + done.stderr
    assert not any(l.startswith("trl") for l in lines)
    # Near miss: torch 2.4.1 runs with NumPy 2: no numpy line.
    newer = envdoctor(*args, "-r", pins("xtuner==0.1.20", "transformers==4.40.0", "torch==2.4.1+cu124", "deepspeed==0.14.4"))
    assert newer.returncode == 0 and not any(l.startswith("numpy") for l in newer.stdout.splitlines()), newer.stdout
