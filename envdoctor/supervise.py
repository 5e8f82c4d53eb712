"""Run a command as if it ran alone, and hand each piece of its output to a listener.

The command's output goes to our own stdout and stderr as it comes, untouched. Where ours is
a terminal the command gets a pseudo-terminal instead of a pipe, so colours and ``\\r``
progress bars look as they would without us. Its stdin is ours (inherited, not copied). It
runs in a process group of its own: the signals we receive (Ctrl-C, ``kill``, Slurm's
SIGTERM) are passed to the whole group, so nothing it started is left behind, and when our
stdin is the terminal the group is made the terminal's foreground (Ctrl-C and Ctrl-Z reach it
directly, it may read the keyboard). Our exit code is the command's; a death by signal N is
128+N, as a shell reports it.

Linux (and other POSIX systems with ``fork`` and ``pty``) only.
"""

import errno
import os
import select
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

PIPE_SIZE = 1 << 20  # asked of the kernel for each pipe, so a chatty command blocks less often ...
READ = PIPE_SIZE  # ... and read in one go
TTY_READ = 1 << 16  # a pseudo-terminal hands out a few KiB at a time
SMALL = 1 << 16  # a read of less than this ...
GATHER = 0.005  # ... is followed by this many seconds' pause, for more output to gather
DRAIN = 0.2  # after the command exits: seconds to wait for output still in flight ...
DRAIN_MAX = 2.0  # ... and at most this long in all
# Received here, passed to the command's process group.
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGWINCH")

Listener = Callable[[int, bytes], None]  # (1 for stdout or 2 for stderr, the bytes)


class Outcome(NamedTuple):
    exit_code: int  # what a shell would report: the code, or 128+N for a death by signal N
    signal: Optional[int] = None  # the signal that ended it
    error: Optional[str] = None  # it could not be started: one line, why
    forwarded: Tuple[int, ...] = ()  # the signals we received and passed on to it


class Unsupported(Exception):
    """This platform cannot supervise a command (no fork, no process groups)."""


def supported() -> Optional[str]:
    """None, or why commands cannot be run here."""
    if os.name != "posix" or not hasattr(os, "killpg"):
        return "envdoctor run needs a POSIX system (Linux); here, run the command and then envdoctor explain its log"
    return None


class _Channel(NamedTuple):
    read_fd: int  # ours: the command's output arrives here
    write_fd: int  # the command's end (closed here once it started)
    stream: int  # 1 or 2
    tty: bool


def _channel(stream: int) -> _Channel:
    """A pseudo-terminal where our own stream is a terminal, else a pipe."""
    ours = stream
    if os.isatty(ours):
        import pty
        import termios

        master, slave = pty.openpty()
        _copy_size(ours, slave)
        # Pass "\n" as "\n": our own terminal turns it into "\r\n" when it is written there.
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        return _Channel(master, slave, stream, True)
    read_fd, write_fd = os.pipe()
    import fcntl

    set_size = getattr(fcntl, "F_SETPIPE_SZ", 1031 if sys.platform.startswith("linux") else None)  # 3.10+ names it
    if set_size is not None:
        try:
            fcntl.fcntl(write_fd, set_size, PIPE_SIZE)
        except OSError:  # over the user's limit (/proc/sys/fs/pipe-max-size): keep the default
            pass
    return _Channel(read_fd, write_fd, stream, False)


