"""imgcache's own directories never show as rows in the running app.

The app runs with its real watcher (inotify on the test's directory). An image
is deleted by `imgcache rm --yes` in another process, as another admin would:
its row goes, no row appears for the copy in `.imgcache-trash/<batch>/`, the
deleted default shows as missing (not "elsewhere"), and `r` changes none of it.
A pull's lock file under `.imgcache-locks/`, taken with the jobs' own lock, never
shows as a row either.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from imgcache.backends.inventory import caches
from imgcache.backends.jobs.locks import RefLock
from imgcache.tui.widgets.summary import SummaryBar
from tests.app.helpers import DEFAULT_REF, make_app, settle, wait_for

pytestmark = pytest.mark.tools

IMGCACHE = str(Path(sys.executable).parent / "imgcache")


def reserved_rows(app) -> list[str]:
    rows = app.main.table.model.rows
    return [p for p in rows if caches.reserved(p)]


def cpu_state(app, root: Path) -> str:
    return next(
        p.state
        for p in app.inventory.presence
        if p.default.env == "cpu" and p.cache_root == str(root)
    )


async def quiet(app, seconds: float = 1.0) -> None:
    """Let the watcher flush whatever it saw (its debounce is 0.3 s), then settle."""
    await asyncio.sleep(seconds)
    await settle(app)


async def test_a_deleted_image_leaves_the_view_and_r_keeps_it_gone(real_cache):
    app = make_app(real_cache.settings(), watch=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await wait_for(lambda: app.watcher is not None and app.watcher.modes)
        model = app.main.table.model
        target = real_cache.sif / DEFAULT_REF
        assert str(target) in model.rows and cpu_state(app, real_cache.sif) == "present"
        before = len(model.rows)

        proc = await asyncio.create_subprocess_exec(
            IMGCACHE, "--config", str(real_cache.config), "rm", "--yes", str(target),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        trash = real_cache.sif / caches.TRASH_DIR
        assert any(p.name == target.name for p in trash.rglob("*")), "rm did not trash it"

        await wait_for(lambda: str(target) not in model.rows, timeout=5)
        await quiet(app)
        assert reserved_rows(app) == []
        assert len(model.rows) == before - 1
        assert cpu_state(app, real_cache.sif) == "missing"
        (sif,) = [c for c in app.inventory.caches if c.spec.path == str(real_cache.sif)]
        assert sif.images == len([p for p in model.rows if p.startswith(f"{real_cache.sif}/")])
        assert sif.images == 2
        await pilot.pause()
        summary = app.main.query_one("#summary", SummaryBar).content.plain
        assert summary.startswith("8 images "), summary

        await pilot.press("r")
        await settle(app)
        assert str(target) not in model.rows
        assert reserved_rows(app) == []
        assert len(model.rows) == before - 1


async def test_a_pulls_lock_file_is_never_a_row(real_cache):
    app = make_app(real_cache.settings(), watch=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await wait_for(lambda: app.watcher is not None and app.watcher.modes)
        model = app.main.table.model
        before = set(model.rows)
        lock = RefLock(str(real_cache.enroot), "alpine+3.20.sqsh", what="import alpine:3.20")
        lock.acquire(timeout=5)
        try:
            assert lock.held and os.path.exists(lock.path)
            # Something else changes in the same cache meanwhile: the view is live.
            (real_cache.enroot / "notes.txt").write_text("pulling alpine\n")
            await wait_for(lambda: str(real_cache.enroot / "notes.txt") in model.rows)
            await quiet(app)
            assert reserved_rows(app) == []
            await pilot.press("r")
            await settle(app)
            assert reserved_rows(app) == []
            assert set(model.rows) == before | {str(real_cache.enroot / "notes.txt")}
        finally:
            lock.release()
