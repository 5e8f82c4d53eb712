"""The shipped API history: one compact file per package under knowledge/history/, loaded lazily.

A package's file (written by scripts/build_history.py) holds ``versions`` (the examined releases, in
order) and, for each fact, the set of those releases where it holds, as index ranges ("0-3,7"):
``modules`` {module: range}, ``open`` {module: range where its names cannot all be seen},
``names`` {module: {range: "name name"}}, ``params`` {callable: {range: "kw kw"}} (the empty
keyword "" marks where the callable is known), ``params_open``, ``model_types`` {range: "t t"},
``imports`` {range: "from|target|name|in_function|guarded ..."}, ``requires`` {range: "python\\nreq..."}.

A question about a version that was not examined is answered from the examined releases on both
sides of it, and only where they agree; otherwise the answer is unknown (None), never a guess.
"""

import json
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from envdoctor.history.ranges import contains, decode

HISTORY_DIR = "history"


class Span(NamedTuple):
    """Where something holds, in words a person and a pin can use."""

    first: str  # first examined release where it holds
    last: str  # last examined release where it holds
    before: Optional[str]  # the examined release before `first` (it lacks it), None if first is the oldest
    after: Optional[str]  # the examined release after `last` (it lacks it), None if last is the newest

    def text(self) -> str:
        if self.first == self.last:
            out = self.first
        else:
            out = "%s to %s" % (self.first, self.last)
        return out + (" (and newer examined releases)" if self.after is None else "")

    def specifier(self) -> str:
        """A pin range covering the span with no unexamined guess: >=first, <after."""
        parts = []
        if self.before is not None:
            parts.append(">=" + self.first)
        if self.after is not None:
            parts.append("<" + self.after)
        return ",".join(parts)


def knowledge_dirs(extra_kb: Sequence[str] = ()) -> List[str]:
    """The shipped history, then a --kb folder's own history/ (a package file there replaces the shipped one)."""
    from envdoctor.kb.shipped import shipped_dir  # late: only when a lookup is made

    out = [os.path.join(d, HISTORY_DIR) for d in (shipped_dir(),) + tuple(extra_kb)]
    return [d for d in dict.fromkeys(out) if os.path.isdir(d)]


def _version_key(text: str):
    from packaging.version import Version
    return Version(text)


