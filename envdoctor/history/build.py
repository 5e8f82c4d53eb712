"""Per-release records from a release's files, and their merge into one compact file per package.

Used by scripts/build_history.py and its tests (never at run time of check/explain). The compact
format is read by envdoctor.history.load; see that module for its shape.
"""

import hashlib
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from packaging.version import Version

from envdoctor.history.archive import Release, as_text
from envdoctor.history.ranges import encode
from envdoctor.history.shards import shard_key
from envdoctor.history.scan import ModuleSummary, Params, model_types, module_name, scan_source, star_names

FORMAT = 1
CLASS_MARK = "__init__"  # among a callable's keywords: it is a class (no parameter has this name)
# Packages whose imports of other packages are recorded (they are what pins are checked with).
IMPORTERS = {"xtuner", "peft", "trl", "accelerate", "deepspeed", "mmengine"}
STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"__future__"}


_MEMO: Dict[Tuple[bytes, str, bool], ModuleSummary] = {}  # identical files recur across releases


def _scan(data: bytes, module: str, is_package: bool) -> ModuleSummary:
    key = (hashlib.sha1(data).digest(), module, is_package)
    found = _MEMO.get(key)
    if found is None:
        found = _MEMO[key] = scan_source(as_text(data), module, is_package)
    return found


def summaries_of(release: Release) -> Tuple[Dict[str, ModuleSummary], Dict[str, str]]:
    """Each module's summary, and each module's kind ('py', 'ext' or 'ns' for a namespace folder)."""
    out: Dict[str, ModuleSummary] = {}
    kinds: Dict[str, str] = {}
    for path in sorted(release.files):
        found = module_name(path)
        if not found:
            continue
        module, is_package = found
        if path.endswith(".py") and _is_config(module):
            kinds[module] = "py"  # never parsed: see _is_config
        elif path.endswith(".py"):
            out[module] = _scan(release.files[path], module, is_package)
            kinds[module] = "py"
        else:
            kinds.setdefault(module, "ext")
    # folders holding modules but no __init__.py: namespace packages
    for module in list(kinds):
        parts = module.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            kinds.setdefault(parent, "ns")
    return out, kinds


def _names(module: str, summaries: Dict[str, ModuleSummary], kinds: Dict[str, str]) -> Tuple[List[str], bool]:
    """A module's names, its star imports resolved; open when some cannot be known."""
    kind = kinds[module]
    if kind != "py" or module not in summaries:
        return [], True  # a C extension's names, a namespace folder: unknown (never a false error)
    s = summaries[module]
    names = list(s.names)
    open_ = s.open or bool(s.error)
    for star in s.stars:
        more = star_names(star, summaries)
        if more is None:
            open_ = True
        else:
            names.extend(more)
    return sorted(set(names)), open_


def _resolve_params(summaries: Dict[str, ModuleSummary]) -> Dict[str, Tuple[List[str], bool, bool]]:
    """Qualified name -> (parameter names, open, is a class). Inherited __init__ / dataclass fields resolved by class name
    within the release; a base we cannot see makes the result open (more keywords may be accepted)."""
    by_class: Dict[str, Params] = {}
    for module in sorted(summaries):
        for name, p in summaries[module].params.items():
            by_class.setdefault(name, p)

    def params_of(p: Params, depth: int) -> Optional[Tuple[List[str], bool]]:
        if p.kind == "init":
            return list(p.names), p.open
        inherited: Optional[Tuple[List[str], bool]] = None
        for base in p.bases:
            known = by_class.get(base.split(".")[-1])
            if known is not None and depth < 10:
                inherited = params_of(known, depth + 1)
                break
        if p.kind == "inherit":
            return inherited  # None: unknown
        if inherited is None:
            return list(p.names), bool(p.bases)
        return inherited[0] + list(p.names), inherited[1]

    out: Dict[str, Tuple[List[str], bool, bool]] = {}
    for module, s in summaries.items():
        if any(part.startswith("_") for part in module.split(".")[1:]):
            continue
        for name, p in s.params.items():
            resolved = params_of(p, 0)
            if resolved is not None:
                out[module + "." + name] = (sorted(set(resolved[0])), resolved[1], p.is_class)
    return out


ENTRY_PACKAGES = {"xtuner", "peft", "trl", "mmengine", "deepspeed"}
# Packages whose top-level literal dicts have their keys recorded (a config names XTuner's
# PROMPT_TEMPLATE.<key>, SYSTEM_TEMPLATE.<key>; a release without the key fails when the config loads).
MEMBER_PACKAGES = {"xtuner"}


