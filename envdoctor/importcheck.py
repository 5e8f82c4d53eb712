"""Import check: which imports of the installed stack would fail, read from the files on disk.

Nothing is imported or run. From the entry modules of the training stack (and an XTuner config's
own imports) the module-level, unguarded imports are followed through the stack's installed
packages; each one whose module is missing, or whose module lacks the name, is a failure with the
message Python would print. Imports under try/except ImportError, if TYPE_CHECKING or any other
``if``, and inside functions, are not followed (they may never run). Modules whose names cannot
all be seen (C extensions, namespace folders, a module ``__getattr__``) never yield a missing name.

Packages outside the stack (torch, numpy, ...) are checked as targets (the module and the name
must exist) but not descended into. Parsed modules are cached by file identity (path, size,
mtime), so a second run only stats the files.
"""

import marshal
import os
import sys
from collections import deque
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

# The modules a training run imports first, per distribution (its top-level package, and XTuner's
# training script, which `xtuner train` runs in a new process).
ENTRY_MODULES = {
    "xtuner": ("xtuner", "xtuner.tools.train"),
    "peft": ("peft",),
    "trl": ("trl",),
    "mmengine": ("mmengine",),
    "deepspeed": ("deepspeed",),
}
# Top-level packages whose own imports are followed (the stack). Others are checked as targets only.
FOLLOW = {"xtuner", "peft", "trl", "mmengine", "deepspeed", "transformers", "accelerate", "datasets",
          "bitsandbytes", "flash_attn"}
CACHE_FORMAT = 2


class Failure(NamedTuple):
    """One import that would fail."""

    message: str  # as Python prints it, e.g. "No module named 'deepspeed'"
    error: str  # "ModuleNotFoundError" or "ImportError"
    module: str  # the module imported (from)
    name: str  # the name imported from it; "" for a missing module
    importer: str  # the module whose import fails
    path: str  # its file
    line: int
    chain: Tuple[str, ...]  # entry module ... importer


class Located(NamedTuple):
    kind: str  # "py" (module file), "pkg" (package __init__), "ext" (compiled), "ns" (namespace folder)
    path: str  # the file, or the folder(s) of a namespace package joined by os.pathsep
    dirs: Tuple[str, ...] = ()  # where its submodules live (packages and namespace folders)


class _Summary(NamedTuple):
    names: Tuple[str, ...]
    stars: Tuple[str, ...]
    open: bool
    imports: Tuple[Tuple[str, Tuple[str, ...], int], ...]  # module-level, unguarded: (module, names, line)
    calls: Tuple[Tuple[str, Tuple[str, ...], int, bool], ...] = ()  # (callee as written, keywords, line, built)
    bindings: Tuple[Tuple[str, str, str], ...] = ()  # (local, module, name or "" for a module)


class KeywordSite(NamedTuple):
    """A module-level call, with literal keywords, of something imported from another module."""

    module: str  # where the callee is imported from ("peft")
    name: str  # its name there ("LoraConfig")
    keywords: Tuple[str, ...]
    built: bool  # a config's dict(type=Callee, ...), built later with these keywords
    importer: str  # the calling module (a config: its file name)
    path: str
    line: int
    chain: Tuple[str, ...]


def stdlib_names() -> Optional[Set[str]]:
    names = getattr(sys, "stdlib_module_names", None)
    return set(names) | set(sys.builtin_module_names) if names else None


class Finder:
    """Where a module lives among the examined environment's import folders (read, never imported)."""

    def __init__(self, folders: Sequence[str]):
        self.folders = [f for f in dict.fromkeys(folders) if f and os.path.isdir(f)]
        self._listing: Dict[str, Set[str]] = {}
        self._found: Dict[str, Optional[Located]] = {}

    def listing(self, folder: str) -> Set[str]:
        got = self._listing.get(folder)
        if got is None:
            try:
                got = set(os.listdir(folder))
            except OSError:
                got = set()
            self._listing[folder] = got
        return got

    def _in(self, folders: Sequence[str], name: str) -> Optional[Located]:
        spaces: List[str] = []
        for folder in folders:
            entries = self.listing(folder)
            if name in entries:
                sub = os.path.join(folder, name)
                if "__init__.py" in self.listing(sub):
                    return Located("pkg", os.path.join(sub, "__init__.py"), (sub,))
                if os.path.isdir(sub):
                    spaces.append(sub)
            if name + ".py" in entries:
                return Located("py", os.path.join(folder, name + ".py"))
            for entry in entries:
                if entry.startswith(name + ".") and entry.endswith((".so", ".pyd")):
                    return Located("ext", os.path.join(folder, entry))
        if spaces:
            return Located("ns", os.pathsep.join(spaces), tuple(spaces))
        return None

    def find(self, module: str) -> Optional[Located]:
        if module in self._found:
            return self._found[module]
        parent, _, last = module.rpartition(".")
        if not parent:
            found = self._in(self.folders, module)
        else:
            up = self.find(parent)
            found = self._in(up.dirs, last) if up is not None and up.dirs else None
        self._found[module] = found
        return found


