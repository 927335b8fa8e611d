"""Pilot tests of marks, compress, delete, gc and fix-perms in the app, on the real queue.

The caches are the real tools' files (`real_cache`); the jobs run on the app's
own job queue with the real squashfs-tools, so "compressed" means the file on
disk probes as zstd afterwards and "deleted" means it lies in `.imgcache-trash`.
No registry is needed.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from textual.widgets import Checkbox, Static

from imgcache.backends.inventory.probe import probe_path
from imgcache.backends.maintenance.compress import SIGNED_QUESTION, SIGNED_WARNING
from imgcache.tui.commands import commands
from imgcache.tui.format import human_size
from imgcache.tui.keys import WRITE_BINDINGS
from imgcache.tui.screens.compress_dialog import CompressDialog
from imgcache.tui.screens.confirm import ConfirmDialog
from imgcache.tui.screens.delete_dialog import DeleteDialog
from imgcache.tui.screens.gc_plan import GcPlanScreen
from imgcache.tui.screens.help import HelpScreen
from imgcache.tui.screens.perms_plan import PermsPlanScreen
from tests.app.helpers import FIXED_NOW, make_app, record_notifications, rendered, settle, wait_for
from tests.builders import have, make_sif

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not have("sqfs2tar", "tar2sqfs", "unsquashfs"), reason="needs squashfs-tools-ng"
    ),
]

#: Keys of the maintenance actions and the marks.
KEYS = ("C", "D", "X", "M", "delete")


async def started(app, pilot) -> None:
    """Scanned, and the job queue open."""
    await settle(app)
    await wait_for(lambda: app.jobs.queue is not None)


async def mark(app, pilot, *paths) -> None:
    """Put the cursor on each file's row and press space."""
    for path in paths:
        assert app.main.table.select_path(str(path)), path
        await pilot.press("space")


def body(screen, selector: str = "#option-body") -> str:
    return rendered(screen.query_one(selector, Static).content, width=220)


async def jobs_done(app, count: int, timeout: float = 60) -> list:
    await wait_for(lambda: len(app.jobs.statuses) == count and not app.jobs.active, timeout)
    return sorted(app.jobs.statuses.values(), key=lambda s: s.id)


