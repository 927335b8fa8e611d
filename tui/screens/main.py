"""The main screen: tree, image table, details, defaults, jobs, summary and status.

Panes fold away on small terminals: below 140 columns the tree hides (`t` brings
it back: at 120 columns the names in the table need its room more), below 100x30
the details pane hides (Enter still opens the details screen), and the defaults
panel and the jobs pane take its place when shown; below 30 lines only one of
those two shows at a time. The screen takes inventories and job snapshots from
the app (attributes down) and turns its widgets' messages into changes of the
table's filters (messages up); the job and maintenance keys go to the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Tree

from imgcache.backends.config import Settings
from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.jobs.states import JobStatus
from imgcache.tui.hints import hint_key
from imgcache.tui.screens.details import DetailsScreen
from imgcache.tui.screens.finding_picker import FindingPicker
from imgcache.tui.widgets.cache_tree import CacheTree, Totals, totals
from imgcache.tui.widgets.defaults_panel import DefaultsPanel
from imgcache.tui.widgets.details import DetailsPane
from imgcache.tui.widgets.filter_bar import FilterBar
from imgcache.tui.widgets.image_table import ImageTable
from imgcache.tui.widgets.job_list import JobList
from imgcache.tui.widgets.rows import Plan, Scope, cache_names, plan
from imgcache.tui.widgets.status import StatusBar
from imgcache.tui.widgets.summary import FreeSpace, SummaryBar, summary_text

#: Below this width the tree folds away; below WIDE x TALL the details pane does.
TREE_WIDE = 140
WIDE = 100
TALL = 30
#: Seconds the cursor must rest before the details pane follows it.
DETAILS_DELAY = 0.06


class MainScreen(Screen[None]):
    """Everything at once: the caches, their images and what is wrong with them."""

    BINDINGS = [
        Binding("tab", "app.focus_next", "Next pane", show=False, id="focus_next"),
        Binding(
            "shift+tab", "app.focus_previous", "Previous pane", show=False, id="focus_previous"
        ),
        # Priority: keys typed right after these (one SSH packet, a paste) must reach
        # the input or picker they open, not the widget focused before. A focused
        # input still gets "/" and "f" as text: Textual drops bindings of keys it types.
        Binding("slash", "filter_text", "Filter", priority=True, id="filter_text"),
        Binding("f", "filter_finding", "Findings", priority=True, id="filter_finding"),
        Binding("s", "sort_next", "Sort", id="sort_next"),
        Binding("S", "sort_reverse", "Reverse sort", show=False, id="sort_reverse"),
        Binding("d", "toggle_defaults", "Defaults", id="toggle_defaults"),
        Binding("t", "toggle_tree", "Tree", show=False, id="toggle_tree"),
        Binding("escape", "clear_filters", "Clear filters", show=False, id="clear_filters"),
        Binding("J", "toggle_jobs", "Jobs", show=False, id="toggle_jobs"),
        # Jobs: the app's actions (hidden and refused in read-only mode).
        Binding("p", "app.pull_ref", "Pull", id="pull_ref"),
        Binding("P", "app.pull_defaults", "Pull missing defaults", show=False, id="pull_defaults"),
        Binding("a", "app.add_file", "Add a file", show=False, id="add_file"),
        # Maintenance: on the marked images (space in the table), else the selected one.
        Binding("C", "app.compress", "Compress marked/selected (zstd)", show=False, id="compress"),
        Binding("D,delete", "app.delete", "Delete marked/selected", show=False, id="delete"),
        Binding("X", "app.gc", "Garbage-collect (plan first)", show=False, id="gc"),
        Binding("M", "app.fix_perms", "Fix permissions (plan first)", show=False, id="fix_perms"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float],
        free_space: FreeSpace | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.free_space = free_space
        self.names = cache_names(settings.caches)
        self.inventory: Inventory | None = None
        self.show_tree: bool | None = None
        """None follows the terminal's width; True/False is the user's `t`."""
        self._tree_chosen_wide = False
        self.show_defaults = False
        self.show_jobs = False
        self._last_panel = "defaults"
        """Of the defaults panel and the jobs pane, the one shown last (the one a
        short terminal keeps)."""
        self._details_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        """Lay out the panes."""
        with Horizontal(id="body"):
            tree = CacheTree(id="tree")
            tree.border_title = "Caches"
            yield tree
            with Vertical(id="main"):
                yield FilterBar(id="filter")
                yield ImageTable(clock=self.clock, id="images")
                details = DetailsPane(clock=self.clock, id="details")
                details.border_title = "Details"
                yield details
                yield DefaultsPanel(read_only=self.settings.read_only, id="defaults")
                jobs = JobList(read_only=self.settings.read_only, id="jobs")
                jobs.names = self.names
                yield jobs
        yield SummaryBar(id="summary")
        status = StatusBar(id="status")
        status.names = self.names
        status.read_only = self.settings.read_only
        yield status
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Start in the table, with the panes this size allows."""
        self.table.set_names(self.names)
        self.table.marking = not self.settings.read_only
        self.table.focus()
        self._fold(self.size.width, self.size.height)

    # -- widgets ----------------------------------------------------------------

    @property
    def table(self) -> ImageTable:
        """The image table."""
        return self.query_one("#images", ImageTable)

    @property
    def tree(self) -> CacheTree:
        """The cache tree."""
        return self.query_one("#tree", CacheTree)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.query_one("#status", StatusBar)

    @property
    def filter_bar(self) -> FilterBar:
        """The text filter input."""
        return self.query_one("#filter", FilterBar)

    @property
    def defaults_panel(self) -> DefaultsPanel:
        """The defaults panel."""
        return self.query_one("#defaults", DefaultsPanel)

    @property
    def job_list(self) -> JobList:
        """The jobs pane."""
        return self.query_one("#jobs", JobList)

    def current_cache(self) -> str | None:
        """The cache in view: the tree's scope, else the selected image's."""
        scope = self.table.model.scope
        if scope is not None:
            return scope.root
        image = self.table.highlighted
        return image.root if image is not None else None

    # -- data from the app --------------------------------------------------------

    def show_inventory(
        self,
        inventory: Inventory,
        change: Plan | None = None,
        sums: Totals | None = None,
        summary: Text | None = None,
    ) -> None:
        """Show a new inventory; the work a worker already did is passed in.

        Without `change`, `sums` and `summary` they are computed here, on the UI thread.
        """
        self.inventory = inventory
        table = self.table
        if change is None:
            change = plan(inventory.images, table.model.rows, self.names)
        table.update(change)
        table.placeholder = self._empty_text()
        if sums is None:
            sums = totals(table.model.rows.values())
        self.tree.show(self.settings.caches, self.names, sums)
        if summary is None:
            summary = summary_text(inventory, self.names, self.free_space)
        self.query_one(SummaryBar).update(summary)
        self.query_one(DefaultsPanel).show(inventory, self.names)
        problems = [s.error for s in inventory.caches if s.error]
        problems += [p for p in inventory.problems if p not in problems]
        self.status.set_state(scanning=False, updated=inventory.scanned_at, problems=problems)

    def _empty_text(self) -> str:
        """What the table says when the caches hold no image at all."""
        where = ", ".join(self.names.get(s.path, s.path) for s in self.settings.caches)
        if self.settings.read_only:
            return f"no images in {where}"
        return f"no images in {where}: {hint_key(self.app, 'pull_ref', 'p')} pulls one"

    def show_jobs_update(self, statuses: Iterable[JobStatus]) -> None:
        """New snapshots of some jobs, for the jobs pane."""
        self.job_list.update_jobs(statuses)

    def reveal_jobs(self) -> None:
        """Show the jobs pane (jobs were just submitted); the focus stays where it is."""
        if not self.show_jobs:
            self.show_jobs = True
            self._last_panel = "jobs"
            self._fold(self.size.width, self.size.height)

    # -- folding panes ------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        """Fold or unfold panes for the new size."""
        self._fold(event.size.width, event.size.height)

    def _fold(self, width: int, height: int) -> None:
        wide = width >= WIDE
        tree_wide = width >= TREE_WIDE
        if self.show_tree is not None and tree_wide != self._tree_chosen_wide:
            # The user's `t` holds until the terminal crosses the breakpoint.
            self.show_tree = None
        tree = tree_wide if self.show_tree is None else self.show_tree
        self.tree.display = tree
        tall = height >= TALL
        defaults, jobs = self.show_defaults, self.show_jobs
        if defaults and jobs and not tall:
            # No room for both under the table: the one shown last stays.
            defaults, jobs = self._last_panel == "defaults", self._last_panel == "jobs"
        details = self.query_one(DetailsPane)
        details.display = wide and tall and not (defaults or jobs)
        if details.display and details.image is None:
            details.show(self.table.highlighted)
        self.defaults_panel.display = defaults
        self.job_list.display = jobs
        self.job_list.set_class(not tall, "-short")
        # The palette's hint would push "? Help" off an 80-column footer.
        self.query_one(Footer).show_command_palette = wide
        focused = self.focused
        if focused is not None and not focused.display:
            self.table.focus()

    # -- actions ------------------------------------------------------------------

    def action_filter_text(self) -> None:
        """Open the text filter."""
        bar = self.filter_bar
        bar.display = True
        # Focus at once (not deferred like widget.focus()), so the keys that follow
        # "/" in the same burst of input land in the bar.
        self.set_focus(bar)

    def action_filter_finding(self) -> None:
        """Pick a finding to show only the images that have it."""
        rows = self.table.model.rows.values()
        picker = FindingPicker([row.codes for row in rows], self.table.model.finding)
        self.app.push_screen(picker, self.set_finding)

    def set_finding(self, code: str | None) -> None:
        """Show only images with this finding ("all" for every image, "any" for any)."""
        if code is not None:
            self.table.set_filters(finding=code)

    def set_scope(self, scope: Scope | None) -> None:
        """Narrow the table to one cache or repository (None: everything)."""
        self.table.set_filters(scope=scope)

    def action_sort_next(self) -> None:
        """Sort by the next column."""
        self.table.cycle_sort()

    def action_sort_reverse(self) -> None:
        """Reverse the sort order."""
        self.table.reverse_sort()

    def action_toggle_defaults(self) -> None:
        """Show the defaults panel and go to it; hide it."""
        self._toggle_panel("defaults", self.defaults_panel)

    def action_toggle_jobs(self) -> None:
        """Show the jobs pane and go to it; go to it when it shows; hide it when in it."""
        self._toggle_panel("jobs", self.job_list)

    def _toggle_panel(self, name: str, panel: DefaultsPanel | JobList) -> None:
        shown = panel.display
        if shown and name == "jobs" and not panel.has_focus:
            panel.focus()  # shown by a submit, never visited: go there first
            return
        setattr(self, f"show_{name}", not shown)
        if not shown:
            self._last_panel = name
        self._fold(self.size.width, self.size.height)
        if panel.display:
            panel.focus()

    def action_toggle_tree(self) -> None:
        """Show or hide the tree of caches."""
        self.show_tree = not self.tree.display
        self._tree_chosen_wide = self.size.width >= TREE_WIDE
        self._fold(self.size.width, self.size.height)

    def action_clear_filters(self) -> None:
        """Clear the text filter, the finding filter and the tree's scope."""
        bar = self.filter_bar
        bar.value = ""
        bar.display = False
        self.table.set_filters(text="", finding="all", scope=None)
        self.table.focus()

    # -- messages from the widgets ------------------------------------------------

    @on(ImageTable.Highlighted)
    def _highlighted(self, event: ImageTable.Highlighted) -> None:
        # Drawing the details costs more than moving the cursor: while j is held
        # down, repaint them only once the cursor rests (the key's frame stays cheap).
        pane = self.query_one(DetailsPane)
        if not pane.display:
            pane.image = None  # shown afresh when the pane unfolds
            return
        if self._details_timer is not None:
            self._details_timer.stop()
        self._details_timer = self.set_timer(DETAILS_DELAY, lambda: pane.show(event.image))

    @on(ImageTable.Selected)
    def _selected(self, event: ImageTable.Selected) -> None:
        self.app.push_screen(DetailsScreen(event.image, clock=self.clock))

    @on(Tree.NodeSelected, "#tree")
    def _tree_selected(self, event: Tree.NodeSelected[Scope | None]) -> None:
        self.set_scope(event.node.data)

    @on(FilterBar.TextChanged)
    def _filter_changed(self, event: FilterBar.TextChanged) -> None:
        self.table.set_filters(text=event.text)

    @on(FilterBar.Done)
    def _filter_done(self, event: FilterBar.Done) -> None:
        if event.cleared or not event.bar.value.strip():
            event.bar.display = False
        self.table.focus()
