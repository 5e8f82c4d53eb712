"""Ask a real resolver whether a set of requirements installs for a target Python and platform.

uv resolves for any Python version and platform without that interpreter, from the index's
metadata alone (nothing is installed). uv reads only the lower bound of a release's
Requires-Python, while pip refuses a release whose upper bound excludes the target (xtuner
0.1.18 declares ``>=3.8, <3.11``); so every pin uv picks is checked against its full
Requires-Python here, read from the index's simple pages or from the --find-links files.
"""

import json
import os
import re
import shutil
import sys
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Set, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from envdoctor import subproc
from envdoctor.fix.locktypes import Index
from envdoctor.names import requirement_name

PYPI_SIMPLE = "https://pypi.org/simple/"
DEFAULT_PLATFORM = "x86_64-manylinux_2_28"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


class Target(NamedTuple):
    """What the set must install on: a Python (major.minor or full) and a uv platform name."""

    python: str
    platform: str = DEFAULT_PLATFORM

    @property
    def minor(self) -> str:
        return ".".join(self.python.split(".")[:2])


class Resolution(NamedTuple):
    ok: bool
    text: str = ""  # the pinned set, requirements.txt form (uv's output, its header removed)
    pins: Tuple[Tuple[str, str], ...] = ()  # (canonical name, version)
    reason: str = ""  # why it does not install, one line
    resolver: str = "uv"
    # The packages uv's answer rests on: the pins, or those its failure names (memo: how fresh).
    names: FrozenSet[str] = frozenset()


class ResolverError(Exception):
    """The resolver itself could not be run (not found, timed out): no verdict on the set."""


class Memo:
    """One run's resolutions (the caller keeps it for the length of the run). The planner puts
    the same set to uv again as it tries other Pythons and option sets, and the lockfile of the
    plan just checked is that same resolution: an answer is reused for the same inputs.

    And a candidate may be answered from uv's cache alone (``resolve(cached=True)``) once this
    run has asked the index: taken only when every package the answer rests on (its pins, or
    the ones its failure names) had its index page fetched by an earlier resolve of this run,
    so it says what the index would; otherwise uv asks the index. Each online resolve costs
    seconds where the index's pages carry no cache headers (uv then asks again each time)."""

    def __init__(self) -> None:
        self.answers: Dict[tuple, Tuple[Resolution, bool]] = {}  # inputs -> (answer, from the index)
        self.fresh: Dict[Index, Set[str]] = {}  # per index: packages whose pages this run fetched


def find_uv(explicit: Optional[str] = None) -> str:
    """--uv, ENVDOCTOR_UV, the uv installed beside this interpreter (a required dependency of
    envdoctor), or the one on PATH."""
    wanted = explicit or os.environ.get("ENVDOCTOR_UV")
    if wanted:
        found = shutil.which(wanted) or (wanted if os.access(wanted, os.X_OK) and os.path.isfile(wanted) else None)
        if not found:
            raise ResolverError("%s: uv not found there" % wanted)
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(beside, os.X_OK):
        return beside
    try:  # the uv package knows where its binary went (a --user or --target install)
        import uv  # type: ignore

        return uv.find_uv_bin()
    except Exception:
        pass
    found = shutil.which("uv")
    if not found:
        raise ResolverError("uv not found: reinstall envdoctor (uv is one of its dependencies) or pass --uv PATH")
    return found


def resolve(lines: Sequence[str], constraints: Sequence[str], target: Target, sources: Index,
            timeout: float, work: str, uv: Optional[str] = None, check_python: bool = True,
            annotate: bool = False, hashes: bool = False, prefer: Sequence[str] = (),
            memo: Optional[Memo] = None, cached: bool = False) -> Resolution:
    """Resolve lines (requirements.in) for the target with uv, then hold every pin to its
    Requires-Python. Raises ResolverError only when uv itself could not give an answer.
    With ``annotate`` the text is a lockfile body in pip-compile's format (``# via`` lines).
    ``prefer``: pins uv keeps where it can and moves only where it must (as an existing
    output file's pins are). ``memo``: the run's earlier answers, reused for the same inputs;
    with ``cached``, an answer from uv's cache where the run's earlier resolves make it as
    fresh as the index's (Memo); the lockfile's own resolve asks the index."""
    program = find_uv(uv)
    key = (program, tuple(lines), tuple(constraints), target, sources, check_python, annotate, hashes, tuple(prefer))
    known = memo.answers.get(key) if memo is not None else None
    if known is not None and (known[1] or cached):
        return known[0]
    args = (program, lines, constraints, target, sources, timeout, work, check_python, annotate, hashes, prefer)
    fresh = memo.fresh.get(sources, set()) if memo is not None else set()
    done = _resolve(*args, offline=True) if cached and fresh else None
    if done is not None and not (done.names and done.names <= fresh):
        done = None  # it rests on a page this run has not fetched: ask the index
    online = done is None
    if done is None:
        done = _resolve(*args)
    if memo is not None:
        memo.answers[key] = (done, online)
        if online:
            memo.fresh.setdefault(sources, set()).update(done.names, map(requirement_name, lines), map(requirement_name, constraints))
    return done


