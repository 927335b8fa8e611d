"""Shared by the app tests, the end-to-end test and scripts/screenshots: the frozen
clock, waiting helpers and the demo's job snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from imgcache.backends.config import Settings
from imgcache.backends.inventory.scan import filestat
from imgcache.backends.jobs.kinds import fetch_kind
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from imgcache.tui.app import ImgcacheApp, create_app
from imgcache.tui.widgets.job_lines import LINES_PER_JOB
from imgcache.tui.widgets.job_list import JobList

#: The frozen "now" of every app test: 2026-01-15 12:00:00 UTC.
FIXED_NOW = 1768478400.0
#: Free bytes shown for every cache in tests (the real figure changes all the time).
FIXED_FREE = 512 * 1024**3
#: The demo for snapshots lives at a fixed path, because paths show on screen.
SNAPSHOT_DIR = Path("/tmp/imgcache-snapshots")
#: On the demo: mark three superseded copies (rows 3, 5 and 8 by name), then delete.
#: The owner every demo file shows in snapshots and screenshots, whoever runs them.
DEMO_OWNER = ("hpcadmin", "hpc")
DELETE_KEYS = ["j", "j", "space", "j", "space", "j", "j", "space", "D"]
DEFAULT_REF = "determinedai/pytorch-ngc:0.35.1"
ROCM_REF = "determinedai/environments:rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512"


@contextlib.contextmanager
def pinned_owner() -> Iterator[None]:
    """Show every file as owned by `DEMO_OWNER` while in the block.

    The demo's files belong to whoever wrote them (root in CI, a user at a desk);
    the scanner names owners through `imgcache.backends.inventory.scan.filestat.user_name` and
    `group_name`, so pinning those keeps snapshots and screenshots the same on every machine.
    """
    saved = filestat.user_name, filestat.group_name
    filestat.user_name = lambda _uid: DEMO_OWNER[0]  # type: ignore[assignment]
    filestat.group_name = lambda _gid: DEMO_OWNER[1]  # type: ignore[assignment]
    try:
        yield
    finally:
        filestat.user_name, filestat.group_name = saved


def frozen() -> float:
    """The tests' clock."""
    return FIXED_NOW


def make_app(settings: Settings, **options: object) -> ImgcacheApp:
    """The app from the command's own factory, with the tests' clock and free space."""
    options.setdefault("clock", frozen)
    options.setdefault("free_space", lambda _status: FIXED_FREE)
    options.setdefault("watch", False)
    return create_app(settings, **options)  # type: ignore[arg-type]


async def settle(app: ImgcacheApp, timeout: float = 15.0) -> None:
    """Wait until the app shows an inventory and has no scan running or queued."""
    deadline = time.monotonic() + timeout
    while not app.settled:
        if time.monotonic() > deadline:
            raise AssertionError("the app did not finish scanning in time")
        await asyncio.sleep(0.02)
    await app.workers.wait_for_complete()


def rendered(renderable: object, width: int = 120) -> str:
    """A Rich renderable (or a Static's content) as plain text."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def table_lines(app: ImgcacheApp) -> list[str]:
    """What the image table shows, line by line (header first)."""
    table = app.main.table
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


async def wait_for(
    condition: Callable[[], object], timeout: float = 5.0, step: float = 0.02
) -> float:
    """Poll `condition()` until true; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - start


def pane_lines(jobs: JobList, job_id: int) -> list[str]:
    """The two lines the jobs pane draws for one job, as text."""
    top = jobs.order.index(job_id) * LINES_PER_JOB - int(jobs.scroll_y)
    return [jobs.render_line(top + i).text for i in range(LINES_PER_JOB)]


def record_notifications(
    app: ImgcacheApp, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, str, str]]:
    """(title, severity, message) of every notification the app shows from now on."""
    seen: list[tuple[str, str, str]] = []
    original = app.notify

    def notify(message, *, title="", severity="information", **options):
        seen.append((title, severity, message))
        original(message, title=title, severity=severity, **options)

    monkeypatch.setattr(app, "notify", notify)
    return seen


def demo_jobs(settings: Settings, now: float, *, running: bool = True) -> list[JobStatus]:
    """Job snapshots as a session of pulls leaves them, for snapshots and screenshots.

    A default pulled into the first cache, a failed pull, and (with `running`) one
    running and one queued; every time is fixed relative to `now`.
    """
    # Each cache gets the job kind that fills it: pull (SIF), import (enroot), save (podman).
    first, last = settings.caches[0], settings.caches[-1]
    middle = settings.caches[len(settings.caches) // 2]
    cuda = "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"
    builtin = "builtin (skopeo, umoci, mksquashfs, siftool)"

    def job(job_id: int, request: JobRequest, state: JobState, **fields: object) -> JobStatus:
        status = JobStatus(job_id, f"demo-{job_id}", request, state, "", None, created=now)
        return replace(status, **fields)  # type: ignore[arg-type]

    jobs = [
        job(1, JobRequest(fetch_kind(first.kind), ROCM_REF, first, label="rocm default"),
            JobState.DONE,
            phase="done", message="done", fraction=1.0, backend=builtin,
            started=now - 400, finished=now - 312),
        job(2, JobRequest(fetch_kind(last.kind), "nvcr.io/nvidia/pytorch:25.10-py3", last),
            JobState.FAILED, phase="failed", fraction=0.04, backend="builtin (skopeo)",
            message="skopeo: reading manifest 25.10-py3 in nvcr.io/nvidia/pytorch: "
            "manifest unknown", started=now - 300, finished=now - 297),
    ]  # fmt: skip
    if running:
        jobs += [
            job(3, JobRequest(fetch_kind(first.kind), cuda, first, label="cuda default"),
                JobState.RUNNING,
                phase="squashing 62%", fraction=0.71, backend=builtin, started=now - 83),
            job(4, JobRequest(fetch_kind(middle.kind), cuda, middle, label="cuda default"),
                JobState.QUEUED,
                phase="queued"),
        ]  # fmt: skip
    return jobs
