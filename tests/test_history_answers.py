"""explain and check -r answered from the shipped API history (knowledge/history/), no record involved."""

import json
import os
import subprocess
import sys

import pytest

from envdoctor.history.load import load_history

EXCLUDE = "XTUNER-TRANSFORMERS-5,XTUNER-HIDDEN-DEEPSPEED-IMPORT"
FRAME = '  File "/venv/lib/python3.10/site-packages/xtuner/model/modules/dispatch/llama.py", line 12, in <module>\n'


def _run(*args, env=None):
    done = subprocess.run([sys.executable, "-m", "envdoctor", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=dict(os.environ, **(env or {})))
    return done


def _explain(tmp_path, text, *args):
    log = tmp_path / "train.log"
    log.write_text(text)
    done = _run("explain", str(log), "--format", "json", *args)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def _candidates(data):
    return [c for d in data["matches"] for c in d["records"]]


@pytest.fixture(scope="module")
def history():
    h = load_history()
    if h.package("transformers") is None:
        pytest.fail("knowledge/history/transformers.json is missing: run scripts/build_history.py")
    return h


def test_removed_name_answered_with_its_releases_and_importer(tmp_path, history):
    text = ("Traceback (most recent call last):\n" + FRAME +
            "ImportError: cannot import name 'LlamaFlashAttention2' from 'transformers.models.llama.modeling_llama' "
            "(/venv/lib/python3.10/site-packages/transformers/models/llama/modeling_llama.py)\n")
    data = _explain(tmp_path, text)
    (cand,) = _candidates(data)
    assert cand["id"] == "HISTORY-NAME-LlamaFlashAttention2"
    ph = history.package("transformers")
    spans = ph.span(ph.name_ranges("transformers.models.llama.modeling_llama", "LlamaFlashAttention2"))
    assert spans and spans[-1].after is not None  # removed in an examined release
    assert cand["remedy"]["requires"] == ["transformers%s" % spans[-1].specifier()]
    assert "xtuner/model/modules/dispatch/llama.py line 12" in cand["details"]


def test_keyword_and_model_type_answers(tmp_path, history):
    text = ("TypeError: LoraConfig.__init__() got an unexpected keyword argument 'use_dora'\n"
            "ValueError: The checkpoint you are trying to load has model type `qwen3` but Transformers does not recognize this architecture.\n")
    data = _explain(tmp_path, text)
    by_id = {c["id"]: c for c in _candidates(data)}
    peft = history.package("peft")
    first_dora = peft.span(peft.keyword_ranges("peft.tuners.lora.config.LoraConfig", "use_dora"))[0]
    assert by_id["HISTORY-KEYWORD-use_dora"]["remedy"]["requires"] == ["peft>=%s" % first_dora.first]
    tf = history.package("transformers")
    first_qwen3 = tf.span(tf.model_type_ranges("qwen3"))[0]
    assert "transformers>=%s" % first_qwen3.first in by_id["HISTORY-MODEL-TYPE-qwen3"]["remedy"]["requires"][0]


def test_a_record_still_answers_first(tmp_path):
    text = "ImportError: cannot import name 'is_safetensors_available' from 'transformers.utils' (/x/transformers/utils/__init__.py)\n"
    ids = {c["id"] for c in _candidates(_explain(tmp_path, text))}
    assert ids == {"XTUNER-TRANSFORMERS-5"}


def test_lines_the_history_does_not_cover_are_left_alone(tmp_path):
    text = "ModuleNotFoundError: No module named 'my_private_helpers'\nKeyError: 'foo'\n"
    data = _explain(tmp_path, text)
    assert data["matches"] == []


STACK_PINS = ["xtuner==0.1.23", "transformers==4.42.4", "torch==2.1.2", "mmengine==0.10.4", "peft==0.11.1",
              "accelerate==0.32.1", "datasets==2.20.0", "deepspeed==0.14.4", "bitsandbytes==0.43.1"]


def _pins_check(pins, *lines, env=None):
    done = _run("check", "-r", pins(*lines), "--python-version", "3.10.13", "--format", "json", env=env)
    assert done.returncode in (0, 1), done.stderr
    return {f["id"]: f for f in json.loads(done.stdout)["findings"] if f["id"].startswith("PINS-")}


def test_pins_of_a_working_stack_have_no_import_break(pins, history):
    assert _pins_check(pins, *STACK_PINS) == {}


def test_pins_breaks_found_without_their_records(pins, history):
    env = {"ENVDOCTOR_EXCLUDE_RECORDS": EXCLUDE}
    no_deepspeed = [p for p in STACK_PINS if not p.startswith("deepspeed")]
    found = _pins_check(pins, *no_deepspeed, env=env)
    assert "PINS-IMPORT-deepspeed" in found, sorted(found)
    assert "No module named 'deepspeed'" in found["PINS-IMPORT-deepspeed"]["summary"]
    five = [p if not p.startswith("transformers") else "transformers==5.0.0" for p in STACK_PINS]
    found = _pins_check(pins, *five, env=env)
    key = "PINS-IMPORT-transformers.utils.is_safetensors_available"
    assert key in found, sorted(found)
    assert found[key]["remedy"]["requires"][0].startswith("transformers<")
