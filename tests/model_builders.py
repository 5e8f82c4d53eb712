"""Model folders, hub caches and XTuner configs for tests, in the shapes the real ones have
(config.json keys of internlm/internlm2-chat-1_8b, the hub cache's models--ORG--NAME layout,
XTuner's configs/internlm2 files). Written here, not copied from upstream."""

import hashlib
import json
import os
import time
from typing import Dict, Optional

# The two generations of InternLM2 remote code, reduced to what tells them apart.
OLD_REMOTE_CODE = '''\
import torch
from torch import nn


class InternLM2RotaryEmbedding(nn.Module):
    def forward(self, x, seq_len=None):
        if seq_len > self.max_seq_len_cached:
            self._set_cos_sin_cache(seq_len=seq_len, device=x.device, dtype=x.dtype)
        return self.cos_cached[:seq_len], self.sin_cached[:seq_len]


class InternLM2Attention(nn.Module):
    def forward(self, hidden_states, position_ids=None, past_key_value=None):
        kv_seq_len = hidden_states.shape[-2]
        if past_key_value is not None:
            kv_seq_len += past_key_value[0].shape[-2]
        cos, sin = self.rotary_emb(hidden_states, seq_len=kv_seq_len)
        return cos, sin
'''

NEW_REMOTE_CODE = '''\
import torch
from torch import nn
from transformers.cache_utils import Cache, DynamicCache, StaticCache


class InternLM2RotaryEmbedding(nn.Module):
    def forward(self, x, position_ids):
        return x, position_ids


class InternLM2Attention(nn.Module):
    def forward(self, hidden_states, position_ids=None, past_key_value=None, cache_position=None):
        value_states = hidden_states
        cos, sin = self.rotary_emb(value_states, position_ids)
        return cos, sin
'''

OTHER_REMOTE_CODE = '''\
from torch import nn


class QWenAttention(nn.Module):
    def forward(self, hidden_states):
        return hidden_states
'''

REMOTE_CODE = {"old": OLD_REMOTE_CODE, "new": NEW_REMOTE_CODE, "other": OTHER_REMOTE_CODE}


def internlm2_config(**changes) -> dict:
    config = {
        "architectures": ["InternLM2ForCausalLM"],
        "attn_implementation": "eager",
        "auto_map": {
            "AutoConfig": "configuration_internlm2.InternLM2Config",
            "AutoModel": "modeling_internlm2.InternLM2ForCausalLM",
            "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM",
        },
        "bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "max_position_embeddings": 32768,
        "model_type": "internlm2",
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "num_key_value_heads": 8,
        "pad_token_id": 2,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 2.0, "type": "dynamic"},
        "rope_theta": 1000000,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.41.0",
        "use_cache": True,
        "vocab_size": 92544,
    }
    for key, value in changes.items():
        if value is _DROP:
            config.pop(key, None)
        else:
            config[key] = value
    return config


_DROP = object()
DROP = _DROP  # internlm2_config(auto_map=DROP) leaves the key out


def model_files(remote: Optional[str] = "new", **changes) -> Dict[str, str]:
    """The files of a model folder: config.json and, unless remote is None, the modeling file."""
    config = internlm2_config(**changes) if remote is not None else internlm2_config(auto_map=DROP, **changes)
    files = {"config.json": json.dumps(config, indent=2)}
    if remote is not None:
        files["modeling_internlm2.py"] = REMOTE_CODE.get(remote, remote)
    return files


def make_model_folder(folder: str, remote: Optional[str] = "new", files: Optional[Dict[str, str]] = None, **changes) -> str:
    os.makedirs(folder, exist_ok=True)
    for name, text in (files if files is not None else model_files(remote, **changes)).items():
        with open(os.path.join(folder, name), "w") as handle:
            handle.write(text)
    return folder


