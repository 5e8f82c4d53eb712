"""XTUNER-STATIC-CACHE-TRANSFORMERS-438: XTuner's InternLM2 attention dispatch with this transformers.

XTuner loads its InternLM2 forwards (xtuner/model/modules/dispatch/internlm2.py) only where it
swaps in flash attention, i.e. with flash-attn installed, which a CPU machine cannot have: the
script sets the dispatch module's own SUPPORT_FLASH2 flag, the one thing flash-attn changes on this
path, then runs XTuner's dispatch_modules on a tiny model whose classes carry InternLM2's names.
Prints the versions, then the dispatch's outcome (the error's first line).
"""
import types
from importlib import metadata

from torch import nn

for name in ("xtuner", "transformers", "torch"):
    print(name, metadata.version(name))


class InternLM2FlashAttention2(nn.Module):
    def forward(self, hidden_states, **kwargs):
        return hidden_states, None, None


class InternLM2ForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = types.SimpleNamespace(rope_theta=10000, use_cache=False)
        self.attention = InternLM2FlashAttention2()


import xtuner.model.modules.dispatch as dispatch  # noqa: E402

print("import xtuner.model: ok")
dispatch.SUPPORT_FLASH2 = True  # stands in for flash-attn being installed (see above)
model = InternLM2ForCausalLM()
try:
    dispatch.dispatch_modules(model)
    print("dispatch InternLM2 attention: ok, forward from %s" % model.attention.forward.__func__.__module__)
except Exception as exc:  # what a user sees
    print("dispatch InternLM2 attention: %s: %s" % (type(exc).__name__, str(exc).splitlines()[0]))
