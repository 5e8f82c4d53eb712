"""Fold a Python file's top-level assignments into values, without running it (``ast`` only).

Assignments are followed in order. A value is folded from literals, names bound earlier in
the same file, ``dict(...)`` / ``{...}`` (and ``Name(k=v)``, a dict whose ``type`` is Name),
and plain arithmetic on numbers (``accumulative_counts *= sequence_parallel_size``); a name
the file imports (or leaves undefined) stays a dotted name, a ``Ref``. Anything else is
``Unresolved``, with its source text for the report. Knows nothing of XTuner.
"""

import ast
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

MAX_NUMBER = 10 ** 15  # folding stops at numbers no config needs
MAX_TEXT = 4096
WILDCARD = "*"  # the binding that records a `from x import *`


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


def fold(text: str, path: str, tree: ast.Module) -> Dict[str, "Binding"]:
    """The names the module ``tree`` (parsed from ``text``, read from ``path``) binds at top level."""
    return _Folder(text, path).run(tree)


class _Folder:
    def __init__(self, text: str, path: str) -> None:
        self.lines = [line.encode("utf-8") for line in text.splitlines()]
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
