"""Source: a requirements file or a pip-compile lockfile, read statically (nothing installed).

Pins (``name==version``) become ``pkg.<name>`` facts; a requirement that allows a range
becomes an *unknown* fact and travels as an ``Unpinned`` value, so the check can say what the
range allows. Markers are evaluated for the target Python (``--python-version`` or the
running interpreter) on this platform. ``-r`` includes are followed; pip options (hashes,
index URLs) are skipped, except that a PyTorch wheel index (``.../whl/cu121``) tells the CUDA
build of an unlabelled torch pin. Lines envdoctor cannot use are reported with file:line.
"""

import os
import platform
import re
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from envdoctor.facts import Gathered, Problem, Unknown
from envdoctor.names import canonical_name
from envdoctor.sources._files import MIB, FileProblem, decode_text, read_capped
from envdoctor.specs import marker_environment

MAX_REQUIREMENTS = 16 * MIB  # a lockfile with hashes for a large stack is under 1 MiB
_CUDA_LABEL = re.compile(r"^cu(\d+)(\d)$")  # cu121 -> 12.1, cu118 -> 11.8
_TORCH_INDEX = re.compile(r"/whl/(cu\d+|cpu)/?$")
_INDEX_OPTIONS = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f")
# Options that take a value and say nothing about what gets installed.
_SKIPPED_OPTIONS = ("--hash", "--no-binary", "--only-binary", "--prefer-binary", "--trusted-host",
                    "--no-index", "--pre", "--use-feature", "--config-settings", "--global-option")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    where: str  # file:line
    extras: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Unpinned:
    name: str  # canonical
    specifier: str  # "" for no constraint at all
    where: str


@dataclass(frozen=True)
class RequirementsFile:
    path: str
    python: str  # the target Python markers were evaluated for
    pins: Tuple[Pin, ...]
    unpinned: Tuple[Unpinned, ...]
    indexes: Tuple[str, ...]  # index URLs and find-links named in the file
    problems: Tuple[Problem, ...]


def cuda_of_torch(version: str, indexes: Tuple[str, ...] = ()) -> Tuple[bool, Optional[str]]:
    """(known, cuda) from a torch version's local label, else from a PyTorch wheel index."""
    label = version.partition("+")[2]
    if not label:
        for url in indexes:
            found = _TORCH_INDEX.search(url)
            if found:
                label = found.group(1)
    if label == "cpu":
        return True, None
    match = _CUDA_LABEL.match(label)
    if match:
        return True, "%s.%s" % (match.group(1), match.group(2))
    return False, None


def _cuda_of_runtime(pins: Tuple[Pin, ...]) -> Tuple[bool, Optional[str]]:
    """A torch from PyPI has no local label, but pins the CUDA runtime it was built with
    (nvidia-cuda-runtime-cu12==12.1.105 for torch 2.1.2), and a lockfile holds that pin."""
    for pin in pins:
        if re.match(r"^nvidia-cuda-runtime-cu\d+$", pin.name):
            parts = pin.version.split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                return True, "%s.%s" % (parts[0], parts[1])
    return False, None


