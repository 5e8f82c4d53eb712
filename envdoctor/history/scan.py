"""What one Python module defines and imports, read with ``ast`` (never imported, never run).

Shared by the history builder (every file of every examined release) and the import check (the
installed files of the examined environment). A module's summary says:

- ``names``: its top-level names: def, class, assignment targets, import-as and from-import names,
  ``__all__``, names under ``if TYPE_CHECKING`` (lazy modules define them there for type checkers),
  and lazily exported names (transformers' ``_import_structure`` dict);
- ``stars``: the modules it star-imports (their names become its names; resolved by the caller);
- ``open``: whether names we cannot see may exist (a module ``__getattr__``, a ``globals()`` update):
  a missing name is then never claimed;
- ``imports``: each import with where it stands (module level or in a function) and whether it is
  guarded (``try/except ImportError``, ``if TYPE_CHECKING``, any other ``if``);
- ``params``: parameter names of public functions and of classes' ``__init__`` (dataclass fields);
- ``members``: the keys of top-level dicts written as literals (``{'a': ...}``, ``dict(a=...)``,
  ``ConfigDict(a=...)``: XTuner's PROMPT_TEMPLATE), None where more keys may be added unseen;
- ``reexports``: top-level ``from m import x as y`` as (y, m, x), so a dict's keys are found where
  a user imports it from.
"""

import ast
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException", "OSError", "RuntimeError",
                 "AttributeError"}


class ImportRef(NamedTuple):
    """One import statement's target, resolved to an absolute module name."""

    module: str  # absolute module imported from (or imported)
    names: Tuple[str, ...]  # from-import names; () for `import module`; ("*",) for a star import
    line: int
    in_function: bool  # inside a def (runs only when called)
    guarded: bool  # under try/except ImportError, TYPE_CHECKING or another if: a failure is handled or unlikely


class Params(NamedTuple):
    """Parameter names a callable accepts; open when it also takes **kwargs (or they are not all visible)."""

    names: Tuple[str, ...]
    open: bool
    bases: Tuple[str, ...] = ()  # for classes without their own __init__: base class names (dotted as written)
    kind: str = "init"  # "init" (own signature), "fields" (dataclass: bases' fields + own), "inherit"
    is_class: bool = False  # a class (called through __init__), not a function


class CallSite(NamedTuple):
    """A call the module makes when imported (module level, unguarded), with its literal keywords."""

    callee: str  # dotted as written: "LoraConfig", "transformers.TrainingArguments"
    keywords: Tuple[str, ...]
    line: int
    built: bool = False  # written as dict(type=Callee, k=...): a config's object, built with those keywords


class ModuleSummary(NamedTuple):
    names: Tuple[str, ...]
    stars: Tuple[str, ...]
    open: bool
    imports: Tuple[ImportRef, ...]
    params: Dict[str, Params]
    lazy_submodules: Tuple[str, ...] = ()  # keys of _import_structure: submodules exported lazily
    error: str = ""  # a syntax error: the module's content is unknown
    members: Dict[str, Optional[Tuple[str, ...]]] = {}  # dict name -> its keys; None: not all visible
    reexports: Tuple[Tuple[str, str, str], ...] = ()  # (local name, absolute module, name there)
    calls: Tuple[CallSite, ...] = ()  # module-level, unguarded calls with keywords
    bindings: Tuple[Tuple[str, str, str], ...] = ()  # names bound once, by an unguarded import: (local, module, name or "")


def resolve(module: str, is_package: bool, level: int, target: Optional[str]) -> str:
    """The absolute name of a (possibly relative) import made in `module`."""
    if not level:
        return target or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    base = ".".join(parts)
    if target:
        return base + "." + target if base else target
    return base


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _handles_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for t in types:
            name = t.id if isinstance(t, ast.Name) else getattr(t, "attr", "")
            if name in IMPORT_ERRORS or name.endswith("NotAvailable"):
                return True
    return False


def _strings(node) -> List[str]:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _constant_str(node) -> Optional[str]:
    node = getattr(node, "value", node) if type(node).__name__ == "Index" else node  # Python 3.8's ast.Index
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


