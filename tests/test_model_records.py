"""The records that read model, training-config and run facts: each fires where it should and
stays quiet on its near miss. Real venvs with real wheels, real model folders and configs,
envdoctor as a subprocess."""

import os
import stat
import sys

import pytest

from builders import check_json, finding_ids, make_wheel, pyenv_python
from model_builders import make_model_folder, write, xtuner_config

PY310 = pyenv_python("3.10") or sys.executable
ASSERTION = "(position_ids.max() + 1) >= kv_seq_len"
LAUNCH_ENV = {name: "" for name in ("WORLD_SIZE", "NPROC_PER_NODE", "NNODES", "SLURM_NTASKS", "SLURM_JOB_ID", "TORCHELASTIC_RUN_ID")}


@pytest.fixture(scope="module")
def extra_wheels(wheelhouse):
    make_wheel(wheelhouse, "bitsandbytes", "0.43.1", ["torch", "numpy"], ">=3.8")
    return wheelhouse


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "old": make_model_folder(str(root / "internlm2-old"), "old"),
        "new": make_model_folder(str(root / "internlm2-new"), "new"),
        "short": make_model_folder(str(root / "short"), "new", max_position_embeddings=4096, rope_scaling=None),
        "short-scaled": make_model_folder(str(root / "short-scaled"), "new", max_position_embeddings=4096),
        "fp16": make_model_folder(str(root / "fp16"), "new", torch_dtype="float16"),
    }


def _config(tmp_path, name="c.py", **settings):
    return write(str(tmp_path / name), xtuner_config(**settings))


def run(*args, python=None, env=None):
    full = dict(LAUNCH_ENV)
    full.update(env or {})
    if python:
        args = ("--python", python) + args
    return check_json(*args, env=full)


def fired(report):
    return finding_ids(report)


def mentioned(report):
    return finding_ids(report) | finding_ids(report, "possible")


# ---------------------------------------------------------------- position_ids (issue 2's acceptance)


def test_xtuner_0117_internlm2_non_varlen_confirms_the_collate_cause(venvs, models, tmp_path):
    venv = venvs("xtuner==0.1.17", "transformers==4.40.0", python=PY310)
    report = run("--model", models["old"], "--config", _config(tmp_path, use_varlen_attn=False), python=venv.python)
    finding = next(f for f in report["findings"] if f["id"] == "XTUNER-POSITION-IDS-COLLATE")
    assert finding["status"] == "confirmed" and finding["severity"] == "error"
    assert ASSERTION in finding["details"]
    assert "xtuner>=0.1.18" in finding["remedy"]["requires"]
    assert "model.type = internlm2" in finding["because"] and "train.use_varlen_attn = false" in finding["because"]
    assert report["exit_code"] == 1


def test_xtuner_0117_with_varlen_attn_is_not_the_collate_cause(venvs, models, tmp_path):
    venv = venvs("xtuner==0.1.17", "transformers==4.40.0", python=PY310)
    report = run("--model", models["old"], "--config", _config(tmp_path, use_varlen_attn=True), python=venv.python)
    assert "XTUNER-POSITION-IDS-COLLATE" not in mentioned(report)


def test_xtuner_0120_has_neither_position_ids_cause(venvs, models, tmp_path):
    venv = venvs("xtuner==0.1.20", "transformers==4.40.0", "torch==2.1.2+cu121")
    config = _config(tmp_path, use_varlen_attn=False, pack_to_max_length=False)
    report = run("--model", models["old"], "--config", config, "--gpus", "2", "--launcher", "torchrun", python=venv.python)
    assert not {"XTUNER-POSITION-IDS-COLLATE", "XTUNER-POSITION-IDS-SP-PADDING"} & mentioned(report)


HF = "framework = 'huggingface'\n"


@pytest.mark.parametrize("args,max_length,pack,extra,padding,global_sp", [
    # The HuggingFace-Trainer path hands the padded batch to the model unsplit.
    (("--gpus", "2", "--launcher", "torchrun"), 2048, False, HF, True, False),     # unpacked: lengths vary
    (("--gpus", "2", "--launcher", "torchrun"), 2047, True, HF, True, False),      # packed, 2047 % 2 != 0
    (("--gpus", "2", "--launcher", "deepspeed"), 2047, True, HF, True, False),     # DeepSpeed there sets up no XTuner group
    (("--gpus", "2", "--launcher", "torchrun"), 2048, True, HF, False, False),     # packed, a multiple of 2
    (("--gpus", "1", "--launcher", "none"), 2048, False, HF, False, False),        # one GPU: nothing to pad for
    # The mmengine path (the default) splits the batch first: no assertion, but SP runs globally.
    (("--gpus", "2", "--launcher", "torchrun"), 2047, True, "", False, True),
    (("--gpus", "2", "--launcher", "deepspeed"), 2047, True, "", False, False),    # DeepSpeed sets up the group
    (("--gpus", "1", "--launcher", "none"), 2047, True, "", False, False),
])
def test_xtuner_0118_padding_and_global_sequence_parallel(venvs, models, tmp_path, args, max_length, pack, extra, padding, global_sp):
    venv = venvs("xtuner==0.1.18")
    config = _config(tmp_path, max_length=max_length, pack_to_max_length=pack, extra=extra)
    report = run("--model", models["old"], "--config", config, *args, python=venv.python)
    assert ("XTUNER-POSITION-IDS-SP-PADDING" in fired(report)) is padding
    assert ("XTUNER-SP-GLOBAL-GROUP" in fired(report)) is global_sp
    assert not {"XTUNER-POSITION-IDS-SP-PADDING", "XTUNER-SP-GLOBAL-GROUP"} & finding_ids(report, "possible")