def make_hub_cache(hub: str, repo_id: str, snapshots: Dict[str, Dict[str, str]], main: Optional[str] = None) -> str:
    """huggingface_hub's layout: blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/<sha256>,
    refs/main holding a commit. Snapshots are dated in the order given (the last is newest)."""
    repo = os.path.join(hub, "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    now = time.time()
    for i, (commit, files) in enumerate(snapshots.items()):
        folder = os.path.join(repo, "snapshots", commit)
        os.makedirs(folder, exist_ok=True)
        for name, text in files.items():
            digest = hashlib.sha256(text.encode()).hexdigest()
            blob = os.path.join(repo, "blobs", digest)
            with open(blob, "w") as handle:
                handle.write(text)
            os.symlink(os.path.join("..", "..", "blobs", digest), os.path.join(folder, name))
        stamp = now - 1000 + i * 100
        os.utime(folder, (stamp, stamp))
    if main is not None:
        os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
        with open(os.path.join(repo, "refs", "main"), "w") as handle:
            handle.write(main)
    return repo


def xtuner_config(model: str = "internlm/internlm2-chat-1_8b", use_varlen_attn: bool = False, max_length: int = 2048,
                  pack_to_max_length: bool = True, sequence_parallel_size: int = 1, quantization: Optional[str] = "4bit",
                  lora: bool = True, extra: str = "", torch_dtype: str = "torch.float16") -> str:
    """An XTuner config shaped like configs/internlm/internlm2_chat_1_8b/*_qlora_alpaca_e3.py."""
    quant = ""
    if quantization is not None:
        quant = """
        quantization_config=dict(
            type=BitsAndBytesConfig,
            load_in_4bit=%s,
            load_in_8bit=%s,
            llm_int8_threshold=6.0,
            bnb_4bit_compute_dtype=torch.float16,
            bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type='nf4'),""" % (quantization == "4bit", quantization == "8bit")
    lora_text = """
    lora=dict(
        type=LoraConfig,
        r=64,
        lora_alpha=16,
        lora_dropout=0.1,
        bias='none',
        task_type='CAUSAL_LM'),""" if lora else ""
    return '''\
# Copyright (c) OpenMMLab. All rights reserved.
import torch
from datasets import load_dataset
from mmengine.dataset import DefaultSampler
from mmengine.hooks import (CheckpointHook, DistSamplerSeedHook, IterTimerHook,
                            LoggerHook, ParamSchedulerHook)
from mmengine.optim import AmpOptimWrapper, CosineAnnealingLR, LinearLR
from peft import LoraConfig
from torch.optim import AdamW
from transformers import (AutoModelForCausalLM, AutoTokenizer,
                          BitsAndBytesConfig)

from xtuner.dataset import process_hf_dataset
from xtuner.dataset.collate_fns import default_collate_fn
from xtuner.dataset.map_fns import alpaca_map_fn, template_map_fn_factory
from xtuner.engine.hooks import DatasetInfoHook, EvaluateChatHook
from xtuner.model import SupervisedFinetune
from xtuner.utils import PROMPT_TEMPLATE, SYSTEM_TEMPLATE

#######################################################################
#                          PART 1  Settings                           #
#######################################################################
pretrained_model_name_or_path = %(model)r
use_varlen_attn = %(varlen)r

alpaca_en_path = 'tatsu-lab/alpaca'
prompt_template = PROMPT_TEMPLATE.internlm2_chat
max_length = %(max_length)r
pack_to_max_length = %(pack)r

sequence_parallel_size = %(sp)r

batch_size = 1  # per_device
accumulative_counts = 16
accumulative_counts *= sequence_parallel_size
dataloader_num_workers = 0
max_epochs = 3
optim_type = AdamW
lr = 2e-4
betas = (0.9, 0.999)

evaluation_freq = 500
SYSTEM = SYSTEM_TEMPLATE.alpaca
evaluation_inputs = ['Please tell me five scenic spots in Shanghai']
%(extra)s
#######################################################################
#                      PART 2  Model & Tokenizer                      #
#######################################################################
tokenizer = dict(
    type=AutoTokenizer.from_pretrained,
    pretrained_model_name_or_path=pretrained_model_name_or_path,
    trust_remote_code=True,
    padding_side='right')

model = dict(
    type=SupervisedFinetune,
    use_varlen_attn=use_varlen_attn,
    llm=dict(
        type=AutoModelForCausalLM.from_pretrained,
        pretrained_model_name_or_path=pretrained_model_name_or_path,
        trust_remote_code=True,
        torch_dtype=%(dtype)s,%(quant)s
    ),%(lora)s
)

alpaca_en = dict(
    type=process_hf_dataset,
    dataset=dict(type=load_dataset, path=alpaca_en_path),
    tokenizer=tokenizer,
    max_length=max_length,
    dataset_map_fn=alpaca_map_fn,
    template_map_fn=dict(
        type=template_map_fn_factory, template=prompt_template),
    remove_unused_columns=True,
    shuffle_before_pack=True,
    pack_to_max_length=pack_to_max_length,
    use_varlen_attn=use_varlen_attn)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=dataloader_num_workers,
    dataset=alpaca_en,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=default_collate_fn, use_varlen_attn=use_varlen_attn))
''' % {"model": model, "varlen": use_varlen_attn, "max_length": max_length, "pack": pack_to_max_length,
       "sp": sequence_parallel_size, "extra": extra, "quant": quant, "lora": lora_text,
       "dtype": torch_dtype}


def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    return path
