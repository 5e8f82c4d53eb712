"""The InternLM2 remote-code pairings: one XTuner release with one generation of InternLM2's
modeling code (the model folder's configuration_internlm2.py and modeling_internlm2.py).

The remote code lives on the model hub, which a reproduction does not reach: the maintainer names
a folder holding those two files in INTERNLM2_REMOTE_CODE (from a downloaded model, or the copies
XTuner ships: xtuner 0.2.0's xtuner/_lite/modelings/internlm2 for the June-2024 generation, xtuner
0.1.23's xtuner/tools/model_converters/modeling_internlm2_reward for the one before). Nothing of
it is kept in the repository. Without it the script says so and stops (the run is inconclusive).

Then, on CPU, a tiny randomly initialised InternLM2ForCausalLM of that code (eager attention):
XTuner's SupervisedFinetune (its dispatch, as `xtuner train` does), one training step through
default_collate_fn and compute_loss, then a short generation with the cache on (what XTuner's
EvaluateChatHook does before training). One line per step: ok, or the error's first line.
"""
import hashlib
import os
import shutil
import sys
import tempfile
import traceback
from importlib import metadata

import torch


def step(name, run):
    try:
        run()
        print("%s: ok" % name)
        return True
    except Exception as exc:  # what a user sees
        where = traceback.extract_tb(sys.exc_info()[2])[-1]
        print("%s: %s: %s (in %s)" % (name, type(exc).__name__, (str(exc).splitlines() or [""])[0][:200],
                                       os.path.basename(where.filename)))
        return False


def main():
    torch.set_num_threads(1)
    for name in ("xtuner", "transformers", "torch"):
        print(name, metadata.version(name))
    folder = os.environ.get("INTERNLM2_REMOTE_CODE", "")
    files = ("configuration_internlm2.py", "modeling_internlm2.py")
    if not folder or not all(os.path.isfile(os.path.join(folder, f)) for f in files):
        print("no remote code: set INTERNLM2_REMOTE_CODE to a folder holding %s" % " and ".join(files))
        return
    with open(os.path.join(folder, files[1]), "rb") as handle:
        text = handle.read()
    generation = ("June 2024 (rotary forward(x, position_ids))" if b"def forward(self, x, position_ids)" in text
                  else "before June 2024 (rotary forward(x, seq_len))")
    print("remote code: %s, modeling_internlm2.py sha256 %s" % (generation, hashlib.sha256(text).hexdigest()[:16]))

    work = tempfile.mkdtemp()
    # transformers copies trust_remote_code modules here; read when transformers is imported.
    os.environ["HF_MODULES_CACHE"] = os.path.join(work, "modules")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        package = os.path.join(work, "internlm2_remote")
        os.mkdir(package)
        open(os.path.join(package, "__init__.py"), "w").close()
        for f in files:
            shutil.copy(os.path.join(folder, f), package)
        sys.path.insert(0, work)
        run(folder, os.path.join(work, "model"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(remote, model_dir):
    found = {}

    def load():
        from internlm2_remote import configuration_internlm2, modeling_internlm2

        found["config"], found["modeling"] = configuration_internlm2, modeling_internlm2

    if not step("import the remote code", load):
        return
    # A model folder as a user has one: config.json naming the remote code, the code, the weights.
    config = found["config"].InternLM2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=128, attn_implementation="eager", rope_theta=10000)
    config.auto_map = {"AutoConfig": "configuration_internlm2.InternLM2Config",
                       "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"}
    torch.manual_seed(0)
    found["modeling"].InternLM2ForCausalLM(config).save_pretrained(model_dir)
    for f in ("configuration_internlm2.py", "modeling_internlm2.py"):
        shutil.copy(os.path.join(remote, f), model_dir)

    def build():
        from mmengine.config import ConfigDict
        from transformers import AutoModelForCausalLM
        from xtuner.model import SupervisedFinetune
        # As XTuner's configs give it: a config dict that SupervisedFinetune builds (and dispatches).
        llm = ConfigDict(type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path=model_dir,
                         trust_remote_code=True)
        found["model"] = SupervisedFinetune(llm=llm, use_activation_checkpointing=False)

    if not step("xtuner build and dispatch (SupervisedFinetune)", build):
        return
    model = found["model"]
    llm = model.llm
    print("xtuner replaced: attention %s, rotary embedding %s" % (
        "yes" if getattr(llm.model.layers[0].attention.forward, "__module__", "").startswith("xtuner") else "no",
        "yes" if type(llm.model.layers[0].attention.rotary_emb).__module__.startswith("xtuner") else "no"))

    def train():
        from xtuner.dataset.collate_fns import default_collate_fn

        ids = torch.randint(1, 64, (12,), generator=torch.Generator().manual_seed(1)).tolist()
        data = default_collate_fn([{"input_ids": ids, "labels": list(ids)}])["data"]
        loss = model.compute_loss(data)["loss"]
        loss.backward()

    step("train step (collate, compute_loss, backward)", train)

    def generate():
        llm.eval()
        with torch.no_grad():
            llm.generate(input_ids=torch.tensor([[1, 5, 6, 7]]), max_new_tokens=3, do_sample=False, use_cache=True,
                         pad_token_id=0, eos_token_id=2)

    step("generate with the cache (EvaluateChatHook)", generate)


if __name__ == "__main__":
    main()
