"""A model's remote modeling code (the file ``auto_map`` names), read with ``ast``, never imported.

For InternLM2 it tells the two generations apart, because XTuner's attention patches
were written against one of them (docs/facts.md, ``model.remote_code``):

- ``internlm2-tuple-cache`` (before June 2024): the rotary embedding is called as
  ``self.rotary_emb(value_states, seq_len=...)`` and its ``forward(self, x, seq_len=None)``.
- ``internlm2-cache-class`` (June 2024 on): imports ``Cache`` / ``DynamicCache`` /
  ``StaticCache`` from ``transformers.cache_utils`` and calls
  ``self.rotary_emb(value_states, position_ids)``.

Anything else, or a file carrying markers of both, is ``unknown``: never a guess.
"""

import ast
from typing import Set

from envdoctor.sources._files import parse_python

TUPLE_CACHE = "internlm2-tuple-cache"
CACHE_CLASS = "internlm2-cache-class"
UNKNOWN = "unknown"

_CACHE_CLASSES = {"Cache", "DynamicCache", "StaticCache"}


class RemoteCodeSyntaxError(Exception):
    """``str()`` is one line: file, line, what Python said."""


def parse(source: str, filename: str) -> ast.Module:
    tree, why = parse_python(source, filename)
    if tree is None:
        raise RemoteCodeSyntaxError(why)
    return tree


def classify(tree: ast.Module) -> str:
    markers = _markers(tree)
    if "internlm2" not in markers:
        return UNKNOWN
    new = bool(markers & {"cache-import", "rotary-position-ids"})
    old = "rotary-seq-len" in markers
    if new and not old:
        return CACHE_CLASS
    if old and not new:
        return TUPLE_CACHE
    return UNKNOWN


def _markers(tree: ast.Module) -> Set[str]:
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            if node.name.startswith("InternLM2"):
                found.add("internlm2")
            if node.name.endswith("RotaryEmbedding"):
                found |= _rotary_forward(node)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[-1] == "cache_utils" and {a.name for a in node.names} & _CACHE_CLASSES:
                found.add("cache-import")
        elif isinstance(node, ast.Call) and _is_rotary_call(node):
            found |= _rotary_call(node)
    return found


def _rotary_forward(cls: ast.ClassDef) -> Set[str]:
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "forward":
            names = [a.arg for a in item.args.args]
            if "seq_len" in names:
                return {"rotary-seq-len"}
            if "position_ids" in names:
                return {"rotary-position-ids"}
    return set()


def _is_rotary_call(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr == "rotary_emb"


def _rotary_call(call: ast.Call) -> Set[str]:
    if any(k.arg == "seq_len" for k in call.keywords):
        return {"rotary-seq-len"}
    if any(k.arg == "position_ids" for k in call.keywords):
        return {"rotary-position-ids"}
    if len(call.args) >= 2 and isinstance(call.args[1], ast.Name) and call.args[1].id == "position_ids":
        return {"rotary-position-ids"}
    return set()
