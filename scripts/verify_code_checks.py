"""Check every record's [[code]] strings against each release tag of the package it reads.

For each tag, the code checks (read from the tag's files with git show) must say the same as
the record's version range: a disagreement means a grep string that does not mark the change
it claims to. Needs local clones (bare is fine) of the upstream repositories:

    python scripts/verify_code_checks.py xtuner=/path/to/xtuner.git peft=/path/to/peft.git mmengine=...

Prints one line per record and package: OK, or the tags that disagree ("unreadable" where the
file is missing in an affected release and the check defers to the version).
"""

import os
import subprocess
import sys
from functools import lru_cache
from typing import List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from packaging.version import InvalidVersion, Version  # noqa: E402

from envdoctor.kb.load import load_kb  # noqa: E402
from envdoctor.kb.record import Record  # noqa: E402
from envdoctor.specs import in_specifier  # noqa: E402

PREFIX = {"peft": "src/"}  # where a package's files sit in its repository
LAST = {"xtuner": Version("1.0.0rc0")}  # tags from here on are another code base


def release_tags(git_dir: str) -> List[Tuple[Version, str]]:
    out = []
    listed = subprocess.run(["git", "--git-dir", git_dir, "tag"], capture_output=True, text=True).stdout
    for tag in listed.split():
        try:
            out.append((Version(tag.lstrip("v")), tag))
        except InvalidVersion:
            pass
    return sorted(out)


@lru_cache(maxsize=None)
def show(git_dir: str, tag: str, path: str) -> Optional[str]:
    done = subprocess.run(["git", "--git-dir", git_dir, "show", "%s:%s" % (tag, path)], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def code_says(record: Record, package: str, git_dir: str, tag: str) -> Optional[bool]:
    """What the record's code checks conclude at this tag; None: a file is missing and the
    record lets the version decide."""
    for check in record.code:
        if check.package != package:
            continue
        text = show(git_dir, tag, PREFIX.get(package, "") + check.file)
        if text is None:
            return False if check.if_missing == "no" else None
        if (check.contains in text) != check.present:
            return False
    return True


def verify(record: Record, package: str, git_dir: str) -> Tuple[int, list]:
    ranges = [r for r in record.affected if r.package == package]
    disagree, count = [], 0
    for version, tag in release_tags(git_dir):
        if package in LAST and version >= LAST[package]:
            continue
        count += 1
        in_range = any(in_specifier(version, r.specifier() or ">=0") for r in ranges)
        says = code_says(record, package, git_dir, tag)
        if says is None and in_range:
            disagree.append((tag, "unreadable"))
        elif says is not None and says != in_range:
            disagree.append((tag, in_range, says))
    return count, disagree


def main() -> None:
    repos = dict(arg.split("=", 1) for arg in sys.argv[1:])
    for record in load_kb().records:
        for package in sorted({c.package for c in record.code} & set(repos)):
            count, disagree = verify(record, package, repos[package])
            print(record.id, package, count, "tags", "OK" if not disagree else disagree)


if __name__ == "__main__":
    main()
