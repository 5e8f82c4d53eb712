"""Build the API history of the stack from its released files (maintainer tool, not run by CI).

    python scripts/build_history.py [--out knowledge/history] [PACKAGE ...]

1. chooses the releases (scripts/history_fetch.py: SELECTIONS for the stack, derived_libs() for the
   libraries it imports at module level, read from the stack's history just built) and fetches them into
   ~/.cache/envdoctor-history with ``pip download --no-deps``;
2. reads each release file with ``ast`` (envdoctor.history.scan; nothing is imported or run) into a
   per-release summary, cached beside the file;
3. merges the summaries of each package into one compact file, knowledge/history/<package>.json:
   names, modules, parameters and model types stored as ranges of examined releases.

The output depends only on the release files (their names and sha256 are recorded in it), so a
rebuild from the same files gives the same bytes.
"""

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from email.parser import Parser
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from envdoctor.history.build import merge_package, release_record, split  # noqa: E402
from envdoctor.history.archive import read_release  # noqa: E402
import history_fetch  # noqa: E402

SUMMARY_FORMAT = 5  # bump when the per-release summary changes, to rescan the cache


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def summary_path(path: str) -> str:
    return path + ".summary-v%d.json" % SUMMARY_FORMAT


def summarise_package(todo) -> List[dict]:
    """Every release of one package, in one process (unchanged files are parsed once)."""
    return [summarise(item)[2] for item in todo]


def summarise(args) -> Tuple[str, str, Optional[dict]]:
    package, version, path = args
    print("read", package, version, flush=True)
    cached = summary_path(path)
    if os.path.exists(cached):
        with open(cached) as f:
            return package, version, json.load(f)
    release = read_release(path)
    record = release_record(package, version, release)
    record["file"] = os.path.basename(path)
    record["sha256"] = sha256(path)
    tmp = cached + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, cached)
    return package, version, record


def write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)


def build_date() -> str:
    """SOURCE_DATE_EPOCH when set (a rebuild then gives the same bytes), else today (UTC)."""
    import time
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return time.strftime("%Y-%m-%d", time.gmtime(int(epoch) if epoch else None))


def write_index(out: str) -> None:
    """index.json: which package each top-level module belongs to, and what each file covers."""
    modules: Dict[str, str] = {}
    packages: Dict[str, dict] = {}
    for name in sorted(os.listdir(out)):
        if not name.endswith(".json") or name == "index.json":
            continue
        with open(os.path.join(out, name)) as f:
            data = json.load(f)
        for module in data["shards"]:
            if "." not in module and not module.startswith("_"):
                modules.setdefault(module, data["package"])
        shard_dir = os.path.join(out, data["package"])
        size = os.path.getsize(os.path.join(out, name)) + sum(
            os.path.getsize(os.path.join(shard_dir, f)) for f in os.listdir(shard_dir))
        packages[data["package"]] = {"releases": len(data["versions"]), "first": data["versions"][0],
                                     "last": data["versions"][-1], "not_examined": data["not_examined"],
                                     "bytes": size}
    index = {"format": 1, "built": build_date(), "modules": modules, "packages": packages,
             "builder": "scripts/build_history.py"}
    tmp = os.path.join(out, "index.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, sort_keys=True, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "index.json"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "knowledge", "history"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-fetch", action="store_true", help="use only what the cache already holds")
    ap.add_argument("--shard", metavar="I/N", help="only read (and cache) the I-th of N contiguous blocks of each package's releases; write nothing")
    ap.add_argument("--versions", help="only read (and cache) these versions (comma-separated), in this order; write nothing")
    ap.add_argument("--cached-only", action="store_true", help="merge only releases already read (a partial span, recorded as such)")
    ap.add_argument("packages", nargs="*")
    args = ap.parse_args(argv)
    libs = history_fetch.derived_libs(args.out)  # one level down: from the stack's own history
    sels = [s for s in history_fetch.SELECTIONS + libs if not args.packages or s.package in args.packages]
    releases = history_fetch.plan(sels, offline=args.no_fetch)
    if args.no_fetch:
        files = {r: history_fetch.downloaded(*r) for r in releases}
    else:
        files = history_fetch.fetch_all(releases)
    todo = [(p, v, f) for (p, v), f in files.items() if f]
    missing = [(p, v) for (p, v), f in files.items() if not f]
    by_package: Dict[str, List[dict]] = {}
    groups: Dict[str, list] = {}
    for item in todo:
        groups.setdefault(item[0], []).append(item)
    if args.versions:
        order = args.versions.split(",")
        picked = sorted((i for i in todo if i[1] in order), key=lambda i: order.index(i[1]))
        summarise_package(picked)
        return 0
    if args.cached_only:
        skipped = [(p, v) for p, v, f in todo if not os.path.exists(summary_path(f))]
        todo = [(p, v, f) for p, v, f in todo if os.path.exists(summary_path(f))]
        missing.extend(skipped)
        groups = {}
        for item in todo:
            groups.setdefault(item[0], []).append(item)
    if args.shard:
        i, n = (int(x) for x in args.shard.split("/"))
        for package, items in groups.items():
            size = -(-len(items) // n)
            groups[package] = items[i * size:(i + 1) * size]
        with ProcessPoolExecutor(args.jobs) as pool:
            list(pool.map(summarise_package, groups.values()))
        return 0
    with ProcessPoolExecutor(args.jobs) as pool:
        for package, records in zip(groups, pool.map(summarise_package, groups.values())):
            by_package[package] = records
    os.makedirs(args.out, exist_ok=True)
    for sel in sels:
        records = by_package.get(sel.package)
        if not records:
            continue
        not_examined = sorted(v for p, v in missing if p == sel.package)
        data = merge_package(sel.package, records, selection=sel._asdict(), not_examined=not_examined)
        main_data, shards = split(data)
        folder = os.path.join(args.out, sel.package)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        for key, shard in shards.items():
            write_json(os.path.join(folder, key + ".json"), shard)
        target = os.path.join(args.out, sel.package + ".json")
        write_json(target, main_data)
        print("wrote", target, os.path.getsize(target), "and %d shards" % len(shards), flush=True)
    write_index(args.out)
    if missing:
        print("not available:", ", ".join("%s %s" % r for r in missing))
    if not args.packages:  # the stack's files just written may name libraries not built yet
        more = [lib.package for lib in history_fetch.derived_libs(args.out) if lib not in libs]
        if more:
            return main(list(argv or sys.argv[1:]) + more)
    return 0


if __name__ == "__main__":
    sys.exit(main())
