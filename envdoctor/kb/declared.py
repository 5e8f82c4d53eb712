"""Facts derived from what releases declare (the tables), for records to compare.

``xtuner.declared.python_ok`` / ``xtuner.declared.requirements_ok``: whether this Python and
the installed packages are inside what the installed XTuner release declares;
``torch.declared.python_ok``: whether this Python is one torch's minor release builds for.
Each bool has a ``.why`` text that the finding shows. None when there is nothing to compare
(the package is absent, or its version is not a release in the table).
"""

from typing import Dict, Optional

from envdoctor import specs
from envdoctor.facts import Facts, Gathered, Problem, Unknown
from envdoctor.kb import releases
from envdoctor.kb.tables import Tables

PY_OK = "xtuner.declared.python_ok"
REQ_OK = "xtuner.declared.requirements_ok"
TORCH_PY_OK = "torch.declared.python_ok"


def _why(key: str) -> str:
    return key + ".why"


def _absent(*keys: str) -> Gathered:
    return Gathered(values={k: None for k in keys})


def _unknown(reason: str, *keys: str) -> Gathered:
    return Gathered(unknown={k: Unknown(reason) for k in keys})


def xtuner_facts(facts: Facts, tables: Tables) -> Gathered:
    version = facts.get("pkg.xtuner")
    python = facts.get("python")
    if isinstance(version, Unknown):
        return _unknown(version.reason, PY_OK, REQ_OK)
    if version is None:
        return _absent(PY_OK, REQ_OK)
    try:
        table = releases.release_table(tables)
    except releases.TableError as exc:
        return Gathered(unknown={PY_OK: Unknown(str(exc)), REQ_OK: Unknown(str(exc))}, problems=(Problem("knowledge", str(exc)),))
    release = releases.find_release(table, "xtuner", str(version))
    if release is None:  # a source install (0.1.22.dev0) or a release newer than the table
        return _absent(PY_OK, REQ_OK)
    values: Dict[str, object] = {"xtuner.declared.release": release.version}
    unknown: Dict[str, Unknown] = {}
    if isinstance(python, Unknown) or python is None:
        unknown[PY_OK] = Unknown("the Python version is not known")
    else:
        allowed = releases.python_allowed(release, str(python))
        values[PY_OK] = allowed
        if allowed is False:
            values[_why(PY_OK)] = "Python %s is outside xtuner %s's python_requires %s" % (python, release.version, release.requires_python)
    broken = releases.violations(release, facts.packages(), "" if isinstance(python, Unknown) else str(python or ""))
    values[REQ_OK] = not broken
    if broken:
        values[_why(REQ_OK)] = "; ".join("%s (declared by xtuner %s)" % (v, release.version) for v in broken)
    return Gathered(values, unknown)


def torch_python_facts(facts: Facts, tables: Tables) -> Gathered:
    version = facts.get("pkg.torch")
    python = facts.get("python")
    if isinstance(version, Unknown):
        return _unknown(version.reason, TORCH_PY_OK)
    if version is None or isinstance(python, Unknown) or python is None:
        return _absent(TORCH_PY_OK)
    try:
        rows = releases.torch_python_table(tables)
    except releases.TableError as exc:
        return Gathered(unknown={TORCH_PY_OK: Unknown(str(exc))}, problems=(Problem("knowledge", str(exc)),))
    row: Optional[releases.TorchPython] = releases.torch_python_row(rows, str(version))
    if row is None:
        return _absent(TORCH_PY_OK)
    allowed = specs.version_in(row.python, str(python))
    values: Dict[str, object] = {TORCH_PY_OK: allowed}
    if allowed is False:
        values[_why(TORCH_PY_OK)] = "torch %s builds for Python %s, not %s" % (row.minor, row.python, python)
    return Gathered(values)


def derive(facts: Facts, tables: Tables) -> Gathered:
    """All declared-range facts at once."""
    parts = [xtuner_facts(facts, tables), torch_python_facts(facts, tables)]
    values: Dict[str, object] = {}
    unknown: Dict[str, Unknown] = {}
    problems = []
    for part in parts:
        values.update(part.values)
        unknown.update(part.unknown)
        problems.extend(part.problems)
    return Gathered(values, unknown, tuple(problems))