DICT_CALLS = {"dict", "ConfigDict", "OrderedDict"}


def _literal_keys(value) -> Optional[List[str]]:
    """The keys of a dict written out in full: {'a': 1} or dict(a=1) / ConfigDict(a=1); else None."""
    if isinstance(value, ast.Dict):
        keys = [_constant_str(k) if k is not None else None for k in value.keys]  # None key: **other
        return None if any(k is None for k in keys) else keys  # type: ignore[return-value]
    if isinstance(value, ast.Call) and not value.args and _dotted(value.func).split(".")[-1] in DICT_CALLS:
        keys = [k.arg for k in value.keywords]
        return None if any(k is None for k in keys) else keys  # type: ignore[return-value]
    return None


# Nodes that hold no call, not walked into: most of a module-level table's nodes (its strings, names)
_LEAVES = (ast.Constant, ast.Name, ast.expr_context)


def _call_sites(node) -> List[CallSite]:
    """Calls with keywords in one module-level statement (lambda bodies do not run: left out)."""
    out: List[CallSite] = []
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Lambda):
            continue
        # ast.iter_child_nodes' order, without its generators: half the walk's time on the import check's modules
        for field in n._fields:
            value = getattr(n, field, None)
            if isinstance(value, list):
                todo.extend([c for c in value if isinstance(c, ast.AST) and not isinstance(c, _LEAVES)])
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                todo.append(value)
        if not isinstance(n, ast.Call):
            continue
        keywords = tuple(k.arg for k in n.keywords if k.arg)
        callee = _dotted(n.func)
        if callee.split(".")[-1] == "dict" and "type" in keywords:
            # mmengine's lazy objects: dict(type=LoraConfig, r=64) is built as LoraConfig(r=64)
            typ = next(k.value for k in n.keywords if k.arg == "type")
            built = _dotted(typ) if isinstance(typ, (ast.Name, ast.Attribute)) else ""
            rest = tuple(k for k in keywords if k not in ("type", "_scope_"))  # the builder takes both out
            if built and rest:
                out.append(CallSite(built, rest, n.lineno, True))
        elif callee and keywords:
            out.append(CallSite(callee, keywords, n.lineno))
    return sorted(out, key=lambda c: (c.line, c.callee))


