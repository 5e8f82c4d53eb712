"""Source: an XTuner config (a Python file), read with ``ast``, never executed.

The file's top-level assignments are folded into values by ``pyfold`` (literals, dicts,
arithmetic; an imported name stays a dotted name such as ``PROMPT_TEMPLATE.internlm2_chat``).
Here: ``_base_`` files merged the way mmengine merges them (the base first, the child's keys
over it, dicts merged key by key unless the child says ``_delete_=True``), and the facts
XTuner's training reads from the result.
"""

import ast
import os
from typing import Any, Dict, List, Optional, Tuple

from envdoctor.facts import Gathered, Problem, Unknown, Value
from envdoctor.sources._files import MIB, FileProblem, decode_text, parse_python, read_capped
from envdoctor.sources.pyfold import WILDCARD, Binding, Ref, Unresolved, fold

CONFIG_LIMIT = 1 * MIB  # real XTuner configs are 5-10 KiB; parsing is linear but not free
MAX_BASE_DEPTH = 16

INT_FACTS = ("max_length", "sequence_parallel_size", "batch_size", "accumulative_counts",
             "evaluation_freq", "dataloader_num_workers")
BOOL_FACTS = ("use_varlen_attn", "pack_to_max_length")
# XTuner's own defaults when a config leaves the name out (tools/train.py reads
# sequence_parallel_size with default 1; SupervisedFinetune's use_varlen_attn defaults to False).
DEFAULTS = {"sequence_parallel_size": 1, "use_varlen_attn": False}
KEYS = tuple("train." + k for k in INT_FACTS + BOOL_FACTS + (
    "prompt_template", "quantization", "lora", "pretrained_model_name_or_path", "torch_dtype"))


class ConfigProblem(Exception):
    """One line naming the file (and line) and what is wrong."""


# ---------------------------------------------------------------- files and _base_


def read_config(path: str, stack: Tuple[str, ...] = ()) -> Dict[str, Binding]:
    """The merged top-level bindings of a config and its ``_base_`` files."""
    real = os.path.realpath(path)
    if real in stack:
        chain = " -> ".join(os.path.basename(p) for p in stack + (real,))
        raise ConfigProblem("%s: _base_ cycle: %s" % (path, chain))
    if len(stack) >= MAX_BASE_DEPTH:
        raise ConfigProblem("%s: _base_ files nested more than %d deep" % (path, MAX_BASE_DEPTH))
    try:
        text = decode_text(path, read_capped(path, CONFIG_LIMIT))
    except FileProblem as exc:
        raise ConfigProblem(str(exc))
    env = fold(text, path, _parse(text, path))
    merged: Dict[str, Binding] = {}
    for base in _base_paths(env.pop("_base_", None), path):
        for name, binding in read_config(base, stack + (real,)).items():
            merged[name] = _merge_binding(merged.get(name), binding)
    for name, binding in env.items():
        merged[name] = _merge_binding(merged.get(name), binding)
    return merged


def _parse(text: str, path: str) -> ast.Module:
    tree, why = parse_python(text, path)
    if tree is None:
        raise ConfigProblem(why)
    return tree


def _base_paths(binding: Optional[Binding], path: str) -> List[str]:
    if binding is None:
        return []
    value = binding.value
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, tuple) else None
    where = "%s:%d" % (path, binding.line)
    if names is None or not all(isinstance(n, str) for n in names):
        raise ConfigProblem("%s: _base_ must be a path or a list of paths, got %s" % (where, binding.source))
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    for name in names:
        if "::" in name:
            raise ConfigProblem("%s: _base_ %r is inside an installed package; envdoctor follows only files (copy it next to the config)" % (where, name))
        full = os.path.normpath(os.path.join(folder, os.path.expanduser(name)))
        if not os.path.isfile(full):
            raise ConfigProblem("%s: _base_ %r is out of reach (%s is not a file)" % (where, name, full))
        out.append(full)
    return out


def _merge_binding(base: Optional[Binding], child: Binding) -> Binding:
    if base is None:
        return child
    return Binding(_merge(base.value, child.value), child.source, child.path, child.line)


def _merge(base: Any, child: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(child, dict)) or child.get("_delete_") is True:
        if isinstance(child, dict):
            return {k: v for k, v in child.items() if k != "_delete_"}
        return child
    out = dict(base)
    for key, value in child.items():
        out[key] = _merge(base.get(key), value) if key in base else value
    return out


# ---------------------------------------------------------------- facts


