"""--config: XTuner configs read with ast, never executed."""

import os

import pytest

from builders import check_json, envdoctor
from model_builders import make_hub_cache, make_model_folder, model_files, write, xtuner_config

from envdoctor.sources import xtuner_config as source


def _facts(path):
    gathered = source.gather(path)
    assert not gathered.problems, gathered.problems
    return gathered.values, gathered.unknown


def _bad(args, env=None):
    done = envdoctor("check", "--format", "json", *args, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_settings_of_a_qlora_config(tmp_path):
    path = write(str(tmp_path / "internlm2_chat_1_8b_qlora_alpaca_e3.py"), xtuner_config(sequence_parallel_size=2))
    values, unknown = _facts(path)
    assert values["train.config"] == path
    assert values["train.pretrained_model_name_or_path"] == "internlm/internlm2-chat-1_8b"
    assert values["train.max_length"] == 2048
    assert values["train.pack_to_max_length"] is True
    assert values["train.use_varlen_attn"] is False
    assert values["train.sequence_parallel_size"] == 2
    assert values["train.batch_size"] == 1
    assert values["train.accumulative_counts"] == 32  # 16, then *= sequence_parallel_size
    assert values["train.evaluation_freq"] == 500
    assert values["train.dataloader_num_workers"] == 0
    assert values["train.prompt_template"] == "PROMPT_TEMPLATE.internlm2_chat"
    assert values["train.quantization"] == "4bit"
    assert values["train.lora"] is True
    assert values["train.torch_dtype"] == "float16"
    assert not unknown


@pytest.mark.parametrize("quantization,lora,expect", [("8bit", True, "8bit"), (None, False, None)])
def test_quantization_and_lora(tmp_path, quantization, lora, expect):
    path = write(str(tmp_path / "c.py"), xtuner_config(quantization=quantization, lora=lora))
    values, _ = _facts(path)
    assert values["train.quantization"] == expect
    assert values["train.lora"] is lora


def test_bitsandbytes_config_called_directly(tmp_path):
    text = xtuner_config(quantization=None, extra="") + (
        "model['llm']['quantization_config'] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4')\n")
    values, _ = _facts(write(str(tmp_path / "c.py"), text))
    assert values["train.quantization"] == "4bit"


def test_unresolved_expression_keeps_its_source_text(tmp_path):
    text = xtuner_config().replace("max_length = 2048", "max_length = int(os.environ.get('MAX_LEN', 2048))")
    values, unknown = _facts(write(str(tmp_path / "c.py"), text))
    assert "train.max_length" not in values
    assert unknown["train.max_length"].reason == "unresolved expression: int(os.environ.get('MAX_LEN', 2048))"


def test_names_bound_inside_if_blocks_are_unresolved(tmp_path):
    text = xtuner_config() + "if os.environ.get('LONG'):\n    max_length = 8192\n"
    _, unknown = _facts(write(str(tmp_path / "c.py"), text))
    assert unknown["train.max_length"].reason.startswith("unresolved expression: if os.environ.get('LONG')")


def test_defaults_when_a_config_leaves_names_out(tmp_path):
    path = write(str(tmp_path / "c.py"), "from xtuner.model import SupervisedFinetune\nmodel = dict(type=SupervisedFinetune, llm=dict())\n")
    values, _ = _facts(path)
    assert values["train.sequence_parallel_size"] == 1
    assert values["train.use_varlen_attn"] is False
    assert values["train.max_length"] is None
    assert values["train.quantization"] is None and values["train.lora"] is False
    assert values["train.framework"] == "mmengine"  # tools/train.py: cfg.get('framework', 'mmengine')


def test_framework_as_xtuner_train_reads_it(tmp_path):
    path = write(str(tmp_path / "c.py"), "framework = 'HuggingFace'\n")
    assert _facts(path)[0]["train.framework"] == "huggingface"  # .lower(), as tools/train.py does
    path = write(str(tmp_path / "d.py"), "import os\nframework = os.environ['FW']\n")
    values, unknown = _facts(path)
    assert "train.framework" not in values and "unresolved expression" in unknown["train.framework"].reason


def test_no_arithmetic_that_could_hang(tmp_path):
    path = write(str(tmp_path / "c.py"), "max_length = 10 ** 10 ** 10\nbatch_size = 'x' * 10 ** 9\n")
    _, unknown = _facts(path)
    assert unknown["train.max_length"].reason == "unresolved expression: 10 ** 10 ** 10"
    assert "unresolved expression" in unknown["train.batch_size"].reason


def test_config_that_writes_a_file_or_raises_when_executed_is_only_read(tmp_path):
    marker = tmp_path / "written"
    text = (
        "import os, subprocess\n"
        "open(%r, 'w').write('executed')\n"
        "os.system('touch %s')\n"
        "subprocess.run(['touch', %r])\n" % (str(marker), str(marker) + "2", str(marker) + "3")
        + xtuner_config(use_varlen_attn=True)
        + "raise RuntimeError('this config must never run')\n"
    )
    path = write(str(tmp_path / "evil.py"), text)
    report = check_json("--config", path, "--model", make_model_folder(str(tmp_path / "m")))
    assert report["facts"]["train.use_varlen_attn"] is True
    assert report["facts"]["train.max_length"] == 2048
    assert not [p for p in os.listdir(str(tmp_path)) if p.startswith("written")]


# ---------------------------------------------------------------- _base_


def test_base_is_merged_under_the_child(tmp_path):
    write(str(tmp_path / "base" / "qlora.py"), xtuner_config(max_length=4096))
    child = write(str(tmp_path / "child.py"), (
        "_base_ = './base/qlora.py'\n"
        "max_length = 1024\n"
        "model = dict(lora=None)\n"  # merged into the base's model dict; the llm stays
    ))
    values, _ = _facts(child)
    assert values["train.max_length"] == 1024
    assert values["train.pack_to_max_length"] is True  # from the base
    assert values["train.quantization"] == "4bit"  # the base's llm, merged
    assert values["train.lora"] is False


def test_base_list_and_delete(tmp_path):
    write(str(tmp_path / "a.py"), xtuner_config(sequence_parallel_size=4))
    write(str(tmp_path / "b.py"), "batch_size = 8\n")
    child = write(str(tmp_path / "c.py"), "_base_ = ['a.py', 'b.py']\nmodel = dict(_delete_=True, type='X', llm=dict())\n")
    values, _ = _facts(child)
    assert values["train.sequence_parallel_size"] == 4
    assert values["train.batch_size"] == 8
    assert values["train.quantization"] is None and values["train.lora"] is False


def test_base_cycle(tmp_path):
    write(str(tmp_path / "a.py"), "_base_ = 'b.py'\n")
    write(str(tmp_path / "b.py"), "_base_ = ['a.py']\n")
    line = _bad(["--config", str(tmp_path / "a.py")])
    assert "_base_ cycle: a.py -> b.py -> a.py" in line


@pytest.mark.parametrize("base,expect", [
    ("'../../nowhere/base.py'", "is out of reach"),
    ("'xtuner::internlm/internlm2_chat_1_8b/base.py'", "inside an installed package"),
    ("some_function()", "_base_ must be a path or a list of paths, got some_function()"),
])
def test_base_out_of_reach(tmp_path, base, expect):
    path = write(str(tmp_path / "c.py"), "import os\n_base_ = %s\n" % base)
    line = _bad(["--config", path])
    assert line.startswith("envdoctor: %s:2: _base_" % path) and expect in line


def test_syntax_error_names_file_and_line(tmp_path):
    text = xtuner_config().replace("max_length = 2048", "max_length = = 2048")
    path = write(str(tmp_path / "c.py"), text)
    lineno = text.splitlines().index("max_length = = 2048") + 1
    line = _bad(["--config", path])
    assert "%s:%d: syntax error" % (path, lineno) in line


def test_syntax_error_in_a_base(tmp_path):
    base = write(str(tmp_path / "base.py"), "x = (\n")
    child = write(str(tmp_path / "c.py"), "_base_ = 'base.py'\n")
    assert "%s:1: syntax error" % base in _bad(["--config", child])


@pytest.mark.parametrize("make", ["missing", "folder", "huge"])
def test_config_file_that_cannot_be_read(tmp_path, make):
    path = str(tmp_path / "c.py")
    if make == "folder":
        os.makedirs(path)
        done = envdoctor("check", "--config", path)
        assert done.returncode == 2 and "is a directory" in done.stderr  # click's usage check
        return
    if make == "huge":
        with open(path, "wb") as handle:
            handle.truncate(200 * 1024 * 1024)
    line = _bad(["--config", path])
    assert path in line and ("no such file" if make == "missing" else "too large") in line


# ---------------------------------------------------------------- the model it implies


def test_config_alone_implies_the_model_from_a_folder(tmp_path):
    folder = make_model_folder(str(tmp_path / "internlm2-chat-1_8b"), "old")
    path = write(str(tmp_path / "c.py"), xtuner_config(model=folder))
    facts = check_json("--config", path)["facts"]
    assert facts["model.path"] == folder
    assert facts["model.remote_code"] == "internlm2-tuple-cache"


def test_config_alone_implies_the_model_from_the_hub_cache(tmp_path):
    home = tmp_path / "hf"
    make_hub_cache(str(home / "hub"), "internlm/internlm2-chat-1_8b", {"d" * 40: model_files("new")}, main="d" * 40)
    path = write(str(tmp_path / "c.py"), xtuner_config())
    facts = check_json("--config", path, env={"HF_HOME": str(home), "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": ""})["facts"]
    assert facts["model.revision"] == "d" * 40
    assert facts["model.type"] == "internlm2"


def test_implied_model_missing_from_the_cache_is_not_fatal(tmp_path):
    path = write(str(tmp_path / "c.py"), xtuner_config())
    report = check_json("--config", path, env={"HF_HOME": str(tmp_path / "none"), "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": ""})
    assert report["exit_code"] in (0, 1)
    assert "not in the Hugging Face cache" in report["unknown_facts"]["model.type"]
    assert [p for p in report["problems"] if "not in the Hugging Face cache" in p["message"] and not p["fatal"]]


def test_explicit_model_wins_over_the_config(tmp_path):
    folder = make_model_folder(str(tmp_path / "mine"), "old")
    path = write(str(tmp_path / "c.py"), xtuner_config(model="internlm/not-cached"))
    facts = check_json("--config", path, "--model", folder)["facts"]
    assert facts["model.path"] == folder


def test_text_report_has_a_training_config_section(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"))
    path = write(str(tmp_path / "c.py"), xtuner_config(model=folder))
    done = envdoctor("check", "--config", path, "--gpus", "4", "--launcher", "deepspeed")
    assert done.returncode in (0, 1), done.stderr
    section = done.stdout.split("\nTraining config\n", 1)[1].split("\n\n", 1)[0]
    for text in ("PROMPT_TEMPLATE.internlm2_chat", "4bit", "2048", "deepspeed"):
        assert text in section


# ---------------------------------------------------------------- run facts


def _launch_env(**values):
    env = {name: "" for name in ("WORLD_SIZE", "NPROC_PER_NODE", "NNODES", "SLURM_NTASKS", "SLURM_JOB_ID", "TORCHELASTIC_RUN_ID")}
    env.update(values)
    return env


def test_run_facts_from_options_and_environment(tmp_path):
    facts = check_json("--gpus", "8", "--launcher", "deepspeed", env=_launch_env(WORLD_SIZE="2"))["facts"]
    assert facts["run.gpus"] == 8 and facts["run.launcher"] == "deepspeed"  # options win
    facts = check_json(env=_launch_env(NPROC_PER_NODE="4", NNODES="2"))["facts"]
    assert facts["run.gpus"] == 8 and facts["run.launcher"] == "torchrun"
    report = check_json(env=_launch_env(SLURM_NTASKS="16"))
    assert report["facts"]["run.gpus"] == 16 and report["facts"]["run.launcher"] == "slurm"
    report = check_json(env=_launch_env(WORLD_SIZE="two"))
    assert "run.gpus" in report["unknown_facts"] and "run.launcher" in report["unknown_facts"]
    assert any("WORLD_SIZE='two'" in p["message"] for p in report["problems"])


def test_bad_launcher_is_a_usage_error():
    done = envdoctor("check", "--launcher", "mpirun")
    assert done.returncode == 2 and "mpirun" in done.stderr


def test_read_base_imports_leave_what_they_may_set_unknown(tmp_path):
    write(str(tmp_path / "base.py"), xtuner_config())
    path = write(str(tmp_path / "c.py"), (
        "from mmengine.config import read_base\n"
        "with read_base():\n"
        "    from .base import *\n"
        "    from .base import max_length as base_length\n"
        "max_length = 1024\n"
        "batch_size = base_length // 512\n"
    ))
    values, unknown = _facts(path)
    assert values["train.max_length"] == 1024
    assert unknown["train.batch_size"].reason == "unresolved expression: base_length // 512"
    for key in ("train.sequence_parallel_size", "train.use_varlen_attn", "train.quantization", "train.prompt_template"):
        assert unknown[key].reason.startswith("not set in the config; it may come from from .base import * (%s:3)" % path), key


def test_what_a_config_uses_of_other_packages(tmp_path):
    # Imports that run when the file loads (also under if/try), the keys it reads of an imported
    # constant dict; not imports inside a function, relative imports, or a class's attributes.
    path = write(str(tmp_path / "c.py"), (
        "import torch.optim\n"
        "from xtuner.utils import PROMPT_TEMPLATE, SYSTEM_TEMPLATE as S\n"
        "from xtuner.model import SupervisedFinetune\n"
        "from .local import helper\n"
        "try:\n"
        "    from xtuner.engine.runner import TrainLoop\n"
        "except ImportError:\n"
        "    TrainLoop = None\n"
        "def later():\n"
        "    from xtuner.dataset import nothing_at_load\n"
        "prompt_template = PROMPT_TEMPLATE.internlm2_chat\n"
        "system = S['alpaca']\n"
        "model = dict(type=SupervisedFinetune.from_cfg)\n"))
    got = {(u.module, u.name, u.key, u.line) for u in source.uses(path)}
    assert got == {("torch.optim", "", "", 1), ("xtuner.utils", "PROMPT_TEMPLATE", "", 2), ("xtuner.utils", "SYSTEM_TEMPLATE", "", 2),
                   ("xtuner.model", "SupervisedFinetune", "", 3), ("xtuner.engine.runner", "TrainLoop", "", 6),
                   ("xtuner.utils", "PROMPT_TEMPLATE", "internlm2_chat", 11), ("xtuner.utils", "SYSTEM_TEMPLATE", "alpaca", 12)}
    assert source.uses(str(tmp_path / "missing.py")) == ()
