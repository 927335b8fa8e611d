"""Shared by the app tests and the end-to-end test: the frozen clock and waiting helpers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from backends.config import Settings
from tui.app import ImgcacheApp, create_app

#: The frozen "now" of every app test: 2026-01-15 12:00:00 UTC.
FIXED_NOW = 1768478400.0
#: Free bytes shown for every cache in tests (the real figure changes all the time).
FIXED_FREE = 512 * 1024**3
#: The demo for snapshots lives at a fixed path, because paths show on screen.
SNAPSHOT_DIR = Path("/tmp/imgcache-snapshots")
DEFAULT_REF = "determinedai/pytorch-ngc:0.35.1"
ROCM_REF = "determinedai/environments:rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512"


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
