"""What the reproductions showed: knowledge/reproductions/outcomes.toml.

scripts/reproduce.py writes one table per record id after running both sides; ``kb lint``
accepts ``evidence_level = "reproduced"`` only where that table confirmed the record for the
reproduction as it stands now (the key covers the spec and the script's text, so an edited
reproduction needs a new run).
"""

import json
import os
import zlib
from typing import Dict, Mapping, Optional, Tuple

from envdoctor.kb.record import Record, Reproduction
from envdoctor.tomlcache import TOMLError, TomlCache

OUTCOMES_FILE = "outcomes.toml"
VERDICTS = ("confirmed", "contradicted", "inconclusive")


def spec_key(spec: Reproduction, script_text: bytes) -> str:
    data = repr(tuple(spec)).encode() + b"\0" + script_text
    return "%08x-%08x" % (zlib.crc32(data), zlib.adler32(data))


def read_outcomes(path: str) -> Tuple[Dict[str, dict], Optional[str]]:
    """The outcomes by record id, and a problem in words when the file is not valid."""
    if not os.path.exists(path):
        return {}, None
    try:
        data = TomlCache(path="").load(path)
    except (OSError, TOMLError) as exc:
        return {}, "cannot be read: %s" % exc
    bad = [k for k, v in data.items() if not isinstance(v, dict) or v.get("verdict") not in VERDICTS]
    if bad:
        return {}, "%s: each table needs a verdict (%s)" % (bad[0], ", ".join(VERDICTS))
    return dict(data), None


def confirmed(outcomes: Mapping[str, dict], record: Record, folder: str) -> bool:
    """Whether the outcome of ``record`` confirmed it for its reproduction as it is now;
    ``folder`` holds the reproduction scripts."""
    spec = record.reproduction
    entry = outcomes.get(record.id)
    if spec is None or entry is None or entry.get("verdict") != "confirmed":
        return False
    script = os.path.join(folder, spec.script)
    try:
        with open(script, "rb") as handle:
            text = handle.read()
    except OSError:
        return False
    return entry.get("spec") == spec_key(spec, text)


def render(outcomes: Mapping[str, Mapping[str, object]]) -> str:
    """The file's text: a header, then one table per record id, sorted."""
    out = ["# Written by scripts/reproduce.py: what each record's reproduction showed when run with the",
           "# real releases (both sides, CPU only). Do not edit by hand; run the script again.", ""]
    for record_id in sorted(outcomes):
        out.append("[%s]" % record_id)
        for key, value in outcomes[record_id].items():
            out.append("%s = %s" % (key, _value(value)))
        out.append("")
    return "\n".join(out)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
