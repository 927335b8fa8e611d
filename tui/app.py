"""The imgcache app: the browser an admin opens over SSH to understand a shared cache.

`create_app` is the one factory the command, the tests, the bench and the
screenshot script use. The app paints its layout at once and scans in a thread
worker; the watcher's threads post the directories that changed and a worker
re-lists only those; a periodic full scan corrects whatever events missed. The UI
thread never touches the disk: it only receives `imgcache.tui.messages` and hands the
data down to the main screen. Jobs (pull, add, compress, delete, gc, fix-perms)
run on `backends.jobs.queue.JobQueue`'s threads; `tui.job_control.JobControl` is the
app's side of it, `tui.maintenance_control` asks before the maintenance jobs. With
`Settings.read_only` every action that writes is gone: its bindings are hidden
and refuse (`check_action`), the palette and the help screen leave them out, and
no job queue is opened.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence

from textual import work
from textual.app import App
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState

from imgcache.backends.config import ConfigError, Settings
from imgcache.backends.inventory.catalog import Catalog, Inventory, open_catalog
from imgcache.backends.jobs.states import JobRequest, JobStatus
from imgcache.backends.watch import CacheWatcher
from imgcache.tui import cli_signals
from imgcache.tui.commands import ImgcacheCommands
from imgcache.tui.format import printable
from imgcache.tui.job_control import JobControl
from imgcache.tui.keys import (
    APP_BINDINGS,
    WRITE_ACTIONS,
    WRITE_BINDINGS,
    binding_sections,
    known_binding_ids,
)
from imgcache.tui.maintenance_control import MaintenanceControl
from imgcache.tui.messages import (
    CachesDirty,
    InventoryReady,
    JobsReady,
    JobsUpdated,
    ScanFailed,
    ScanProgress,
    WatchStatus,
)
from imgcache.tui.scan_control import ScanControl
from imgcache.tui.screens.caches import CachesScreen, caches_report
from imgcache.tui.screens.help import HelpEntry, HelpScreen, help_entries
from imgcache.tui.screens.main import MainScreen
from imgcache.tui.widgets.defaults_panel import DefaultsPanel
from imgcache.tui.widgets.job_list import JobList
from imgcache.tui.widgets.summary import FreeSpace

#: Watcher messages kept for the caches screen.
_EVENTS_KEPT = 50


class ImgcacheApp(App[int]):
    """The cache browser."""

    CSS_PATH = "app.tcss"
    TITLE = "imgcache"
    COMMANDS = App.COMMANDS | {ImgcacheCommands}
    BINDINGS = APP_BINDINGS

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        clock: Callable[[], float] = time.time,
        free_space: FreeSpace | None = None,
        watch: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.free_space = free_space
        self.watch = watch
        self.main = MainScreen(settings, clock=clock, free_space=free_space)
        self.scans = ScanControl(self, catalog, free_space)
        self.jobs = JobControl(self)
        self.maintenance = MaintenanceControl(self)
        self.inventory: Inventory | None = None
        self.watcher: CacheWatcher | None = None
        self.watch_events: list[str] = []
        self.timings: dict[str, float] = {"created": time.perf_counter()}
        """perf_counter() marks: created, painted (first frame), loaded (first data)."""
        self.refresh_latencies: deque[float] = deque(maxlen=1000)
        """Seconds from a watcher report to its rows on screen, for the bench."""

    # -- start and stop -----------------------------------------------------------

    def get_default_screen(self) -> MainScreen:
        """The main screen is the app's base screen."""
        return self.main

    def on_mount(self) -> None:
        """Apply the config's keymap before the first key arrives."""
        if self.settings.keys:
            self.set_keymap(dict(self.settings.keys))

    def on_ready(self) -> None:
        """The layout is on screen: now scan and watch, in workers."""
        self._mark("painted")
        unknown = sorted(set(self.settings.keys) - known_binding_ids())
        if unknown:
            self._watch_event(f"config [keys]: unknown binding id {', '.join(unknown)}")
        for note in self.settings.notes:  # master.yaml says what imgcache does not read
            self._watch_event(note)
        self.main.status.set_state(watching=self.watch, scanning=True)
        self.request_scan(None)
        if self.watch:
            self._start_watcher()
        self.set_interval(self.settings.rescan_interval, self._periodic_scan, name="full rescan")

    def _mark(self, name: str) -> None:
        self.timings.setdefault(name, time.perf_counter())

    def on_unmount(self) -> None:
        """Stop the watcher's threads; cancel the jobs still going and let them clean up."""
        if self.watcher is not None:
            self.watcher.stop()
        self.jobs.shutdown()

    # -- scanning -----------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """True once an inventory is shown and no scan is running or asked for."""
        return self.inventory is not None and not self.scans.busy

    def request_scan(self, dirs: set[str] | None, seen: float = 0.0) -> None:
        """Ask for a full scan (None) or a rescan of `dirs`; requests queue and merge."""
        self.scans.request(dirs, seen)

    def on_scan_progress(self, message: ScanProgress) -> None:
        """Show the first scan's progress in the status bar until its inventory is up."""
        if self.inventory is None:
            self.main.status.set_state(progress=(message.done, message.found))

    def on_inventory_ready(self, message: InventoryReady) -> None:
        """Show the new inventory, then run any scan that was asked for meanwhile."""
        first = self.inventory is None
        self.inventory = message.inventory
        self.main.show_inventory(message.inventory, message.plan, message.totals, message.summary)
        if first:
            self.call_after_refresh(self._mark, "loaded")
            # After the first scan, so its walk of the caches does not slow that one.
            self.jobs.open()
        elif not message.full and message.inventory.change:
            latency = time.perf_counter() - message.started
            self.refresh_latencies.append(latency)
        self.call_after_refresh(_tidy_memory)
        self.scans.finished()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A scan that raised leaves the last inventory up and says why."""
        if event.worker.group == "scan" and event.state is WorkerState.ERROR:
            error = event.worker.error
            self.post_message(ScanFailed(f"{type(error).__name__}: {error}"))

    def on_scan_failed(self, message: ScanFailed) -> None:
        """Report the failure in the status bar and carry on."""
        self.main.status.set_state(scanning=False, notice=f"scan failed: {message.error}")
        self.scans.finished()

    def _periodic_scan(self) -> None:
        self.request_scan(None)

    # -- watching -----------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="watch", name="watch")
    def _start_watcher(self) -> None:
        # Scheduling inotify watches walks the tree; keep it off the UI thread.
        watcher = CacheWatcher(
            [spec.path for spec in self.settings.caches],
            self._dirty,
            self._watch_event,
            poll_interval=self.settings.poll_interval,
            force_polling=self.settings.force_polling,
        )
        self.watcher = watcher
        watcher.start()
        self.post_message(WatchStatus(dict(watcher.modes)))

    def _dirty(self, dirs: set[str]) -> None:
        # Runs on the watcher's flush thread.
        self.post_message(CachesDirty(set(dirs), time.perf_counter()))

    def _watch_event(self, event: str) -> None:
        # Runs on a watcher thread (or the UI thread at start).
        modes = dict(self.watcher.modes) if self.watcher is not None else {}
        self.post_message(WatchStatus(modes, event))

    def note_event(self, event: str) -> None:
        """Say something in the status bar and keep it for the caches screen (any thread)."""
        self._watch_event(event)

    def on_caches_dirty(self, message: CachesDirty) -> None:
        """Re-list the directories the watcher reported."""
        self.request_scan(message.dirs, message.seen)

    def on_watch_status(self, message: WatchStatus) -> None:
        """Show how the caches are watched, and any fallback."""
        changes: dict[str, object] = {}
        if message.modes:
            changes["modes"] = message.modes
        if message.event:
            self.watch_events = [*self.watch_events, message.event][-_EVENTS_KEPT:]
            changes["event"] = message.event
        self.main.status.set_state(**changes)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A toast; names and tool messages in it are shown escaped (see `printable`)."""
        super().notify(
            printable(message), title=printable(title), severity=severity, timeout=timeout,
            markup=markup,
        )  # fmt: skip

    # -- jobs ---------------------------------------------------------------------

    def on_jobs_ready(self, message: JobsReady) -> None:
        """The job queue is open."""
        self.jobs.ready(message)

    def on_jobs_updated(self, message: JobsUpdated) -> None:
        """New snapshots of jobs: to the jobs pane, and a notification when one ends."""
        self.jobs.updated(message.statuses.values())

    def submit_jobs(self, requests: Sequence[JobRequest]) -> None:
        """Queue jobs and show the jobs pane (refused in read-only mode)."""
        self.jobs.submit(requests)

    def active_jobs(self) -> list[JobStatus]:
        """The jobs of this session still queued or running."""
        return self.jobs.active

    def cancel_job(self, job_id: int) -> None:
        """Cancel one job (its tools' process groups are killed)."""
        self.jobs.cancel(job_id)

    def on_defaults_panel_pull_requested(self, message: DefaultsPanel.PullRequested) -> None:
        """Enter in the defaults panel: pull that default where it is missing."""
        if not self.settings.read_only:
            self.jobs.pull_presences(message.presences)

    def on_job_list_cancel_requested(self, message: JobList.CancelRequested) -> None:
        """`c` in the jobs pane."""
        self.jobs.cancel(message.job_id)

    def on_job_list_log_requested(self, message: JobList.LogRequested) -> None:
        """Enter in the jobs pane."""
        self.jobs.show_log(message.job_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """In read-only mode the actions that write are hidden and refused."""
        return not (action in WRITE_ACTIONS and self.settings.read_only)

    def action_pull_ref(self) -> None:
        """Ask for any image reference and a cache, then pull it."""
        if not self.settings.read_only:
            self.jobs.ask_pull_ref()

    def action_pull_defaults(self) -> None:
        """Pull every missing default image into every cache, after a confirmation."""
        if not self.settings.read_only:
            self.jobs.ask_pull_defaults()

    def action_add_file(self) -> None:
        """Ask for a local image file, a reference and a cache, then add it."""
        if not self.settings.read_only:
            self.jobs.ask_add_file()

    def action_compress(self) -> None:
        """Recompress the marked (or selected) images, after a confirmation."""
        if not self.settings.read_only:
            self.maintenance.ask_compress()

    def action_delete(self) -> None:
        """Delete the marked (or selected) images, after a confirmation."""
        if not self.settings.read_only:
            self.maintenance.ask_delete()

    def action_gc(self) -> None:
        """Show the garbage-collection plan; run it when confirmed."""
        if not self.settings.read_only:
            self.maintenance.ask_gc()

    def action_fix_perms(self) -> None:
        """Show the permission changes; make them when confirmed."""
        if not self.settings.read_only:
            self.maintenance.ask_fix_perms()

    async def action_quit(self) -> None:
        """Quit; with jobs still going, ask first (they are cancelled on the way out)."""
        if self.jobs.confirm_quit():
            self.exit()

    # -- actions ------------------------------------------------------------------

    def action_rescan(self) -> None:
        """Walk every cache again (headers of unchanged files are not re-read)."""
        self.main.status.set_state(scanning=True, notice="")
        self.request_scan(None)

    def action_help(self) -> None:
        """Show every key binding."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_entries()))

    def help_entries(self) -> list[HelpEntry]:
        """Every binding, with the config's remaps applied (none that writes if read-only)."""
        read_only = self.settings.read_only
        entries = help_entries(binding_sections(read_only), self.settings.keys, self)
        if read_only:
            entries = [e for e in entries if e.id not in WRITE_BINDINGS]
        return entries

    def action_trash(self) -> None:
        """Show every cache's trash: batches, put back, purge (not in read-only mode)."""
        self.maintenance.show_trash()

    def action_caches(self) -> None:
        """Show the caches, their watch modes and problems."""
        if isinstance(self.screen, CachesScreen):
            return
        modes = self.watcher.modes if self.watcher is not None else {}
        report = caches_report(self.inventory, modes, self.watch_events, self.free_space)
        self.push_screen(CachesScreen(report))


def _tidy_memory() -> None:
    """Collect now, then keep the survivors out of the cyclic GC's way.

    10,000 images are ~150,000 objects: a full collection over them pauses the UI
    for a few hundred ms at a random key press. Right after an inventory is on
    screen only the objects made since the last one are tracked, so collecting is
    cheap; the survivors are acyclic records that reference counting frees when a
    later inventory replaces them.
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    free_space: FreeSpace | None = None,
    watch: bool = True,
    catalog: Catalog | None = None,
) -> ImgcacheApp:
    """The app on `settings`' caches; raises ConfigError when a root is unusable.

    `clock` dates ages and findings (tests freeze it), `free_space` overrides the
    free bytes shown per cache (snapshots fix it), `watch=False` skips the watcher.
    """
    if catalog is None:
        catalog = open_catalog(settings)
    return ImgcacheApp(settings, catalog, clock=clock, free_space=free_space, watch=watch)


def run_app(settings: Settings) -> int:
    """Run the app in the terminal; returns the exit status for the command."""
    try:
        app = create_app(settings)
    except ConfigError as exc:
        # Same shape as the command's other errors: one message, no traceback.
        print(f"imgcache: {exc}", file=sys.stderr)
        return 2
    # SIGTERM/SIGHUP: exit with 128 + signal; leaving cancels the jobs, which clean up.
    with cli_signals.divert(lambda code: app.exit(return_code=code)):
        result = app.run()
    if isinstance(result, int):
        return result
    return app.return_code or 0
