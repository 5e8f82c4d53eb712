"""Source: the NVIDIA driver, the GPUs and nvcc of this machine.

No driver and no GPU are facts ("none visible", as in a container build), not errors.
A program that hangs or prints garbage leaves its facts unknown and a problem line.
"""

import os
import re
from typing import Dict, List, NamedTuple, Optional

from envdoctor import subproc
from envdoctor.facts import Gathered, Problem, Unknown

DRIVER_ENV = "ENVDOCTOR_CUDA_DRIVER"
SYS_VERSION = "/sys/module/nvidia/version"
PROC_VERSION = "/proc/driver/nvidia/version"
QUERY = "driver_version,name,compute_cap,memory.total"
_DRIVER_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")
_PROC_RE = re.compile(r"Kernel Module(?: for [\w-]+)?\s+(\d+\.\d+(?:\.\d+)?)")
_NVCC_RE = re.compile(r"release (\d+\.\d+)")
SMALL_OUTPUT = 1 << 20  # both print a few lines; more is not the program we mean


def _read_first_line(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            return handle.read(4096).decode("ascii", "replace").strip()
    except OSError:
        return None


def driver_from_files() -> Optional[str]:
    text = _read_first_line(SYS_VERSION)
    if text and _DRIVER_RE.match(text):
        return text
    text = _read_first_line(PROC_VERSION)
    if text:
        match = _PROC_RE.search(text)
        if match:
            return match.group(1)
    return None


def _parse_smi(stdout: str) -> Optional[List[Dict[str, str]]]:
    rows = []
    for line in stdout.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 4 or not _DRIVER_RE.match(cells[0]):
            return None
        rows.append({"driver": cells[0], "name": cells[1], "capability": cells[2], "memory": cells[3]})
    return rows


def _smi_facts(rows: List[Dict[str, str]]) -> Dict[str, object]:
    values: Dict[str, object] = {"gpu.count": len(rows)}
    if not rows:
        return values
    values["gpu.name"] = rows[0]["name"]
    caps = []
    for row in rows:
        try:
            caps.append(float(row["capability"]))
        except ValueError:
            pass
    if caps:
        values["gpu.capability"] = "%.1f" % min(caps)  # the weakest GPU decides
    try:
        values["gpu.memory_mib"] = min(int(float(r["memory"])) for r in rows)
    except ValueError:
        pass
    return values


class Driver(NamedTuple):
    """The driver version known before asking nvidia-smi, and where it came from."""

    version: Optional[str]
    source: str = ""  # "override" or "kernel module"
    problem: Optional[Problem] = None  # an override that is not a version (fatal)


class Smi(NamedTuple):
    """What nvidia-smi says of the GPUs, and the driver version it reports."""

    part: Gathered
    driver: Optional[str] = None


def known_driver(driver_override: Optional[str] = None) -> Driver:
    """--driver or ENVDOCTOR_CUDA_DRIVER, else the kernel module's version files."""
    override = driver_override or os.environ.get(DRIVER_ENV) or None
    problem = None
    if override:
        if _DRIVER_RE.match(override.strip()):
            return Driver(override.strip(), "override")
        problem = Problem("driver", "driver version %r (from --driver or %s) is not like 535.104.05" % (override, DRIVER_ENV), fatal=True)
    found = driver_from_files()
    return Driver(found, "kernel module" if found else "", problem)


def _unknown_gpus(why: str) -> Dict[str, Unknown]:
    return {key: Unknown(why) for key in ("gpu.count", "gpu.capability", "gpu.name")}


def smi(timeout: float, driver_known: bool) -> Smi:
    """The GPUs from nvidia-smi. Not installed, or failing where no driver is known: no GPU
    (a container build). Failing where a driver is known, hanging or printing garbage: unknown."""
    ran = subproc.run(["nvidia-smi", "--query-gpu=" + QUERY, "--format=csv,noheader,nounits"], timeout, limit=SMALL_OUTPUT)
    if ran.returncode is None and ran.error == "not found":
        return Smi(Gathered(values={"gpu.count": 0}))
    if ran.returncode is None:
        why = "nvidia-smi: %s" % ran.error
        return Smi(Gathered(unknown=_unknown_gpus(why), problems=(Problem("nvidia-smi", why + "; GPU facts are unknown"),)))
    if ran.returncode != 0:
        # e.g. "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"
        first = (ran.stdout.strip() or ran.stderr.strip() or "no output").splitlines()[0]
        if not driver_known:
            return Smi(Gathered(values={"gpu.count": 0}))
        return Smi(Gathered(unknown=_unknown_gpus("nvidia-smi failed: " + first),
                            problems=(Problem("nvidia-smi", "nvidia-smi exited with %d: %s" % (ran.returncode, first)),)))
    rows = _parse_smi(ran.stdout)
    if rows is None:
        first = (ran.stdout.strip().splitlines() or [""])[0][:80]
        return Smi(Gathered(unknown=_unknown_gpus("nvidia-smi output not understood"), problems=(
            Problem("nvidia-smi", "nvidia-smi printed something unexpected: %r; GPU facts are unknown" % first),)))
    return Smi(Gathered(values=_smi_facts(rows)), rows[0]["driver"] if rows else None)


def nvcc(timeout: float) -> Gathered:
    """The CUDA toolkit's release from nvcc --version; None when there is no nvcc."""
    ran = subproc.run(["nvcc", "--version"], timeout, limit=SMALL_OUTPUT)
    if ran.ok:
        match = _NVCC_RE.search(ran.stdout)
        problems = () if match else (Problem("nvcc", "nvcc --version printed no release number"),)
        return Gathered(values={"nvcc": match.group(1) if match else None}, problems=problems)
    if ran.returncode is None and ran.error == "not found":
        return Gathered(values={"nvcc": None})
    return Gathered(unknown={"nvcc": Unknown("nvcc --version: " + (ran.error or "exit %s" % ran.returncode))})


def gather(driver_override: Optional[str] = None, timeout: float = 10.0) -> Gathered:
    """The driver (given, or the kernel module's, else nvidia-smi's), the GPUs and nvcc."""
    driver = known_driver(driver_override)
    gpus = smi(timeout, driver.version is not None)
    version, source = driver.version, driver.source
    if version is None and gpus.driver:
        version, source = gpus.driver, "nvidia-smi"
    values: Dict[str, object] = {"cuda.driver.source": source} if source else {}
    values.update(gpus.part.values)
    values["cuda.driver"] = version  # None: no driver visible (a fact, not an error)
    toolkit = nvcc(timeout)
    values.update(toolkit.values)
    unknown = dict(gpus.part.unknown)
    unknown.update(toolkit.unknown)
    problems = ((driver.problem,) if driver.problem else ()) + gpus.part.problems + toolkit.problems
    return Gathered(values, unknown, problems)