@pytest.mark.parametrize("extra,trainer,global_sp", [
    (HF, True, False),  # 0.1.17's collate cuts each sample on the Trainer path
    ("", False, True),  # the mmengine path: its own record
])
def test_xtuner_0117_cuts_samples_on_either_path(venvs, models, tmp_path, extra, trainer, global_sp):
    venv = venvs("xtuner==0.1.17", "transformers==4.40.0", python=PY310)
    config = _config(tmp_path, max_length=2048, pack_to_max_length=True, extra=extra)
    report = run("--model", models["old"], "--config", config, "--gpus", "2", "--launcher", "torchrun", python=venv.python)
    assert ("XTUNER-SP-GLOBAL-GROUP-TRAINER" in fired(report)) is trainer
    assert ("XTUNER-SP-GLOBAL-GROUP" in fired(report)) is global_sp


# ---------------------------------------------------------------- flash_attn, sequence parallel, DeepSpeed


@pytest.mark.parametrize("specs,varlen,fires", [
    (("xtuner==0.1.19",), True, True),
    (("xtuner==0.1.19", "flash-attn==2.5.8"), True, False),
    (("xtuner==0.1.19",), False, False),
])
def test_varlen_attn_needs_flash_attn(venvs, models, tmp_path, specs, varlen, fires):
    report = run("--model", models["new"], "--config", _config(tmp_path, use_varlen_attn=varlen), python=venvs(*specs).python)
    assert ("XTUNER-VARLEN-NEEDS-FLASH-ATTN" in fired(report)) is fires


@pytest.mark.parametrize("specs,sp,fires", [
    (("xtuner==0.1.19",), 2, True),
    (("xtuner==0.1.19", "flash-attn==2.5.8"), 2, False),
    (("xtuner==0.1.19",), 1, False),
])
def test_sequence_parallel_needs_flash_attn(venvs, models, tmp_path, specs, sp, fires):
    report = run("--model", models["new"], "--config", _config(tmp_path, sequence_parallel_size=sp), python=venvs(*specs).python)
    assert ("XTUNER-SP-NEEDS-FLASH-ATTN" in fired(report)) is fires


@pytest.mark.parametrize("specs,launcher,fires", [
    (("xtuner==0.1.23", "flash-attn==2.5.8"), "torchrun", True),
    (("xtuner==0.1.23", "flash-attn==2.5.8"), "deepspeed", False),
    (("xtuner==0.1.19", "flash-attn==2.5.8"), "torchrun", False),  # the check arrived in 0.1.20
])
def test_sequence_parallel_needs_deepspeed_from_0120(venvs, models, tmp_path, specs, launcher, fires):
    config = _config(tmp_path, sequence_parallel_size=2)
    report = run("--model", models["new"], "--config", config, "--launcher", launcher, python=venvs(*specs).python)
    assert ("XTUNER-SP-NEEDS-DEEPSPEED" in fired(report)) is fires


def test_sequence_parallel_without_launcher_is_possible(venvs, models, tmp_path):
    report = run("--model", models["new"], "--config", _config(tmp_path, sequence_parallel_size=2),
                 python=venvs("xtuner==0.1.23", "flash-attn==2.5.8").python)
    possible = {f["id"]: f for f in report["findings"] if f["status"] == "possible"}
    assert [u["fact"] for u in possible["XTUNER-SP-NEEDS-DEEPSPEED"]["undecided"]] == ["run.launcher"]


# ---------------------------------------------------------------- InternLM2 remote code generations


@pytest.mark.parametrize("specs,model,fires", [
    (("xtuner==0.1.23", "flash-attn==2.5.8"), "old", True),
    (("xtuner==0.1.23", "flash-attn==2.5.8"), "new", False),
    (("xtuner==0.1.23",), "old", False),  # without flash_attn XTuner patches nothing
])
def test_new_xtuner_with_old_remote_code(venvs, models, specs, model, fires):
    report = run("--model", models[model], python=venvs(*specs).python)
    assert ("XTUNER-INTERNLM2-OLD-REMOTE-CODE" in fired(report)) is fires


@pytest.mark.parametrize("specs,model,fires", [
    (("xtuner==0.1.17", "transformers==4.40.0"), "new", True),
    (("xtuner==0.1.17", "transformers==4.40.0"), "old", False),
    (("xtuner==0.1.23", "flash-attn==2.5.8"), "new", False),
])
def test_old_xtuner_with_new_remote_code(venvs, models, specs, model, fires):
    venv = venvs(*specs, python=PY310) if "xtuner==0.1.17" in specs else venvs(*specs)
    report = run("--model", models[model], python=venv.python)
    assert ("XTUNER-INTERNLM2-NEW-REMOTE-CODE" in fired(report)) is fires