class PackageHistory:
    """One package's history; every question takes a version string and answers True/False/None."""

    def __init__(self, data: dict, folder: Optional[str] = None):
        """`data`: a package's main file; its shards (module facts) are read from `folder` on first use.
        A merged history that was never split (the builder's tests) holds everything in `data`."""
        self.data = data
        self.folder = folder
        self._shards: Dict[str, dict] = {}
        self.package: str = data["package"]
        self.versions: List[str] = data["versions"]
        self._keys = [_version_key(v) for v in self.versions]
        self.per_minor = data.get("selection", {}).get("every") == "minor"

    # -- where a version falls among the examined releases
    def neighbours(self, version: str) -> Tuple[Optional[int], Optional[int]]:
        """(index at or below, index at or above); equal when examined; None past either end."""
        try:
            key = _version_key(version)
        except Exception:
            return None, None
        lo = hi = None
        for i, k in enumerate(self._keys):
            if k <= key:
                lo = i
            if k >= key and hi is None:
                hi = i
        if lo is not None and hi is not None and self._keys[lo] != key and self.per_minor:
            # only each minor's last patch was examined: 4.42.3 is answered by the examined 4.42.4
            if self._keys[hi].release[:2] == key.release[:2]:
                lo = hi
        return lo, hi

    def _holds(self, ranges: Optional[str], version: str) -> Optional[bool]:
        lo, hi = self.neighbours(version)
        if lo is None or hi is None:
            return None
        a = bool(ranges) and contains(ranges, lo)
        b = bool(ranges) and contains(ranges, hi)
        return a if a == b else None

    def span(self, ranges: str) -> List[Span]:
        idx = sorted(decode(ranges))
        out: List[Span] = []
        start = None
        for j, i in enumerate(idx):
            if start is None:
                start = i
            if j + 1 == len(idx) or idx[j + 1] != i + 1:
                before = self.versions[start - 1] if start > 0 else None
                after = self.versions[i + 1] if i + 1 < len(self.versions) else None
                out.append(Span(self.versions[start], self.versions[i], before, after))
                start = None
        return out

    def _part(self, module: str) -> dict:
        """The facts about `module`: its shard (loaded once), or the whole unsplit data."""
        if "shards" not in self.data:
            return self.data
        from envdoctor.history.shards import shard_key

        key = shard_key(module)
        if key not in self._shards:
            shard = {}
            if key in self.data["shards"] and self.folder:
                try:
                    with open(os.path.join(self.folder, self.package, key + ".json"), encoding="utf-8") as f:
                        shard = json.load(f)
                except (OSError, ValueError):
                    shard = {"damaged": True}  # unknown, never a claim
            self._shards[key] = shard
        return self._shards[key]

    def _callables(self) -> Dict[str, List[str]]:
        if "_callables" not in self._shards:
            path = os.path.join(self.folder or "", self.package, "_callables.json")
            try:
                with open(path, encoding="utf-8") as f:
                    self._shards["_callables"] = json.load(f)
            except OSError:
                self._shards["_callables"] = {}
        return self._shards["_callables"].get("callables", {})

    def _get(self, section: str, key: str, module: Optional[str] = None):
        return self._part(module or key).get(section, {}).get(key)

    # -- modules and names
    def module_ranges(self, module: str) -> str:
        return self._get("modules", module) or ""

    def has_module(self, module: str, version: str) -> Optional[bool]:
        if self._part(module).get("damaged"):
            return None
        return self._holds(self.module_ranges(module), version)

    def is_open(self, module: str, version: str) -> Optional[bool]:
        return self._holds(self._get("open", module) or "", version)

    def name_ranges(self, module: str, name: str) -> str:
        """Where `from module import name` finds it: a name of the module, or a submodule."""
        found: Set[int] = set()
        for ranges, names in (self._get("names", module) or {}).items():
            if name in names.split(" "):
                found |= decode(ranges)
        sub = self.module_ranges(module + "." + name)
        if sub:
            found |= decode(sub)
        from envdoctor.history.ranges import encode
        return encode(found)

    def has_name(self, module: str, name: str, version: str) -> Optional[bool]:
        """True/False where known; None where unknown (not examined, or the module's names are open)."""
        if self.has_module(module, version) is not True:
            return None
        if self._holds(self.name_ranges(module, name), version):
            return True
        if self.is_open(module, version) is not False:
            return None
        return self._holds(self.name_ranges(module, name), version)

    # -- parameters
    def keyword_ranges(self, callable_: str, keyword: str) -> str:
        found: Set[int] = set()
        for ranges, names in (self._get("params", callable_, callable_.rsplit(".", 1)[0]) or {}).items():
            if keyword in names.split(" "):
                found |= decode(ranges)
        from envdoctor.history.ranges import encode
        return encode(found)

    def callables_named(self, name: str) -> List[str]:
        """Qualified callables whose last part is `name` (Class or function), shortest module first."""
        if "shards" in self.data:
            found = self._callables().get(name, [])
        else:
            found = [q for q in self.data["params"] if q.endswith("." + name)]
        return sorted(found, key=lambda q: (q.count("."), q))

    def accepts(self, callable_: str, keyword: str, version: str) -> Optional[bool]:
        known = self.keyword_ranges(callable_, "")
        if self._holds(known, version) is not True:
            return None
        if self._holds(self.keyword_ranges(callable_, keyword), version):
            return True
        if self._holds(self._get("params_open", callable_, callable_.rsplit(".", 1)[0]) or "", version) is not False:
            return None
        return False

    # -- keys of top-level literal dicts (XTuner's PROMPT_TEMPLATE.<key>)
    def member_ranges(self, qualified: str, key: str) -> str:
        """Where the dict `qualified` ('xtuner.utils.PROMPT_TEMPLATE') has `key`; key "" : where its keys are known."""
        found: Set[int] = set()
        for ranges, keys in (self._get("members", qualified, qualified.rsplit(".", 1)[0]) or {}).items():
            if key in keys.split(" "):
                found |= decode(ranges)
        from envdoctor.history.ranges import encode
        return encode(found)

    def has_member(self, qualified: str, key: str, version: str) -> Optional[bool]:
        """True/False where the dict's keys are known at `version`; None otherwise (never a guess)."""
        if self._holds(self.member_ranges(qualified, ""), version) is not True:
            return None
        return self._holds(self.member_ranges(qualified, key), version)

    # -- model types, declared requirements, recorded imports
    def model_type_ranges(self, model_type: str) -> str:
        found: Set[int] = set()
        for ranges, names in self.data.get("model_types", {}).items():
            if model_type in names.split(" "):
                found |= decode(ranges)
        from envdoctor.history.ranges import encode
        return encode(found)

    def knows_model_type(self, model_type: str, version: str) -> Optional[bool]:
        if not self.data.get("model_types"):
            return None
        return self._holds(self.model_type_ranges(model_type), version)

    def requires(self, version: str) -> Optional[Tuple[Optional[str], List[str]]]:
        """(Requires-Python, Requires-Dist without extras) of an examined release (exact match only)."""
        lo, hi = self.neighbours(version)
        if lo is None or lo != hi or _version_key(self.versions[lo]) != _version_key(version):
            return None
        for ranges, text in self.data["requires"].items():
            if contains(ranges, lo):
                lines = text.split("\n")
                return (lines[0] or None), [x for x in lines[1:] if x]
        return None

    def imports(self, version: str) -> Optional[List[Tuple[str, str, str, bool, bool]]]:
        """(from module, target module, name, in function, guarded) at an examined release."""
        lo, hi = self.neighbours(version)
        if lo is None or lo != hi:
            return None
        out = []
        for ranges, items in self.data.get("imports", {}).items():
            if contains(ranges, lo):
                for item in items.split(" "):
                    f, t, n, fn, g = item.split("|")
                    out.append((f, t, n, fn == "1", g == "1"))
        return sorted(out)


    def links(self, version: str) -> Optional[List[Tuple[str, str]]]:
        """Module-level imports between the package's own modules at an examined release."""
        lo, hi = self.neighbours(version)
        if lo is None or lo != hi or "links" not in self.data:
            return None
        out = []
        for ranges, items in self.data["links"].items():
            if contains(ranges, lo):
                out.extend(tuple(item.split(">")) for item in items.split(" "))  # type: ignore[misc]
        return out


