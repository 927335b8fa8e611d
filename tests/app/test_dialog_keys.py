"""Enter submits every dialog from any of its fields, and tab goes in the order on screen."""

from __future__ import annotations

import pytest
from textual.widget import Widget
from textual.widgets import Input

from imgcache.tui.screens.add_dialog import AddDialog
from imgcache.tui.screens.pull_dialog import PullDialog
from imgcache.tui.widgets.job_fields import CachePicker, RefField
from tests.app.helpers import make_app, settle, wait_for

pytestmark = pytest.mark.tools


def _screen_order(widgets: list[Widget]) -> list[Widget]:
    """The widgets as a reader meets them: top to bottom, then left to right."""
    return sorted(widgets, key=lambda w: (w.region.y, w.region.x))


async def _tab_order(pilot, count: int) -> list[Widget]:
    """The focused widgets as tab moves on from the dialog's first field."""
    seen: list[Widget] = []
    for _ in range(count):
        focused = pilot.app.focused
        if focused in seen:
            break
        seen.append(focused)
        await pilot.press("tab")
    return seen


async def test_enter_on_the_cache_picker_chooses_it_and_pulls(real_cache, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app)
        submitted = []
        monkeypatch.setattr(app.jobs, "submit", submitted.extend)
        await pilot.press("p")
        dialog = app.screen
        assert isinstance(dialog, PullDialog)
        await pilot.press(*"ubuntu:22.04", "tab")
        assert isinstance(app.focused, CachePicker)
        # The picker starts on the selected image's cache (enroot), highlighted;
        # Enter alone keeps it, one down is podman.
        assert dialog.query_one(CachePicker).cache.path == str(real_cache.enroot)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is app.main
        [request] = submitted
        assert request.ref == "ubuntu:22.04" and request.cache.path == str(real_cache.podman)


async def test_enter_on_a_field_of_an_unfinished_form_goes_to_what_is_missing(
    real_cache, monkeypatch
):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app)
        submitted = []
        monkeypatch.setattr(app.jobs, "submit", submitted.extend)
        await pilot.press("p", "tab", "tab")  # to the registry user, reference left empty
        await pilot.press(*"admin", "enter")
        dialog = app.screen
        assert isinstance(dialog, PullDialog) and not submitted
        assert app.focused is dialog.query_one(RefField).input


async def test_enter_on_the_path_of_the_add_dialog_adds(real_cache, real_images, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app)
        submitted = []
        monkeypatch.setattr(app.jobs, "submit", submitted.extend)
        await pilot.press("a")
        dialog = app.screen
        assert isinstance(dialog, AddDialog)
        # The reference is filled in from the file's name once it is read; Enter
        # right after the path adds as soon as that has happened.
        path = real_cache.enroot / "nvidia+pytorch+25.09-py3.sqsh"
        dialog.query_one("#path", Input).insert_text_at_cursor(str(path))
        await pilot.press("enter")
        await wait_for(lambda: app.screen is app.main)
        [request] = submitted
        assert request.kind == "add" and request.ref == "nvidia/pytorch:25.09-py3"
        assert request.source == str(path)


@pytest.mark.parametrize("key", ["p", "a"])
async def test_tab_goes_through_a_dialog_in_screen_order(real_cache, key):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app)
        await pilot.press(key)
        await pilot.pause()
        order = await _tab_order(pilot, 12)
        assert len(order) >= 3
        assert order == _screen_order(order)


async def test_enter_on_the_cache_picker_keeps_the_cache_chosen(real_cache, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app)
        submitted = []
        monkeypatch.setattr(app.jobs, "submit", submitted.extend)
        await pilot.press("p", *"ubuntu:22.04", "tab", "enter")
        await pilot.pause()
        [request] = submitted
        assert request.cache.path == str(real_cache.enroot)