def _copy_size(src: int, dst: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> bool:
    """Write everything; False once the reader is gone (our stdout closed, e.g. `| head`)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except BlockingIOError:
            select.select([], [fd], [])
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF, errno.EIO):
                return False
            raise
    return True


def exit_status(status: int) -> Outcome:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return Outcome(128 + number, number)
    return Outcome(os.WEXITSTATUS(status))


class _Terminal:
    """Hands the terminal's foreground to the command's group and takes it back."""

    def __init__(self) -> None:
        self.fd: Optional[int] = None
        self.ours = 0
        try:
            if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
                self.fd, self.ours = 0, os.getpgrp()
        except OSError:
            pass

    def give(self, group: int) -> None:
        if self.fd is not None:
            self._set(group)

    def take_back(self) -> None:
        if self.fd is not None:
            self._set(self.ours)

    def _set(self, group: int) -> None:
        # A background group that sets the foreground gets SIGTTOU: not while we do it.
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self.fd, group)  # type: ignore[arg-type]
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, old)


def _spawn(argv: Sequence[str], channels: List[_Channel], env: Optional[Dict[str, str]]) -> subprocess.Popen:
    fds = {c.stream: c.write_fd for c in channels}
    kwargs: Dict[str, object] = {}
    if sys.version_info >= (3, 11):
        kwargs["process_group"] = 0
    else:
        kwargs["preexec_fn"] = os.setpgrp  # no threads here, so preexec_fn is safe
    return subprocess.Popen(list(argv), stdin=None, stdout=fds[1], stderr=fds[2], env=env, close_fds=True,
                            restore_signals=True, **kwargs)  # type: ignore[call-overload]


def not_started(argv: Sequence[str], exc: OSError) -> Outcome:
    """The line and exit code a shell gives: 127 not found, 126 found but not runnable."""
    name = argv[0]
    if isinstance(exc, FileNotFoundError) and (os.sep in name or not exc.filename or exc.filename == name):
        if os.sep in name and os.path.exists(name):  # the script's interpreter (#!) is missing
            return Outcome(126, error="%s: cannot run it (%s)" % (name, exc.strerror))
        return Outcome(127, error="%s: command not found" % name)
    return Outcome(126, error="%s: cannot run it (%s)" % (name, exc.strerror or exc))  # not executable, a folder ...


def run(argv: Sequence[str], listener: Listener, env: Optional[Dict[str, str]] = None) -> Outcome:
    """Run ``argv`` to its end, passing its output through and to ``listener``."""
    why = supported()
    if why:
        raise Unsupported(why)
    channels = [_channel(1), _channel(2)]
    terminal = _Terminal()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    old_wakeup = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    received: List[int] = []
    forwarded: List[int] = []
    closed: Set[int] = set()  # read ends already closed
    handlers = {}

    def on_signal(number, _frame) -> None:
        received.append(number)

    def on_child(_number, _frame) -> None:
        pass  # only wakes the loop (through the wakeup fd)

    for name in FORWARDED:
        number = getattr(signal, name, None)
        # An ignored signal (SIGHUP under nohup) stays ignored, for us and for the command.
        if number is not None and signal.getsignal(number) != signal.SIG_IGN:
            handlers[number] = signal.signal(number, on_signal)
    handlers[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, on_child)
    try:
        try:
            child = _spawn(argv, channels, env)
        except OSError as exc:
            return not_started(argv, exc)
        finally:
            for c in channels:
                os.close(c.write_fd)
        terminal.give(child.pid)
        try:
            status = _pump(child.pid, channels, listener, received, forwarded, wake_read, terminal, closed)
        finally:
            terminal.take_back()
        child.returncode = 0  # reaped here; keep Popen from waiting again
        return exit_status(status)._replace(forwarded=tuple(forwarded))
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for number, old in handlers.items():
            signal.signal(number, old)
        for fd in [wake_read, wake_write] + [c.read_fd for c in channels if c.read_fd not in closed]:
            try:
                os.close(fd)
            except OSError:
                pass


def _forward(group: int, received: List[int], forwarded: List[int], channels: List[_Channel]) -> None:
    while received:
        number = received.pop(0)
        forwarded.append(number)
        if number == getattr(signal, "SIGWINCH", None):
            for c in channels:  # our terminal was resized: so is the command's
                if c.tty:
                    _copy_size(c.stream, c.read_fd)
        try:
            os.killpg(group, number)
        except ProcessLookupError:
            pass


def _stopped(group: int, terminal: _Terminal) -> None:
    """The command was stopped (Ctrl-Z): stop ourselves too, so the shell sees the job stop;
    when continued (fg), continue the command, in the foreground again."""
    terminal.take_back()
    os.kill(os.getpid(), signal.SIGSTOP)
    terminal.give(group)
    try:
        os.killpg(group, signal.SIGCONT)
    except ProcessLookupError:
        pass


def _pump(pid: int, channels: List[_Channel], listener: Listener, received: List[int], forwarded: List[int], wake: int,
          terminal: _Terminal, closed: Set[int]) -> int:
    """Pass output through until the command has exited and its output is drained; the status."""
    open_fds = {c.read_fd: c for c in channels}
    status: Optional[int] = None
    deadline = None
    while open_fds:
        if deadline is not None and time.monotonic() > deadline:
            break  # something it left behind keeps writing: that is not the command's output
        try:
            ready, _, _ = select.select(list(open_fds) + [wake], [], [], DRAIN if status is not None else None)
        except InterruptedError:
            ready = []
        if received:
            _forward(pid, received, forwarded, channels)
        if wake in ready:
            try:
                os.read(wake, 512)
            except BlockingIOError:
                pass
        if status is None and (wake in ready or not ready):  # a SIGCHLD came (or a signal)
            status = _reap(pid, terminal)
            if status is not None:
                deadline = time.monotonic() + DRAIN_MAX
        elif not ready:
            break  # exited, and nothing more came for DRAIN seconds (a daemon it left may hold the pipe)
        got = 0
        for fd in ready:
            if fd != wake:
                got += _relay(fd, open_fds, closed, listener)
        if 0 < got < SMALL and status is None:
            # A command that prints line by line would wake us for every line; letting its
            # output gather for a moment costs a few ms of delay and saves most of the wakeups.
            time.sleep(GATHER)
    while status is None:
        status = _reap(pid, terminal, block=True)
    return status


def _relay(fd: int, open_fds: Dict[int, _Channel], closed: Set[int], listener: Listener) -> int:
    """Read what is there, write it out, hand it on; the bytes read (0 at the end)."""
    channel = open_fds[fd]
    try:
        data = os.read(fd, READ if not channel.tty else TTY_READ)
    except OSError as exc:
        if exc.errno != errno.EIO:  # EIO: the pseudo-terminal's last writer is gone
            raise
        data = b""
    if not data:
        del open_fds[fd]
        return 0
    listener(channel.stream, data)
    if not _write_all(channel.stream, data):
        # Our reader is gone (`envdoctor run -- cmd | head`): so is the command's, as without us.
        del open_fds[fd]
        os.close(fd)
        closed.add(fd)
    return len(data)


def _reap(pid: int, terminal: _Terminal, block: bool = False) -> Optional[int]:
    try:
        got, status = os.waitpid(pid, (0 if block else os.WNOHANG) | os.WUNTRACED)
    except ChildProcessError:
        return 0
    if got == 0:
        return None
    if os.WIFSTOPPED(status):
        if terminal.fd is not None:
            _stopped(pid, terminal)
        return None
    return status
