"""What the lockfile steps (lock.py, verify.py) speak: the request, the levels reached, the
result, the one error, and the progress object the caller passes in.

Apart from lock.py so that verify.py, which lock.py calls, needs nothing of lock.py.
"""

import datetime
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple


class LockError(Exception):
    """One clear line: why no lockfile was written."""


# Where the lockfile steps say what they are doing (pip-compile and --verify take minutes):
# the caller passes it in; the command line's writes to a terminal.
Progress = Callable[[str], None]


def silent(message: str) -> None:
    """The progress of a caller that wants none."""


@dataclass(frozen=True)
class Index:
    index_url: Optional[str] = None
    extra_index_url: Tuple[str, ...] = ()
    find_links: Tuple[str, ...] = ()
    no_index: bool = False
    generate_hashes: bool = False

    def pip_args(self) -> List[str]:
        args: List[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_url:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.no_index:
            args.append("--no-index")
        return args


@dataclass(frozen=True)
class LockRequest:
    path: str
    force: bool = False
    index: Index = field(default_factory=Index)
    timeout: float = 900.0
    pip_compile: Optional[str] = None
    verify: bool = False
    verify_python: Optional[str] = None
    command: str = "envdoctor fix --write-lock"
    progress: Progress = field(default=silent, compare=False)
    resolver: str = "uv"  # "uv" (any target, no interpreter needed) or "pip-tools" (run on the target Python)
    verify_level: str = "smoke"  # the level --verify asks for: consistent, imports or smoke
    uv: Optional[str] = None
    # The run's uv answers (resolve.Memo): the plan the resolver checked is locked without a second run.
    memo: Optional[object] = field(default=None, compare=False)


LEVELS = ("resolved", "consistent", "imports", "smoke")  # each claims more than the one before


@dataclass(frozen=True)
class Level:
    name: str  # resolved / consistent / imports / smoke (LEVELS)
    detail: str  # what was done, when, on which Python


@dataclass(frozen=True)
class LockResult:
    path: str
    python: str
    cuda: str  # in words
    records: int
    pins: int
    levels: Tuple[Level, ...]
    possible: Tuple[str, ...] = ()  # record ids the static check left possible
    not_reached: str = ""  # with --verify: the step that failed, in words

    requested: str = ""  # the level --verify asked for; "" without --verify

    @property
    def level(self) -> str:
        return self.levels[-1].name

    @property
    def short(self) -> bool:
        """--verify asked for a level that was not reached."""
        return bool(self.requested) and LEVELS.index(self.level) < LEVELS.index(self.requested)


def today() -> str:
    """The date a level was reached, as the lockfile header records it (UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
