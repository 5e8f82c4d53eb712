"""Source: the NVIDIA driver, the GPUs and nvcc of this machine.

No driver and no GPU are facts ("none visible", as in a container build), not errors.
A program that hangs or prints garbage leaves its facts unknown and a problem line.
"""

import os
import re
from typing import Dict, List, Optional

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


def gather(driver_override: Optional[str] = None, timeout: float = 10.0) -> Gathered:
    values: Dict[str, object] = {}
    unknown: Dict[str, Unknown] = {}
    problems: List[Problem] = []

    override = driver_override or os.environ.get(DRIVER_ENV) or None
    driver = None
    if override:
        if not _DRIVER_RE.match(override.strip()):
            problems.append(Problem("driver", "driver version %r (from --driver or %s) is not like 535.104.05" % (override, DRIVER_ENV), fatal=True))
        else:
            driver = override.strip()
            values["cuda.driver.source"] = "override"
    if driver is None:
        driver = driver_from_files()
        if driver:
            values["cuda.driver.source"] = "kernel module"

    ran = subproc.run(["nvidia-smi", "--query-gpu=" + QUERY, "--format=csv,noheader,nounits"], timeout, limit=SMALL_OUTPUT)
    if ran.returncode is None and ran.error == "not found":
        values["gpu.count"] = 0
    elif ran.returncode is None:
        why = "nvidia-smi: %s" % ran.error
        problems.append(Problem("nvidia-smi", why + "; GPU facts are unknown"))
        for key in ("gpu.count", "gpu.capability", "gpu.name"):
            unknown[key] = Unknown(why)
    elif ran.returncode != 0:
        # e.g. "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"
        first = (ran.stdout.strip() or ran.stderr.strip() or "no output").splitlines()[0]
        if driver:
            problems.append(Problem("nvidia-smi", "nvidia-smi exited with %d: %s" % (ran.returncode, first)))
            for key in ("gpu.count", "gpu.capability", "gpu.name"):
                unknown[key] = Unknown("nvidia-smi failed: " + first)
        else:
            values["gpu.count"] = 0
    else:
        rows = _parse_smi(ran.stdout)
        if rows is None:
            first = (ran.stdout.strip().splitlines() or [""])[0][:80]
            problems.append(Problem("nvidia-smi", "nvidia-smi printed something unexpected: %r; GPU facts are unknown" % first))
            for key in ("gpu.count", "gpu.capability", "gpu.name"):
                unknown[key] = Unknown("nvidia-smi output not understood")
        else:
            values.update(_smi_facts(rows))
            if rows and not driver:
                driver = rows[0]["driver"]
                values["cuda.driver.source"] = "nvidia-smi"

    values["cuda.driver"] = driver  # None: no driver visible (a fact, not an error)

    nvcc = subproc.run(["nvcc", "--version"], timeout, limit=SMALL_OUTPUT)
    if nvcc.ok:
        match = _NVCC_RE.search(nvcc.stdout)
        values["nvcc"] = match.group(1) if match else None
        if not match:
            problems.append(Problem("nvcc", "nvcc --version printed no release number"))
    elif nvcc.returncode is None and nvcc.error == "not found":
        values["nvcc"] = None
    else:
        unknown["nvcc"] = Unknown("nvcc --version: " + (nvcc.error or "exit %s" % nvcc.returncode))
    return Gathered(values, unknown, tuple(problems))
