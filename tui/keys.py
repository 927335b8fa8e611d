"""Where the app's key bindings are declared, and which of them write.

The help screen lists the bindings section by section in this order; a config's
`[keys]` table may name any of their ids; read-only mode hides and refuses the
ones in WRITE_BINDINGS (see `imgcache.tui.app`), and leaves out the sections of dialogs
and screens that only lead to a write (WRITE_SECTIONS).
"""

from __future__ import annotations

from textual.binding import Binding

from imgcache.tui.screens.add_dialog import AddDialog
from imgcache.tui.screens.caches import CachesScreen
from imgcache.tui.screens.compress_dialog import CompressDialog
from imgcache.tui.screens.confirm import ConfirmDialog
from imgcache.tui.screens.delete_dialog import DeleteDialog
from imgcache.tui.screens.details import DetailsScreen
from imgcache.tui.screens.finding_picker import FindingPicker
from imgcache.tui.screens.gc_plan import GcPlanScreen
from imgcache.tui.screens.help import HelpScreen, declared
from imgcache.tui.screens.job_log import JobLogScreen
from imgcache.tui.screens.main import MainScreen
from imgcache.tui.screens.perms_plan import PermsPlanScreen
from imgcache.tui.screens.pull_dialog import PullDialog
from imgcache.tui.screens.trash_screen import TrashScreen
from imgcache.tui.widgets.cache_tree import CacheTree
from imgcache.tui.widgets.defaults_panel import DefaultsPanel
from imgcache.tui.widgets.filter_bar import FilterBar
from imgcache.tui.widgets.image_table import ImageTable
from imgcache.tui.widgets.job_list import JobList

#: The app's own bindings: `ImgcacheApp.BINDINGS`, "Everywhere" on the help screen.
APP_BINDINGS = [
    Binding("q", "quit", "Quit", id="quit"),
    Binding("question_mark", "help", "Help", id="help"),
    Binding("r", "rescan", "Rescan", id="rescan"),
    Binding("i", "caches", "Caches", show=False, id="caches"),
    Binding("T", "trash", "Trash: put back, purge", show=False, id="trash"),
    Binding(
        "ctrl+p", "command_palette", "Commands", show=False, priority=True, id="command_palette"
    ),
]


class AppBindings:
    """The app's place in the help screen's sections (the app class imports this module)."""

    BINDINGS = APP_BINDINGS


#: The app's actions that write (hidden and refused in read-only mode).
WRITE_ACTIONS = frozenset(
    {"pull_ref", "pull_defaults", "add_file", "compress", "delete", "gc", "fix_perms"}
)
#: The ids of every binding that writes, or only serves one, wherever it is declared
#: (marks only choose what an action applies to).
WRITE_BINDINGS = frozenset(
    {
        *WRITE_ACTIONS,
        "pull_default",
        "cancel_job",
        "toggle_mark",
        "mark_all",
        "clear_marks",
        "trash_restore",
        "trash_purge",
    }
)
#: Dialogs and screens that only open on the way to a write: no help section in read-only.
WRITE_SECTIONS: frozenset[type] = frozenset(
    {PullDialog, AddDialog, CompressDialog, DeleteDialog, GcPlanScreen, PermsPlanScreen}
)


def binding_sections(read_only: bool = False) -> list[tuple[str, type, bool]]:
    """(title, class, own bindings only) for the help screen, in reading order.

    With `read_only`, the sections in WRITE_SECTIONS are left out.
    """
    sections = [
        ("Everywhere", AppBindings, True),
        ("Main view", MainScreen, True),
        ("Image table", ImageTable, True),
        ("Tree of caches", CacheTree, False),
        ("Defaults panel (d)", DefaultsPanel, True),
        ("Jobs pane (J)", JobList, True),
        ("Text filter (/)", FilterBar, True),
        ("Finding filter (f)", FindingPicker, True),
        ("Details screen (enter)", DetailsScreen, True),
        ("Job log (enter in the jobs pane)", JobLogScreen, True),
        ("Pull dialog (p)", PullDialog, True),
        ("Add dialog (a)", AddDialog, True),
        ("Compress dialog (C)", CompressDialog, True),
        ("Delete dialog (D)", DeleteDialog, True),
        ("Garbage collection plan (X)", GcPlanScreen, True),
        ("Permissions plan (M)", PermsPlanScreen, True),
        ("Yes/no questions", ConfirmDialog, True),
        ("Help screen (?)", HelpScreen, True),
        ("Caches screen (i)", CachesScreen, True),
        ("Trash (T)", TrashScreen, True),
    ]
    if read_only:
        sections = [s for s in sections if s[1] not in WRITE_SECTIONS]
    return sections


def known_binding_ids() -> set[str]:
    """Every binding id a `[keys]` entry may name."""
    return {
        b.id
        for _title, cls, own in binding_sections()
        for b in declared(cls, own_only=own)
        if b.id is not None
    }