def _members(summaries: Dict[str, ModuleSummary]) -> Dict[str, List[str]]:
    """'module.NAME' -> the keys of its literal dict, where it is defined and where a package re-exports
    it (`from .templates import PROMPT_TEMPLATE` in xtuner/utils/__init__.py), through star imports too.
    Plain modules that import a dict to use it are not re-exporters. A dict whose keys are not all
    visible is left out (unknown)."""
    found: Dict[Tuple[str, str], Optional[Tuple[str, ...]]] = {}
    for module, s in summaries.items():
        for name, keys in s.members.items():
            found[(module, name)] = keys
    packages = {m.rsplit(".", 1)[0] for m in summaries if "." in m}
    for _ in range(10):  # re-exports of re-exports; a chain is short
        added = False
        for module, s in summaries.items():
            if module not in packages:
                continue
            links = [(local, src, orig) for local, src, orig in s.reexports]
            for star in s.stars:
                links.extend((name, star, name) for (m, name) in list(found) if m == star and not name.startswith("_"))
            for local, src, orig in links:
                if (src, orig) in found and (module, local) not in found and local not in s.members:
                    found[(module, local)] = found[(src, orig)]
                    added = True
        if not added:
            break
    out: Dict[str, List[str]] = {}
    for (module, name), keys in found.items():
        private = any(part.startswith("_") for part in module.split(".")[1:]) or name.startswith("_")
        if keys is not None and not private:
            out[module + "." + name] = sorted(set(keys))
    return dict(sorted(out.items()))


def _links(summaries: Dict[str, ModuleSummary], kinds: Dict[str, str]) -> List[List[str]]:
    """Module-level, unguarded imports between a package's own modules: what importing its entry
    modules runs (so pins are checked only for imports that really happen)."""
    own = {m.split(".")[0] for m in kinds}
    out = set()
    for module, s in summaries.items():
        for ref in s.imports:
            if ref.in_function or ref.guarded or ref.module.split(".")[0] not in own:
                continue
            targets = [ref.module] + [ref.module + "." + n for n in ref.names if ref.module + "." + n in kinds]
            for t in targets:
                parts = t.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                    prefix = ".".join(parts[:i])
                    if prefix in kinds and prefix != module:
                        out.add((module, prefix))
    return sorted(map(list, out))


def _is_config(module: str) -> bool:
    # XTuner's shipped example configs: hundreds of modules a user copies, never imports by name
    return module.startswith("xtuner.configs.")


def release_record(package: str, version: str, release: Release) -> dict:
    summaries, kinds = summaries_of(release)
    modules = {}
    for module in sorted(kinds):
        if _is_config(module):
            modules[module] = {"names": [], "open": True, "kind": kinds[module]}
            continue
        names, open_ = _names(module, summaries, kinds)
        modules[module] = {"names": names, "open": open_, "kind": kinds[module]}
    record = {
        "package": package,
        "version": version,
        "kind": release.kind,
        "requires_dist": release.requires_dist,
        "requires_python": release.requires_python,
        "modules": modules,
        "params": {k: list(v) for k, v in sorted(_resolve_params(summaries).items())},
    }
    if package == "transformers":
        path = "transformers/models/auto/configuration_auto.py"
        if path in release.files:
            record["model_types"] = sorted(model_types(as_text(release.files[path])))
    if package in IMPORTERS:
        own = {m.split(".")[0] for m in kinds}
        imports = []
        for module, s in sorted(summaries.items()):
            if _is_config(module):
                continue
            for ref in s.imports:
                top = ref.module.split(".")[0]
                if not top or top in own or top in STDLIB:
                    continue
                names = [n for n in ref.names if n != "*"] or [""]
                for n in names:
                    imports.append([module, ref.module, n, int(ref.in_function), int(ref.guarded)])
        record["imports"] = sorted(map(list, set(map(tuple, imports))))
    if package in ENTRY_PACKAGES:
        record["links"] = _links(summaries, kinds)
    if package in MEMBER_PACKAGES:
        record["members"] = _members({m: s for m, s in summaries.items() if not _is_config(m)})
    record["imports_top"] = _imports_top(summaries, kinds)
    return record


def _imports_top(summaries: Dict[str, ModuleSummary], kinds: Dict[str, str]) -> List[str]:
    """The other top-level modules this release imports at module level, unguarded, from its public
    modules: the libraries one level down whose names and modules the history also records."""
    own = {m.split(".")[0] for m in kinds}
    out: Set[str] = set()
    for module, s in summaries.items():
        if _is_config(module) or any(p.startswith("_") or p in ("tests", "testing_utils") for p in module.split(".")[1:]):
            continue
        for ref in s.imports:
            top = ref.module.split(".")[0]
            if top and top not in own and top not in STDLIB and not ref.in_function and not ref.guarded:
                out.add(top)
    return sorted(out)


def _group(presence: Dict[str, Set[int]]) -> Dict[str, str]:
    """{item: set of release indices} -> {range: 'item item ...'} (items sharing a range share a line)."""
    out: Dict[str, List[str]] = {}
    for item, where in presence.items():
        out.setdefault(encode(where), []).append(item)
    return {r: " ".join(sorted(items)) for r, items in sorted(out.items())}


