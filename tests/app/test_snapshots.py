"""SVG snapshots of the app on the demo cache at 120x36 and 80x24.

The demo is written at a fixed path with a frozen clock, free space is fixed and
the watcher is off, so the screen is the same on every run. The delete dialog
and the gc plan are made from the demo's files with the same frozen "now". After a deliberate
change of the screen: `pytest tests/app/test_snapshots.py --snapshot-update`, then
look at the SVGs in `__snapshots__/` before committing them.
"""

from __future__ import annotations

import pytest

from imgcache.tui.screens.delete_dialog import DeleteDialog
from imgcache.tui.screens.gc_plan import GcPlanScreen
from tests.app.helpers import DELETE_KEYS, FIXED_NOW, demo_jobs, make_app, settle, wait_for


async def _ready(pilot) -> None:
    await settle(pilot.app)
    await pilot.pause()


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_main(snap_compare, demo_settings, size):
    assert snap_compare(make_app(demo_settings), terminal_size=size, run_before=_ready)


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_details(snap_compare, demo_settings, size):
    # The fourth row by name: the extra .sif copy (duplicate, superseded).
    press = ["j", "j", "j", "enter"]
    assert snap_compare(make_app(demo_settings), press=press, terminal_size=size, run_before=_ready)


def test_defaults_panel(snap_compare, demo_settings):
    app = make_app(demo_settings)
    assert snap_compare(app, press=["d"], terminal_size=(120, 36), run_before=_ready)


def test_finding_filter(snap_compare, demo_settings):
    # f, then down to "uncompressed" (all, any, corrupt, incomplete, not-an-image,
    # unshared, uncompressed).
    press = ["f", "j", "j", "j", "j", "j", "j", "enter"]
    app = make_app(demo_settings)
    assert snap_compare(app, press=press, terminal_size=(120, 36), run_before=_ready)


def test_finding_picker(snap_compare, demo_settings):
    app = make_app(demo_settings)
    assert snap_compare(app, press=["f"], terminal_size=(80, 24), run_before=_ready)


def test_help(snap_compare, demo_settings):
    app = make_app(demo_settings)
    assert snap_compare(app, press=["question_mark"], terminal_size=(120, 36), run_before=_ready)


async def _with_jobs(pilot) -> None:
    # A finished and a failed job (no running one: its elapsed time would tick).
    await _ready(pilot)
    app = pilot.app
    app.main.show_jobs_update(demo_jobs(app.settings, FIXED_NOW, running=False))
    app.main.reveal_jobs()
    await pilot.press("J")  # into the pane: its cursor and keys show
    await pilot.pause()


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_jobs_pane(snap_compare, demo_settings, size):
    app = make_app(demo_settings)
    assert snap_compare(app, terminal_size=size, run_before=_with_jobs)


async def _delete_dialog(pilot) -> None:
    # The dialog opens once a worker has checked the files (trash.preflight).
    await _ready(pilot)
    await pilot.press(*DELETE_KEYS)
    await wait_for(lambda: isinstance(pilot.app.screen, DeleteDialog))
    await pilot.pause()


def test_delete_dialog(snap_compare, demo_settings):
    app = make_app(demo_settings)
    assert snap_compare(app, terminal_size=(120, 36), run_before=_delete_dialog)


async def _gc_plan(pilot) -> None:
    # The plan is made in a worker; the snapshot is of the plan, not of "planning…".
    await _ready(pilot)
    await pilot.press("X")
    screen = pilot.app.screen
    assert isinstance(screen, GcPlanScreen)
    await wait_for(lambda: screen.plan is not None)
    await pilot.pause()


def test_gc_plan(snap_compare, demo_settings):
    app = make_app(demo_settings)
    assert snap_compare(app, terminal_size=(120, 36), run_before=_gc_plan)


def test_gc_plan_80x24_no_color(snap_compare, demo_settings, monkeypatch):
    # Ticked and unticked boxes read apart without colour; the row of boxes wraps
    # at 80 columns instead of being cut.
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(demo_settings)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_gc_plan)


def test_main_80x24_no_color(snap_compare, demo_settings, monkeypatch):
    # Several caches at 80 columns: the CACHE column stays (findings shrink first).
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(demo_settings)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_ready)


def test_pull_dialog_80x24_no_color(snap_compare, demo_settings, monkeypatch):
    # The chosen cache shows by its glyph, not by colour alone.
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(demo_settings)
    assert snap_compare(app, press=["p"], terminal_size=(80, 24), run_before=_ready)
