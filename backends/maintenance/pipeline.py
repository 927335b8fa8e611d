"""Run `producer | consumer` without a shell, with the conventions of `imgcache.backends.tools.run`.

Both programs get their own session (so a cancel kills each whole process group)
and the parent-death signal every tool of imgcache gets (so a kill -9 of imgcache
takes both with it), the producer reads /dev/null, both command lines go to the
log, and their messages are streamed into it. The data flows through a kernel pipe
between the two, never through Python, so the pipeline costs what the same pipeline
costs in a shell. While it runs, a callback is ticked with the bytes the producer
has read so far (from `/proc/<pid>/io`), which is how far through the input it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO

from imgcache.backends.tools.run import (
    TAIL_LINES,
    Cancelled,
    CancelToken,
    ToolError,
    _kill_group,  # the one process-group killer, shared with run()
    _pump,  # the one output streamer, shared with run()
    die_with_parent,
)

#: Seconds between progress ticks.
TICK_SECONDS = 0.5
#: A larger pipe buffer saves context switches between the two programs (Linux only).
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def bytes_read(pid: int) -> int | None:
    """How many bytes process `pid` has read so far (`rchar`), or None if unknown."""
    try:
        with open(f"/proc/{pid}/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_pipeline(
    producer: Sequence[str],
    consumer: Sequence[str],
    *,
    cancel: CancelToken | None = None,
    logfile: IO[str] | None = None,
    on_tick: Callable[[int | None], None] | None = None,
) -> None:
    """Run `producer | consumer` to completion; raise `ToolError` or `Cancelled`.

    When both fail, the consumer's error is raised: a producer killed by SIGPIPE
    only says that its reader went away. `on_tick` gets the producer's bytes read
    every `TICK_SECONDS`.
    """
    argvs = [[str(a) for a in producer], [str(a) for a in consumer]]
    text = " | ".join(shlex.join(a) for a in argvs)
    if logfile is not None:
        logfile.write(f"$ {text}\n")
        logfile.flush()
    if cancel is not None:
        cancel.raise_if_cancelled()
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, _PIPE_SIZE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                argvs[0],
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        )
        procs.append(
            subprocess.Popen(
                argvs[1],
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        )
    except OSError as exc:
        for proc in procs:
            _kill_group(proc)
        raise ToolError(argvs[len(procs)], None, str(exc)) from exc
    finally:
        # Only the children hold the pipe now, so each sees the other's end close.
        os.close(read_end)
        os.close(write_end)

    tails: list[deque[str]] = [deque(maxlen=TAIL_LINES), deque(maxlen=TAIL_LINES)]
    lock = threading.Lock()
    killed = threading.Event()
    streams = [procs[0].stderr, procs[1].stdout]
    pumps = [
        threading.Thread(target=_pump, args=(s, None, t, logfile, lock), daemon=True)
        for s, t in zip(streams, tails, strict=True)
    ]

    def kill() -> None:
        killed.set()
        for proc in procs:
            threading.Thread(target=_kill_group, args=(proc,), daemon=True).start()

    if cancel is not None:
        cancel._register(kill)
    try:
        for pump in pumps:
            pump.start()
        while True:
            try:
                procs[1].wait(TICK_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if on_tick is not None:
                    on_tick(bytes_read(procs[0].pid))
        codes = [proc.wait() for proc in procs]
        for pump in pumps:
            pump.join()
    except BaseException:
        for proc in procs:
            _kill_group(proc)
        raise
    finally:
        if cancel is not None:
            cancel._unregister(kill)
        for stream in streams:
            if stream is not None:
                stream.close()
    if logfile is not None:
        logfile.write(f"[exit {codes[0]} | {codes[1]}]\n")
        logfile.flush()
    if killed.is_set() or (cancel is not None and cancel.cancelled):
        raise Cancelled(f"{argvs[0][0]} | {argvs[1][0]} was cancelled")
    for index in (1, 0):
        if codes[index] != 0:
            raise ToolError(argvs[index], codes[index], "\n".join(tails[index]))