class Cache:
    """Parsed module summaries by file identity, kept in the user's cache folder (an optimisation only)."""

    def __init__(self, path: Optional[str]):
        self.path = path
        self.entries: Dict[str, tuple] = {}
        self.dirty = False
        if path:
            try:
                with open(path, "rb") as handle:
                    # loads of one read: load(handle) reads the file piece by piece, 10x slower (80 ms here)
                    loaded = marshal.loads(handle.read())
                if isinstance(loaded, dict) and loaded.get("format") == CACHE_FORMAT:
                    self.entries = loaded["entries"]
            except (OSError, EOFError, ValueError, TypeError, KeyError):
                pass

    def get(self, path: str, module: str, is_package: bool) -> _Summary:
        try:
            st = os.stat(path)
            ident = (st.st_size, st.st_mtime_ns, module)
        except OSError:
            return _Summary((), (), True, ())
        hit = self.entries.get(path)
        if hit is not None and hit[0] == ident:
            return _Summary(*hit[1])
        summary = _parse(path, module, is_package)
        self.entries[path] = (ident, tuple(summary))
        self.dirty = True
        return summary

    def save(self) -> None:
        if not self.path or not self.dirty:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            tmp = "%s.%d.tmp" % (self.path, os.getpid())
            with open(tmp, "wb") as handle:
                marshal.dump({"format": CACHE_FORMAT, "entries": self.entries}, handle)
            os.replace(tmp, self.path)
        except OSError:
            pass


def _parse(path: str, module: str, is_package: bool) -> _Summary:
    from envdoctor.history.scan import outline, scan_source  # ast is loaded only when a file is new or changed

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return _Summary((), (), True, ())
    s = scan_source(outline(data), module, is_package, inner=False)
    if s.error:  # the outline cut in the wrong place (or the file does not parse): read it whole
        s = scan_source(data, module, is_package, inner=False)
    imports = tuple((r.module, r.names, r.line) for r in s.imports if not r.in_function and not r.guarded)
    calls = tuple((c.callee, c.keywords, c.line, c.built) for c in s.calls)
    return _Summary(s.names, s.stars, s.open or bool(s.error), imports, calls, s.bindings)


def call_targets(s: _Summary) -> List[Tuple[str, str, Tuple[str, ...], int, bool]]:
    """(module, name, keywords, line, built) of each call whose callee is an imported name
    (`from peft import LoraConfig` ... `LoraConfig(...)`) or a module's attribute (`transformers.X(...)`)."""
    bound = {local: (module, name) for local, module, name in s.bindings}
    out = []
    for callee, keywords, line, built in s.calls:
        parts = callee.split(".")
        if parts[0] not in bound:
            continue
        module, name = bound[parts[0]]
        if name and len(parts) == 1:
            out.append((module, name, keywords, line, built))
        elif not name and len(parts) >= 2:
            out.append((".".join([module] + parts[1:-1]), parts[-1], keywords, line, built))
    return out


def cache_path(folders: Sequence[str]) -> Optional[str]:
    from envdoctor.tomlcache import cache_file

    toml = cache_file()
    if not toml:
        return None
    import zlib

    key = zlib.crc32("\n".join(folders).encode("utf-8", "replace"))
    return os.path.join(os.path.dirname(toml), "imports-%08x.marshal" % key)


