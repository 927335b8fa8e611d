"""Pilot tests of the jobs: the real app factory, the real job queue, a real registry.

The registry is the integration tests' (`registry` fixture: docker-registry on
127.0.0.1 seeded with small images under the default images' real names), the
pipeline the builtin one (skopeo, umoci, mksquashfs, siftool). A pull that must
take a while goes through the integration tests' `ThrottledProxy`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import Static

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory import probe
from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs.states import JobState
from imgcache.tui.screens.confirm import ConfirmDialog
from imgcache.tui.screens.job_log import JobLogScreen
from imgcache.tui.widgets.job_fields import RefField
from tests.app.helpers import (
    make_app,
    pane_lines,
    record_notifications,
    rendered,
    settle,
    wait_for,
)
from tests.integration.conftest import BIG_REF, META_REF
from tests.integration.helpers import leftovers
from tests.integration.registry import ThrottledProxy, free_port

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("app-registry")]

#: Bytes a second through the throttling proxy: the 3 MiB layer takes about three seconds.
RATE = 1024 * 1024


def two_caches(tmp_path: Path) -> Settings:
    """An empty singularity and an empty enroot cache; the builtin pipeline."""
    specs = []
    for kind in (CacheKind.SINGULARITY, CacheKind.ENROOT):
        root = tmp_path / kind.value
        root.mkdir()
        specs.append(CacheSpec(kind, str(root)))
    return Settings(caches=tuple(specs), job_backend="builtin")


async def test_one_key_pulls_every_missing_default_with_progress(registry, tmp_path, monkeypatch):
    app = make_app(two_caches(tmp_path))
    jobs_seen: list[tuple[JobState, str, list[str]]] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app)
        notes = record_notifications(app, monkeypatch)
        jobs = app.main.job_list
        original = jobs.update_jobs

        def spy(statuses):
            # What the pane draws for each snapshot, right when it arrives.
            statuses = list(statuses)
            original(statuses)
            for status in statuses:
                jobs_seen.append((status.state, status.phase, pane_lines(jobs, status.id)))

        monkeypatch.setattr(jobs, "update_jobs", spy)
        await pilot.press("d")
        panel = app.main.defaults_panel
        assert panel.border_title == "Defaults · 0/6 present"
        assert not jobs.display

        await pilot.press("P")
        assert isinstance(app.screen, ConfirmDialog)
        question = rendered(app.screen.query_one("#confirm-body", Static).content, width=200)
        # cpu and cuda share one image: 2 images into 2 caches, 4 jobs, not 6.
        assert "2 default images into enroot, singularity: 4 jobs" in question
        assert question.count("→ singularity") == 2 and question.count("→ enroot") == 2
        assert "cpu, cuda defaults" in question
        await pilot.press("y")
        assert app.screen is app.main and jobs.display
        await wait_for(lambda: len(app.jobs.statuses) == 4, timeout=10)
        await wait_for(lambda: not app.jobs.active, timeout=180, step=0.05)

        statuses = sorted(app.jobs.statuses.values(), key=lambda s: s.id)
        assert [s.state for s in statuses] == [JobState.DONE] * 4, [s.message for s in statuses]
        assert {s.request.kind for s in statuses} == {"pull", "import"}
        # Progress was shown while the jobs ran: a bar, a percentage and the phase.
        running = [lines for state, phase, lines in jobs_seen if state is JobState.RUNNING]
        assert running
        drawn = [
            lines for lines in running if "running" in lines[0] and "%" in lines[1]
            and "━" in lines[1] and any(w in lines[1] for w in ("fetch", "unpack", "squash"))
        ]  # fmt: skip
        assert drawn, running
        assert "builtin" in drawn[0][1]
        await pilot.pause()
        for status in statuses:
            first, second = pane_lines(jobs, status.id)
            assert "done" in first and status.request.kind in first
            assert "100%" in second and "done" in second
        assert sorted(t for t, _s, _m in notes) == ["Job done"] * 4

        # The files are there and valid; the defaults panel says so.
        await wait_for(lambda: panel.border_title == "Defaults · 6/6 present", timeout=15)
        for p in app.inventory.presence:
            result = probe.probe_path(p.path)
            wanted = Format.SIF if p.cache_kind is CacheKind.SINGULARITY else Format.SQUASHFS
            assert result.format is wanted and not result.corrupt, p.path


async def test_a_failed_pull_says_why(registry, tmp_path, monkeypatch):
    app = make_app(two_caches(tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        notes = record_notifications(app, monkeypatch)
        await pilot.press("p", *"imgcache-test/meta:nope", "enter")
        await wait_for(lambda: app.jobs.statuses and not app.jobs.active, timeout=30)
        [status] = app.jobs.statuses.values()
        assert status.state is JobState.FAILED
        [(title, severity, message)] = notes
        assert (title, severity) == ("Job failed", "error")
        # The one-line reason, shortened in the middle when long (the log has it whole).
        assert message.startswith("pull imgcache-test/meta:nope → singularity: skopeo: ")
        assert "\n" not in message and len(message) < 250
        assert "manifest unknown" in status.message
        await pilot.pause()
        first, second = pane_lines(app.main.job_list, status.id)
        assert "failed" in first and "imgcache-test/meta:nope" in first
        assert "skopeo:" in second


async def test_a_password_reaches_the_job_and_no_log(registry, tmp_path):
    app = make_app(two_caches(tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await pilot.press("p")
        app.screen.query_one(RefField).input.insert_text_at_cursor(META_REF)
        await pilot.press("tab", "tab", *"admin", "enter", *"s3cret", "enter")
        await wait_for(lambda: app.jobs.statuses and not app.jobs.active, timeout=60)
        [status] = app.jobs.statuses.values()
        assert status.state is JobState.DONE, status.message
        assert status.request.credentials.password == "s3cret"
        await pilot.press("J", "enter")
        screen = app.screen
        await wait_for(lambda: "# done" in screen.text)
        assert "# registry user admin (password not logged)" in screen.text
        assert "s3cret" not in screen.text
        assert "s3cret" not in Path(status.log_path).read_text()


@pytest.fixture
def slow(registry, tmp_path, monkeypatch) -> ThrottledProxy:
    """A throttled mirror of docker.io, so a pull of BIG_REF takes a few seconds."""
    proxy = ThrottledProxy(registry.registry.port, RATE)
    conf = tmp_path / "slow-registries.conf"
    conf.write_text(
        f'[[registry]]\nprefix = "docker.io"\nlocation = "127.0.0.1:{free_port()}"\n'
        f'insecure = true\n\n[[registry.mirror]]\nlocation = "{proxy.address}"\ninsecure = true\n'
    )
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    yield proxy
    proxy.kill()


async def _start_slow_pull(app, pilot, slow) -> int:
    """Pull BIG_REF into the enroot cache through the dialog; wait until it downloads."""
    await pilot.press("p", *BIG_REF)
    dialog = app.screen
    enroot = next(i for i, s in enumerate(dialog.specs) if s.kind is CacheKind.ENROOT)
    dialog.query_one("#cache").query("RadioButton")[enroot].value = True
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(lambda: app.jobs.statuses, timeout=10)
    [job_id] = app.jobs.statuses
    await wait_for(lambda: slow.bytes > 128 * 1024, timeout=30)
    return job_id


async def test_cancel_stops_a_running_pull(slow, tmp_path, monkeypatch):
    settings = two_caches(tmp_path)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        notes = record_notifications(app, monkeypatch)
        job_id = await _start_slow_pull(app, pilot, slow)
        jobs = app.main.job_list
        assert app.jobs.statuses[job_id].state is JobState.RUNNING
        await pilot.pause()
        assert "running" in pane_lines(jobs, job_id)[0]

        # The log follows the running job.
        await pilot.press("J")
        assert app.focused is jobs
        await pilot.press("enter")
        assert isinstance(app.screen, JobLogScreen)
        await wait_for(lambda: "skopeo" in app.screen.text, timeout=10)
        await pilot.press("escape")

        await pilot.press("c")
        await wait_for(lambda: not app.jobs.active, timeout=30)
        status = app.jobs.statuses[job_id]
        assert status.state is JobState.CANCELLED
        assert ("Job cancelled", "warning") in [(t, s) for t, s, _m in notes]
        await pilot.pause()
        assert "cancelled" in pane_lines(jobs, job_id)[0]
        root = settings.caches[1].path
        assert not leftovers(root) and not os.listdir(os.environ["IMGCACHE_TMPDIR"])


async def test_quit_with_a_running_job_asks_then_cancels_it(slow, tmp_path):
    settings = two_caches(tmp_path)
    app = make_app(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app)
        job_id = await _start_slow_pull(app, pilot, slow)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog)
        body = str(app.screen.query_one("#confirm-body", Static).content)
        assert body == "1 job is running; quit and cancel them?"
        await pilot.press("n")
        assert app.screen is app.main and app.is_running
        await pilot.press("q", "y")
        await wait_for(lambda: not app.is_running, timeout=30)
    # Leaving waited for the job to stop and clean up after itself.
    assert app.jobs.queue.get(job_id).state is JobState.CANCELLED
    assert not leftovers(settings.caches[1].path)
