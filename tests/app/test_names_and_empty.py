"""What the screen says about hostile file names and about caches with nothing in them.

Names in a shared cache are chosen by whoever wrote the file: one holding ESC or a
newline must show escaped, never reach the terminal raw. A cache with no image says
so, and how to fill it, instead of "scanning" forever.
"""

from __future__ import annotations

import shutil

from textual.app import App
from textual.widgets import Static

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.model import CacheKind
from imgcache.tui.app import ImgcacheApp
from imgcache.tui.screens.caches import CachesScreen
from tests.app.helpers import make_app, rendered, settle, table_lines

EVIL = "evil\x1b[31mred\nline\u202egnp.sqsh"
SHOWN = "evil\\x1b[31mred\\nline\\u202egnp.sqsh"


def _screen_text(app: ImgcacheApp) -> str:
    """Everything the app draws right now, as the terminal would get it."""
    return app.export_screenshot()


async def test_a_name_with_escape_and_newline_shows_escaped(tmp_path, real_images, monkeypatch):
    enroot = tmp_path / "enroot"
    enroot.mkdir()
    shutil.copyfile(real_images.zstd, enroot / EVIL)
    settings = Settings(caches=(CacheSpec(CacheKind.ENROOT, str(enroot)),))
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        lines = "\n".join(table_lines(app))
        assert SHOWN[:40] in lines
        assert "\x1b" not in lines and "\u202e" not in lines
        # The details of the image: its path among them, escaped.
        await pilot.press("enter")
        await pilot.pause()
        details = rendered(app.screen.query_one("DetailsPane").renderable)
        assert SHOWN in details and "\x1b" not in details
        await pilot.press("escape")
        # A toast naming the file, and the status line, escape it too: what
        # reaches Textual's toasts is recorded below the app's own notify.
        shown_toasts: list[str] = []
        monkeypatch.setattr(App, "notify", lambda _app, message, **_: shown_toasts.append(message))
        app.notify(f"toast {EVIL}")
        app.note_event(f"watch lost {EVIL}")
        await pilot.pause()
        status = app.main.status.text().plain
        assert SHOWN in status and "\x1b" not in status
        assert shown_toasts[-1] == f"toast {SHOWN}"
        assert "\x1b" not in _screen_text(app)


async def test_the_caches_screen_escapes_watcher_messages(tmp_path):
    enroot = tmp_path / "enroot"
    enroot.mkdir()
    app = make_app(Settings(caches=(CacheSpec(CacheKind.ENROOT, str(enroot)),)))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        app.note_event(f"lost {EVIL}")
        await pilot.pause()
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, CachesScreen)
        text = rendered(app.screen.query_one("#caches-report Static", Static).content)
        assert "lost evil\\x1b[31mred" in text and "\x1b" not in text


async def test_an_empty_cache_says_so_and_how_to_fill_it(tmp_path):
    enroot = tmp_path / "shared-enroot"
    enroot.mkdir()
    app = make_app(Settings(caches=(CacheSpec(CacheKind.ENROOT, str(enroot)),)))
    async with app.run_test(size=(120, 36)):
        await settle(app)
        lines = table_lines(app)
        assert "no images in shared-enroot: p pulls one" in lines[1]
        assert not any("scanning" in line for line in lines)


async def test_an_empty_cache_in_read_only_mode_offers_no_pull(tmp_path):
    enroot = tmp_path / "shared-enroot"
    enroot.mkdir()
    settings = Settings(caches=(CacheSpec(CacheKind.ENROOT, str(enroot)),), read_only=True)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)):
        await settle(app)
        line = table_lines(app)[1]
        assert "no images in shared-enroot" in line and "pulls" not in line


async def test_the_empty_message_names_the_remapped_pull_key(tmp_path):
    enroot = tmp_path / "shared-enroot"
    enroot.mkdir()
    settings = Settings(caches=(CacheSpec(CacheKind.ENROOT, str(enroot)),), keys={"pull_ref": "o"})
    app = make_app(settings)
    async with app.run_test(size=(120, 36)):
        await settle(app)
        assert "no images in shared-enroot: o pulls one" in table_lines(app)[1]


async def test_the_status_line_says_read_only(tmp_path):
    enroot = tmp_path / "shared-enroot"
    enroot.mkdir()
    for read_only in (True, False):
        settings = Settings(caches=(CacheSpec(CacheKind.ENROOT, str(enroot)),), read_only=read_only)
        app = make_app(settings)
        async with app.run_test(size=(120, 36)):
            await settle(app)
            shown = app.main.status.content.plain
            assert shown.startswith("read-only") is read_only
