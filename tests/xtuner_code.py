"""The files of an XTuner release, reduced to the lines the knowledge base reads.

Each release's wheel in the tests carries, at the real paths, the lines that the records'
`[[code]]` checks look for, as they stand in that release's tag (github.com/InternLM/xtuner;
scripts/verify_code_checks.py checks the records' strings against every tag). Not copies of the
upstream files: only the marker lines, so a record's code evidence is tested against what a
real install holds, and a source install is a wheel whose version and code disagree.
"""

from typing import Dict

from packaging.version import Version

DISPATCH = "xtuner/model/modules/dispatch/"
COLLATE_OLD = "xtuner/dataset/collate_fns/defalut_collate_fn.py"  # sic, up to 0.1.17
COLLATE_NEW = "xtuner/dataset/collate_fns/default_collate_fn.py"  # from 0.1.18
SP_SETUP = "xtuner/parallel/sequence/setup_distributed.py"
MOE = "xtuner/utils/handle_moe_load_and_save.py"
ZERO = "xtuner/utils/zero_to_any_dtype.py"

ASSERTION = "    assert position_ids is not None and (position_ids.max() + 1) >= kv_seq_len\n"


def _llama(v: Version) -> str:
    if v < Version("0.1.14"):
        return ("        kv_seq_len += past_key_value[0].shape[-2]\n"
                "    cos, sin = self.rotary_emb(value_states, seq_len=kv_seq_len)\n")
    if v < Version("0.1.16"):
        return ("        kv_seq_len += past_key_value.get_usable_length(kv_seq_len,\n"
                "    cos, sin = self.rotary_emb(value_states, seq_len=kv_seq_len)\n")
    if v < Version("0.2.0rc0"):
        return ("    cos, sin = self.rotary_emb(value_states, position_ids)\n"
                "        kv_seq_len += past_key_value.get_usable_length(kv_seq_len,\n"
                "        cos, sin = self.rotary_emb(value_states, seq_len=kv_seq_len)\n")
    return "def llama_attn_forward(\n"


def _internlm2(v: Version) -> str:
    if v >= Version("0.1.22"):
        return "from transformers.cache_utils import Cache, StaticCache\n"
    if v >= Version("0.1.16"):
        return "    # This modification is necessary for sequential parallel\n" + ASSERTION
    return "    cos, sin = self.rotary_emb(value_states, seq_len=kv_seq_len)\n"


def _qwen2(v: Version) -> str:
    if v < Version("0.2.0rc0"):
        return "        attn_output = self._flash_attention_forward(\n"
    return "        attn_output = _flash_attention_forward(\n"


def _collate(v: Version) -> Dict[str, str]:
    if v < Version("0.1.16"):
        return {COLLATE_OLD: "        'attention_mask': input_ids.ne(pad_index),\n"}
    if v < Version("0.1.18"):  # 0.1.16 also cuts the batch for sequence parallelism here
        return {COLLATE_OLD: ("        attention_mask = input_ids.ne(pad_index)\n"
                              "        position_ids = attention_mask.long().cumsum(-1) - 1\n"
                              "    input_ids, labels, position_ids = split_for_sequence_parallel(\n")}
    return {COLLATE_NEW: ("        attention_mask = torch.zeros_like(input_ids).bool()\n"
                          "        position_ids = torch.arange(seq_len).unsqueeze(0).long().repeat(bs, 1)\n")}


def _sp_setup(v: Version) -> str:
    if v < Version("0.1.20"):
        return "    if not dist.is_initialized():\n        _SEQUENCE_PARALLEL_WORLD_SIZE = 1\n"
    return "    if not dist.is_initialized() or (_SEQUENCE_PARALLEL_GROUP is None):\n        _SEQUENCE_PARALLEL_WORLD_SIZE = 1\n"


def _moe(v: Version) -> str:
    imports = ("from transformers.utils import (SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME,\n"
               "                                is_safetensors_available)\n")
    if v < Version("0.2.0rc0"):
        return "import re\n\nimport deepspeed\nimport torch\n" + imports
    return imports + "            if is_deepspeed_zero3_enabled():\n                import deepspeed\n"


def _zero(v: Version) -> str:
    if v < Version("0.2.0"):
        return "        state_dict = torch.load(file, map_location=device)\n"
    return "        state_dict = torch.load(file, map_location=device, weights_only=False)\n"


def xtuner_files(code_of: str) -> Dict[str, str]:
    """The marker files of the XTuner release ``code_of`` (e.g. "0.1.17")."""
    v = Version(code_of)
    files = {"xtuner/__init__.py": "__version__ = %r\n" % code_of}
    if v >= Version("0.1.11"):
        files[DISPATCH + "llama.py"] = _llama(v)
    if v >= Version("0.1.12"):
        files[DISPATCH + "internlm2.py"] = _internlm2(v)
    if v >= Version("0.1.18"):
        files[DISPATCH + "qwen2.py"] = _qwen2(v)
    files.update(_collate(v))
    if v >= Version("0.1.16"):
        files[SP_SETUP] = _sp_setup(v)
    if v >= Version("0.1.20"):
        files[MOE] = _moe(v)
        files[ZERO] = _zero(v)
    return files
