"""SIGTERM and SIGHUP end a command as Ctrl-C does: jobs cancelled, tools killed, temps removed.

`timeout`, Slurm at a job's time limit, systemd and a dropped SSH session send
these; left to Python's defaults the process would die at once, leaving its
temp files, its scratch directory and its tools (which run in sessions of
their own) behind. `install` (once, in `imgcache.tui.cli.main`) makes the
first of them raise `Terminated`, a `KeyboardInterrupt`, in the main thread,
so every subcommand unwinds through the cleanup it already does after Ctrl-C;
later ones are ignored so that cleanup is not cut short (SIGKILL still ends
it, and the tools die with it). `exit_status` turns the 130 of an
interruption into 128 + the signal (143, 129), the status other tools exit
with. After SIGHUP the terminal is gone: what is still written to it goes to
/dev/null instead of failing on the way out.

The app is an event loop, not a stack to unwind: while it runs (`divert`), the
first signal asks it to exit with that status through the loop, and its
on-the-way-out cancel of the jobs does the cleanup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

#: The signals handled like Ctrl-C.
HANDLED = (signal.SIGTERM, signal.SIGHUP)
#: What `imgcache` returns after Ctrl-C; a handled signal turns it into 128 + signal.
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """The command was asked to stop by SIGTERM or SIGHUP (`signum`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    received = 0
    terminals: tuple[int, ...] = ()
    divert: Callable[[int], None] | None = None
    previous: dict[int, object] = {}


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _drop_terminal() -> None:
    """Point the descriptors that were a terminal at /dev/null: it hung up."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in _State.terminals:
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)
        os.close(devnull)


def _handler(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGHUP:
        _drop_terminal()
    if _State.received:
        return  # cleanup is under way; let it finish
    _State.received = signum
    if _State.divert is not None:
        # Only the app diverts, and it has imported asyncio long before: importing
        # it here keeps its 30 ms out of every other command's start.
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass  # the app is not running (yet, or any more): unwind like the rest
        else:
            loop.call_soon_threadsafe(_State.divert, 128 + signum)
            return
    raise Terminated(signum)


def install() -> None:
    """Handle SIGTERM and SIGHUP as described above (from the main thread; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _State.received = 0
    _State.terminals = tuple(fd for fd in (0, 1, 2) if _is_terminal(fd))
    for sig in HANDLED:
        _State.previous[sig] = signal.signal(sig, _handler)


def uninstall() -> None:
    """Put back the handlers `install` replaced."""
    for sig, previous in _State.previous.items():
        with contextlib.suppress(TypeError, ValueError):
            signal.signal(sig, previous)  # type: ignore[arg-type]
    _State.previous = {}


def received() -> int:
    """The signal that asked the command to stop, or 0."""
    return _State.received


def exit_status(code: int) -> int:
    """`code`, or 128 + the signal when a handled signal is what interrupted the command."""
    if _State.received and code == EXIT_INTERRUPTED:
        return 128 + _State.received
    return code


@contextlib.contextmanager
def divert(request_exit: Callable[[int], None]) -> Iterator[None]:
    """While inside, a handled signal calls `request_exit(128 + signal)` on the running
    event loop instead of raising (the app exits through its own shutdown)."""
    _State.divert = request_exit
    try:
        yield
    finally:
        _State.divert = None
