"""Source: an XTuner config (a Python file), read with ``ast``, never executed.

Only top-level assignments are followed, in order. A value is folded from literals, names
bound earlier in the same file, ``dict(...)`` / ``{...}``, and plain arithmetic on numbers
(``accumulative_counts *= sequence_parallel_size``); a name the file imports stays a
dotted name (``PROMPT_TEMPLATE.internlm2_chat``). Anything else is an unresolved
expression, reported with its source text. ``_base_`` files are merged the way mmengine
merges them: the base first, the child's keys over it, dicts merged key by key unless the
child says ``_delete_=True``.
"""

import ast
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from envdoctor.facts import Gathered, Problem, Unknown, Value
from envdoctor.sources._files import MIB, FileProblem, decode_text, parse_python, read_capped

CONFIG_LIMIT = 1 * MIB  # real XTuner configs are 5-10 KiB; parsing is linear but not free
MAX_BASE_DEPTH = 16
MAX_NUMBER = 10 ** 15  # folding stops at numbers no config needs
MAX_TEXT = 4096

INT_FACTS = ("max_length", "sequence_parallel_size", "batch_size", "accumulative_counts",
             "evaluation_freq", "dataloader_num_workers")
BOOL_FACTS = ("use_varlen_attn", "pack_to_max_length")
# XTuner's own defaults when a config leaves the name out (tools/train.py reads
# sequence_parallel_size with default 1; SupervisedFinetune's use_varlen_attn defaults to False).
DEFAULTS = {"sequence_parallel_size": 1, "use_varlen_attn": False}
WILDCARD = "*"  # the binding that records a `from x import *`
_NAMESPACE_WRITERS = ("globals", "vars", "locals", "exec", "eval", "setattr", "__import__")
KEYS = tuple("train." + k for k in INT_FACTS + BOOL_FACTS + (
    "prompt_template", "quantization", "lora", "pretrained_model_name_or_path", "torch_dtype", "framework"))


class ConfigProblem(Exception):
    """One line naming the file (and line) and what is wrong."""


@dataclass(frozen=True)
class Ref:
    """A name the config imports (or leaves undefined): kept as its dotted text."""

    name: str


@dataclass(frozen=True)
class Unresolved:
    source: str  # the expression's source text, on one line


@dataclass(frozen=True)
class Binding:
    value: Any
    source: str  # the right-hand side as written
    path: str
    line: int


# ---------------------------------------------------------------- folding one file


