"""--model: a model folder or a hub id in the local cache, read without importing anything."""

import hashlib
import json
import os

import pytest

from builders import check_json, envdoctor
from model_builders import DROP, NEW_REMOTE_CODE, OLD_REMOTE_CODE, make_hub_cache, make_model_folder, model_files, write

from envdoctor.sources import model as model_source

COMMIT_OLD = "a" * 40
COMMIT_NEW = "b" * 40
COMMIT_MAIN = "c" * 40


def _bad(args, env=None):
    """Run check --format json on bad input: exit 2, one line on stderr, no traceback."""
    done = envdoctor("check", "--format", "json", *args, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0], json.loads(done.stdout)


# ---------------------------------------------------------------- a local folder


def test_local_folder_facts_as_named_in_the_vocabulary(tmp_path):
    folder = make_model_folder(str(tmp_path / "internlm2-chat-1_8b"), "new")
    facts = check_json("--model", folder)["facts"]
    assert facts["model.path"] == folder
    assert facts["model.type"] == "internlm2"
    assert facts["model.architectures"] == "InternLM2ForCausalLM"
    assert facts["model.max_position_embeddings"] == 32768
    assert facts["model.rope_scaling"] == "dynamic"
    assert facts["model.rope_theta"] == 1000000.0
    assert facts["model.torch_dtype"] == "bfloat16"
    assert facts["model.attn_implementation"] == "eager"
    assert facts["model.transformers_version"] == "4.41.0"
    assert facts["model.remote_code"] == "internlm2-cache-class"
    digest = hashlib.sha256(NEW_REMOTE_CODE.encode()).hexdigest()
    assert facts["model.remote_code.sha256"] == digest


@pytest.mark.parametrize("remote,expect", [("old", "internlm2-tuple-cache"), ("new", "internlm2-cache-class"), ("other", "unknown")])
def test_remote_code_generation(tmp_path, remote, expect):
    folder = make_model_folder(str(tmp_path / remote), remote)
    gathered = model_source.gather(folder, environ={})
    assert gathered.values["model.remote_code"] == expect


def test_remote_code_with_markers_of_both_generations_is_unknown(tmp_path):
    mixed = OLD_REMOTE_CODE + "\nfrom transformers.cache_utils import DynamicCache\n"
    folder = make_model_folder(str(tmp_path / "m"), mixed)
    assert model_source.gather(folder, environ={}).values["model.remote_code"] == "unknown"


