"""Pilot tests of the trash screen (`T`) and of the delete dialog's word on default images.

The caches hold the real tools' files (`real_cache`); deleting goes through the
app's own delete job, so the batches on the trash screen are the ones a real
delete made, manifest and all, and "put back" means the file is at its old path
again, the same inode.
"""

from __future__ import annotations

import os
import pwd

import pytest
from textual.widgets import OptionList, Static

from imgcache.backends.maintenance import trash
from imgcache.backends.maintenance.common import PlanItem
from imgcache.tui.commands import commands
from imgcache.tui.screens.confirm import ConfirmDialog
from imgcache.tui.screens.delete_dialog import DeleteDialog
from imgcache.tui.screens.help import HelpScreen
from imgcache.tui.screens.trash_screen import TrashScreen
from tests.app.conftest import DEFAULT_REF
from tests.app.helpers import make_app, rendered, settle, wait_for
from tests.builders import have

pytestmark = pytest.mark.skipif(not have("mksquashfs"), reason="needs mksquashfs")


def _delete(settings, *paths) -> None:
    items = []
    for path in paths:
        root = next(s.path for s in settings.caches if str(path).startswith(s.path + "/"))
        items.append(PlanItem(str(path), path.stat().st_size, "test", root))
    trash.delete(settings, items, via="rm")


def _options(screen: TrashScreen) -> str:
    options = screen.query_one(OptionList)
    return "\n".join(
        rendered(options.get_option_at_index(i).prompt, width=200)
        for i in range(options.option_count)
    )


async def _open_trash(app, pilot) -> TrashScreen:
    await settle(app)
    await pilot.press("T")
    await wait_for(lambda: isinstance(app.screen, TrashScreen))
    screen = app.screen
    await wait_for(lambda: screen.batches is not None)
    return screen


async def test_the_trash_screen_lists_batches_and_puts_one_back(real_cache):
    settings = real_cache.settings()
    gone = [real_cache.enroot / "alpine+3.19.sqsh", real_cache.enroot / "ubuntu+22.04.sqsh"]
    inodes = [p.stat().st_ino for p in gone]
    _delete(settings, *gone)
    purged = real_cache.podman / "scipy.tar"
    _delete(settings, purged)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_trash(app, pilot)
        assert len(screen.batches) == 2
        text = _options(screen)
        me = pwd.getpwuid(os.getuid()).pw_name
        assert f"by {me} (rm) · 2 files" in text
        assert "alpine+3.19.sqsh" in text and "ubuntu+22.04.sqsh" in text and "scipy.tar" in text
        totals = rendered(screen.query_one("#plan-totals", Static).content, width=200)
        assert "2 batches" in totals and "r puts the selected batch back" in totals
        # Put the enroot batch back.
        enroot_batch = next(b for b in screen.batches if b.root == str(real_cache.enroot))
        screen.query_one(OptionList).highlighted = screen.batches.index(enroot_batch)
        await pilot.press("r")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: all(p.exists() for p in gone), timeout=10)
        assert [p.stat().st_ino for p in gone] == inodes
        await wait_for(lambda: screen.batches is not None and len(screen.batches) == 1)
        assert not os.path.exists(enroot_batch.path)
        # Purge the other one, after a question that starts on no.
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")  # Enter starts on Cancel
        assert app.screen is screen and len(screen.batches) == 1
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(lambda: screen.batches == [], timeout=10)
        assert not list((real_cache.podman / ".imgcache-trash").iterdir())
        assert "The trash is empty" in _options(screen)
        await pilot.press("escape")
        assert app.screen is app.main


async def test_a_restore_is_refused_where_the_name_is_taken(real_cache):
    settings = real_cache.settings()
    target = real_cache.enroot / "alpine+3.19.sqsh"
    _delete(settings, target)
    target.write_bytes(b"published meanwhile\n")
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_trash(app, pilot)
        notes: list[str] = []
        original = app.notify

        def record(message, **kwargs):
            notes.append(message)
            return original(message, **kwargs)

        screen.notify = record  # type: ignore[method-assign]
        await pilot.press("r")
        await wait_for(lambda: notes)
        assert f"{target} is taken now" in notes[0]
        assert not isinstance(app.screen, ConfirmDialog)
        assert target.read_bytes() == b"published meanwhile\n"
        assert len(screen.batches) == 1


async def test_in_read_only_mode_the_trash_is_shown_but_nothing_is_put_back(real_cache):
    from dataclasses import replace

    settings = real_cache.settings()
    target = real_cache.enroot / "alpine+3.19.sqsh"
    _delete(settings, target)
    app = make_app(replace(settings, read_only=True))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_trash(app, pilot)
        assert "alpine+3.19.sqsh" in _options(screen)
        await pilot.press("r", "x")
        await pilot.pause()
        assert app.screen is screen and not target.exists()
        totals = rendered(screen.query_one("#plan-totals", Static).content, width=200)
        assert "read-only: nothing can be put back or purged" in totals
        await pilot.press("escape", "question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpScreen))
        ids = {entry.id for entry in app.screen.entries}
        assert "trash" in ids and not {"trash_restore", "trash_purge"} & ids
        # The palette has it too (looking is no write).
        assert "Trash of every cache" in [name for name, _help, _run in commands(app)]


async def test_the_delete_dialog_says_when_a_file_is_a_default_image(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await wait_for(lambda: app.jobs.queue is not None)
        default = real_cache.sif / DEFAULT_REF
        assert app.main.table.select_path(str(default))
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, DeleteDialog))
        text = rendered(app.screen.query_one("#option-body", Static).content, width=220)
        assert (
            f"⚠ {DEFAULT_REF} is the CPU and NVIDIA (CUDA) default image: "
            "jobs that use the default will pull it again"
        ) in text
        await pilot.press("n")
