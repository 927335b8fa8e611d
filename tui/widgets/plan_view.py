"""How the maintenance plans read on screen: files with size, cache and reason, and totals.

Pure functions that return Rich renderables, shared by the delete and compress
dialogs and the gc and permissions screens, so the same file reads the same way
in each: its size right-aligned, the short name of its cache, its path inside
the cache (the whole of it: the path is what the admin checks), then why it is
listed, dimmed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from imgcache.backends.maintenance import PlanItem
from imgcache.tui.format import human_size, printable


def cache_of(path: str, root: str, names: Mapping[str, str]) -> tuple[str, str]:
    """(short cache name, path inside the cache) of a file."""
    name = names.get(root) or printable(os.path.basename(root.rstrip("/")) or root)
    return name, printable(os.path.relpath(path, root))


class FileTable:
    """(size, cache, file, why) rows, laid out for the width they are drawn at.

    Side by side when every path and every reason fits on its line; otherwise
    each reason goes on its own line under its file, so paths never fold while
    there is room for them (a plain Rich table shrinks both columns in
    proportion and folds paths that would have fit).
    """

    def __init__(
        self, rows: Iterable[tuple[int | None, str, str, str]], why: str, why_style: str
    ) -> None:
        self.rows = [(human_size(size), cache, rel, reason) for size, cache, rel, reason in rows]
        self.why = why
        self.why_style = why_style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The table for `options.max_width`."""
        size_w = max([4, *(len(r[0]) for r in self.rows)])
        cache_w = max([5, *(cell_len(r[1]) for r in self.rows)])
        file_w = max([4, *(cell_len(r[2]) for r in self.rows)])
        why_w = max([len(self.why), *(cell_len(r[3]) for r in self.rows)])
        room = max(options.max_width - size_w - cache_w - 2, 8)  # a space after each column
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
        table.add_column("SIZE", justify="right", no_wrap=True, width=size_w)
        table.add_column("CACHE", style="dim", no_wrap=True, width=cache_w)
        if file_w + 1 + why_w <= room:
            table.add_column("FILE", width=file_w)
            table.add_column(self.why, style=self.why_style, width=why_w)
            for row in self.rows:
                table.add_row(*row)
        else:
            table.add_column(Text.assemble("FILE / ", (self.why, "bold")), overflow="fold")
            for size, cache, rel, reason in self.rows:
                table.add_row(size, cache, rel)
                if reason:
                    table.add_row("", "", Text(reason, style=self.why_style))
        yield table


def file_table(
    rows: Iterable[tuple[int | None, str, str, str]],
    *,
    why: str = "WHY",
    why_style: str = "dim",
) -> FileTable:
    """A table of (size, cache, file, why) rows; paths fold only when they must."""
    return FileTable(rows, why, why_style)


def items_table(
    items: Sequence[PlanItem], names: Mapping[str, str], *, why: str = "WHY", style: str = "dim"
) -> FileTable:
    """Plan items (files to delete, files kept, trash batches) as a `file_table`."""
    rows = []
    for item in items:
        cache, rel = cache_of(item.path, item.root, names)
        rows.append((item.size, cache, rel, item.reason))
    return file_table(rows, why=why, why_style=style)


def refused_table(
    refused: Iterable[tuple[str, str, str, int | None]], names: Mapping[str, str]
) -> FileTable:
    """(path, root, why, size) of files an action leaves out, why in red."""
    rows = []
    for path, root, reason, size in refused:
        cache, rel = cache_of(path, root, names)
        rows.append((size, cache, rel, reason))
    return file_table(rows, why="LEFT OUT BECAUSE", why_style="red")


def section(title: str, body: RenderableType, style: str = "bold") -> Group:
    """A heading line (after a blank line) over a renderable."""
    return Group(Text(""), Text(title, style=style), body)


def total_line(count: str, size: int, what: str, *, style: str = "bold") -> Text:
    """ "3 files · 24.1 GiB · moved to the trash …" with the figures in bold."""
    text = Text()
    text.append(count, style=style)
    text.append(" · ")
    text.append(human_size(size), style=style)
    if what:
        text.append(f" {what}")
    return text
