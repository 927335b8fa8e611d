"""`--read-only`: the app shows everything and can change nothing.

Every action that writes is gone from the keys (hidden from the footer and
refused), the command palette and the help screen; no job queue is opened (its
start-up cleanup would delete files); the jobs pane says why it stays empty.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from imgcache.tui import cli
from imgcache.tui.commands import commands
from imgcache.tui.keys import WRITE_BINDINGS, binding_sections, known_binding_ids
from imgcache.tui.screens.help import HelpScreen
from imgcache.tui.widgets.defaults_panel import DefaultsPanel
from tests.app.helpers import make_app, settle

pytestmark = pytest.mark.tools

#: Words in the palette's names of commands that write.
WRITE_WORDS = ("Pull", "Add", "Cancel job")


async def test_read_only_mode_has_no_action_that_writes(real_cache, monkeypatch):
    app = make_app(replace(real_cache.settings(), read_only=True))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        assert app.jobs.queue is None  # never opened: nothing cleaned up, nothing run
        active = {b.binding.id for b in app.screen.active_bindings.values()}
        assert not active & WRITE_BINDINGS
        footer = " ".join(str(b.binding.description) for b in app.screen.active_bindings.values())
        assert "Pull" not in footer

        # The keys do nothing: no dialog, no job.
        for key in ("p", "P", "a"):
            await pilot.press(key)
            assert app.screen is app.main, key
        await pilot.press("d")
        panel = app.main.defaults_panel
        assert app.focused is panel
        seen = []
        monkeypatch.setattr(app.jobs, "submit", seen.append)
        await pilot.press("j", "j", "enter")  # the ROCm default, missing everywhere
        assert not seen and app.screen is app.main
        assert "pull_default" not in {b.binding.id for b in app.screen.active_bindings.values()}
        assert panel.border_subtitle == ""  # no "P pulls the 3 missing"
        # Called anyway (a remap, a script): refused.
        for action in ("pull_ref", "pull_defaults", "add_file"):
            await app.run_action(action)
            assert app.screen is app.main, action

        names = [name for name, _help, _callback in commands(app)]
        assert not [n for n in names if n.startswith(WRITE_WORDS)], names
        assert "Show the jobs pane" in names

        await pilot.press("J")
        jobs = app.main.job_list
        assert jobs.display and app.focused is jobs
        assert "read-only" in jobs.render_line(0).text
        assert not jobs.check_action("cancel_job", ())

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {entry.id for entry in app.screen.entries}
        assert not ids & WRITE_BINDINGS
        assert {"toggle_jobs", "job_log", "rescan"} <= ids


async def test_the_same_app_read_write_offers_the_actions(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await app.workers.wait_for_complete()
        assert app.jobs.queue is not None
        active = {b.binding.id for b in app.screen.active_bindings.values()}
        assert {"pull_ref", "pull_defaults", "add_file"} <= active
        names = [name for name, _help, _callback in commands(app)]
        assert "Pull an image…" in names and "Add a local image file…" in names
        assert "Pull the missing defaults (3 jobs)" in names  # ROCm into each cache
        await pilot.press("question_mark")
        assert {entry.id for entry in app.screen.entries} >= WRITE_BINDINGS
        await pilot.press("escape", "d")
        assert app.main.defaults_panel.border_subtitle == "P pulls the 3 missing"


def test_the_read_only_flag_reaches_the_app(real_cache, monkeypatch):
    got = []
    monkeypatch.setattr("imgcache.tui.app.run_app", lambda settings: got.append(settings) or 0)
    monkeypatch.setattr("imgcache.tui.cli.has_terminal", lambda: True)
    assert cli.main(["--read-only", "--config", str(real_cache.config)]) == 0
    assert cli.main(["--config", str(real_cache.config)]) == 0
    assert [s.read_only for s in got] == [True, False]


def test_write_bindings_are_declared_where_the_app_says():
    # WRITE_BINDINGS must name real binding ids, or read-only would hide nothing.
    assert known_binding_ids() >= WRITE_BINDINGS
    assert DefaultsPanel in [cls for _title, cls, _own in binding_sections()]
