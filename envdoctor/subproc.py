"""The one door to other programs: every call has a timeout and returns a value, never raises."""

import os
import signal
import subprocess
from typing import Mapping, NamedTuple, Optional, Sequence


class Ran(NamedTuple):
    argv: Sequence[str]
    returncode: Optional[int]  # None: did not run or did not finish
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # why it did not run or finish, in words

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(argv: Sequence[str], timeout: float, env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> Ran:
    try:
        # A new session, so that a timeout kills the whole group: a wrapper script's
        # children would otherwise keep the pipes open and hang us anyway.
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        return Ran(argv, None, error="not found")
    except PermissionError:
        return Ran(argv, None, error="not executable")
    except OSError as exc:
        return Ran(argv, None, error=exc.strerror or str(exc))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        return Ran(argv, None, error="no answer within %gs" % timeout)
    return Ran(argv, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