def test_no_auto_map_means_no_remote_code(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"), None, model_type="llama", architectures=["LlamaForCausalLM"])
    facts = check_json("--model", folder)["facts"]
    assert facts["model.remote_code"] is None and facts["model.remote_code.sha256"] is None
    assert facts["model.type"] == "llama"


def test_missing_keys_are_absent_and_wrong_types_unknown(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"), "new", rope_scaling=None, attn_implementation=DROP,
                               max_position_embeddings="32k")
    report = check_json("--model", folder)
    assert report["facts"]["model.rope_scaling"] is None
    assert report["facts"]["model.attn_implementation"] is None
    assert "32k" in report["unknown_facts"]["model.max_position_embeddings"]


def test_remote_code_is_never_imported(tmp_path):
    marker = tmp_path / "imported"
    code = NEW_REMOTE_CODE + "\nopen(%r, 'w').write('imported')\nraise SystemExit(3)\n" % str(marker)
    folder = make_model_folder(str(tmp_path / "m"), code)
    facts = check_json("--model", folder)["facts"]
    assert facts["model.remote_code"] == "internlm2-cache-class"
    assert not marker.exists()


def test_text_report_has_a_model_section(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"), "old")
    done = envdoctor("check", "--model", folder)
    assert done.returncode in (0, 1), done.stderr
    section = done.stdout.split("\nModel\n", 1)[1].split("\n\n", 1)[0]
    assert "internlm2-tuple-cache" in section and "32768" in section and folder in section


# ---------------------------------------------------------------- the hub cache


def _hub(tmp_path, main=COMMIT_MAIN):
    home = tmp_path / "hf-home"
    make_hub_cache(str(home / "hub"), "internlm/internlm2-chat-1_8b", {
        COMMIT_OLD: model_files("old"),
        COMMIT_MAIN: model_files("new", transformers_version="4.40.0"),
        COMMIT_NEW: model_files("new", transformers_version="4.41.2"),  # newest on disk
    }, main=main)
    return {"HF_HOME": str(home), "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": ""}


def test_hub_id_resolves_refs_main_in_hf_home(tmp_path):
    env = _hub(tmp_path)
    facts = check_json("--model", "internlm/internlm2-chat-1_8b", env=env)["facts"]
    assert facts["model.revision"] == COMMIT_MAIN
    assert facts["model.transformers_version"] == "4.40.0"
    assert facts["model.path"].endswith(os.path.join("snapshots", COMMIT_MAIN))


def test_hub_id_without_refs_takes_the_newest_snapshot(tmp_path):
    env = _hub(tmp_path, main=None)
    facts = check_json("--model", "internlm/internlm2-chat-1_8b", env=env)["facts"]
    assert facts["model.revision"] == COMMIT_NEW
    assert facts["model.transformers_version"] == "4.41.2"


def test_revision_picks_a_snapshot(tmp_path):
    env = _hub(tmp_path)
    facts = check_json("--model", "internlm/internlm2-chat-1_8b", "--revision", COMMIT_OLD, env=env)["facts"]
    assert facts["model.revision"] == COMMIT_OLD
    assert facts["model.remote_code"] == "internlm2-tuple-cache"


def test_hf_hub_cache_wins_over_hf_home(tmp_path):
    env = _hub(tmp_path)
    env["HF_HUB_CACHE"] = str(tmp_path / "hf-home" / "hub")
    env["HF_HOME"] = str(tmp_path / "elsewhere")
    facts = check_json("--model", "internlm/internlm2-chat-1_8b", env=env)["facts"]
    assert facts["model.type"] == "internlm2"


def test_hub_cache_default_location():
    assert model_source.hub_cache({}) == os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub")
    assert model_source.hub_cache({"XDG_CACHE_HOME": "/x"}) == "/x/huggingface/hub"
    assert model_source.hub_cache({"HF_HOME": "/h"}) == "/h/hub"
    assert model_source.hub_cache({"HF_HOME": "/h", "HF_HUB_CACHE": "/c"}) == "/c"


# ---------------------------------------------------------------- bad input


def test_hub_id_not_in_the_cache(tmp_path):
    env = {"HF_HOME": str(tmp_path / "empty"), "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": ""}
    line, report = _bad(["--model", "internlm/internlm2-chat-7b"], env=env)
    assert "internlm/internlm2-chat-7b: not in the Hugging Face cache" in line
    assert "models--internlm--internlm2-chat-7b" in line
    assert report["unknown_facts"]["model.type"].startswith("internlm/internlm2-chat-7b")


def test_revision_not_in_the_cache(tmp_path):
    env = _hub(tmp_path)
    line, _ = _bad(["--model", "internlm/internlm2-chat-1_8b", "--revision", "v9"], env=env)
    assert "revision 'v9' is not in the cache" in line


def test_no_such_folder(tmp_path):
    line, _ = _bad(["--model", str(tmp_path / "nowhere")])
    assert "nowhere: no such folder" in line


@pytest.mark.parametrize("content,expect", [
    ("{\n  \"model_type\": \"internlm2\",\n  \"hidden_size\" 2048\n}\n", "config.json:3: not valid JSON"),
    ("[\"InternLM2ForCausalLM\"]", "not a JSON object (found an array)"),
    ("{\n  \"model_type\": \"internlm2\",\n  \"archi", "config.json:3: not valid JSON: Unterminated string"),
    ("{\n  \"model_type\": \"internlm2\",\n", "(truncated?)"),
    ("", "config.json:1: not valid JSON"),
])
def test_config_json_not_json_not_object_truncated(tmp_path, content, expect):
    folder = make_model_folder(str(tmp_path / "m"), files={"config.json": content})
    line, _ = _bad(["--model", folder])
    assert os.path.join(folder, "config.json") in line
    assert expect in line


def test_config_json_of_200_mb_is_refused_unread(tmp_path):
    folder = str(tmp_path / "m")
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: instant, no disk used
    line, _ = _bad(["--model", folder])
    assert "config.json: too large (200 MiB; envdoctor reads at most 16 MiB)" in line


def test_config_json_not_utf8(tmp_path):
    folder = str(tmp_path / "m")
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "wb") as handle:
        handle.write(b'{"model_type": "\xff\xfe"}')
    line, _ = _bad(["--model", folder])
    assert "config.json: not UTF-8 text" in line


def test_folder_without_config_json(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"), files={"README.md": "weights only"})
    line, _ = _bad(["--model", folder])
    assert line.endswith("config.json: no such file")


def test_unreadable_config_json_a_folder_in_its_place(tmp_path):
    # Tests run as root, where chmod 000 does not stop a read; a folder does.
    folder = str(tmp_path / "m")
    os.makedirs(os.path.join(folder, "config.json"))
    line, _ = _bad(["--model", folder])
    assert "config.json: is a folder, expected a file" in line


def test_fifo_in_place_of_config_json_does_not_hang(tmp_path):
    folder = str(tmp_path / "m")
    os.makedirs(folder)
    os.mkfifo(os.path.join(folder, "config.json"))
    line, _ = _bad(["--model", folder])
    assert "config.json: not a regular file" in line


def test_symlink_loop_in_the_hub_cache(tmp_path):
    env = _hub(tmp_path)
    snapshot = tmp_path / "hf-home" / "hub" / "models--internlm--internlm2-chat-1_8b" / "snapshots" / COMMIT_MAIN
    os.remove(str(snapshot / "config.json"))
    os.symlink("config.json", str(snapshot / "config.json"))  # points at itself
    line, _ = _bad(["--model", "internlm/internlm2-chat-1_8b"], env=env)
    assert str(snapshot / "config.json") + ": symbolic link loop" in line


def test_symlink_loop_as_the_model_folder(tmp_path):
    loop = str(tmp_path / "loop")
    os.symlink(loop, loop)
    line, _ = _bad(["--model", loop])
    assert line.endswith("loop: symbolic link loop")


def test_modeling_file_with_a_syntax_error_names_file_and_line(tmp_path):
    broken = NEW_REMOTE_CODE.replace("    def forward(self, x, position_ids):", "    def forward(self, x, position_ids)", 1)
    folder = make_model_folder(str(tmp_path / "m"), broken)
    line, report = _bad(["--model", folder])
    lineno = broken.splitlines().index("    def forward(self, x, position_ids)") + 1
    assert "%s:%d: syntax error" % (os.path.join(folder, "modeling_internlm2.py"), lineno) in line
    assert "syntax error" in report["unknown_facts"]["model.remote_code"]
    assert report["facts"]["model.type"] == "internlm2"  # the rest of the model is still read


def test_missing_modeling_file_leaves_the_generation_unknown_without_failing(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"), files={"config.json": model_files("new")["config.json"]})
    report = check_json("--model", folder)
    assert "modeling_internlm2.py: no such file" in report["unknown_facts"]["model.remote_code"]
    assert report["exit_code"] in (0, 1)


def test_auto_map_into_another_repository_is_unknown(tmp_path):
    config = json.loads(model_files("new")["config.json"])
    config["auto_map"]["AutoModelForCausalLM"] = "internlm/internlm2-7b--modeling_internlm2.InternLM2ForCausalLM"
    config["auto_map"]["AutoModel"] = config["auto_map"]["AutoModelForCausalLM"]
    folder = make_model_folder(str(tmp_path / "m"), files={"config.json": json.dumps(config)})
    gathered = model_source.gather(folder, environ={})
    assert "another repository" in gathered.unknown["model.remote_code"].reason


def test_auto_map_cannot_escape_the_folder(tmp_path):
    config = json.loads(model_files("new")["config.json"])
    config["auto_map"] = {"AutoModelForCausalLM": "../../etc/passwd.X"}
    folder = make_model_folder(str(tmp_path / "m"), files={"config.json": json.dumps(config)})
    gathered = model_source.gather(folder, environ={})
    assert "not module.Class" in gathered.unknown["model.remote_code"].reason


def test_modeling_file_as_a_folder(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"), files={"config.json": model_files("new")["config.json"]})
    os.makedirs(os.path.join(folder, "modeling_internlm2.py"))
    write(os.path.join(folder, "x"), "")
    gathered = model_source.gather(folder, environ={})
    assert "is a folder" in gathered.unknown["model.remote_code"].reason


def test_text_report_says_once_why_the_model_was_not_read(tmp_path):
    folder = make_model_folder(str(tmp_path / "m"), files={"config.json": "[1, 2]"})
    done = envdoctor("check", "--model", folder)
    assert done.returncode == 2
    section = done.stdout.split("\nModel\n", 1)[1].split("\n\n", 1)[0]
    assert section.count("not a JSON object") == 1