def _logical_lines(text: str) -> List[Tuple[int, str]]:
    """Join backslash continuations; drop comments. Returns (first line number, text)."""
    out: List[Tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


class _Reader:
    def __init__(self, python: str) -> None:
        self.python = python
        self.env = marker_environment(python)
        self.pins: Dict[str, Pin] = {}
        self.unpinned: Dict[str, Unpinned] = {}
        self.indexes: List[str] = []
        self.problems: List[Problem] = []
        self.seen: List[str] = []
        self.constraints: Dict[str, List[Tuple[str, str]]] = {}  # name -> [(specifier, file:line)] from -c

    def constraint_file(self, path: str, where: str) -> None:
        """-c FILE: its pins and ranges install nothing, but bind what the requirements name."""
        sub = _Reader(self.python)
        sub.seen = self.seen  # one file is read once, whichever way it is reached
        sub.read(path, where)
        self.problems.extend(sub.problems)
        for pin in sub.pins.values():
            self.constraints.setdefault(pin.name, []).append(("==" + pin.version, pin.where))
        for loose in sub.unpinned.values():
            if loose.specifier:
                self.constraints.setdefault(loose.name, []).append((loose.specifier, loose.where))
        for name, found in sub.constraints.items():
            self.constraints.setdefault(name, []).extend(found)

    def apply_constraints(self) -> None:
        """What pip does with -c: a requirement the files name is held to the constraint."""
        for name, found in self.constraints.items():
            for specifier, where in found:
                pinned = _pinned_version(Requirement("x" + specifier))
                loose = self.unpinned.get(name)
                if loose is not None and pinned is not None:
                    if loose.specifier and not SpecifierSet(loose.specifier).contains(pinned, prereleases=True):
                        self.problem(where, "constraint %s==%s conflicts with %s%s at %s" % (name, pinned, name, loose.specifier, loose.where))
                        continue
                    del self.unpinned[name]
                    self.pins[name] = Pin(name, pinned, "%s (constraint for %s)" % (where, loose.where))
                elif loose is not None:
                    joined = ",".join(s for s in (loose.specifier, specifier) if s)
                    self.unpinned[name] = Unpinned(name, joined, loose.where)
                elif pinned is not None and name in self.pins and self.pins[name].version != pinned:
                    self.problem(where, "constraint %s==%s conflicts with %s==%s at %s" % (name, pinned, name, self.pins[name].version, self.pins[name].where))

    def problem(self, where: str, message: str, fatal: bool = False) -> None:
        self.problems.append(Problem("requirements", "%s: %s" % (where, message), fatal))

    def read(self, path: str, where: str) -> None:
        real = os.path.realpath(path)
        if real in self.seen:
            return  # an include cycle, or the same file twice: once is enough
        self.seen.append(real)
        if os.path.isdir(path):
            return self.problem(where or path, "%s is a folder, not a requirements file" % path, fatal=not where)
        if not os.path.exists(path):
            return self.problem(where or path, "%s: no such file" % path if where else "no such file", fatal=True)
        try:  # a FIFO or /dev/zero is refused before it can block or fill memory
            text = decode_text(path, read_capped(path, MAX_REQUIREMENTS))
        except FileProblem as exc:
            return self.problem(where or path, str(exc) if where else str(exc).replace(path + ": ", "", 1), fatal=True)
        for number, line in _logical_lines(text):
            self.line(path, "%s:%d" % (path, number), line)

    def line(self, path: str, where: str, line: str) -> None:
        if line.startswith("-"):
            return self.option(path, where, line)
        # A trailing "--hash=..." or other per-requirement options are not part of the requirement.
        requirement = re.split(r"\s+--?[a-z]", line, maxsplit=1)[0].strip()
        try:
            req = Requirement(requirement)
        except InvalidRequirement as exc:
            return self.problem(where, "not a requirement envdoctor understands: %r (%s)" % (requirement, str(exc).split("\n")[0]))
        try:
            if req.marker is not None and not req.marker.evaluate(self.env):
                return
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as exc:
            return self.problem(where, "cannot evaluate the marker of %s (%s); skipped" % (req.name, exc))
        name = canonical_name(req.name)
        if req.url:
            self.unpinned[name] = Unpinned(name, "", where)
            return self.problem(where, "%s comes from a URL (%s): its version is unknown until installed" % (name, req.url))
        pinned = _pinned_version(req)
        if pinned is None:
            if name not in self.pins:
                self.unpinned[name] = Unpinned(name, str(req.specifier), where)
            return
        earlier = self.pins.get(name)
        if earlier is not None and earlier.version != pinned:
            return self.problem(where, "%s==%s conflicts with %s==%s at %s" % (name, pinned, name, earlier.version, earlier.where))
        self.unpinned.pop(name, None)
        self.pins[name] = Pin(name, pinned, where, tuple(sorted(req.extras)))

    def option(self, path: str, where: str, line: str) -> None:
        # "--flag value", "--flag=value", "-r value" and "-rvalue" (pip takes a short option's value joined)
        parts = re.match(r"(--[A-Za-z][A-Za-z-]*|-[A-Za-z])(?:\s*=\s*|\s+)?(.*)$", line)
        flag, value = (parts.group(1), parts.group(2).strip()) if parts else (line.split()[0], "")
        if flag in ("-r", "--requirement"):
            return self.read(os.path.join(os.path.dirname(path), value), where)
        if flag in ("-c", "--constraint"):
            return self.constraint_file(os.path.join(os.path.dirname(path), value), where)
        if flag in _INDEX_OPTIONS:
            self.indexes.append(value)
            return
        if flag in ("-e", "--editable"):
            egg = re.search(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)", value)
            if egg:  # installed, at a version only the checkout knows
                name = canonical_name(egg.group(1))
                self.pins.pop(name, None)
                self.unpinned[name] = Unpinned(name, "", where)
                return self.problem(where, "%s is an editable install from %s: its version is unknown until installed" % (name, value))
            return self.problem(where, "editable requirement %s: its version is unknown until installed" % value)
        if flag in _SKIPPED_OPTIONS:
            return
        self.problem(where, "option %s is not understood; skipped" % flag)


def _pinned_version(req: Requirement) -> Optional[str]:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


# The Python a lockfile was made for, as its header says: envdoctor's own, pip-compile's, uv's.
_HEADER_PYTHON = (
    re.compile(r"^# target: Python (\d+\.\d+(?:\.\d+)?)"),
    re.compile(r"autogenerated by pip-compile with Python (\d+\.\d+)"),
    re.compile(r"^#\s+uv pip compile .*--python-version[ =](\d+\.\d+(?:\.\d+)?)"),
)


def header_python(path: str) -> Optional[str]:
    """The target Python named in a lockfile's leading comment lines, if any."""
    if not os.path.isfile(path):  # a FIFO or a device is the reader's to refuse, not ours to block on
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for _, line in zip(range(50), handle):
                if not line.startswith("#"):
                    break
                for pattern in _HEADER_PYTHON:
                    found = pattern.search(line)
                    if found:
                        return found.group(1)
    except OSError:
        return None  # the reader proper says what is wrong with the file
    return None


def read(path: str, python: Optional[str] = None) -> RequirementsFile:
    """Parse a requirements file (and its includes) for the target Python: the one given,
    else the one the file's header names (a lockfile), else the running one."""
    target = python or header_python(path) or "%d.%d.%d" % sys.version_info[:3]
    reader = _Reader(target)
    reader.read(path, "")
    reader.apply_constraints()
    return RequirementsFile(path, target, tuple(reader.pins.values()), tuple(reader.unpinned.values()),
                            tuple(reader.indexes), tuple(reader.problems))


def gather(parsed: RequirementsFile) -> Gathered:
    """Facts as if the file had been installed: python, platform, pkg.*, torch.*."""
    values: Dict[str, object] = {
        "python": parsed.python,
        "python.implementation": sys.implementation.name,
        "python.executable": "(the target of %s)" % parsed.path,
        "platform.system": platform.system(),
        "platform.machine": platform.machine(),
    }
    unknown: Dict[str, Unknown] = {}
    for pin in parsed.pins:
        values["pkg." + pin.name] = pin.version
    for loose in parsed.unpinned:
        allowed = "any version" if not loose.specifier else loose.specifier
        unknown["pkg." + loose.name] = Unknown("not pinned in %s (allows %s)" % (loose.where, allowed))
    torch = next((p for p in parsed.pins if p.name == "torch"), None)
    if torch is not None:
        values["torch.version"] = torch.version
        known, cuda = cuda_of_torch(torch.version, parsed.indexes)
        if not known:
            known, cuda = _cuda_of_runtime(parsed.pins)
        if known:
            values["torch.cuda"] = cuda
        else:
            unknown["torch.cuda"] = Unknown("the torch pin %s has no local label (+cu121, +cpu) and no PyTorch index names the build" % torch.version)
    elif "pkg.torch" in unknown:
        unknown["torch.version"] = unknown["torch.cuda"] = unknown["pkg.torch"]
    else:
        values["torch.version"] = None
        values["torch.cuda"] = None
    return Gathered(values, unknown, parsed.problems, complete=("pkg.",))