def _resolve(program: str, lines: Sequence[str], constraints: Sequence[str], target: Target, sources: Index,
             timeout: float, work: str, check_python: bool, annotate: bool, hashes: bool, prefer: Sequence[str],
             offline: bool = False) -> Optional[Resolution]:
    """uv's answer; ``offline``: from uv's cache alone, None when the cache cannot answer."""
    infile = os.path.join(work, "requirements.in")
    with open(infile, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    # Index lines come only from the user's own options, never from this machine's configuration.
    argv = [program, "pip", "compile", "--quiet", "--no-header", "--no-emit-index-url", "--no-emit-find-links",
            "--python-version", target.python, "--python-platform", target.platform]
    argv.append("--annotation-style=split" if annotate else "--no-annotate")
    if hashes:
        argv.append("--generate-hashes")
    if constraints:
        cfile = os.path.join(work, "constraints.txt")
        with open(cfile, "w", encoding="utf-8") as handle:
            handle.write("\n".join(constraints) + "\n")
        argv += ["--constraint", cfile]
    outfile = os.path.join(work, "resolved.txt")
    with open(outfile, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in prefer))
    argv += ["--output-file", outfile] + sources.pip_args() + [infile] + (["--offline"] if offline else [])
    # uv would otherwise try to download a Python it cannot find; the network may refuse it.
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", NO_COLOR="1")
    ran = subproc.run(argv, timeout=timeout, env=env, cwd=work)
    if ran.ok:
        try:
            with open(outfile, encoding="utf-8") as handle:
                ran = ran._replace(stdout=handle.read())
        except OSError as exc:
            raise ResolverError("uv wrote no output (%s)" % (exc.strerror or exc))
    if ran.returncode is None:
        raise ResolverError("uv (%s) did not finish: %s" % (program, ran.error))
    if not ran.ok:
        output = ran.stderr + "\n" + ran.stdout
        unreachable = _UNREACHABLE.search(output)
        if offline and (unreachable or _NOT_CACHED.search(output)):
            return None
        if unreachable:  # no verdict on the set: the index could not be asked
            raise ResolverError("could not reach the index (%s)" % " ".join(unreachable.group(0).split())[:200])
        return Resolution(False, reason=explain_failure(output), names=frozenset(_mentioned(output)))
    pins = tuple(parse_pins(ran.stdout))
    names = frozenset(name for name, _ in pins)
    if check_python:
        bad = python_conflicts(pins, target, sources, timeout)
        if bad:
            return Resolution(False, ran.stdout, pins, "; ".join(bad), names=names)
    return Resolution(True, ran.stdout, pins, names=names)


_NOT_CACHED = re.compile(r"network (?:was|is) disabled|not found in the cache|Network connectivity is disabled", re.I)
# Where uv's failure names a package: before a version operator, after "version(s) of" or
# "depend(s) on", before "was not found".
_MENTIONED = re.compile(r"\b([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?===|>=|<=|!=|~=|<|>)"
                        r"|versions? of ([A-Za-z0-9][A-Za-z0-9._-]*)|depends? on ([A-Za-z0-9][A-Za-z0-9._-]*)"
                        r"|\b([A-Za-z0-9][A-Za-z0-9._-]*) was not found")


