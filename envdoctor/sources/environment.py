"""Source: a Python environment, this interpreter or another one (``--python``).

Both paths run the same stdlib-only inventory (``_probe.py``); for another interpreter it
runs there in isolated mode and answers in JSON. The result becomes facts:
``python``, ``platform.*``, ``pkg.<name>``, ``torch.version``, ``torch.cuda``.
"""

import json
import os
from typing import Dict, List, NamedTuple, Optional, Tuple

from envdoctor import subproc
from envdoctor.facts import Gathered, Problem, Unknown
from envdoctor.names import canonical_name
from envdoctor.sources import _probe

PROBE_TIMEOUT = 60.0


class Distribution(NamedTuple):
    name: str  # canonical
    version: str
    location: str
    requires: Tuple[str, ...]
    requires_python: Optional[str]


class Environment(NamedTuple):
    """The raw inventory, kept beside the facts for renderers and the planner."""

    python: str
    executable: str
    distributions: Tuple[Distribution, ...]


def probe_here() -> dict:
    return _probe.probe()


def probe_interpreter(python: str, timeout: float = PROBE_TIMEOUT) -> Tuple[Optional[dict], Optional[Problem]]:
    """Run the inventory in another interpreter. Returns (inventory, None) or (None, problem)."""
    if not os.path.exists(python):
        return None, Problem("python", "%s: no such file" % python, fatal=True)
    if os.path.isdir(python):
        return None, Problem("python", "%s: is a folder, not a Python interpreter" % python, fatal=True)
    ran = subproc.run([python, "-I", _probe.__file__], timeout=timeout)
    if ran.returncode is None:
        return None, Problem("python", "%s: could not run it as Python (%s)" % (python, ran.error), fatal=True)
    if ran.returncode == _probe.TOO_OLD:
        return None, Problem("python", "%s: %s" % (python, ran.stderr.strip()), fatal=True)
    if ran.returncode != 0:
        last = (ran.stderr.strip().splitlines() or ["no output"])[-1]
        return None, Problem("python", "%s: the probe exited with %d: %s" % (python, ran.returncode, last), fatal=True)
    try:
        inventory = json.loads(ran.stdout)
    except ValueError:
        return None, Problem("python", "%s: did not answer like a Python interpreter (no JSON from the probe)" % python, fatal=True)
    if not isinstance(inventory, dict) or inventory.get("schema") != _probe.SCHEMA:
        return None, Problem("python", "%s: unexpected probe answer" % python, fatal=True)
    wrong = _wrong_shape(inventory)
    if wrong:
        return None, Problem("python", "%s: unexpected probe answer (%s)" % (python, wrong), fatal=True)
    return inventory, None


def _wrong_shape(inventory: dict) -> str:
    """What in another interpreter's answer is not as _probe.py writes it ("" if nothing):
    a wrapper script may print any JSON."""
    if not isinstance(inventory.get("python"), str):
        return "no python version"
    platform = inventory.get("platform")
    if not isinstance(platform, dict) or not all(isinstance(platform.get(k), str) for k in ("system", "machine")):
        return "no platform"
    dists = inventory.get("distributions")
    if not isinstance(dists, list):
        return "no list of distributions"
    for dist in dists:
        if not isinstance(dist, dict) or not all(isinstance(dist.get(k), str) for k in ("name", "version")):
            return "a distribution without name and version"
        requires = dist.get("requires") or []
        if (not isinstance(requires, list) or not all(isinstance(r, str) for r in requires)
                or not isinstance(dist.get("location", ""), str) or not isinstance(dist.get("requires_python"), (str, type(None)))):
            return "a distribution of the wrong shape"
    torch = inventory.get("torch")
    if torch is not None and (not isinstance(torch, dict)
                              or not all(isinstance(torch.get(k), (str, type(None))) for k in ("version", "cuda", "error", "path"))):
        return "torch is not as the probe writes it"
    problems = inventory.get("problems", [])
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        return "problems is not a list of text"
    return ""


def to_environment(inventory: dict) -> Environment:
    dists = tuple(
        Distribution(
            canonical_name(d["name"]),
            d["version"],
            d.get("location", ""),
            tuple(d.get("requires") or ()),
            d.get("requires_python"),
        )
        for d in inventory.get("distributions", [])
    )
    return Environment(inventory.get("python", ""), inventory.get("executable", ""), dists)


def gather(inventory: dict) -> Gathered:
    values: Dict[str, object] = {
        "python": inventory["python"],
        "python.implementation": inventory.get("implementation"),
        "python.executable": inventory.get("executable"),
        "platform.system": inventory["platform"]["system"],
        "platform.machine": inventory["platform"]["machine"],
    }
    for dist in inventory.get("distributions", []):
        values["pkg." + canonical_name(dist["name"])] = dist["version"]
    unknown: Dict[str, Unknown] = {}
    torch = inventory.get("torch")
    if torch is None:
        values["torch.version"] = None
        values["torch.cuda"] = None
    elif "error" in torch:
        reason = "%s (%s)" % (torch["error"], torch.get("path", ""))
        unknown["torch.cuda"] = Unknown(reason)
        unknown["torch.version"] = Unknown(reason)
    else:
        values["torch.version"] = torch.get("version")
        values["torch.cuda"] = torch.get("cuda")
    problems: List[Problem] = [Problem("environment", text) for text in inventory.get("problems", [])]
    return Gathered(values, unknown, tuple(problems), complete=("pkg.",))
