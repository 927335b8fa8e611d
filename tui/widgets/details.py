"""Everything known about one image: the file, what its headers say, and its findings.

`image_details` builds the Rich renderable both the details pane (beside the
table on big terminals) and the details screen (Enter, any size) show.
"""

from __future__ import annotations

import stat as statmod
import time
from collections.abc import Callable
from datetime import datetime

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from imgcache.backends.inventory.findings import VOCABULARY
from imgcache.backends.inventory.model import ArchiveInfo, Image, SifInfo, SquashInfo
from imgcache.tui.format import (
    FINDING_SHORT,
    FINDING_STYLES,
    compression_label,
    display_name,
    human_age,
    human_size,
    printable,
)

_SQUASH_FLAGS = (
    ("inodes_compressed", "inodes compressed", "inodes raw (-noI)"),
    ("data_compressed", "data compressed", "data raw (-noD)"),
    ("fragments_compressed", "fragments compressed", "fragments raw (-noF)"),
    ("xattrs_compressed", "xattrs compressed", "xattrs raw (-noX)"),
)


def when(timestamp: float, now: float) -> str:
    """A local date and time with how long ago it was."""
    stamp = datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
    return f"{stamp} ({human_age(max(now - timestamp, 0))} ago)"


def _fields(rows: list[tuple[str, Text | str]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        # Paths, names and notes come from files other users wrote.
        if isinstance(value, Text):
            value = Text(printable(value.plain), style=value.style)
        table.add_row(name, printable(value) if isinstance(value, str) else value)
    return table


def _heading(text: str) -> Text:
    return Text(f"\n{text}", style="bold underline")


def _file(image: Image, now: float) -> Table:
    st = image.stat
    ref: Text | str = image.ref or Text(f"none: {image.ref_error}", style="italic")
    size = f"{human_size(st.size)} ({st.size:,} bytes)"
    mode = f"{st.mode & 0o7777:04o} ({statmod.filemode(st.mode)})"
    rows: list[tuple[str, Text | str]] = [
        ("path", image.path),
        ("cache", f"{image.cache.value}:{image.root}"),
        ("reference", ref),
        ("format", image.probe.format.value),
        ("size", size),
        ("owner", f"{image.owner}:{image.group}"),
        ("mode", mode),
        ("modified", when(st.mtime, now)),
        ("last read", when(st.atime, now)),
    ]
    if image.probe.error:
        rows.append(("error", Text(image.probe.error, style="red")))
    if image.probe.note:
        rows.append(("note", Text(image.probe.note, style="italic")))
    return _fields(rows)


def _findings(image: Image) -> RenderableType:
    if not image.findings:
        return Text("No findings: nothing to do about this image.", style="green")
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for found in image.findings:
        term = VOCABULARY[found.code]
        badge = Text(FINDING_SHORT[found.code], style=FINDING_STYLES[found.code])
        text = Text.assemble((term.title, "bold"), f": {found.reason}\n")
        text.append(f"→ {found.advice or term.advice}", style="italic")
        table.add_row(badge, text)
    return table


def _sif(info: SifInfo, now: float) -> RenderableType:
    used = info.descriptors_total - info.descriptors_free
    head = _fields(
        [
            ("version", f"{info.version} · {info.arch}"),
            ("uuid", info.uuid),
            ("created", when(info.created, now)),
            ("signed", "yes" if info.signed else "no"),
            ("descriptors", f"{used} used of {info.descriptors_total}"),
        ]
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    for title in ("ID", "TYPE", "NAME", "SIZE", "PARTITION"):
        table.add_column(title, justify="right" if title in ("ID", "SIZE") else "left")
    for d in info.descriptors:
        part = " ".join(x for x in (d.fstype, d.parttype, d.arch, d.hash_type) if x)
        if info.primary is not None and d.id == info.primary.id:
            part += " (primary)"
        table.add_row(str(d.id), d.datatype_name, printable(d.name), human_size(d.size), part)
    return Group(head, table)


def _squashfs(sq: SquashInfo, image: Image, now: float) -> RenderableType:
    flags = [on if getattr(sq, attr) else off for attr, on, off in _SQUASH_FLAGS]
    if sq.no_fragments:
        flags.append("no fragments")
    if sq.compressor_options:
        flags.append("compressor options")
    used = f"{human_size(sq.bytes_used)} ({sq.bytes_used:,} bytes)"
    return _fields(
        [
            ("compression", compression_label(image) or f"unknown id {sq.compression_id}"),
            ("block size", human_size(sq.block_size)),
            ("version", f"{sq.version[0]}.{sq.version[1]}"),
            ("flags", ", ".join(flags)),
            ("inodes", f"{sq.inodes:,}"),
            ("bytes used", used),
            ("built", when(sq.mkfs_time, now)),
        ]
    )


def _archive(info: ArchiveInfo) -> RenderableType:
    head = _fields(
        [
            ("references", "\n".join(info.refs) or Text("none", style="italic")),
            ("images", str(info.manifests)),
            ("layers", f"{len(info.layers)}, {human_size(sum(la.size for la in info.layers))}"),
        ]
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("SIZE", justify="right")
    table.add_column("MEDIA TYPE", overflow="fold")
    table.add_column("DIGEST", no_wrap=True)
    for i, layer in enumerate(info.layers, 1):
        digest = layer.digest.split(":", 1)[-1][:12]
        media = printable(layer.media_type.removeprefix("application/"))
        table.add_row(str(i), human_size(layer.size), media, printable(digest))
    return Group(head, table)


def image_details(image: Image, now: float) -> RenderableType:
    """The details of one image as a Rich renderable."""
    parts: list[RenderableType] = [
        Text(display_name(image), style="bold"),
        _findings(image),
        _heading("File"),
        _file(image, now),
    ]
    probe = image.probe
    if probe.sif is not None:
        parts += [_heading("SIF header"), _sif(probe.sif, now)]
    if probe.squashfs is not None:
        where = " (primary partition)" if probe.sif is not None else ""
        parts += [_heading(f"squashfs superblock{where}"), _squashfs(probe.squashfs, image, now)]
    if probe.archive is not None:
        parts += [_heading(f"{probe.format.value} index"), _archive(probe.archive)]
    return Group(*parts)


class DetailsPane(ScrollView, can_focus=True):
    """A scrollable view of one image's details, drawn through the line API.

    The details are laid out once per image and width into strips; scrolling and
    repaints only hand those out. A Static would lay the Rich tables out twice on
    every change (to measure its height, then to draw) and re-flow the screen.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.image: Image | None = None
        self.renderable: RenderableType = Text("No image selected.", style="dim")
        self._strips: list[Strip] = []
        self._width = 0

    def show(self, image: Image | None) -> None:
        """Show this image from the top (None clears the pane)."""
        if image is self.image and image is not None:
            return
        self.image = image
        if image is None:
            self.renderable = Text("No image selected.", style="dim")
        else:
            self.renderable = image_details(image, self.clock())
        self._lay_out()
        self.scroll_to(0, 0, animate=False, force=True)

    def on_resize(self) -> None:
        """Wrap the details again for the new width."""
        self._lay_out()

    def _lay_out(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:
            self._strips, self._width = [], 0
            return
        console = self.app.console
        options = console.options.update_width(width)
        lines = console.render_lines(self.renderable, options, style=self.rich_style)
        self._strips = [Strip(line, width) for line in lines]
        self._width = width
        self.virtual_size = Size(width, len(self._strips))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        """The laid-out line at `y` below the scroll position."""
        index = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if width != self._width and self.renderable is not None:
            self._lay_out()
        if 0 <= index < len(self._strips):
            return self._strips[index]
        return Strip.blank(width, self.rich_style)
