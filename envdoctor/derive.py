"""Facts computed from other facts and the knowledge base's tables.

Kept apart from the sources (which only read the machine) and from the records (which
only compare): e.g. whether the NVIDIA driver is new enough for torch's CUDA build.
"""

from typing import Dict, Mapping, Optional, Tuple

from packaging.version import InvalidVersion, Version

from envdoctor.facts import Facts, Gathered, Unknown


def driver_table(tables: Mapping[str, dict]) -> Tuple[Dict[str, str], Dict[int, str]]:
    data = tables.get("cuda-driver", {})
    toolkit = {row["cuda"]: row["minimum"] for row in data.get("toolkit", [])}
    family = {int(row["major"]): row["minimum"] for row in data.get("family", [])}
    return toolkit, family


def _v(text: object) -> Optional[Version]:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def driver_facts(facts: Facts, tables: Mapping[str, dict]) -> Gathered:
    cuda = facts.get("torch.cuda")
    driver = facts.get("cuda.driver")
    keys = ("cuda.driver.meets_toolkit", "cuda.driver.meets_family")
    if isinstance(cuda, Unknown):
        return Gathered(unknown={k: cuda for k in keys})
    if cuda is None:  # no torch, or a CPU build: no driver needed
        return Gathered(values={k: None for k in keys})
    toolkit, family = driver_table(tables)
    cuda_v = _v(cuda)
    if cuda_v is None:
        return Gathered(unknown={k: Unknown("torch.cuda %r is not a version" % cuda) for k in keys})
    values: Dict[str, object] = {}
    unknown: Dict[str, Unknown] = {}
    toolkit_floor = toolkit.get("%d.%d" % (cuda_v.major, cuda_v.minor))
    family_floor = family.get(cuda_v.major)
    if toolkit_floor:
        values["cuda.driver.toolkit_floor"] = toolkit_floor
    if family_floor:
        values["cuda.driver.family_floor"] = family_floor
    if isinstance(driver, Unknown) or driver is None:
        reason = driver.reason if isinstance(driver, Unknown) else "no NVIDIA driver visible"
        return Gathered(values, {k: Unknown(reason) for k in keys})
    driver_v = _v(driver)
    if driver_v is None:
        return Gathered(values, {k: Unknown("driver %r is not a version" % driver) for k in keys})
    for key, floor in (("cuda.driver.meets_toolkit", toolkit_floor), ("cuda.driver.meets_family", family_floor)):
        if floor is None:
            unknown[key] = Unknown("no driver floor known for CUDA %s" % cuda)
        else:
            values[key] = driver_v >= Version(floor)
    return Gathered(values, unknown)