def _mentioned(output: str) -> Set[str]:
    """The packages uv's failure names (Python itself is not a package)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", output)
    names = {canonicalize_name(next(g for g in found.groups() if g)) for found in _MENTIONED.finditer(text)}
    return names - {"python", "cpython"}


def parse_pins(text: str) -> List[Tuple[str, str]]:
    out = []
    for line in text.splitlines():
        found = _PIN.match(line.strip())
        if found:
            out.append((canonicalize_name(found.group(1)), found.group(2)))
    return out


_UNREACHABLE = re.compile(r"(Failed to fetch|error sending request|dns error|Could not connect|Connection refused|"
                          r"failed to lookup address|network is unreachable|timed out)[^\n]*", re.I)

_UV_REASONS = (
    (re.compile(r"(\S+?)==(\S+?) has no wheels with a matching Python ABI tag \(e\.g\., `(cp\d+)`\)"),
     "{0} {1} has no {2} wheels"),
    (re.compile(r"(\S+?)==(\S+?) has no wheels with a matching platform tag(?: \(e\.g\., `([^`]+)`\))?"),
     "{0} {1} has no wheels for this platform"),
    (re.compile(r"does not satisfy Python(\S+?) and (\S+?)==(\S+?) depends on Python"),
     "{1} {2} needs Python {0}"),
    (re.compile(r"Because (\S+?)==(\S+?) requires Python (\S+?) and"), "{0} {1} needs Python {2}"),
    (re.compile(r"Because there is no version of (\S+?)==(\S+?) and"), "no release {0} {1} is available from the index"),
    (re.compile(r"Because (\S+?) was not found in the (?:package registry|provided package locations)"),
     "{0} is not available from the index"),
    (re.compile(r"Because there is no version of (\S+?) and"), "no version of {0} is available from the index"),
)


def explain_failure(output: str) -> str:
    """uv's verdict in one line: the first cause it names, in our words where we know it."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", output)
    for pattern, words in _UV_REASONS:
        found = pattern.search(text)
        if found:
            return words.format(*[g or "" for g in found.groups()])
    cause = re.search(r"(?:cause|╰─▶):?\s*(.+?)(?:\n\s*\n|\Z)", text, re.S)
    if cause:
        return " ".join(cause.group(1).split())[:300]
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return (lines or ["uv failed without saying why"])[-1][:300]


def _simple_urls(index: Index) -> List[str]:
    return [] if index.no_index else [index.index_url or PYPI_SIMPLE] + list(index.extra_index_url)


def python_conflicts(pins: Sequence[Tuple[str, str]], target: Target, sources: Index, timeout: float) -> List[str]:
    """The pins whose Requires-Python excludes the target Python, in words."""
    python = target.python if target.python.count(".") >= 2 else target.python + ".0"
    wanted = {name: version for name, version in pins}
    declared = local_requires_python(sources.find_links, wanted)
    missing = [n for n in wanted if n not in declared]
    declared.update(index_requires_python(_simple_urls(sources), {n: wanted[n] for n in missing}, timeout))
    out = []
    for name, version in pins:
        spec = declared.get(name)
        if not spec:
            continue
        try:
            allowed = SpecifierSet(spec).contains(python, prereleases=True)
        except InvalidSpecifier:
            continue
        if not allowed:
            out.append("%s %s needs Python %s (the target is %s)" % (name, version, spec.replace(" ", ""), target.minor))
    return out


def local_requires_python(links: Sequence[str], wanted: Dict[str, str]) -> Dict[str, str]:
    """Requires-Python of the wanted releases found as files in --find-links folders."""
    out: Dict[str, str] = {}
    for folder in links:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            parsed = _file_release(entry)
            if parsed is None or wanted.get(parsed[0]) != parsed[1] or parsed[0] in out:
                continue
            spec = _metadata_requires_python(os.path.join(folder, entry))
            if spec is not None:
                out[parsed[0]] = spec
    return out


def _file_release(filename: str) -> Optional[Tuple[str, str]]:
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return (canonicalize_name(parts[0]), parts[1]) if len(parts) >= 5 else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            name, _, version = filename[: -len(suffix)].rpartition("-")
            return (canonicalize_name(name), version) if name else None
    return None