@pytest.mark.parametrize("specs,model,fires", [
    (("transformers==4.36.2",), "new", True),
    (("transformers==4.36.2",), "old", False),
    (("xtuner==0.1.20", "transformers==4.40.0", "torch==2.1.2+cu121"), "new", False),
])
def test_new_remote_code_needs_transformers_438(venvs, models, specs, model, fires):
    report = run("--model", models[model], python=venvs(*specs).python)
    assert ("MODEL-INTERNLM2-REMOTE-CODE-STATICCACHE" in fired(report)) is fires


def test_remote_code_records_are_possible_until_the_model_is_known(venvs):
    report = run(python=venvs("transformers==4.36.2").python)
    possible = {f["id"]: f for f in report["findings"] if f["status"] == "possible"}
    assert possible["MODEL-INTERNLM2-REMOTE-CODE-STATICCACHE"]["undecided"][0]["fact"] == "model.remote_code"


# ---------------------------------------------------------------- max_length, QLoRA, bf16


@pytest.mark.parametrize("model,max_length,fires", [
    ("short", 8192, True),
    ("short-scaled", 8192, False),  # rope_scaling stretches the positions
    ("short", 4096, False),
])
def test_max_length_beyond_the_model(models, tmp_path, model, max_length, fires):
    # The config's own imports (xtuner, torch) are not installed in the test's interpreter; the
    # import check would rightly make that an error. Here only the model record is under test.
    report = run("--config", _config(tmp_path, model=models[model], max_length=max_length, quantization=None),
                 env={"ENVDOCTOR_IMPORT_CHECK": "0"})
    assert ("MODEL-MAX-LENGTH-BEYOND-POSITIONS" in fired(report)) is fires
    if fires:
        assert report["exit_code"] == 0  # a warning


@pytest.mark.parametrize("specs,quantization,expect", [
    (("torch==2.13.0+cpu",), "4bit", {"XTUNER-QLORA-NEEDS-BITSANDBYTES", "XTUNER-QLORA-CPU-TORCH"}),
    (("torch==2.1.2+cu121", "bitsandbytes==0.43.1"), "4bit", set()),
    (("torch==2.13.0+cpu",), None, set()),
])
def test_qlora_needs_bitsandbytes_and_a_cuda_torch(venvs, extra_wheels, models, tmp_path, specs, quantization, expect):
    config = _config(tmp_path, model=models["new"], quantization=quantization)
    report = run("--config", config, python=venvs(*specs).python)
    assert fired(report) & {"XTUNER-QLORA-NEEDS-BITSANDBYTES", "XTUNER-QLORA-CPU-TORCH"} == expect


def _fake_nvidia_smi(folder, capability):
    """A stand-in nvidia-smi on PATH that answers the query as the real one does."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "nvidia-smi")
    write(path, "#!/bin/sh\necho '535.104.05, Tesla V100-SXM2-32GB, %s, 32768'\n" % capability)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return {"PATH": folder + os.pathsep + os.environ.get("PATH", "")}


@pytest.mark.parametrize("torch_dtype,model,capability,fires", [
    ("torch.bfloat16", "new", "7.0", True),
    ("'auto'", "new", "7.5", True),        # auto: config.json's bfloat16
    ("torch.bfloat16", "new", "8.0", False),
    ("torch.float16", "new", "7.0", False),  # config.json says bfloat16, the config overrides it
    ("'auto'", "fp16", "7.0", False),
])
def test_bf16_on_a_pre_ampere_gpu(models, tmp_path, torch_dtype, model, capability, fires):
    config = _config(tmp_path, model=models[model], torch_dtype=torch_dtype, quantization=None)
    report = run("--config", config, env=_fake_nvidia_smi(str(tmp_path / "bin"), capability))
    assert report["facts"]["gpu.capability"] == capability
    assert ("MODEL-BF16-PRE-AMPERE" in fired(report)) is fires


def test_bf16_is_possible_until_the_config_is_known(models, tmp_path):
    report = run("--model", models["new"], env=_fake_nvidia_smi(str(tmp_path / "bin"), "7.0"))
    possible = {f["id"]: f for f in report["findings"] if f["status"] == "possible"}
    assert [u["fact"] for u in possible["MODEL-BF16-PRE-AMPERE"]["undecided"]] == ["run.torch_dtype"]


def test_every_record_here_has_a_test_that_names_it():
    from envdoctor.kb.load import load_file

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "knowledge", "records", "model")
    with open(__file__) as handle:
        source = handle.read()
    for name in sorted(os.listdir(folder)):
        record, error = load_file(os.path.join(folder, name))
        assert error is None and record is not None, error
        assert source.count('"%s"' % record.id) >= 1, "%s has no test in %s" % (record.id, __file__)