async def test_marks_follow_files_not_rows_and_never_rebuild_the_view(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        table = app.main.table
        model = table.model
        lzo, gzip = real_cache.enroot / "ubuntu+22.04.sqsh", real_cache.enroot / "alpine+3.19.sqsh"
        rebuilds = model.rebuilds
        await mark(app, pilot, lzo, gzip)
        assert model.rebuilds == rebuilds  # one line repainted per mark, no new view
        size = lzo.stat().st_size + gzip.stat().st_size
        assert table.border_title.endswith(f"2 marked · {human_size(size)}")
        assert table.render_line(model.position(str(lzo)) + 1).text.startswith("*")
        # Actions take the marks in the table's order (by name: alpine first).
        assert [i.path for i in table.targets()] == [str(gzip), str(lzo)]

        # Sorting, filtering and a rescan keep them; hidden marks still count.
        await pilot.press("s", "s", "s", "s")  # by size
        assert model.sort == "size" and len(table.marks) == 2
        names = [name for name, _help, _cb in commands(app)]
        assert f"Delete 2 marked images ({human_size(size)})…" in names
        await pilot.press("slash", *"alpine", "enter")
        assert len(model) == 1 and len(table.marks) == 2
        await pilot.press("escape")
        await pilot.press("asterisk")  # every image shown
        assert len(table.marks) == len(model.rows)
        await pilot.press("asterisk")  # all were marked: unmark them
        assert not table.marks
        await mark(app, pilot, lzo, gzip)
        gzip.unlink()  # another admin removed it
        app.request_scan({str(real_cache.enroot)})
        await settle(app)
        assert set(table.marks) == {str(lzo)}
        await pilot.press("u")
        assert not table.marks and "marked" not in table.border_title
        names = [name for name, _help, _cb in commands(app)]
        assert "Garbage-collect…" in names and any(
            n.startswith("Compress the selected") for n in names
        )


async def test_two_marked_images_are_compressed_to_zstd(real_cache, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        notes = record_notifications(app, monkeypatch)
        nod = real_cache.enroot / "nvidia+pytorch+25.09-py3.sqsh"
        lzo = real_cache.enroot / "ubuntu+22.04.sqsh"
        before = {p: p.stat().st_size for p in (nod, lzo)}
        await mark(app, pilot, nod, lzo)
        await pilot.press("C")
        dialog = app.screen
        assert isinstance(dialog, CompressDialog)
        text = body(dialog)
        assert "2 images" in text and "zstd level 3, 1 MiB blocks" in text
        assert "lzo → zstd" in text and "zstd -noD → zstd" in text
        await pilot.press("y")
        statuses = await jobs_done(app, 2)
        assert [s.request.kind for s in statuses] == ["compress", "compress"]
        assert all(s.state.value == "done" for s in statuses), [s.message for s in statuses]
        for path in (nod, lzo):
            result = probe_path(str(path))
            assert (result.compression, result.data_compressed) == ("zstd", True)
        assert nod.stat().st_size < before[nod]
        # The rows follow (a rescan of the directories was asked for), marks are used up.
        rows = app.main.table.model.rows
        await wait_for(lambda: all(rows[str(p)].comp == "zstd" for p in (nod, lzo)), timeout=10)
        assert not app.main.table.marks
        done = [m for t, _s, m in notes if t == "Job done"]
        assert len(done) == 2 and all("->" in m and str(nod) not in m for m in done)


async def test_compress_refuses_early_what_it_cannot_do(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        zstd = real_cache.enroot / "determinedai+pytorch-ngc+0.35.1.sqsh"
        await mark(
            app, pilot, zstd, real_cache.sif / "broken/image:1", real_cache.podman / "scipy.tar"
        )
        await pilot.press("C")
        dialog = app.screen
        text = body(dialog)
        assert "Nothing to compress" in text and "Left out: 3 images" in text
        assert "already zstd with compressed data" in text
        assert "is corrupt" in text and "only squashfs images and SIF files" in text
        await pilot.press("y")
        assert app.screen is dialog  # yes does nothing when nothing would be done
        await pilot.press("f")  # force: the zstd image may be rebuilt after all
        assert "Left out: 2 images" in body(dialog)
        await pilot.press("n")
        assert app.screen is app.main and not app.jobs.statuses


async def test_a_signed_sif_needs_a_second_explicit_yes(real_cache, real_images, tmp_path):
    signed = make_sif(real_cache.sif / "hpc/signed:1", squashfs=real_images.nod, signature=True)
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await mark(app, pilot, signed)
        await pilot.press("C")
        assert SIGNED_WARNING in body(app.screen)
        await pilot.press("y")
        question = app.screen
        assert isinstance(question, ConfirmDialog)
        assert SIGNED_QUESTION[1:] in rendered(question.query_one("#confirm-body").content)
        await pilot.press("enter")  # starts on Cancel: Enter is not a yes
        assert app.screen is app.main and not app.jobs.statuses
        await pilot.press("C", "y", "y")
        [status] = await jobs_done(app, 1)
        assert status.state.value == "done", status.message
        assert status.request.payload.allow_signed
        assert "signature no longer verifies" in status.message
        result = probe_path(str(signed))
        assert (result.compression, result.data_compressed) == ("zstd", True)


async def test_delete_shows_what_is_freed_and_moves_files_to_the_trash(real_cache):
    link = real_cache.enroot / "latest.sqsh"
    link.symlink_to("alpine+3.19.sqsh")
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        gone = [real_cache.enroot / "ubuntu+22.04.sqsh", real_cache.podman / "scipy.tar"]
        await mark(app, pilot, *gone, link)
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, DeleteDialog))
        dialog = app.screen
        text = body(dialog)
        total = human_size(sum(p.stat().st_size for p in gone))
        assert f"2 files · {total} freed when the trash is purged (7 d)" in text
        assert "ubuntu+22.04.sqsh" in text and "scipy.tar" in text
        assert "Left out: 1 file" in text and "latest.sqsh" in text and "link" in text
        await pilot.press("p")
        assert "freed now" in body(dialog)
        await pilot.press("p", "enter")  # Enter starts on Cancel
        assert app.screen is app.main and not app.jobs.statuses
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, DeleteDialog))
        await pilot.press("y")
        [status] = await jobs_done(app, 1)
        assert status.state.value == "done", status.message
        assert status.message.startswith("2 files moved to the trash")
        trash = [real_cache.enroot / ".imgcache-trash", real_cache.podman / ".imgcache-trash"]
        for path, bin_ in zip(gone, trash, strict=True):
            assert not path.exists()
            assert list(bin_.rglob(path.name))
        assert link.is_symlink() and (real_cache.enroot / "alpine+3.19.sqsh").exists()
        rows = app.main.table.model.rows
        await wait_for(lambda: not any(str(p) in rows for p in gone), timeout=10)
        assert str(link) in rows