class Checker:
    def __init__(self, folders: Sequence[str], cache: Optional[Cache] = None, known_top: Iterable[str] = ()):
        self.finder = Finder(folders)
        self.cache = cache or Cache(None)
        self.stdlib = stdlib_names()
        self.known_top = set(known_top)  # third-party top-level modules we know (when stdlib names are not)
        self.failures: Dict[Tuple[str, str], List[Failure]] = {}
        self.sites: List[KeywordSite] = []
        self.result: List[Failure] = []
        self.modules_read = 0

    def summary(self, module: str) -> Optional[_Summary]:
        found = self.finder.find(module)
        if found is None or found.kind not in ("py", "pkg"):
            return None
        self.modules_read += 1
        return self.cache.get(found.path, module, found.kind == "pkg")

    def names(self, module: str, seen: Tuple[str, ...] = ()) -> Optional[Set[str]]:
        """The module's names, star imports resolved; None where they cannot all be known."""
        s = self.summary(module)
        if s is None or s.open or module in seen:
            return None
        out = set(s.names)
        for star in s.stars:
            more = self.names(star, seen + (module,))
            if more is None:
                return None
            out |= {n for n in more if not n.startswith("_")}
        return out

    def missing_module(self, module: str) -> Optional[str]:
        """The first missing prefix of a dotted module name, or None when it can be imported (or we cannot tell)."""
        parts = module.split(".")
        top = parts[0]
        if self.finder.find(top) is None:
            if top in sys.builtin_module_names or top.startswith("_"):
                return None
            if self.stdlib is not None:
                return None if top in self.stdlib else top
            return top if top in self.known_top else None
        for i in range(2, len(parts) + 1):
            prefix = ".".join(parts[:i])
            parent = self.finder.find(".".join(parts[: i - 1]))
            if parent is not None and parent.kind in ("ext",):
                return None  # a compiled package: submodules unknown
            if self.finder.find(prefix) is None:
                if parent is not None and parent.kind == "pkg":
                    # a submodule can also be set as an attribute by the package (rare); names decide
                    names = self.names(".".join(parts[: i - 1]))
                    if names is None or parts[i - 1] in names:
                        return None
                    return prefix
                return None
        return None

    def run(self, roots: Sequence[Tuple[str, ...]], files: Sequence[str] = ()) -> List[Failure]:
        """Follow from the root modules and from files of the user's (an XTuner config), read the same way."""
        queue: deque = deque()
        seen: Set[str] = set()
        for chain in roots:
            self._follow(chain[:-1], chain[-1], queue, seen, always=True)
        for path in files:
            s = self.cache.get(path, "__config__", False)
            label = os.path.basename(path)
            for target, names, line in s.imports:
                if target and not target.startswith("__config__"):
                    self._check((label,), path, target, names, line, queue, seen)
            self._sites(s, (label,), path)
        while queue:
            chain = queue.popleft()
            module = chain[-1]
            found = self.finder.find(module)
            s = self.summary(module)
            if s is None or found is None:
                continue
            for target, names, line in s.imports:
                self._check(chain, found.path, target, names, line, queue, seen)
            self._sites(s, chain, found.path)
        return [group[0]._replace() for group in self.failures.values()]

    def _sites(self, s: _Summary, chain: Tuple[str, ...], path: str) -> None:
        for module, name, keywords, line, built in call_targets(s):
            if not module.startswith("__config__"):
                self.sites.append(KeywordSite(module, name, keywords, built, chain[-1], path, line, chain))

    def _follow(self, chain, module: str, queue, seen: Set[str], always: bool = False) -> None:
        parts = module.split(".")
        if parts[0] not in FOLLOW and not always:
            return
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix not in seen:
                seen.add(prefix)
                queue.append(chain + (prefix,))

    def _fail(self, failure: Failure) -> None:
        self.failures.setdefault((failure.message, failure.error), []).append(failure)

    def _check(self, chain, path: str, target: str, names, line: int, queue, seen) -> None:
        importer = chain[-1]
        if not target:
            return
        missing = self.missing_module(target)
        if missing is not None:
            self._fail(Failure("No module named '%s'" % missing, "ModuleNotFoundError", missing, "", importer, path,
                               line, chain))
            return
        self._follow(chain, target, queue, seen)
        if not names or names == ("*",):
            return
        found = self.finder.find(target)
        if found is None or found.kind not in ("py", "pkg"):
            return
        known = self.names(target)
        for name in names:
            if name == "*" or (known is None) or name in known:
                if name != "*" and found.kind == "pkg" and self.finder.find(target + "." + name) is not None:
                    self._follow(chain, target + "." + name, queue, seen)
                continue
            if found.kind == "pkg" and self.finder.find(target + "." + name) is not None:
                self._follow(chain, target + "." + name, queue, seen)
                continue
            self._fail(Failure("cannot import name '%s' from '%s' (%s)" % (name, target, found.path), "ImportError",
                               target, name, importer, path, line, chain))


def importers(failures_by_key, failure: Failure) -> List[Failure]:
    return failures_by_key.get((failure.message, failure.error), [failure])


def check_environment(folders: Sequence[str], installed: Iterable[str], files: Sequence[str] = (),
                      known_top: Iterable[str] = (), use_cache: bool = True) -> Tuple[List[Failure], Dict]:
    """Failures from the entry modules of the installed stack (canonical distribution names)."""
    checker = examine(folders, installed, files, known_top, use_cache)
    return checker.result, checker.failures


def examine(folders: Sequence[str], installed: Iterable[str], files: Sequence[str] = (),
            known_top: Iterable[str] = (), use_cache: bool = True) -> "Checker":
    """The import check's run: its failures (.result, grouped in .failures), the module-level calls
    with keywords it saw (.sites), and where modules are (.finder)."""
    folders = list(dict.fromkeys(folders))
    cache = Cache(cache_path(folders) if use_cache else None)
    checker = Checker(folders, cache, known_top)
    roots: List[Tuple[str, ...]] = []
    installed = set(installed)
    for dist, modules in ENTRY_MODULES.items():
        if dist in installed:
            roots.extend((m,) for m in modules if checker.finder.find(m) is not None)
    checker.result = checker.run(roots, files)
    cache.save()
    return checker
