"""Live refresh: files other processes create, replace and delete show up on their own.

The app runs with its real watcher (inotify on the test's local directory); the
changes are made the way another admin's tools would make them (a copy, an atomic
rename over the old file, a delete) while the app runs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from imgcache.backends.inventory import scan
from imgcache.backends.watch import watcher
from imgcache.tui.app import run_app
from imgcache.tui.messages import WatchStatus
from imgcache.tui.widgets.rows import Plan
from tests.app.helpers import make_app, settle, table_lines, wait_for

pytestmark = pytest.mark.tools


async def test_created_replaced_deleted_files_show_within_two_seconds(real_cache, real_images):
    app = make_app(real_cache.settings(), watch=True)
    # A short terminal, so the table scrolls and keeping the scroll position matters.
    async with app.run_test(size=(120, 12)) as pilot:
        await settle(app)
        await wait_for(lambda: app.watcher is not None and app.watcher.modes)
        assert {m.method for m in app.watcher.modes.values()} == {"inotify"}
        model = app.main.table.model
        # Put the cursor on an image further down and remember where it is on screen.
        table = app.main.table
        table.select_path(str(real_cache.enroot / "ubuntu+22.04.sqsh"))
        await pilot.pause()
        selected, offset = table.highlighted, table.cursor - int(table.scroll_y)
        assert table.scroll_y > 0

        created = real_cache.enroot / "aaa+new+1.sqsh"
        shutil.copyfile(real_images.zstd, created)
        took = await wait_for(lambda: str(created) in model.rows, timeout=5)
        assert took < 2.0
        await pilot.pause()
        assert model.position(str(created)) == 0
        # The new row sorts above the cursor; the cursor stays on its image, at the
        # same height on screen (the view scrolled by one line under it).
        assert table.highlighted.path == selected.path
        assert table.cursor - int(table.scroll_y) == offset
        cursor_line = table_lines(app)[offset + 1]
        assert "ubuntu:22.04" in cursor_line and "enroot" in cursor_line

        # Replaced the way publishers do it: a temp file renamed over the old one.
        target = real_cache.enroot / "alpine+3.19.sqsh"
        before = model.rows[str(target)]
        temp = real_cache.enroot / ".alpine.tmp"
        shutil.copyfile(real_images.nod, temp)
        os.replace(temp, target)
        took = await wait_for(lambda: model.rows[str(target)] is not before, timeout=5)
        assert took < 2.0
        assert "uncompressed" in model.rows[str(target)].codes

        created.unlink()
        took = await wait_for(lambda: str(created) not in model.rows, timeout=5)
        assert took < 2.0
        assert app.refresh_latencies


async def test_one_changed_file_updates_only_its_row(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        model = app.main.table.model
        before = dict(model.rows)
        rebuilds = model.rebuilds
        target = real_cache.sif / "library/ubuntu:22.04"
        with open(target, "r+b") as f:
            f.seek(0, os.SEEK_END)
            f.write(b"\0" * 4096)  # a bigger file: its SIZE cell must change
        app.request_scan({str(target.parent)})
        await settle(app)
        assert model.rebuilds == rebuilds  # patched in place, view not rebuilt
        changed = [path for path, row in model.rows.items() if row is not before[path]]
        assert changed == [str(target)]
        await pilot.pause()
        row = model.rows[str(target)]
        assert row.image.stat.size == before[str(target)].image.stat.size + 4096


async def test_rows_are_diffed_off_the_ui_thread(real_cache, monkeypatch):
    # The worker hands the UI a ready plan; the UI thread never builds rows itself.
    import imgcache.tui.screens.main as main_module

    def refuse(*args, **kwargs):
        raise AssertionError("rows planned on the UI thread")

    app = make_app(real_cache.settings())
    seen: list[Plan] = []
    original = app.main.show_inventory

    def spy(inventory, change=None, sums=None, summary=None):
        assert isinstance(change, Plan) and sums is not None and summary is not None
        seen.append(change)
        return original(inventory, change, sums, summary)

    monkeypatch.setattr(main_module, "plan", refuse)
    app.main.show_inventory = spy
    async with app.run_test(size=(100, 30)):
        await settle(app)
        assert seen and len(app.main.table.model) == 9


async def test_watch_limit_falls_back_to_polling_and_says_so(real_cache, monkeypatch):
    class FullInotify(watcher.Observer):
        def schedule(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher, "Observer", FullInotify)
    settings = real_cache.settings()
    app = make_app(settings, watch=True)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app)
        await wait_for(lambda: app.watcher is not None and len(app.watcher.modes) == 3)
        await pilot.pause()
        assert {m.method for m in app.watcher.modes.values()} == {"polling"}
        status = app.main.status.content.plain
        assert "● polling" in status
        assert "inotify watch limit reached" in status
        assert any("watch limit" in event for event in app.watch_events)


async def test_removed_cache_root_is_reported_not_fatal(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app)
        shutil.rmtree(real_cache.podman)
        app.post_message(WatchStatus({}, f"{real_cache.podman}: the cache root disappeared"))
        app.request_scan({str(real_cache.podman)})
        await settle(app)
        await pilot.pause()
        assert len(app.main.table.model.rows) == 7
        assert "the cache root disappeared" in app.main.status.content.plain
        assert app.is_running


def test_run_app_refuses_a_missing_root_in_one_line(tmp_path, capsys):
    from imgcache.backends.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text(f'[[cache]]\nkind = "enroot"\npath = "{tmp_path / "nope"}"\n')
    assert run_app(load_settings(config=str(config))) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgcache: enroot:") and "no such directory" in err
    assert err.count("\n") == 1


def test_command_without_caches_exits_2_before_the_ui(tmp_path):
    env = {**os.environ, "IMGCACHE_CONFIG": "", "IMGCACHE_DETERMINED_CONFIG": ""}
    exe = os.path.join(os.path.dirname(sys.executable), "imgcache")
    # On a terminal, as an admin starts it (without one it stops earlier, saying so).
    main, term = pty.openpty()
    start = time.monotonic()
    try:
        done = subprocess.run(
            [exe], stdin=term, stdout=term, stderr=subprocess.PIPE, text=True, env=env, timeout=60
        )
        os.close(term)
        drawn = b""
        with contextlib.suppress(OSError):  # EIO once the child's side is closed
            while chunk := os.read(main, 65536):
                drawn += chunk
    finally:
        os.close(main)
    assert done.returncode == 2
    assert done.stderr.startswith("imgcache: no cache configured")
    assert b"\x1b[" not in drawn  # the UI never started
    assert time.monotonic() - start < 30


async def test_periodic_full_rescan_finds_what_events_missed(real_cache, real_images):
    # No watcher at all: only the periodic full rescan can notice the new file. The
    # config refuses less than 5 s (a tiny interval pins a core); the test goes faster.
    from dataclasses import replace

    app = make_app(replace(real_cache.settings(), rescan_interval=0.5))
    async with app.run_test(size=(120, 36)):
        await settle(app)
        created = real_cache.sif / "library/busybox:1"
        shutil.copyfile(real_images.sif, created)
        await wait_for(lambda: str(created) in app.main.table.model.rows, timeout=5)


async def test_caches_screen_says_how_each_cache_is_watched(real_cache):
    from textual.widgets import Static

    from imgcache.tui.screens.caches import CachesScreen
    from tests.app.helpers import rendered

    app = make_app(real_cache.settings(), watch=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await wait_for(lambda: app.watcher is not None and len(app.watcher.modes) == 3)
        await pilot.press("i")
        assert isinstance(app.screen, CachesScreen)
        text = rendered(app.screen.query_one(Static).content, width=300)
        assert f"enroot:{real_cache.enroot}" in text
        assert text.count("inotify") >= 3 and "512.0 GiB" in text
        assert "Problems" in text and "none" in text
        await pilot.press("escape")
        assert app.screen is app.main


async def test_a_failing_scan_is_reported_and_the_app_carries_on(real_cache, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)

        def broken(dirs, now=None):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(app.catalog, "rescan", broken)
        app.request_scan({str(real_cache.enroot)})
        await wait_for(lambda: "scan failed" in app.main.status.content.plain)
        assert "Input/output error" in app.main.status.content.plain
        assert len(app.main.table.model.rows) == 9  # the last inventory stays up
        monkeypatch.undo()
        await pilot.press("r")
        await settle(app)
        assert app.is_running


async def test_a_tiny_terminal_still_draws(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(40, 12)) as pilot:
        await settle(app)
        await pilot.pause()
        header = table_lines(app)[0]
        assert header.startswith(" IMAGE") and "SIZE" in header  # the rest is cut off
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        assert "CACHE" in table_lines(app)[0]


async def test_the_tree_follows_new_and_removed_repositories(real_cache, real_images):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        tree = app.main.tree
        enroot = next(n for n in tree.root.children if n.data.root == str(real_cache.enroot))
        enroot.expand()
        await pilot.pause()
        before = [str(c.label).split()[0] for c in enroot.children]
        assert before == ["alpine", "determinedai/pytorch-ngc", "nvidia/pytorch", "ubuntu"]
        kept = enroot.children[0]
        shutil.copyfile(real_images.zstd, real_cache.enroot / "centos+7.sqsh")
        (real_cache.enroot / "ubuntu+22.04.sqsh").unlink()
        app.request_scan({str(real_cache.enroot)})
        await settle(app)
        after = [str(c.label).split()[0] for c in enroot.children]
        assert after == ["alpine", "centos", "determinedai/pytorch-ngc", "nvidia/pytorch"]
        assert enroot.children[0] is kept  # patched, not rebuilt
        assert str(enroot.label).split()[1] == "4"


async def test_a_first_scan_shows_how_far_it_got(real_cache, monkeypatch):
    monkeypatch.setattr(scan.progress, "PROGRESS_INTERVAL", 0.0)
    app = make_app(real_cache.settings())
    gate = threading.Event()
    real_scan = app.catalog.scan

    def held(now=None, progress=None):
        # The scan stops at its first report until the test has seen it on screen.
        def report(done: int, found: int) -> None:
            progress(done, found)
            if done < found:
                gate.wait(10)

        return real_scan(now, report)

    monkeypatch.setattr(app.catalog, "scan", held)
    async with app.run_test(size=(120, 36)):
        try:
            await wait_for(lambda: "reading headers" in app.main.status.content.plain)
            assert re.search(r"reading headers \d+/\d+…", app.main.status.content.plain)
        finally:
            gate.set()
        await settle(app)
        status = app.main.status.content.plain
        assert "reading headers" not in status and "updated" in status
        assert len(app.main.table.model.rows) == 9
