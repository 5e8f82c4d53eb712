"""Source: installed files read as text, for records whose cause is a line of code.

Version numbers lie for source installs (a git checkout installed with ``pip install -e``
reports ``0.1.22.dev0`` whatever code it carries), so a record may ask whether an installed
file still contains a given text. Nothing is imported.
"""

import os
from typing import Dict, Iterable

from envdoctor.facts import Gathered, Unknown
from envdoctor.kb.record import CodeCheck
from envdoctor.safeio import read_regular, reason
from envdoctor.sources.environment import Environment

MAX_BYTES = 4 * 1024 * 1024  # source files are small; refuse to slurp anything huge
MISSING = object()  # the file does not exist (a fact too: ``code.<file>`` is false)


def gather(environment: Environment, checks: Iterable[CodeCheck]) -> Gathered:
    values: Dict[str, object] = {}
    unknown: Dict[str, Unknown] = {}
    locations = {d.name: d.location for d in environment.distributions}
    texts: Dict[str, object] = {}
    for check in checks:
        location = locations.get(check.package)
        if location is None:
            values[check.key] = None  # package absent: nothing to read
            continue
        path = os.path.join(location, check.file)
        if path not in texts:
            texts[path] = _read(path)
        text = texts[path]
        if text is MISSING:
            values[check.file_key] = False
            unknown[check.key] = Unknown("%s: no such file" % path)
        elif isinstance(text, Unknown):
            unknown[check.key] = text
        else:
            values[check.file_key] = True
            values[check.key] = check.contains in text  # type: ignore[operator]
    return Gathered(values, unknown)


def _read(path: str):
    try:
        data = read_regular(path, MAX_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    except OSError as exc:  # a FIFO, a device or a huge file in the venv: skipped, named
        return Unknown("%s: not read (%s)" % (path, reason(exc)))
    return data.decode("utf-8", "replace")
