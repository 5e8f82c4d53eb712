"""PEFT-ENCODER-DECODER-CACHE: does peft import, and wrap a model, with this transformers?

Prints the versions, then `import peft` and a LoRA forward on a tiny randomly initialised Llama
(no download). The symptom is the ImportError of the import step.
"""
import sys
from importlib import metadata

for name in ("peft", "transformers", "torch"):
    print(name, metadata.version(name))
try:
    import peft
except ImportError as exc:
    print("import peft: %s: %s" % (type(exc).__name__, str(exc).splitlines()[0]))
    sys.exit(0)
print("import peft: ok")

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

torch.manual_seed(0)
config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                     num_attention_heads=4, num_key_value_heads=4)
model = peft.get_peft_model(LlamaForCausalLM(config), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
ids = torch.randint(0, 64, (1, 8))
loss = model(input_ids=ids, labels=ids).loss
print("LoRA forward: ok, loss %.2f" % loss.item())
