# A stand-in for the InternLM2 remote modeling code, written for envdoctor's example.
# It is never imported or run: envdoctor reads it with `ast` to tell which generation of
# the remote code a model folder carries. This one has the shape of the code published
# from June 2024 on (transformers Cache classes; the rotary embedding takes position_ids).
# The real file is tens of kilobytes and lives with the model on the Hugging Face hub.

import torch
from torch import nn
from transformers.cache_utils import Cache, DynamicCache, StaticCache
from transformers.modeling_utils import PreTrainedModel


class InternLM2RotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000):
        super().__init__()
        self.inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))

    def forward(self, x, position_ids):
        angles = position_ids[:, :, None].float() * self.inv_freq[None, None, :]
        both = torch.cat((angles, angles), dim=-1)
        return both.cos().to(x.dtype), both.sin().to(x.dtype)


class InternLM2Attention(nn.Module):
    def __init__(self, config, layer_idx=None):
        super().__init__()
        self.layer_idx = layer_idx
        self.rotary_emb = InternLM2RotaryEmbedding(config.hidden_size // config.num_attention_heads)

    def forward(self, hidden_states, position_ids=None, past_key_value=None, cache_position=None):
        value_states = hidden_states  # projections left out of this stand-in
        cos, sin = self.rotary_emb(value_states, position_ids)
        if isinstance(past_key_value, Cache):
            past_key_value.update(value_states, value_states, self.layer_idx, {"cache_position": cache_position})
        return value_states, cos, sin


class InternLM2PreTrainedModel(PreTrainedModel):
    _supports_cache_class = True
    _supports_static_cache = True


class InternLM2ForCausalLM(InternLM2PreTrainedModel):
    def prepare_cache(self, past_key_values):
        if past_key_values is None or isinstance(past_key_values, StaticCache):
            return past_key_values
        return DynamicCache.from_legacy_cache(past_key_values)
