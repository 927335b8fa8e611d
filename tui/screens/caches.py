"""The caches screen (`i`): each cache's root, totals, filesystem, watch mode and problems.

The status bar says in one line that something degraded; this screen says what,
where and why, including every message the watcher sent since the app started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.watch import WatchMode
from imgcache.tui.format import human_size, printable
from imgcache.tui.widgets.summary import FreeSpace


def caches_report(
    inventory: Inventory | None,
    modes: Mapping[str, WatchMode],
    events: Sequence[str],
    free: FreeSpace | None = None,
) -> RenderableType:
    """Caches, watch modes, problems and watcher events as Rich tables."""
    if inventory is None:
        return Text("The first scan has not finished yet.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("CACHE", overflow="fold")
    table.add_column("FILES", justify="right")
    table.add_column("SIZE", justify="right")
    table.add_column("FREE", justify="right")
    table.add_column("WATCH", overflow="fold")
    for status in inventory.caches:
        space = free(status) if free else status.free
        mode = modes.get(status.spec.path)
        watch = Text(mode.method, style="bold") if mode else Text("not watched", style="dim")
        if mode:
            watch.append(f"\n{mode.reason}", style="dim")
        name = Text(status.spec.label, style="bold")
        name.append(f"\nfrom {status.spec.origin}", style="dim")
        free_text = human_size(space) if space is not None else "?"
        if status.capacity and space is not None:
            free_text += f"\nof {human_size(status.capacity)}"
        table.add_row(name, f"{status.images:,}", human_size(status.bytes), free_text, watch)
    stats = inventory.stats
    stamp = datetime.fromtimestamp(inventory.scanned_at).strftime("%Y-%m-%d %H:%M:%S")
    last = Text.assemble(
        ("Last scan ", "bold"),
        f"{stamp}: {stats.dirs:,} directories, {stats.files:,} files, "
        f"{stats.probed:,} headers read",
    )
    parts: list[RenderableType] = [table, last]
    problems = [s.error for s in inventory.caches if s.error] + list(inventory.problems)
    parts.append(Text("\nProblems", style="bold underline"))
    if problems:
        parts.extend(Text(f"⚠ {printable(p)}", style="red") for p in dict.fromkeys(problems))
    else:
        parts.append(Text("none", style="green"))
    parts.append(Text("\nWatcher messages", style="bold underline"))
    if events:
        parts.extend(Text(f"• {printable(e)}") for e in events)
    else:
        parts.append(Text("none", style="dim"))
    return Group(*parts)


class CachesScreen(Screen[None]):
    """Where the caches are and how they are watched."""

    BINDINGS = [Binding("escape,i", "app.pop_screen", "Back", id="close")]

    def __init__(self, report: RenderableType) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        """The report in a scrolling pane."""
        pane = VerticalScroll(Static(self.report), id="caches-report")
        pane.border_title = "Caches"
        yield pane
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Focus the pane so the arrows scroll it."""
        self.query_one("#caches-report").focus()
