"""What the fault tests share: start imgcache for real, wait, and look at what is left.

Processes are found through /proc (by parent pid or by command line), the way an
admin would look with `ps`; files by listing directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from imgcache.backends.inventory import caches
from tests.integration.helpers import REPO


def start(*args: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[str]:
    """`imgcache ARGS` in a subprocess, stdout and stderr together on a pipe, no stdin."""
    options: dict[str, object] = {
        "stdout": subprocess.PIPE,
        "stderr": subprocess.STDOUT,
        "stdin": subprocess.DEVNULL,
        "text": True,
    }
    options.update(popen)
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "imgcache.tui.cli", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        **options,
    )


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str]:
    """Run `imgcache ARGS` to its end; (exit status, stdout and stderr together)."""
    proc = start(*args, env=env)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 30.0,
    what: str = "it",
    proc: subprocess.Popen[str] | None = None,
) -> None:
    """Poll `predicate` every 20 ms until it is true; fail after `timeout` seconds, or
    as soon as `proc` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"imgcache exited ({proc.returncode}) before {what}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> dict[int, str]:
    """The live child processes of `pid`: pid -> program name."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[1] == str(pid) and fields[0] != "Z":
                with contextlib.suppress(OSError):
                    found[int(entry)] = Path(f"/proc/{entry}/comm").read_text().strip()
    return found


def mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if text.encode() in cmdline and alive(int(entry)):
                    found.append(int(entry))
    return found


def temps(root: str | Path) -> list[str]:
    """Every file under `root` the scanner would list as an unfinished write."""
    found = []
    for directory, _dirs, files in os.walk(root):
        found += [os.path.join(directory, f) for f in files if caches.looks_incomplete(f)]
    return found


def tree(root: str | Path) -> dict[str, int]:
    """Every entry under `root` (relative path -> size), links not followed."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                found[os.path.relpath(path, root)] = os.lstat(path).st_size
    return found


def du(root: str | Path) -> int:
    """Bytes under `root`."""
    return sum(tree(root).values())


def sha256(path: str | Path) -> str:
    """The SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def kill9(proc: subprocess.Popen[str]) -> str:
    """SIGKILL imgcache and reap it; returns what it printed."""
    proc.kill()
    out, _ = proc.communicate(timeout=30)
    return out or ""


def all_gone(pids: list[int], timeout: float = 10.0) -> bool:
    """Whether every one of `pids` is gone (or a zombie) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False
