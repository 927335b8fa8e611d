"""Pilot tests of the job keys without a registry: dialogs, the defaults panel, start-up.

The pull dialog refuses a bad reference with the parser's reason; Enter in the
defaults panel pulls the selected default (the requests are caught before they
become jobs); an add job copies a local image made by the real tools, and its
log shows; the leftovers of a killed job are removed when the app starts.
"""

from __future__ import annotations

import subprocess

import pytest
from textual.widgets import Button, Input, Static

from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs import publish
from imgcache.backends.jobs.states import JobState
from imgcache.tui.screens.job_log import JobLogScreen
from imgcache.tui.screens.pull_dialog import PullDialog
from imgcache.tui.widgets.job_fields import RefField
from tests.app.helpers import ROCM_REF, make_app, record_notifications, settle, wait_for

pytestmark = pytest.mark.tools


async def test_the_pull_dialog_refuses_a_bad_ref_with_the_reason(real_cache, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app)
        submitted = []
        monkeypatch.setattr(app.jobs, "submit", submitted.extend)
        await pilot.press("p")
        dialog = app.screen
        assert isinstance(dialog, PullDialog)
        await pilot.press(*"Not A Ref")
        field = dialog.query_one(RefField)
        note = field.query_one(".field-note", Static).content
        assert "must be lowercase" in str(note) and str(note).startswith("✘")
        assert dialog.query_one("#pull", Button).disabled
        await pilot.press("enter")
        assert app.screen is dialog and not submitted
        assert "lowercase" in str(dialog.query_one("#pull-problem", Static).content)

        await pilot.press("ctrl+u", *"ubuntu:")
        assert "':' is not followed by a tag" in str(field.query_one(".field-note").content)
        await pilot.press(*"22.04")
        note = str(field.query_one(".field-note", Static).content)
        assert "→ docker.io/library/ubuntu:22.04" in note
        assert not dialog.query_one("#pull", Button).disabled

        # A registry user needs a password, typed masked, handed over as Credentials.
        await pilot.press("tab", "tab", *"admin")
        assert dialog.query_one("#pull", Button).disabled
        await pilot.press("enter", *"s3cret")
        await pilot.pause()
        masked = dialog.query_one("#password").render_line(0).text
        assert "s3cret" not in masked and "••••••" in masked
        await pilot.press("enter")
        assert app.screen is app.main
        [request] = submitted
        # The cache picked at first is the selected image's (alpine:3.19, in enroot).
        assert request.ref == "ubuntu:22.04" and request.kind == "import"
        assert request.cache.path == str(real_cache.enroot)
        assert request.credentials.username == "admin"
        assert request.credentials.password == "s3cret"
        assert "s3cret" not in repr(request)


async def test_added_file_and_its_log(real_cache, real_images, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app)
        notes = record_notifications(app, monkeypatch)
        await pilot.press("a")
        dialog = app.screen
        # As if pasted: a path typed key by key only makes the test slow.
        dialog.query_one("#path", Input).insert_text_at_cursor(str(real_images.zstd))
        await wait_for(lambda: "squashfs" in str(dialog.query_one("#path-note").content))
        assert "zstd" in str(dialog.query_one("#path-note").content)
        # A squashfs may go to the singularity or enroot cache, not to podman.
        podman = next(i for i, s in enumerate(dialog.specs) if s.kind is CacheKind.PODMAN)
        dialog.query_one("#cache").query("RadioButton")[podman].value = True
        await pilot.pause()
        assert "podman holds oci-archive or docker-archive" in str(
            dialog.query_one("#add-problem").content
        )
        assert dialog.query_one("#add", Button).disabled
        enroot = next(i for i, s in enumerate(dialog.specs) if s.kind is CacheKind.ENROOT)
        dialog.query_one("#cache").query("RadioButton")[enroot].value = True
        # Enter would add it now, under the name read from the file; tab goes to
        # the reference to file it under another.
        await pilot.press("tab", *"hpc/tools:2.1", "enter")
        assert app.screen is app.main
        await wait_for(lambda: app.jobs.statuses and not app.jobs.active, timeout=30)
        [status] = app.jobs.statuses.values()
        assert status.state is JobState.DONE, status.message
        target = real_cache.enroot / "hpc+tools+2.1.sqsh"
        assert target.read_bytes() == real_images.zstd.read_bytes()
        assert notes[-1][:2] == ("Job done", "information")
        await wait_for(lambda: str(target) in app.main.table.model.rows, timeout=10)

        await pilot.press("J", "enter")
        screen = app.screen
        assert isinstance(screen, JobLogScreen)
        await wait_for(lambda: "# done" in screen.text)
        assert f"# source file {real_images.zstd}" in screen.text
        assert screen.query_one("#job-log").border_title.endswith("· done")
        await pilot.press("escape")
        assert app.screen is app.main


async def test_enter_in_the_defaults_panel_pulls_the_selected_default(real_cache, monkeypatch):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        notes = record_notifications(app, monkeypatch)
        batches = []
        monkeypatch.setattr(app.jobs, "submit", batches.append)
        await pilot.press("d", "j", "j")  # the ROCm row, on its image: every cache
        assert app.main.defaults_panel.cursor == (2, 0)
        await pilot.press("enter")
        [requests] = batches
        assert [r.kind for r in requests] == ["pull", "import", "save"]
        assert {r.ref for r in requests} == {ROCM_REF}
        assert all(r.label == "rocm default" for r in requests)
        await pilot.press("l", "l", "enter")  # the ROCm default in the enroot cache only
        assert [(r.kind, r.cache.path) for r in batches[-1]] == [("import", str(real_cache.enroot))]
        await pilot.press("k", "k", "enter")  # the CPU default in enroot: already there
        assert len(batches) == 2
        assert notes[-1] == ("Defaults", "information", "already present")


async def test_leftovers_of_a_killed_job_go_when_the_app_starts(real_cache):
    dead = subprocess.Popen(["true"])
    dead.wait()
    temp = real_cache.enroot / publish.temp_name("x+1.sqsh", publish.make_token(1, pid=dead.pid))
    temp.write_bytes(b"half an image")
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)):
        await settle(app)
        await app.workers.wait_for_complete()
        await wait_for(lambda: app.jobs.queue is not None)
        assert not temp.exists()
        await wait_for(lambda: "removed a leftover" in app.main.status.content.plain)
