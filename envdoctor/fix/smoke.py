"""The smoke level of --verify: a short CPU run of the locked stack in its throwaway venv.

"imports" is not "works": torch 2.1 imports beside numpy 2 and then fails at the first
``torch.from_numpy``. The script below runs what a fine-tuning step runs, on a tiny randomly
initialised model and with no GPU: a tensor to and from numpy, a forward and backward step
through transformers (with a LoRA adapter through peft where peft is locked), and XTuner's
collate function feeding that step where XTuner is locked. It prints one JSON line.
"""

import json
from typing import List, NamedTuple, Optional

# Runs inside the throwaway venv (never in envdoctor's own process). Each step is named so
# the report can say which one failed; a step whose package is not locked is skipped.
SCRIPT = r'''
import json, sys, traceback
steps, failed, skipped = [], None, []

def step(name, fn):
    global failed
    if failed:
        return
    try:
        fn()
        steps.append(name)
    except BaseException as exc:
        last = (str(exc).strip().splitlines() or [""])[0]
        failed = {"step": name, "error": "%s: %s" % (type(exc).__name__, last[:300])}

def have(name):
    import importlib.util
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:
        return False

state = {}

def numpy_round_trip():
    import numpy, torch
    array = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    tensor = torch.from_numpy(array)
    assert tensor.numpy().sum() == 15.0

def tiny_model():
    import torch, transformers
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    state["model"] = transformers.LlamaForCausalLM(config)

def lora():
    import peft
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    state["model"] = peft.get_peft_model(state["model"], config)

def batch_plain():
    import torch
    ids = torch.randint(0, 64, (2, 8))
    state["batch"] = {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}

def xtuner_collate():
    from xtuner.dataset.collate_fns import default_collate_fn
    samples = [{"input_ids": [1, 5, 7, 9], "labels": [-100, 5, 7, 9]}, {"input_ids": [1, 3, 4], "labels": [-100, 3, 4]}]
    data = default_collate_fn(samples)["data"]
    state["batch"] = {k: data[k] for k in ("input_ids", "labels", "attention_mask", "position_ids") if k in data}

def forward_backward():
    out = state["model"](**state["batch"])
    out.loss.backward()
    assert out.loss.item() == out.loss.item()  # not NaN

step("numpy round trip", numpy_round_trip)
if have("transformers"):
    step("tiny model", tiny_model)
    if have("peft"):
        step("LoRA adapter (peft)", lora)
    else:
        skipped.append("peft")
    if have("xtuner"):
        step("XTuner collate", xtuner_collate)
    else:
        skipped.append("xtuner")
        step("batch", batch_plain)
    step("forward and backward", forward_backward)
else:
    skipped.append("transformers")
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "steps": steps, "failed": failed, "skipped": skipped}))
'''


class SmokeResult(NamedTuple):
    passed: bool
    steps: List[str]
    failed: str  # "" or "<step>: <error>"
    skipped: List[str]  # packages not locked, so not exercised


def parse(stdout: str, stderr: str = "", error: str = "") -> SmokeResult:
    """The script's last JSON line; anything else (a crash, a kill) is a failure in words."""
    answer: Optional[dict] = None
    for line in reversed(stdout.strip().splitlines()):
        try:
            answer = json.loads(line)
            break
        except ValueError:
            continue
    if not isinstance(answer, dict) or "steps" not in answer:
        tail = [l for l in stderr.strip().splitlines() if l.strip()]
        return SmokeResult(False, [], "the smoke run gave no answer (%s)" % (error or (tail[-1][:200] if tail else "no output")), [])
    failed = answer.get("failed") or None
    words = "%s: %s" % (failed.get("step"), failed.get("error")) if isinstance(failed, dict) else ""
    return SmokeResult(not words, list(answer.get("steps") or []), words, list(answer.get("skipped") or []))
