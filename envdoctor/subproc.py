"""The one door to other programs: every call has a timeout and an output cap, and returns a
value, never raises (except that an interrupt of ours propagates, after the child is killed)."""

import os
import selectors
import signal
import subprocess
import time
from typing import Dict, Mapping, NamedTuple, Optional, Sequence

# What a program may print before we stop listening and kill it: a probed interpreter's
# inventory is a few MB at most, nvidia-smi and nvcc print lines.
MAX_OUTPUT = 64 * 1024 * 1024


class Ran(NamedTuple):
    argv: Sequence[str]
    returncode: Optional[int]  # None: did not run or did not finish
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # why it did not run or finish, in words

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(argv: Sequence[str], timeout: float, env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
        limit: int = MAX_OUTPUT) -> Ran:
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
        out, err, why = _collect(proc, timeout, limit)
    except BaseException:
        # Ctrl-C or SIGTERM while it runs: the child is in its own session, so the terminal's
        # signal never reached it; it (and its children) must not outlive us.
        _kill(proc)
        raise
    if why:
        _kill(proc)
        return Ran(argv, None, error=why)
    _close(proc)
    return Ran(argv, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def _collect(proc: "subprocess.Popen[bytes]", timeout: float, limit: int):
    """(stdout, stderr, why it was stopped or ""), reading both pipes until they close."""
    deadline = time.monotonic() + timeout
    chunks: Dict[int, list] = {}
    total = 0
    with selectors.DefaultSelector() as selector:
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            selector.register(stream, selectors.EVENT_READ)
            chunks[stream.fileno()] = []
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return b"", b"", "no answer within %gs" % timeout
            for key, _ in selector.select(left):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                chunks[key.fd].append(data)
                total += len(data)
                if total > limit:
                    return b"", b"", "printed more than %d MiB; stopped" % (limit >> 20)
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return b"", b"", "no answer within %gs" % timeout
    assert proc.stdout is not None and proc.stderr is not None
    return b"".join(chunks[proc.stdout.fileno()]), b"".join(chunks[proc.stderr.fileno()]), ""


def _kill(proc: "subprocess.Popen[bytes]") -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.wait(5)
    except (subprocess.TimeoutExpired, OSError):
        pass
    _close(proc)


def _close(proc: "subprocess.Popen[bytes]") -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
