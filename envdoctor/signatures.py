"""Which keywords an installed class or function accepts, read from its source with ``ast``.

For the import check's keyword sites (``LoraConfig(..., use_dora=True)``): the callee is found in
the examined environment's files (following ``from x import Name`` re-exports), never imported.
The answer is given only where the whole signature is visible: a plain ``def`` (no ``**kwargs``, no
decorator that may change what it takes), a class with its own ``__init__``, a ``@dataclass``
whose every base can be read, or a class inheriting one of those through a single base. Anything
else (a metaclass, ``__new__``, another decorator, a base we cannot find, a lazy module) is
unknown: None, and the caller says nothing.
"""

import ast
from typing import Dict, FrozenSet, List, NamedTuple, Optional

# Decorators that keep a function's keywords as written (the same list the history builder uses).
from envdoctor.history.scan import PLAIN_DECORATORS, _dotted, _mentions

# Bases that add no dataclass fields and no __init__ a dataclass would use.
NEUTRAL_BASES = {"object", "ABC", "abc.ABC", "Generic", "typing.Generic", "Protocol", "typing.Protocol"}
MAX_DEPTH = 8


class Accepts(NamedTuple):
    """The keywords a callable takes, and how Python names it in a TypeError."""

    names: FrozenSet[str]
    qualname: str  # "LoraConfig.__init__" (Python 3.10+ prints this) or "load"
    name: str  # "__init__" or "load" (Python 3.8 and 3.9 print this)

    def message(self, keyword: str, python: str = "3.10") -> str:
        """Python's TypeError for an unexpected keyword, as the interpreter of version `python` prints it."""
        try:
            new = tuple(int(x) for x in python.split(".")[:2]) >= (3, 10)
        except ValueError:
            new = True
        return "%s() got an unexpected keyword argument '%s'" % (self.qualname if new else self.name, keyword)


class _Class(NamedTuple):
    node: ast.ClassDef
    module: str


def _plain_function(fn) -> Optional[FrozenSet[str]]:
    if fn.args.kwarg is not None:
        return None
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if _dotted(target).split(".")[-1] not in PLAIN_DECORATORS:
            return None
    a = fn.args
    names = [x.arg for x in getattr(a, "posonlyargs", [])] + [x.arg for x in a.args] + [x.arg for x in a.kwonlyargs]
    return frozenset(n for n in names if n not in ("self", "cls"))


def _dataclass(node: ast.ClassDef) -> Optional[bool]:
    """True: a plain @dataclass (it writes __init__); False: no decorator; None: anything else."""
    if not node.decorator_list:
        return False
    if len(node.decorator_list) > 1:
        return None
    d = node.decorator_list[0]
    call = d if isinstance(d, ast.Call) else None
    if _dotted(call.func if call else d) not in ("dataclass", "dataclasses.dataclass"):
        return None
    for k in (call.keywords if call else ()):
        if k.arg == "init" and not (isinstance(k.value, ast.Constant) and k.value.value is True):
            return None
    return True


def _fields(node: ast.ClassDef) -> List[str]:
    out = []
    for item in node.body:
        if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
            continue
        if _mentions(item.annotation, ("ClassVar", "KW_ONLY")):
            continue
        value = item.value
        if isinstance(value, ast.Call) and _dotted(value.func).split(".")[-1] == "field" and any(
                k.arg == "init" for k in value.keywords):
            continue  # field(init=False) is not a parameter (any init= here: unsure, so left out: no claim rests on it)
        out.append(item.target.id)
    return out


class Signatures:
    """Reads callables from the examined environment's files; `checker` is the import check's Checker."""

    def __init__(self, checker):
        self.checker = checker
        self._trees: Dict[str, Optional[ast.Module]] = {}

    def _tree(self, module: str) -> Optional[ast.Module]:
        if module not in self._trees:
            found = self.checker.finder.find(module)
            tree = None
            if found is not None and found.kind in ("py", "pkg"):
                try:
                    with open(found.path, "rb") as handle:
                        tree = ast.parse(handle.read())
                except (OSError, SyntaxError, ValueError):
                    tree = None
            self._trees[module] = tree
        return self._trees[module]

    def definition(self, module: str, name: str, depth: int = 0):
        """(the def or class node, its module), following unguarded re-exports; None if not plainly there."""
        if depth > MAX_DEPTH:
            return None
        tree = self._tree(module)
        if tree is None:
            return None
        hits = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                hits.append(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    return None  # rebound at module level: not a plain definition
        if len(hits) == 1:
            return hits[0], module
        if hits:
            return None
        summary = self.checker.summary(module)
        if summary is None:
            return None
        for local, source, original in summary.bindings:
            if local == name and original:
                return self.definition(source, original, depth + 1)
        return None

    def _base(self, module: str, written: str, depth: int) -> Optional[_Class]:
        """The class a base expression names, from the module where the class is written."""
        parts = written.split(".")
        if len(parts) == 1:
            found = self.definition(module, written, depth + 1)
        else:
            summary = self.checker.summary(module)
            bound = {local: (m, n) for local, m, n in (summary.bindings if summary else ())}
            if parts[0] not in bound or bound[parts[0]][1]:
                return None
            found = self.definition(".".join([bound[parts[0]][0]] + parts[1:-1]), parts[-1], depth + 1)
        if found is None or not isinstance(found[0], ast.ClassDef):
            return None
        return _Class(found[0], found[1])

    def _class_fields(self, cls: _Class, depth: int) -> Optional[List[str]]:
        """Dataclass fields a class carries (its own if a dataclass, and its bases'); None if unknown."""
        if depth > MAX_DEPTH or cls.node.keywords:
            return None
        kind = _dataclass(cls.node)
        if kind is None or any(isinstance(i, ast.FunctionDef) and i.name == "__new__" for i in cls.node.body):
            return None
        out: List[str] = []
        for b in cls.node.bases:
            written = _dotted(b)
            if written in NEUTRAL_BASES:
                continue
            base = self._base(cls.module, written, depth) if written else None
            if base is None:
                return None
            more = self._class_fields(base, depth + 1)
            if more is None:
                return None
            out.extend(more)
        return out + (_fields(cls.node) if kind else [])

    def _class(self, cls: _Class, depth: int) -> Optional[Accepts]:
        node = cls.node
        if depth > MAX_DEPTH or node.keywords:  # a metaclass may take anything
            return None
        methods = {item.name: item for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if "__new__" in methods:
            return None
        kind = _dataclass(node)
        if kind is None:
            return None
        if "__init__" in methods:
            names = _plain_function(methods["__init__"])
            return Accepts(names, node.name + ".__init__", "__init__") if names is not None else None
        if kind:
            fields = self._class_fields(cls, depth)
            return Accepts(frozenset(fields), node.name + ".__init__", "__init__") if fields is not None else None
        bases = [_dotted(b) for b in node.bases if _dotted(b) not in NEUTRAL_BASES]
        if len(bases) != 1:
            return None  # object's __init__ (a different message) or a real MRO: not claimed
        base = self._base(cls.module, bases[0], depth)
        return self._class(base, depth + 1) if base is not None else None

    def accepts(self, module: str, name: str) -> Optional[Accepts]:
        """What `from module import name; name(...)` accepts here, or None where it cannot all be seen."""
        found = self.definition(module, name)
        if found is None:
            return None
        node, where = found
        if isinstance(node, ast.ClassDef):
            return self._class(_Class(node, where), 0)
        names = _plain_function(node)
        return Accepts(names, node.name, node.name) if names is not None else None