def _metadata_requires_python(path: str) -> Optional[str]:
    """Read (never run) the METADATA / PKG-INFO of a wheel or sdist."""
    import email.parser
    import tarfile
    import zipfile

    try:
        if path.endswith(".whl"):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1]
                data = archive.read(names[0]) if names else b""
        else:
            with tarfile.open(path) as archive:
                member = next((m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")), None)
                handle = archive.extractfile(member) if member is not None else None
                data = handle.read(1 << 20) if handle is not None else b""
    except (OSError, zipfile.BadZipFile, tarfile.TarError, KeyError):
        return None
    message = email.parser.BytesParser().parsebytes(data, headersonly=True)
    return message.get("Requires-Python") or ""


def index_requires_python(urls: Sequence[str], wanted: Dict[str, str], timeout: float) -> Dict[str, str]:
    """Requires-Python of each wanted release from the index's simple page (PEP 691 JSON, or
    the data-requires-python attribute of the HTML page), asked in parallel; a release already
    answered on an earlier run comes from the cache (released files do not change, and a lock
    of a real stack would otherwise fetch ~100 pages, torch's among them, on every run)."""
    if not urls or not wanted:
        return {}
    import concurrent.futures

    cache = _RequiresPythonCache(urls)
    out: Dict[str, str] = {}
    ask = {}
    for name, version in wanted.items():
        known = cache.get(name, version)
        if known is None:
            ask[name] = version
        elif known:
            out[name] = known
    if ask:
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            futures = {pool.submit(_page_requires_python, urls, name, version, min(timeout, 30.0)): name for name, version in ask.items()}
            for future in concurrent.futures.as_completed(futures):
                spec = future.result()
                name = futures[future]
                if spec is not None:  # found on the index ("" when it declares no range)
                    cache.put(name, ask[name], spec)
                if spec:
                    out[name] = spec
        cache.save()
    return out


class _RequiresPythonCache:
    """(index, release) -> Requires-Python, in the user's cache folder (ENVDOCTOR_CACHE_DIR, as
    the TOML cache; "off" turns it off). Only an optimisation: unreadable or unwritable, it is skipped."""

    def __init__(self, urls: Sequence[str]) -> None:
        from envdoctor.tomlcache import cache_file

        toml = cache_file()
        self.path = os.path.join(os.path.dirname(toml), "requires-python.json") if toml else None
        self.prefix = " ".join(urls) + " "
        self.entries: Dict[str, str] = {}
        self.added = False
        if self.path:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    loaded = json.load(handle)
                if isinstance(loaded, dict):
                    self.entries = {k: v for k, v in loaded.items() if isinstance(v, str)}
            except (OSError, ValueError, RecursionError):
                pass

    def get(self, name: str, version: str) -> Optional[str]:
        return self.entries.get(self.prefix + name + "==" + version)

    def put(self, name: str, version: str, spec: str) -> None:
        self.entries[self.prefix + name + "==" + version] = spec
        self.added = True

    def save(self) -> None:
        if not (self.path and self.added):
            return
        from envdoctor.safeio import write_beside

        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            write_beside(self.path, json.dumps(self.entries, sort_keys=True), 0o644)
        except OSError:
            pass


def _page_requires_python(urls: Sequence[str], name: str, version: str, timeout: float) -> Optional[str]:
    import urllib.parse
    import urllib.request

    for base in urls:
        url = base.rstrip("/") + "/" + name + "/"
        request = urllib.request.Request(url, headers={
            "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1", "User-Agent": "envdoctor"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                body = answer.read(64 << 20)
                kind = answer.headers.get("Content-Type", "")
        except (OSError, ValueError):
            continue
        files = _json_files(body) if "json" in kind else _html_files(body)
        for filename, spec in files:
            release = _file_release(urllib.parse.unquote(filename))
            if release is not None and release == (name, version):
                return spec or ""
    return None


def _json_files(body: bytes) -> List[Tuple[str, str]]:
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:
        return []
    return [(f.get("filename", ""), f.get("requires-python") or "") for f in data.get("files", []) if isinstance(f, dict)]


_ANCHOR = re.compile(r'<a\s[^>]*?href="([^"#]*)(?:#[^"]*)?"([^>]*)>', re.I)
_DATA_RP = re.compile(r'data-requires-python="([^"]*)"', re.I)


def _html_files(body: bytes) -> List[Tuple[str, str]]:
    import html

    out = []
    for found in _ANCHOR.finditer(body.decode("utf-8", "replace")):
        rp = _DATA_RP.search(found.group(0))
        out.append((found.group(1).rsplit("/", 1)[-1], html.unescape(rp.group(1)) if rp else ""))
    return out
