"""The one way imgcache runs an external program.

Every tool adapter goes through `run()`: it logs the command line, never lets a
child read our terminal (stdin is /dev/null unless we feed it), streams output
line by line to a callback (progress bars redraw with `\\r`, so both `\\r` and
`\\n` end a line), and kills the child's whole process group on cancel, so a
cancelled pull leaves no orphaned skopeo or mksquashfs behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

log = logging.getLogger("imgcache.tools")

#: How long a cancelled child gets to exit after SIGTERM before SIGKILL.
KILL_GRACE_SECONDS = 3.0
#: How many output lines a failure message quotes.
TAIL_LINES = 20


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved once here: the child may only call it, not look it up."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """In the child: be killed when the thread that started us dies.

    If imgcache itself is SIGKILLed, its children are in their own process groups
    (so that cancel can kill a whole group) and would otherwise run on, writing
    into temp files nobody will publish. A parent that died before the prctl
    took effect is caught by the getppid check. Only a pre-resolved C call and
    plain system calls run here.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(137)


def die_with_parent() -> Callable[[], None] | None:
    """The `preexec_fn` every child of imgcache gets: SIGKILL when imgcache dies (Linux)."""
    if _PRCTL is None:
        return None
    return functools.partial(_die_with_parent, os.getpid())


class ToolError(RuntimeError):
    """A program exited with an error, could not be started, or was killed."""

    def __init__(
        self, argv: Sequence[str], returncode: int | None, tail: str, hint: str = ""
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = tail
        self.hint = hint
        what = "could not be started" if returncode is None else f"exited with status {returncode}"
        last = tail.strip().splitlines()[-1] if tail.strip() else ""
        message = f"{self.argv[0]} {what}"
        if last:
            message += f": {last}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class Cancelled(RuntimeError):
    """The job that ran this program was cancelled."""


@dataclass
class CancelToken:
    """Shared between a job and the programs it runs; `cancel()` stops them all."""

    _event: threading.Event = field(default_factory=threading.Event)
    _callbacks: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        """Ask every program running under this token to stop."""
        with self._lock:
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    @property
    def cancelled(self) -> bool:
        """True once `cancel()` has been called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise `Cancelled` if the job was cancelled."""
        if self._event.is_set():
            raise Cancelled("cancelled")

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on cancel; True if cancelled."""
        return self._event.wait(seconds)

    def _register(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._event.is_set():
                run_now = True
            else:
                self._callbacks.append(callback)
                run_now = False
        if run_now:
            callback()

    def _unregister(self, callback: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)


@dataclass(frozen=True)
class Completed:
    """What a finished program left behind."""

    returncode: int
    stdout: bytes
    """Captured standard output (only with `capture=True`, else empty)."""
    tail: str
    """The last lines of its (other) output, for messages."""


#: Runs an argv for a job (its log, its cancel token): `run` with those bound.
Runner = Callable[..., Completed]


def _split_lines(buffer: bytearray) -> tuple[list[str], bytearray]:
    """Cut complete lines (ended by \\n or \\r) off the front of `buffer`."""
    lines: list[str] = []
    start = 0
    for i, byte in enumerate(buffer):
        if byte in (0x0A, 0x0D):
            if i > start:
                lines.append(buffer[start:i].decode("utf-8", "replace"))
            start = i + 1
    return lines, bytearray(buffer[start:])


def _pump(
    stream: IO[bytes],
    on_line: Callable[[str], None] | None,
    tail: deque[str],
    logfile: IO[str] | None,
    lock: threading.Lock,
) -> None:
    buffer = bytearray()
    while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
        buffer.extend(chunk)
        lines, buffer = _split_lines(buffer)
        for line in lines:
            tail.append(line)
            if logfile is not None:
                with lock:
                    logfile.write(line + "\n")
                    logfile.flush()
            if on_line is not None:
                on_line(line)
    if buffer:
        line = buffer.decode("utf-8", "replace")
        tail.append(line)
        if logfile is not None:
            with lock:
                logfile.write(line + "\n")
        if on_line is not None:
            on_line(line)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(KILL_GRACE_SECONDS)
    # Children of the child may outlive it; the group id still names them.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stdin_data: bytes | None = None,
    on_line: Callable[[str], None] | None = None,
    cancel: CancelToken | None = None,
    logfile: IO[str] | None = None,
    capture: bool = False,
    check: bool = True,
    hint: str = "",
) -> Completed:
    """Run `argv` to completion and return what it left behind.

    `env` is merged over the current environment. `stdin_data` (a password, say)
    is written to the child's stdin and never appears in a log. With `capture`,
    stdout is returned whole and only stderr is streamed; otherwise both are
    streamed together. With `check`, a non-zero exit raises `ToolError`.
    Cancelling the token kills the process group and raises `Cancelled`.
    """
    argv = [str(a) for a in argv]
    command = shlex.join(argv)
    log.info("run: %s", command)
    if logfile is not None:
        logfile.write(f"$ {command}\n")
        logfile.flush()
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    if cancel is not None:
        cancel.raise_if_cancelled()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    except OSError as exc:
        raise ToolError(argv, None, str(exc), hint) from exc

    tail: deque[str] = deque(maxlen=TAIL_LINES)
    lock = threading.Lock()
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        threading.Thread(target=_kill_group, args=(proc,), daemon=True).start()

    if cancel is not None:
        cancel._register(kill)
    try:
        if stdin_data is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin_data)
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        stdout = b""
        assert proc.stdout is not None
        if capture:
            assert proc.stderr is not None
            pump = threading.Thread(
                target=_pump, args=(proc.stderr, on_line, tail, logfile, lock), daemon=True
            )
            pump.start()
            stdout = proc.stdout.read()
            pump.join()
        else:
            _pump(proc.stdout, on_line, tail, logfile, lock)
        returncode = proc.wait()
    except BaseException:
        # KeyboardInterrupt or a callback that raised: never leave the child running.
        _kill_group(proc)
        raise
    finally:
        if cancel is not None:
            cancel._unregister(kill)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    text_tail = "\n".join(tail)
    if logfile is not None:
        logfile.write(f"[exit {returncode}]\n")
        logfile.flush()
    if killed.is_set() or (cancel is not None and cancel.cancelled):
        raise Cancelled(f"{argv[0]} was cancelled")
    if check and returncode != 0:
        raise ToolError(argv, returncode, text_tail, hint)
    return Completed(returncode, stdout, text_tail)