class History:
    """Every package's history, each loaded on first use."""

    def __init__(self, dirs: Sequence[str]):
        self.dirs = list(dirs)
        self._index: Optional[dict] = None
        self._loaded: Dict[str, Optional[PackageHistory]] = {}

    @property
    def index(self) -> dict:
        if self._index is None:
            self._index = {"modules": {}, "packages": {}}
            for d in self.dirs:
                path = os.path.join(d, "index.json")
                if os.path.exists(path):
                    with open(path, encoding="utf-8") as f:
                        data = json.load(f)
                    self._index["modules"].update(data.get("modules", {}))
                    self._index["packages"].update(data.get("packages", {}))
        return self._index

    def package_of(self, module: str) -> Optional[str]:
        return self.index["modules"].get(module.split(".")[0])

    def package(self, name: str) -> Optional[PackageHistory]:
        if name not in self._loaded:
            found = None
            for d in self.dirs:
                path = os.path.join(d, name + ".json")
                if os.path.exists(path):
                    with open(path, encoding="utf-8") as f:
                        found = PackageHistory(json.load(f), d)
            self._loaded[name] = found
        return self._loaded[name]

    def for_module(self, module: str) -> Optional[PackageHistory]:
        name = self.package_of(module)
        return self.package(name) if name else None


_DEFAULT: Dict[Tuple[str, ...], History] = {}


def load_history(kb_dirs: Sequence[str] = ()) -> History:
    key = tuple(kb_dirs)
    if key not in _DEFAULT:
        _DEFAULT[key] = History(knowledge_dirs(kb_dirs))
    return _DEFAULT[key]
