"""What the user asked to examine: the options every command that probes an environment shares.

Kept apart from check.py so that a command can hold its options without importing every source.
"""

from typing import NamedTuple, Optional, Tuple


class CheckOptions(NamedTuple):
    python: Optional[str] = None  # another interpreter; None: this one
    extra_kb: Tuple[str, ...] = ()
    driver: Optional[str] = None
    probe_timeout: float = 10.0
    require_gpu: bool = False
    model: Optional[str] = None  # a model folder or a hub id in the local cache
    revision: Optional[str] = None  # a hub-cache revision (branch, tag or commit)
    config: Optional[str] = None  # an XTuner config, read with ast
    gpus: Optional[int] = None
    launcher: Optional[str] = None
    requirements: Optional[str] = None  # -r FILE: facts from its pins, nothing installed
    python_version: Optional[str] = None  # with -r: the target Python (default: this one)
    set_facts: Tuple[Tuple[str, object], ...] = ()  # --fact KEY=VALUE: supplied by the user, win over probes
