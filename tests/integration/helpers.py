"""Helpers shared by the job tests: run jobs to the end, run the CLI, read images back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from imgcache.backends.config import Settings
from imgcache.backends.inventory import caches, probe
from imgcache.backends.inventory.model import ProbeResult
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobRequest, JobStatus
from imgcache.backends.tools.run import run

REPO = Path(__file__).resolve().parents[2]


def run_jobs(settings: Settings, *requests: JobRequest, timeout: float = 120) -> list[JobStatus]:
    """Run `requests` on a fresh queue and return their final snapshots, in order."""
    queue = JobQueue(settings)
    ids = [queue.submit(r).id for r in requests]
    try:
        assert queue.wait(timeout=timeout), "jobs did not finish in time"
        return [queue.get(i) for i in ids]
    finally:
        queue.shutdown()


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `imgcache ARGS` in a subprocess (stdout a pipe, so plain lines)."""
    return subprocess.run(
        [sys.executable, "-m", "imgcache.tui.cli", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def leftovers(root: str | Path) -> list[str]:
    """Every file under `root` the scanner would flag as an unfinished write."""
    found = []
    for directory, _dirs, files in os.walk(root):
        found += [os.path.join(directory, f) for f in files if caches.looks_incomplete(f)]
    return found


def sif_partition(path: str | Path) -> int:
    """The offset of a SIF's primary partition, from imgcache's own probe."""
    result = probe.probe_path(str(path))
    assert result.sif is not None and result.sif.primary is not None, result
    return result.sif.primary.offset


def squash_list(path: str | Path, offset: int = 0) -> str:
    """`unsquashfs -lls` of a squashfs (at `offset` inside a SIF)."""
    extra = ["-o", str(offset)] if offset else []
    return run(["unsquashfs", *extra, "-lls", str(path)], capture=True).stdout.decode()


def squash_cat(path: str | Path, member: str, offset: int = 0) -> str:
    """One file's content from a squashfs, with `unsquashfs -cat`."""
    extra = ["-o", str(offset)] if offset else []
    return run(["unsquashfs", *extra, "-cat", str(path), member], capture=True).stdout.decode()


def squash_super(path: str | Path, offset: int = 0) -> str:
    """`unsquashfs -s`: the superblock as unsquashfs reports it."""
    extra = ["-o", str(offset)] if offset else []
    return run(["unsquashfs", *extra, "-s", str(path)], capture=True).stdout.decode()


def probed(path: str | Path) -> ProbeResult:
    """imgcache's own probe of a result."""
    return probe.probe_path(str(path))


def all_done(statuses: Sequence[JobStatus]) -> None:
    """Assert every job ended done, showing the messages otherwise."""
    assert all(s.state.value == "done" for s in statuses), [(s.title, s.message) for s in statuses]
