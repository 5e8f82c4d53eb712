"""Package names as pip compares them (PEP 503), the one rule every module uses."""

import re

# A requirement line's name: what comes before its extras, version or marker (PEP 508).
_LEADING_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def canonical_name(name: str) -> str:
    """Lower case, every run of "-", "_" and "." one "-": "Flash_Attn" -> "flash-attn".

    Written without packaging (whose utils module costs a start-up import for this one rule).
    sources/_probe.py keeps a copy: it runs standalone in other interpreters; a test holds
    the two equal.
    """
    out = []
    prev = False
    for ch in name.strip().lower():
        if ch in "-_.":
            if not prev:
                out.append("-")
            prev = True
        else:
            out.append(ch)
            prev = False
    return "".join(out)


def requirement_name(line: str) -> str:
    """The canonical name a requirement line is about ("Torch>=2.1" -> "torch"); the line itself
    where it names none."""
    found = _LEADING_NAME.match(line)
    return canonical_name(found.group(1)) if found else line