def gather(path: str) -> Gathered:
    values: Dict[str, Value] = {"train.config": os.path.abspath(path)}
    try:
        env = read_config(path)
    except ConfigProblem as exc:
        return Gathered(values, {k: Unknown(str(exc)) for k in KEYS}, (Problem("config", str(exc), True),))
    except RecursionError:
        message = "%s: nested too deeply to read" % path
        return Gathered(values, {k: Unknown(message) for k in KEYS}, (Problem("config", message, True),))
    unknown: Dict[str, Unknown] = {}

    def put(key: str, value: object) -> None:
        if isinstance(value, Unknown):
            unknown["train." + key] = value
        else:
            values["train." + key] = value  # type: ignore[assignment]

    model = env.get("model")
    for name in INT_FACTS:
        put(name, _typed(env, name, int, "an integer"))
    put("pack_to_max_length", _typed(env, "pack_to_max_length", bool, "True or False"))
    varlen = _typed(env, "use_varlen_attn", bool, "True or False")
    if "use_varlen_attn" not in env and model is not None and isinstance(model.value, dict) and "use_varlen_attn" in model.value:
        varlen = _checked(model.value["use_varlen_attn"], model.source, bool, "True or False")
    put("use_varlen_attn", varlen)
    put("pretrained_model_name_or_path", _typed(env, "pretrained_model_name_or_path", str, "a string"))
    put("prompt_template", _prompt_template(env.get("prompt_template")) if "prompt_template" in env else _not_set(env))
    if model is None and _not_set(env):
        quantization = lora = dtype = _not_set(env)
    else:
        quantization, lora = _model_facts(model)
        dtype = _torch_dtype(model)
    put("quantization", quantization)
    put("lora", lora)
    put("torch_dtype", dtype)
    return Gathered(values, unknown)


def _torch_dtype(model: Optional[Binding]) -> object:
    """The llm's torch_dtype as a name: torch.float16 -> float16; 'auto' stays 'auto'."""
    if model is None or not isinstance(model.value, dict):
        return Unknown("the config has no model = dict(...)" if model is None else "unresolved expression: %s" % model.source)
    llm = model.value.get("llm")
    if not isinstance(llm, dict):
        return Unknown("unresolved expression: llm=%s" % _describe(llm)) if llm is not None else None
    dtype = llm.get("torch_dtype")
    if isinstance(dtype, Ref) and dtype.name.startswith("torch."):
        return dtype.name[len("torch."):]
    if isinstance(dtype, str) or dtype is None:
        return dtype
    return Unknown("unresolved expression: torch_dtype=%s" % _describe(dtype))


def _typed(env: Dict[str, Binding], name: str, kind: type, described: str) -> object:
    binding = env.get(name)
    if binding is None:
        return _not_set(env) or DEFAULTS.get(name)
    return _checked(binding.value, binding.source, kind, described)


def _not_set(env: Dict[str, Binding]) -> Optional[Unknown]:
    wildcard = env.get(WILDCARD)
    if wildcard is None:
        return None
    return Unknown("not set in the config; it may come from %s (%s:%d), which envdoctor does not follow"
                   % (wildcard.source, wildcard.path, wildcard.line))


def _checked(value: Any, source: str, kind: type, described: str) -> object:
    if value is None:
        return None
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    if isinstance(value, (Ref, Unresolved, dict, tuple)):
        return Unknown("unresolved expression: %s" % source)
    return Unknown("%r is not %s" % (value, described))


def _prompt_template(binding: Optional[Binding]) -> object:
    if binding is None:
        return None
    value = binding.value
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, str) or value is None:
        return value
    return Unknown("unresolved expression: %s" % binding.source)


def _model_facts(model: Optional[Binding]) -> Tuple[object, object]:
    if model is None or not isinstance(model.value, dict):
        why = Unknown("the config has no model = dict(...)" if model is None else "unresolved expression: %s" % model.source)
        return why, why
    tree = model.value
    lora = tree.get("lora")
    if lora is None:
        lora_fact: object = False
    elif isinstance(lora, dict):
        lora_fact = True
    else:
        lora_fact = Unknown("unresolved expression: lora=%s" % _describe(lora))
    return _quantization(tree), lora_fact


def _quantization(tree: Any) -> object:
    """4bit / 8bit where any dict under model sets load_in_4bit / load_in_8bit (BitsAndBytesConfig)."""
    found: Optional[str] = None
    for node in _dicts(tree):
        for key, label in (("load_in_4bit", "4bit"), ("load_in_8bit", "8bit")):
            flag = node.get(key)
            if isinstance(flag, (Ref, Unresolved)):
                return Unknown("unresolved expression: %s=%s" % (key, _describe(flag)))
            if flag is True and found != "4bit":
                found = label
    return found


def _dicts(tree: Any):
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            for sub in _dicts(value):
                yield sub
    elif isinstance(tree, tuple):
        for value in tree:
            for sub in _dicts(value):
                yield sub


def _describe(value: Any) -> str:
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, Unresolved):
        return value.source
    return repr(value)