def merge_package(package: str, records: Sequence[dict], selection: Optional[dict] = None,
                  not_examined: Iterable[str] = ()) -> dict:
    """One compact history for a package from its per-release records."""
    records = sorted(records, key=lambda r: Version(r["version"]))
    versions = [r["version"] for r in records]
    module_at: Dict[str, Set[int]] = {}
    open_at: Dict[str, Set[int]] = {}
    names_at: Dict[str, Dict[str, Set[int]]] = {}
    params_at: Dict[str, Dict[str, Set[int]]] = {}
    params_open: Dict[str, Set[int]] = {}
    types_at: Dict[str, Set[int]] = {}
    imports_at: Dict[str, Set[int]] = {}
    links_at: Dict[str, Set[int]] = {}
    requires_at: Dict[str, Set[int]] = {}
    members_at: Dict[str, Dict[str, Set[int]]] = {}
    imports_top_at: Dict[str, Set[int]] = {}
    for i, r in enumerate(records):
        for top in r.get("imports_top", ()):
            imports_top_at.setdefault(top, set()).add(i)
        for module, m in r["modules"].items():
            module_at.setdefault(module, set()).add(i)
            if m["open"] and not _is_config(module):
                open_at.setdefault(module, set()).add(i)
            per = names_at.setdefault(module, {})
            for n in m["names"]:
                per.setdefault(n, set()).add(i)
        for qual, value in r["params"].items():
            names, open_ = value[0], value[1]
            per = params_at.setdefault(qual, {})
            per.setdefault("", set()).add(i)  # the callable is known at this release
            if len(value) > 2 and value[2]:
                per.setdefault(CLASS_MARK, set()).add(i)  # a class: Python names it Class.__init__()
            for n in names:
                per.setdefault(n, set()).add(i)
            if open_:
                params_open.setdefault(qual, set()).add(i)
        for qual, keys in r.get("members", {}).items():
            per = members_at.setdefault(qual, {})
            per.setdefault("", set()).add(i)  # the dict's keys are known at this release
            for k in keys:
                per.setdefault(k, set()).add(i)
        for t in r.get("model_types", ()):
            types_at.setdefault(t, set()).add(i)
        for a, b in r.get("links", ()):
            links_at.setdefault(a + ">" + b, set()).add(i)
        for imp in (r.get("imports", ()) if package in IMPORTERS else ()):
            imports_at.setdefault("|".join(str(x) for x in imp), set()).add(i)
        req = [x for x in r["requires_dist"] if "extra ==" not in x.replace("'", '"').replace(" ", " ")]
        key = "\n".join([r["requires_python"] or ""] + sorted(req))
        requires_at.setdefault(key, set()).add(i)
    data = {
        "format": FORMAT,
        "package": package,
        "versions": versions,
        "inputs": [[r["version"], r.get("file", ""), r.get("sha256", ""), r.get("kind", "")] for r in records],
        "selection": selection or {},
        "not_examined": sorted(not_examined),
        "modules": {m: encode(w) for m, w in sorted(module_at.items())},
        "open": {m: encode(w) for m, w in sorted(open_at.items())},
        "names": {m: _group(p) for m, p in sorted(names_at.items()) if p},
        "params": {q: _group(p) for q, p in sorted(params_at.items())},
        "params_open": {q: encode(w) for q, w in sorted(params_open.items())},
        "requires": {encode(w): k for k, w in sorted(requires_at.items())},
    }
    if types_at:
        data["model_types"] = _group(types_at)
    if imports_at:
        data["imports"] = _group(imports_at)
    if links_at:
        data["links"] = _group(links_at)
    if imports_top_at:
        data["imports_top"] = _group(imports_top_at)
    if members_at:
        data["members"] = {q: _group(p) for q, p in sorted(members_at.items())}
    return data


SHARDED = ("modules", "open", "names", "params", "params_open")
SHARDED_IF_ANY = ("members",)  # in a shard only where the package records them


def split(data: dict) -> Tuple[dict, Dict[str, dict]]:
    """The package's main file (small: versions, requirements, imports, where each shard is) and its shards."""
    main = {k: v for k, v in data.items() if k not in SHARDED + SHARDED_IF_ANY}
    # Parameters are kept for the package's public API: what its top-level modules export.
    exported: Set[str] = set()
    for module, groups in data["names"].items():
        if "." not in module:
            for names in groups.values():
                exported.update(names.split(" "))
    data = dict(data, params={q: v for q, v in data["params"].items() if q.rsplit(".", 1)[1] in exported},
                params_open={q: v for q, v in data["params_open"].items() if q.rsplit(".", 1)[1] in exported})
    shards: Dict[str, dict] = {}
    for section in SHARDED:
        for key, value in data[section].items():
            module = key.rsplit(".", 1)[0] if section.startswith("params") else key
            shards.setdefault(shard_key(module), {s: {} for s in SHARDED})[section][key] = value
    for section in SHARDED_IF_ANY:
        for key, value in data.get(section, {}).items():
            shard = shards.setdefault(shard_key(key.rsplit(".", 1)[0]), {s: {} for s in SHARDED})
            shard.setdefault(section, {})[key] = value
    callables: Dict[str, List[str]] = {}
    for qual in data["params"]:
        callables.setdefault(qual.rsplit(".", 1)[1], []).append(qual)
    main["shards"] = sorted(shards)
    # keyword questions name a class, not its module: an index of them, in a shard of its own
    shards["_callables"] = {"callables": {k: sorted(v) for k, v in sorted(callables.items())}}
    return main, shards
