"""Sets of examined releases written as ranges of their indices: {0,1,2,5} <-> "0-2,5"."""

from typing import Iterable, List, Set


def runs(indices: Iterable[int]) -> List[str]:
    """The runs of consecutive numbers: {0,1,2,5} -> ["0-2", "5"]."""
    out: List[str] = []
    start = prev = None
    for i in sorted(set(indices)):
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = i
    if start is not None:
        out.append(str(start) if start == prev else "%d-%d" % (start, prev))
    return out


def encode(indices: Iterable[int]) -> str:
    return ",".join(runs(indices))


def decode(text: str) -> Set[int]:
    out: Set[int] = set()
    for part in text.split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def contains(text: str, index: int) -> bool:
    for part in text.split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        if int(a) <= index <= int(b or a):
            return True
    return False