class _Folder:
    def __init__(self, text: str, path: str) -> None:
        # Only the line ends Python counts: str.splitlines() also splits at a form feed, which
        # would shift every later line against ast's line numbers.
        self.lines = [line.encode("utf-8") for line in re.split(r"\r\n|\r|\n", text)]
        self.path = path
        self.env: Dict[str, Binding] = {}

    def source(self, node: ast.AST) -> str:
        """The node's text on one line, shortened (ast's offsets are UTF-8 byte columns)."""
        first, last = node.lineno - 1, getattr(node, "end_lineno", node.lineno) - 1
        end_col = getattr(node, "end_col_offset", None)
        if first >= len(self.lines):
            return "<expression>"
        if first == last:
            raw = self.lines[first][node.col_offset:end_col]
        else:
            shown = self.lines[first:min(last, first + 8) + 1]
            shown[0] = shown[0][node.col_offset:]
            if last <= first + 8:
                shown[-1] = shown[-1][:end_col]
            raw = b" ".join(shown)
        one_line = " ".join(raw.decode("utf-8", "replace").split())
        return one_line if len(one_line) <= 120 else one_line[:117] + "..."

    def unresolved(self, node: ast.AST) -> Unresolved:
        return Unresolved(self.source(node))

    # -- expressions
    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, int, float, bool)) or node.value is None:
                return node.value
            return self.unresolved(node)
        if isinstance(node, ast.Name):
            bound = self.env.get(node.id)
            return bound.value if bound is not None else Ref(node.id)
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted is None:
                return self.unresolved(node)
            root = dotted.split(".")[0]
            return Ref(dotted) if root not in self.env else self.unresolved(node)
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self.value(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return self.dict_display(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node, self.value(node.left), node.op, self.value(node.right))
        return self.unresolved(node)

    def dict_display(self, node: ast.Dict) -> Any:
        out: Dict[str, Any] = {}
        for key, val in zip(node.keys, node.values):
            if key is None or not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                return self.unresolved(node)  # **spread or a computed key
            out[key.value] = self.value(val)
        return out

    def call(self, node: ast.Call) -> Any:
        """``dict(k=v)`` is a dict; ``Name(k=v)`` a dict whose type is Name (what XTuner builds)."""
        name = _dotted(node.func)
        if name is None or node.args or any(k.arg is None for k in node.keywords):
            return self.unresolved(node)
        out: Dict[str, Any] = {} if name == "dict" else {"type": Ref(name)}
        for keyword in node.keywords:
            out[keyword.arg] = self.value(keyword.value)
        return out

    def unary(self, node: ast.UnaryOp) -> Any:
        operand = self.value(node.operand)
        if isinstance(node.op, ast.Not) and isinstance(operand, bool):
            return not operand
        if _is_number(operand):
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
        return self.unresolved(node)

    def binop(self, node: ast.AST, left: Any, op: ast.operator, right: Any) -> Any:
        if isinstance(left, str) and isinstance(right, str) and isinstance(op, ast.Add):
            joined = left + right
            return joined if len(joined) <= MAX_TEXT else self.unresolved(node)
        if not (_is_number(left) and _is_number(right)):
            return self.unresolved(node)
        try:
            if isinstance(op, ast.Add):
                result = left + right
            elif isinstance(op, ast.Sub):
                result = left - right
            elif isinstance(op, ast.Mult):
                result = left * right
            elif isinstance(op, ast.FloorDiv):
                result = left // right
            elif isinstance(op, ast.Div):
                result = left / right
            elif isinstance(op, ast.Mod):
                result = left % right
            else:  # no **: 10 ** 10 ** 10 must not hang the doctor
                return self.unresolved(node)
        except (ZeroDivisionError, OverflowError):
            return self.unresolved(node)
        return result if abs(result) <= MAX_NUMBER else self.unresolved(node)

    # -- statements
    def run(self, tree: ast.Module) -> Dict[str, Binding]:
        for statement in tree.body:
            self.statement(statement)
        return self.env

    def bind(self, name: str, value: Any, node: ast.AST, line: int) -> None:
        self.env[name] = Binding(value, self.source(node), self.path, line)

    def statement(self, node: ast.stmt) -> None:
        self.simple_statement(node)
        self.hidden_writes(node)

    def simple_statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self.assign(target, node.value, node.lineno)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, node.value, node.lineno)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            before = self.env.get(node.target.id)
            left = before.value if before else Ref(node.target.id)
            self.bind(node.target.id, self.binop(node, left, node.op, self.value(node.value)), node, node.lineno)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:  # an import shadows an earlier assignment
                self.env.pop((alias.asname or alias.name).split(".")[0], None)
            self.note_wildcard(node)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.env.pop(target.id, None)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.env.pop(node.name, None)
        elif not isinstance(node, (ast.Expr, ast.Pass)):
            # if / for / with / try: what they bind depends on running them (mmengine's
            # `with read_base(): from .base import *` included: envdoctor does not follow it).
            for name in _stored_names(node):
                self.bind(name, self.unresolved(node), node, node.lineno)
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    for alias in sub.names:
                        if alias.name != "*":
                            self.bind((alias.asname or alias.name).split(".")[0], self.unresolved(sub), sub, sub.lineno)
                    self.note_wildcard(sub)

    def hidden_writes(self, node: ast.stmt) -> None:
        """Bindings no assignment statement shows: ``(name := value)`` anywhere in the statement,
        and ``globals().update(...)`` (or vars(), locals(), exec) which may set any name. What
        they set is unknown, never the stale value from before."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        for sub in ast.walk(node):
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                self.bind(sub.target.id, self.unresolved(sub), sub, sub.lineno)
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in _NAMESPACE_WRITERS:
                unknown = self.unresolved(node)
                for name in list(self.env):
                    self.bind(name, unknown, node, node.lineno)
                self.bind(WILDCARD, unknown, node, node.lineno)

    def note_wildcard(self, node: ast.stmt) -> None:
        """``from x import *`` may define any name: remembered, so a name the file does not
        set is unknown rather than absent."""
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            self.bind(WILDCARD, Unresolved(self.source(node)), node, node.lineno)

    def assign(self, target: ast.AST, value_node: ast.expr, line: int) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, self.value(value_node), value_node, line)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value_node.elts if isinstance(value_node, (ast.Tuple, ast.List)) else None
            for i, element in enumerate(target.elts):
                if values is not None and len(values) == len(target.elts):
                    self.assign(element, values[i], line)
                else:
                    for name in _stored_names(element):
                        self.bind(name, self.unresolved(value_node), value_node, line)
        else:  # model.llm.x = ... / model['llm'] = ...: set inside the dict where we can
            self.assign_into(target, value_node, line)

    def assign_into(self, target: ast.AST, value_node: ast.expr, line: int) -> None:
        path: List[str] = []
        node = target
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute):
                path.append(node.attr)
            else:
                key = _subscript_key(node)
                if key is None:
                    path = []
                    break
                path.append(key)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.env:
            return
        root = self.env[node.id]
        container = root.value
        keys = list(reversed(path))
        for key in keys[:-1] if keys else []:
            container = container.get(key) if isinstance(container, dict) else None
        if not keys or not isinstance(container, dict):
            self.bind(node.id, self.unresolved(value_node), value_node, line)
            return
        container[keys[-1]] = self.value(value_node)


def _dotted(node: ast.AST) -> Optional[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _subscript_key(node: ast.Subscript) -> Optional[str]:
    index = node.slice
    legacy = getattr(ast, "Index", None)  # Python 3.8 wraps the key
    if legacy is not None and isinstance(index, legacy):
        index = index.value  # type: ignore[attr-defined]
    if isinstance(index, ast.Constant) and isinstance(index.value, str):
        return index.value
    return None


def _stored_names(node: ast.AST) -> List[str]:
    names = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.append(sub.id)
    return names


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------- files and _base_


def read_config(path: str, stack: Tuple[str, ...] = (), memo: Optional[Dict[str, Dict[str, Binding]]] = None) -> Dict[str, Binding]:
    """The merged top-level bindings of a config and its ``_base_`` files. Each file is read
    and merged once (``memo``): a diamond of bases that list each other many times would
    otherwise be read exponentially often."""
    memo = {} if memo is None else memo
    real = os.path.realpath(path)
    if real in stack:
        chain = " -> ".join(os.path.basename(p) for p in stack + (real,))
        raise ConfigProblem("%s: _base_ cycle: %s" % (path, chain))
    if len(stack) >= MAX_BASE_DEPTH:
        raise ConfigProblem("%s: _base_ files nested more than %d deep" % (path, MAX_BASE_DEPTH))
    if real in memo:
        return memo[real]
    try:
        text = decode_text(path, read_capped(path, CONFIG_LIMIT))
    except FileProblem as exc:
        raise ConfigProblem(str(exc))
    env = _Folder(text, path).run(_parse(text, path))
    merged: Dict[str, Binding] = {}
    for base in _base_paths(env.pop("_base_", None), path):
        for name, binding in read_config(base, stack + (real,), memo).items():
            merged[name] = _merge_binding(merged.get(name), binding)
    for name, binding in env.items():
        merged[name] = _merge_binding(merged.get(name), binding)
    memo[real] = merged
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
    put("framework", _framework(env))
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


def _framework(env: Dict[str, Binding]) -> object:
    """Which trainer xtuner train runs: tools/train.py reads cfg.get('framework', 'mmengine').lower()."""
    value = _typed(env, "framework", str, "a string")
    if value is None and "framework" not in env:
        return "mmengine"
    return value.lower() if isinstance(value, str) else value


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


# ---------------------------------------------------------------- what a config uses of other packages


class Use(NamedTuple):
    """A module, a name imported from it, or a key of a dict imported from it, that the config
    names: loading the config fails where the installed release lacks it."""

    module: str  # "xtuner.utils"
    name: str  # "PROMPT_TEMPLATE"; "" for ``import xtuner.utils``
    key: str  # "internlm2_chat" for ``PROMPT_TEMPLATE.internlm2_chat``; "" otherwise
    line: int

    def text(self) -> str:
        what = "%s.%s" % (self.name, self.key) if self.key else self.name
        return "%s (from %s)" % (what, self.module) if what else self.module


def uses(path: str) -> Tuple[Use, ...]:
    """The config file's absolute imports outside functions, and the keys it reads of a name it
    imports (``PROMPT_TEMPLATE.internlm2_chat``, ``SYSTEM_TEMPLATE['alpaca']``). Read with ast,
    never run; its _base_ files are not followed. A file that cannot be read gives nothing here
    (the check already says why)."""
    try:
        text = decode_text(path, read_capped(path, CONFIG_LIMIT))
        tree = _parse(text, path)
    except (FileProblem, ConfigProblem, RecursionError):
        return ()
    out: List[Use] = []
    imported: Dict[str, Tuple[str, str]] = {}  # local name -> (module, name) it was imported as
    for node in _outside_functions(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    out.append(Use(node.module, alias.name, "", node.lineno))
                    imported[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            out.extend(Use(alias.name, "", "", node.lineno) for alias in node.names)
    for node in ast.walk(tree):
        key, owner = None, None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            key, owner = node.attr, node.value.id
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            key, owner = _subscript_key(node), node.value.id
        if key and owner in imported and owner.isupper():  # a constant dict (PROMPT_TEMPLATE), not a class's attribute
            use = Use(imported[owner][0], imported[owner][1], key, getattr(node, "lineno", 0))
            if not any(u[:3] == use[:3] for u in out):
                out.append(use)
    return tuple(out)


def _outside_functions(tree: ast.Module):
    """Every statement that runs when the file loads: nested in if/try/with, not in a def or class."""
    todo: List[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
