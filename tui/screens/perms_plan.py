"""The permissions screen (`M`): the mode changes fix-permissions would make, before any is.

The plan is `imgcache.backends.maintenance.perms.plan_permissions` over the marked
images, or over every image when none is marked: each image missing a read bit
of `permissions.file_mode`, each directory from its cache root down missing an
r-x bit of `permissions.dir_mode`, one line each as `0600 -> 0644 path`. Bits
are only ever added. The images it will not touch (links, unfinished writes)
are listed with why. `y` hands exactly this plan to one fix-perms job.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding

from imgcache.backends.maintenance.perms import PermChange, PermPlan
from imgcache.tui.format import plural
from imgcache.tui.screens.plan_screen import PlanScreen
from imgcache.tui.widgets.plan_view import refused_table, section


def change_row(change: PermChange) -> tuple[Text, Text, str]:
    """(before, after, path) of one change; the path ends in / for a directory."""
    before = Text(f"{change.old_mode:04o}", style="red")
    before.append(f" {stat.filemode(change.old_mode)[1:]}", style="dim")
    after = Text(f"{change.new_mode:04o}", style="green")
    after.append(f" {stat.filemode(change.new_mode)[1:]}", style="dim")
    return before, after, change.path + ("/" if change.is_dir else "")


def perms_text(plan: PermPlan, names: Mapping[str, str]) -> RenderableType:
    """The changes as `0600 -> 0644 path` lines, then what is left alone."""
    parts: list[RenderableType] = []
    if plan.changes:
        head = Text(plural(len(plan.changes), "mode change"), style="bold")
        head.append(" (read bits only ever added)", style="dim")
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
        table.add_column("BEFORE", no_wrap=True)
        table.add_column("", no_wrap=True)
        table.add_column("AFTER", no_wrap=True)
        table.add_column("PATH", overflow="fold")
        for change in plan.changes:
            before, after, path = change_row(change)
            table.add_row(before, "->", after, path)
        parts += [head, Text(""), table]
    else:
        parts.append(Text("Every image is shared as configured: nothing to change.", style="bold"))
    if plan.skipped:
        rows = [(path, _root_of(path, names), why, None) for path, why in plan.skipped]
        title = f"Left alone: {plural(len(rows), 'image')}"
        parts.append(section(title, refused_table(rows, names)))
    return Group(*parts)


def _root_of(path: str, names: Mapping[str, str]) -> str:
    """The cache root a path lies in (the longest configured root that holds it)."""
    roots = [r for r in names if path.startswith(r.rstrip("/") + "/")]
    return max(roots, key=len) if roots else os.path.dirname(path)


def perms_totals(plan: PermPlan) -> Text:
    """The line under the list: what gets which bits."""
    files = sum(not c.is_dir for c in plan.changes)
    dirs = len(plan.changes) - files
    text = Text(" ")
    if files:
        text.append(plural(files, "file"), style="bold")
        text.append(f" get read bits {plan.file_bits:04o}")
    if dirs:
        text.append(" · " if files else "")
        text.append(plural(dirs, "directory", "directories"), style="bold")
        text.append(f" get r-x bits {plan.dir_bits:04o}")
    if not plan.changes:
        text.append("nothing to change")
    text.append("  ·  y changes them, esc goes back" if plan.changes else "  ·  esc goes back")
    return text


class PermsPlanScreen(PlanScreen[PermPlan, PermPlan]):
    """See the mode changes, confirm them."""

    TITLE_TEXT = "Fix permissions"
    BINDINGS = [
        Binding("y", "run", "Change these modes", id="confirm"),
        Binding("escape,q", "close", "Back", id="close"),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False, id="cursor_up"),
        Binding("down,j", "scroll(1)", "Scroll down", show=False, id="cursor_down"),
    ]

    def __init__(
        self, planner: Callable[[], PermPlan], names: Mapping[str, str], *, scope: str
    ) -> None:
        super().__init__(planner, title=f"{self.TITLE_TEXT} · {scope}")
        self.names = names

    def render_plan(self, plan: PermPlan) -> RenderableType:
        """The changes and the images left alone."""
        return perms_text(plan, self.names)

    def totals(self, plan: PermPlan) -> Text:
        """How many files and directories change."""
        return perms_totals(plan)

    def ready(self, plan: PermPlan) -> bool:
        """Anything to change."""
        return bool(plan.changes)

    def answer(self, plan: PermPlan) -> PermPlan:
        """This very plan."""
        return plan
