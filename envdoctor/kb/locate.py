"""Which line of a knowledge file a field is on, for error messages (tomllib keeps no lines).

A field is named as the loader names it: ``id``, ``affected[1].fixed``, ``when.model.type``,
``symptoms[0].pattern``, ``remedy.requires``. The file is scanned for its table headers and
keys; when the exact key is not found, the line of its table is the answer.
"""

import re
from typing import List, Optional, Tuple

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.\-]+)\s*=""")
_FIELD = re.compile(r"^([A-Za-z0-9_\-]+)(?:\[(\d+)\])?(?:\.(.+))?$")


def line_of(path: str, field: str) -> int:
    """1-based line of ``field`` in the file at ``path``; 0 when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return 0
    return line_in(lines, field)


def line_in(lines: List[str], field: str) -> int:
    match = _FIELD.match(field or "")
    if not match:
        return 1 if lines else 0
    table, index, rest = match.group(1), match.group(2), match.group(3)
    blocks = _blocks(lines)
    # A top-level key, before any table.
    top = blocks[0][2] if blocks and blocks[0][0] is None else (0, 0)
    found = _key_line(lines, top, table) if index is None else None
    if found:
        return found
    wanted = int(index) if index is not None else 0
    seen = -1
    for name, header_line, span in blocks:
        if name != table:
            continue
        seen += 1
        if seen != wanted:
            continue
        return (_key_line(lines, span, rest) if rest else None) or header_line
    return 1 if lines else 0


def _blocks(lines: List[str]) -> List[Tuple[Optional[str], int, Tuple[int, int]]]:
    """(table name, header line, (first, end) line indices of its body) for each table, the
    top level first (name None)."""
    out: List[Tuple[Optional[str], int, Tuple[int, int]]] = []
    name: Optional[str] = None
    header, start = 0, 0
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if match and not _KEY.match(line):
            out.append((name, header, (start, i)))
            name, header, start = match.group(2).split(".")[0].strip(), i + 1, i + 1
    out.append((name, header, (start, len(lines))))
    return out


def _key_line(lines: List[str], span: Tuple[int, int], key: str) -> Optional[int]:
    # "model.type" of when.model.type is one quoted key; a nested field falls back to its first part.
    candidates = (key, key.split(".")[0], key.split("[")[0])
    for wanted in candidates:
        for i in range(span[0], span[1]):
            match = _KEY.match(lines[i])
            if match and match.group(1).strip("\"'") == wanted:
                return i + 1
    return None