async def test_the_gc_screen_lists_exactly_what_the_job_removes(real_cache):
    broken = real_cache.sif / "broken/image:1"
    os.utime(broken, (FIXED_NOW - 60, FIXED_NOW - 60))  # a minute old: maybe still written
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("X")
        screen = app.screen
        assert isinstance(screen, GcPlanScreen)
        await wait_for(lambda: screen.plan is not None)
        plan = screen.plan
        assert plan.codes == ("corrupt", "incomplete", "duplicate", "stale")
        assert plan.paths and str(real_cache.podman / "scipy.tar") in plan.paths
        text = body(screen, "#plan-body")
        for item in plan.items:
            assert item.rel in text
        assert "Kept although they match: 1 image" in text  # and says why:
        assert "broken/image:1" in text and "it may still be being written" in text
        totals = body(screen, "#plan-totals")
        assert f"{len(plan.items)} files · {human_size(plan.total_bytes)}" in totals

        # Unticking stale plans again without the stale images.
        screen.query_one("#gc-stale", Checkbox).toggle()
        await wait_for(lambda: screen.plan is not None and "stale" not in screen.plan.codes)
        await wait_for(lambda: screen.plan is not None and screen.plan is not plan)
        assert str(real_cache.podman / "scipy.tar") not in screen.plan.paths
        screen.query_one("#gc-stale", Checkbox).toggle()
        await wait_for(lambda: screen.plan is not None and "stale" in screen.plan.codes)
        shown = list(screen.plan.paths)
        kept = [p for p in map(str, app.main.table.model.rows) if p not in shown]
        await pilot.press("y")
        [status] = await jobs_done(app, 1)
        assert status.state.value == "done", status.message
        assert status.request.payload.plan.paths == shown
        assert all(not os.path.exists(p) for p in shown)
        assert all(os.path.lexists(p) for p in kept)
        rows = app.main.table.model.rows
        await wait_for(lambda: not any(p in rows for p in shown), timeout=10)


async def test_fix_perms_lists_the_change_and_makes_it(real_cache):
    target = real_cache.enroot / "alpine+3.19.sqsh"
    target.chmod(0o600)
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("M")
        screen = app.screen
        assert isinstance(screen, PermsPlanScreen)
        await wait_for(lambda: screen.plan is not None)
        text = body(screen, "#plan-body")
        line = next(line for line in text.splitlines() if str(target) in line)
        assert line.split()[:5] == ["0600", "rw-------", "->", "0644", "rw-r--r--"]
        assert [c.path for c in screen.plan.changes] == [str(target)]
        await pilot.press("y")
        [status] = await jobs_done(app, 1)
        assert status.message == "1 permission change"
        assert target.stat().st_mode & 0o777 == 0o644


async def test_read_only_has_no_marks_and_no_maintenance(real_cache, monkeypatch):
    app = make_app(replace(real_cache.settings(), read_only=True))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        table = app.main.table
        active = {b.binding.id for b in app.screen.active_bindings.values()}
        assert not active & {"compress", "delete", "gc", "fix_perms", "toggle_mark", "mark_all"}
        pushed = []
        monkeypatch.setattr(app, "push_screen", lambda *a, **k: pushed.append(a))
        for key in (*KEYS, "space", "asterisk"):
            await pilot.press(key)
        for action in ("compress", "delete", "gc", "fix_perms"):
            await app.run_action(action)
        assert not pushed and not table.marks and "marked" not in table.border_title
        names = " ".join(name for name, _help, _cb in commands(app))
        for word in ("Compress", "Delete", "Garbage", "permissions", "Mark", "marks"):
            assert word not in names
        monkeypatch.undo()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        entries = app.screen.entries
        assert not {e.id for e in entries} & WRITE_BINDINGS
        sections = {e.section for e in entries}
        assert not [s for s in sections if s.startswith(("Compress", "Delete", "Garbage"))]