def _target_names(target) -> List[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        out = []
        for e in target.elts:
            out.extend(_target_names(e))
        return out
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _is_dataclass(node: ast.ClassDef) -> bool:
    for d in node.decorator_list:
        d = d.func if isinstance(d, ast.Call) else d
        name = d.id if isinstance(d, ast.Name) else getattr(d, "attr", "")
        if name in ("dataclass", "define", "attrs", "frozen"):
            return True
    return False


# Decorators that keep a function's keywords as written (a wrong keyword fails the same way).
# Any other decorator may accept more (transformers' @deprecate_kwarg on Trainer.__init__ takes the
# old `tokenizer=`): its function's parameters are open.
PLAIN_DECORATORS = {"staticmethod", "classmethod", "property", "abstractmethod", "overload", "lru_cache", "cache",
                    "contextmanager", "no_grad", "inference_mode", "wraps"}


def _function_params(fn) -> Params:
    a = fn.args
    names = [x.arg for x in getattr(a, "posonlyargs", [])] + [x.arg for x in a.args] + [x.arg for x in a.kwonlyargs]
    names = [n for n in names if n not in ("self", "cls")]
    decorated = any(_dotted(d.func if isinstance(d, ast.Call) else d).split(".")[-1] not in PLAIN_DECORATORS
                    for d in fn.decorator_list)
    return Params(tuple(names), a.kwarg is not None or decorated)


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return inner + "." + node.attr if inner else ""
    if isinstance(node, ast.Subscript):  # Generic[T] and friends
        return _dotted(node.value)
    return ""


def _mentions(annotation, names) -> bool:
    """Whether an annotation names one of `names` (ClassVar[...], typing.ClassVar, "ClassVar[int]")."""
    for n in ast.walk(annotation):
        if isinstance(n, ast.Name) and n.id in names or isinstance(n, ast.Attribute) and n.attr in names:
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and any(x in n.value for x in names):
            return True
    return False


def _class_params(node: ast.ClassDef) -> Optional[Params]:
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "__init__":
            return _function_params(item)
    bases = tuple(b for b in (_dotted(x) for x in node.bases) if b and b not in ("object", "Generic"))
    if _is_dataclass(node):
        fields = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                if _mentions(item.annotation, ("ClassVar",)):
                    continue
                fields.append(item.target.id)
        return Params(tuple(fields), False, bases, "fields")
    if bases:
        return Params((), False, bases, "inherit")  # inherits its __init__: the caller resolves the bases
    return Params((), False)


class _Reader:
    def __init__(self, module: str, is_package: bool, inner: bool = True):
        self.module = module
        self.is_package = is_package
        self.inner = inner  # read def and class bodies too (their imports run only when called)
        self.names: Dict[str, None] = {}
        self.stars: List[str] = []
        self.open = False
        self.imports: List[ImportRef] = []
        self.params: Dict[str, Params] = {}
        self.lazy: List[str] = []
        self.replaces_itself = False  # sys.modules[__name__] = _LazyModule(...)
        self.members: Dict[str, Optional[List[str]]] = {}
        self.reexports: List[Tuple[str, str, str]] = []
        self.calls: List[CallSite] = []
        self.bound: Dict[str, Optional[Tuple[str, str]]] = {}  # None: bound otherwise, or more than once

    def bind(self, local: str, target: Optional[Tuple[str, str]]) -> None:
        self.bound[local] = None if local in self.bound else target

    def add(self, name: str) -> None:
        self.names[name] = None

    def statements(self, body, top: bool, guarded: bool) -> None:
        for node in body:
            self.statement(node, top, guarded)

    def statement(self, node, top: bool, guarded: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.import_(node, top, guarded)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if top:
                self.add(node.name)
                self.bind(node.name, None)
                if node.name == "__getattr__":
                    self.open = True
                elif not node.name.startswith("_"):
                    self.params[node.name] = _function_params(node)
            self.nested(node.body)
        elif isinstance(node, ast.ClassDef):
            if top:
                self.add(node.name)
                self.bind(node.name, None)
                if not node.name.startswith("_"):
                    params = _class_params(node)
                    if params is not None:
                        self.params[node.name] = params._replace(is_class=True)
            self.nested(node.body)
        elif isinstance(node, ast.If):
            tc = _is_type_checking(node.test)
            self.statements(node.body, top, True)
            self.statements(node.orelse, top, True)
            del tc
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            handled = guarded or _handles_import_error(node)
            self.statements(node.body, top, handled)
            for h in node.handlers:
                self.statements(h.body, top, True)
            self.statements(node.orelse, top, handled)
            self.statements(node.finalbody, top, guarded)
        elif isinstance(node, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            if top and isinstance(node, (ast.For, ast.AsyncFor)):
                for n in _target_names(node.target):
                    self.add(n)
                    self.bind(n, None)
            self.statements(node.body, top, guarded)
            self.statements(getattr(node, "orelse", []), top, True)
        elif top:
            self.assignment(node, guarded)
            if not guarded:
                self.calls.extend(_call_sites(node))
            self.nested_expr(node)
        else:
            self.nested_expr(node)

    def nested(self, body) -> None:
        if not self.inner:
            return
        for node in body:
            self.statement(node, False, False)

    def nested_expr(self, node) -> None:
        # imports can hide in lambdas? no; but class/def bodies are handled; nothing else holds statements
        return None

    def assignment(self, node, guarded: bool = False) -> None:
        targets: List = []
        value = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets, value = [node.target], node.value
        self.track_members(node, targets, value, guarded)
        for t in targets:
            for n in _target_names(t):
                self.bind(n, None)
            if isinstance(t, ast.Subscript) and _dotted(t.value) == "sys.modules":
                self.replaces_itself = True
            for n in _target_names(t):
                self.add(n)
                if n == "__all__" and value is not None:
                    for s in _strings(value):
                        self.add(s)
                if n == "_import_structure" and isinstance(value, ast.Dict):
                    self.import_structure(value)
            # _import_structure["models.x"] = [...] / __all__ += [...]
            if isinstance(t, ast.Subscript) and _dotted(t.value) == "_import_structure":
                key = t.slice.value if isinstance(t.slice, ast.Constant) else getattr(getattr(t.slice, "value", None), "value", None)
                if isinstance(key, str):
                    self.lazy.append(key)
                for s in _strings(value):
                    self.add(s)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            self.call(node.value)

    def track_members(self, node, targets: List, value, guarded: bool) -> None:
        """Keys of dicts written as literals; any later change we cannot read makes them unknown."""
        if isinstance(node, ast.Delete):
            targets = node.targets
        for t in targets:
            if isinstance(t, ast.Name):
                keys = None if guarded or isinstance(node, ast.AugAssign) else _literal_keys(value)
                if keys is not None or t.id in self.members:
                    self.members[t.id] = keys
            elif isinstance(t, (ast.Subscript, ast.Attribute)) and isinstance(t.value, ast.Name):
                # PROMPT_TEMPLATE['x'] = ... / PROMPT_TEMPLATE.x = ...: one more key, if it is literal
                name = t.value.id
                known = self.members.get(name)
                if known is None:
                    continue
                key = t.attr if isinstance(t, ast.Attribute) else _constant_str(t.slice)
                if key is None or guarded or isinstance(node, ast.Delete):
                    self.members[name] = None
                else:
                    known.append(key)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func  # PROMPT_TEMPLATE.update(...), .pop(...): keys no longer visible
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in self.members:
                self.members[func.value.id] = None

    def call(self, call: ast.Call) -> None:
        func = call.func
        # _import_structure["x"].extend([...]) / .append("y") / __all__.extend([...])
        if isinstance(func, ast.Attribute) and func.attr in ("extend", "append", "update"):
            owner = func.value
            owner_name = _dotted(owner.value) if isinstance(owner, ast.Subscript) else _dotted(owner)
            if owner_name in ("_import_structure", "__all__"):
                for arg in call.args:
                    self.names.update((s, None) for s in _strings(arg))
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        self.add(arg.value)
                if isinstance(owner, ast.Subscript):
                    key = getattr(owner.slice, "value", None)
                    if isinstance(key, str):
                        self.lazy.append(key)
            elif owner_name == "globals" or (isinstance(owner, ast.Call) and _dotted(owner.func) == "globals"):
                self.open = True

    def import_structure(self, value: ast.Dict) -> None:
        for k, v in zip(value.keys, value.values):
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                self.lazy.append(k.value)
                for s in _strings(v):
                    self.add(s)

    def import_(self, node, top: bool, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                ref = ImportRef(alias.name, (), node.lineno, not top, guarded)
                self.imports.append(ref)
                if top:
                    self.add(alias.asname or alias.name.split(".")[0])
                    module = alias.name if alias.asname else alias.name.split(".")[0]
                    self.bind(alias.asname or module, None if guarded else (module, ""))
            return
        target = resolve(self.module, self.is_package, node.level or 0, node.module)
        names = tuple(a.name for a in node.names)
        self.imports.append(ImportRef(target, names, node.lineno, not top, guarded))
        if not top:
            return
        for alias in node.names:
            if alias.name == "*":
                self.stars.append(target)
            else:
                self.add(alias.asname or alias.name)
                local = alias.asname or alias.name
                self.reexports.append((local, target, alias.name))
                self.bind(local, None if guarded else (target, alias.name))
                self.members.pop(local, None)  # the import replaces a dict defined above it


# Tokens that may hide a line start: comments, string literals (a triple-quoted one can hold lines
# written at column 0), a backslash continuation; and a newline before a column-0 character, the only
# place a top-level statement can begin (not at a closing bracket: black's "):" ending a def's
# parameters). Brackets are not tracked: a column-0 line inside one never
# starts with def or class, and a cut there leaves an unmatched bracket, so the outline does not parse.
_OUTLINE_TOKEN = re.compile(rb"""
  \#[^\n]*
| '''[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*'''
| \"\"\"[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*\"\"\"
| '[^'\\\n]*(?:\\[\s\S][^'\\\n]*)*'
| "[^"\\\n]*(?:\\[\s\S][^"\\\n]*)*"
| \\\r?\n
| (\n)(?=[^\ \t\r\n\#)\]}])
""", re.X)
_OUTLINE_HEAD = re.compile(rb"(?:async[ \t]+)?def[ \t]+(\w+)(?=[ \t]*[(\[\\])|class[ \t]+(\w+)(?=[ \t]*[(:\[\\])")


def outline(source: bytes) -> bytes:
    """The source with each column-0 def and class reduced to a one-line stub of the same name,
    keeping the line count (so every other statement keeps its line number). Parsing is most of
    the import check's cold time and the bodies are most of the text; the check reads none of
    them (``inner=False``). A cut in the wrong place cannot parse: callers parse the full source then."""
    starts = [0]
    for m in _OUTLINE_TOKEN.finditer(source):
        if m.lastindex:
            starts.append(m.end())
    starts.append(len(source))
    out = []
    for a, b in zip(starts, starts[1:]):
        head = _OUTLINE_HEAD.match(source, a, b)
        if head is None:
            out.append(source[a:b])
            continue
        lines = source.count(b"\n", a, b) + source.count(b"\r", a, b) - source.count(b"\r\n", a, b)
        stub = b"def %s():pass" % head.group(1) if head.group(1) else b"class %s:pass" % head.group(2)
        out.append(stub + b"\n" * lines)
    return b"".join(out)


def scan_source(source, module: str, is_package: bool, inner: bool = True) -> ModuleSummary:
    """Summarise one module's source text (str or bytes). `inner=False` leaves out the imports made
    inside defs and classes (the import check follows only module-level ones)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        return ModuleSummary((), (), True, (), {}, (), "syntax error: %s" % exc)
    r = _Reader(module, is_package, inner)
    r.statements(tree.body, True, False)
    lazy = tuple(dict.fromkeys(k.split(".")[0] for k in r.lazy))
    # A module that replaces itself with a lazy one exports what its import structure says; where
    # neither an _import_structure literal nor star imports for type checkers list it, names are unknown.
    open_ = r.open or (r.replaces_itself and not r.lazy and not r.stars)
    members = {k: (tuple(v) if v is not None else None) for k, v in r.members.items()}
    bindings = tuple((k, v[0], v[1]) for k, v in r.bound.items() if v is not None)
    return ModuleSummary(tuple(r.names), tuple(r.stars), open_, tuple(r.imports), r.params, lazy,
                         members=members, reexports=tuple(r.reexports), calls=tuple(r.calls), bindings=bindings)


def model_types(source) -> Tuple[str, ...]:
    """The model types of transformers' configuration_auto (keys of CONFIG_MAPPING_NAMES)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "CONFIG_MAPPING_NAMES" for t in targets):
                found = []
                for sub in ast.walk(node.value):
                    if isinstance(sub, ast.Tuple) and len(sub.elts) == 2 and all(
                            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in sub.elts):
                        found.append(sub.elts[0].value)
                    elif isinstance(sub, ast.Dict):
                        found.extend(k.value for k in sub.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
                return tuple(dict.fromkeys(found))
    return ()


def module_name(path: str) -> Optional[Tuple[str, bool]]:
    """'a/b/__init__.py' -> ('a.b', True); 'a/b.py' -> ('a.b', False); C extensions -> their module."""
    parts = path.split("/")
    last = parts[-1]
    if last.endswith(".py"):
        stem = last[:-3]
    elif last.endswith((".so", ".pyd")):
        stem = last.split(".")[0]
    else:
        return None
    if not all(p.isidentifier() for p in parts[:-1]) or not stem.isidentifier():
        return None
    if stem == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts[:-1] + [stem]), False


def star_names(module: str, summaries: Dict[str, ModuleSummary], seen: Sequence[str] = ()) -> Optional[List[str]]:
    """Names a star import of `module` brings (its __all__ if given, else its public names); None if unknown."""
    s = summaries.get(module)
    if s is None or s.open or module in seen:
        return None
    out = [n for n in s.names if not n.startswith("_")]
    for star in s.stars:
        more = star_names(star, summaries, tuple(seen) + (module,))
        if more is None:
            return None
        out.extend(more)
    return out
