"""The facts vocabulary: every fact a record's `when` may name, and what kind of value it holds.

docs/facts.md explains each fact; this is the same list in a form the loader can check
(a test keeps the two in step). A record naming a fact outside it could never be decided:
it would stay "possible" for ever, so the loader rejects it.
"""

from typing import Dict, Optional

VERSION = "version"  # compared with specifiers (">=4.36,<4.38") or below/above/at_least
NUMBER = "number"  # a number or dotted number (gpu.capability "8.0"): below/above/at_least, equality
INT = "int"
FLOAT = "float"
BOOL = "bool"
STR = "str"

FACTS: Dict[str, str] = {
    "python": VERSION,
    "python.implementation": STR,
    "python.executable": STR,
    "platform.system": STR,
    "platform.machine": STR,
    "torch.version": VERSION,
    "torch.cuda": VERSION,
    "torch.cpu_build": BOOL,
    "torch.declared.python_ok": BOOL,
    "cuda.driver": VERSION,
    "cuda.driver.source": STR,
    "cuda.driver.toolkit_floor": VERSION,
    "cuda.driver.family_floor": VERSION,
    "cuda.driver.meets_toolkit": BOOL,
    "cuda.driver.meets_family": BOOL,
    "gpu.count": INT,
    "gpu.name": STR,
    "gpu.capability": NUMBER,
    "gpu.memory_mib": INT,
    "nvcc": VERSION,
    "flash_attn.undefined_torch_symbols": INT,
    "xtuner.declared.release": VERSION,
    "xtuner.declared.python_ok": BOOL,
    "xtuner.declared.requirements_ok": BOOL,
    "xtuner.internlm2_attention_patched": BOOL,
    "model.path": STR,
    "model.revision": STR,
    "model.type": STR,
    "model.architectures": STR,
    "model.max_position_embeddings": INT,
    "model.rope_scaling": STR,
    "model.rope_theta": FLOAT,
    "model.torch_dtype": STR,
    "model.attn_implementation": STR,
    "model.transformers_version": VERSION,
    "model.remote_code": STR,
    "model.remote_code.sha256": STR,
    "model.rope_scaled": BOOL,
    "train.config": STR,
    "train.use_varlen_attn": BOOL,
    "train.pack_to_max_length": BOOL,
    "train.lora": BOOL,
    "train.sequence_parallel_size": INT,
    "train.max_length": INT,
    "train.batch_size": INT,
    "train.accumulative_counts": INT,
    "train.evaluation_freq": INT,
    "train.dataloader_num_workers": INT,
    "train.prompt_template": STR,
    "train.torch_dtype": STR,
    "train.pretrained_model_name_or_path": STR,
    "train.framework": STR,
    "train.quantization": STR,
    "train.max_length_beyond_positions": BOOL,
    "run.torch_dtype": STR,
    "run.gpus": INT,
    "run.launcher": STR,
    "run.batch_length_multiple_of_gpus": BOOL,
}

# Families of facts named by a pattern (docs/facts.md writes them with <...>).
PATTERNS = (
    ("pkg.<canonical-name>", VERSION),
    ("code.<file>:<text>", BOOL),
    ("code.<file>", BOOL),
    ("<key>.why", STR),
)


def fact_type(key: str) -> Optional[str]:
    """The kind of value ``key`` holds, or None when no source gathers such a fact."""
    known = FACTS.get(key)
    if known:
        return known
    if key.startswith("pkg.") and len(key) > 4:
        return VERSION
    if key.startswith("code.") and len(key) > 5:
        return BOOL
    if key.endswith(".why") and FACTS.get(key[:-4]) == BOOL:
        return STR
    return None


def is_version_key(key: str) -> bool:
    return fact_type(key) == VERSION
