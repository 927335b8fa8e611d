"""The summary bar: how many images, how many bytes, what could be reclaimed, free space.

The reclaimable figure is an estimate, on purpose on the generous side:

- corrupt, incomplete, duplicate, stale and superseded files count in full
  (deleting them frees their whole size);
- an uncompressed squashfs (data blocks stored raw) counts 60% of its size, what
  recompressing with zstd saved in the pyxis documentation (18G -> 7.1G);
- anything else (including lzo-compressed images and unshared files) counts 0.

Caches on the same filesystem report the same free space; they are shown once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rich.text import Text
from textual.widgets import Static

from imgcache.backends.inventory.catalog import CacheStatus, Inventory
from imgcache.backends.inventory.model import Image
from imgcache.tui.format import human_size
from imgcache.tui.widgets.defaults_panel import presence_counts

#: Share of an uncompressed squashfs that zstd recompression saves (pyxis: 18G -> 7.1G).
COMPRESSION_SAVING = 0.6
#: Findings whose files can go entirely.
REMOVABLE = frozenset({"corrupt", "incomplete", "not-an-image", "duplicate", "stale", "superseded"})

FreeSpace = Callable[[CacheStatus], int | None]


def reclaimable(image: Image) -> int:
    """Bytes deleting or recompressing this image would free (an estimate)."""
    codes = image.codes
    if REMOVABLE.intersection(codes):
        return image.stat.size
    if "uncompressed" in codes:
        return int(image.stat.size * COMPRESSION_SAVING)
    return 0


def free_text(
    caches: tuple[CacheStatus, ...], names: Mapping[str, str], free: FreeSpace | None = None
) -> Text:
    """Free space per filesystem, naming the caches on each."""
    groups: dict[tuple[int | None, int | None], list[str]] = {}
    for status in caches:
        space = free(status) if free else status.free
        groups.setdefault((space, status.capacity), []).append(
            names.get(status.spec.path, status.spec.label)
        )
    text = Text()
    for (space, _capacity), members in groups.items():
        if text:
            text.append("  ")
        amount = "unknown" if space is None else human_size(space)
        text.append(amount, style="bold")
        text.append(" free")
        if len(groups) > 1:
            # Several filesystems: say which caches each figure is for.
            text.append(f" ({', '.join(members)})", style="dim")
    return text


def summary_text(
    inventory: Inventory, names: Mapping[str, str], free: FreeSpace | None = None
) -> Text:
    """The whole summary line."""
    images = inventory.images
    total = sum(i.stat.size for i in images)
    reclaim = sum(reclaimable(i) for i in images)
    present, applicable = presence_counts(inventory)
    text = Text()
    text.append(f"{len(images):,}", style="bold")
    text.append(" images ")
    text.append(human_size(total) or "0 B", style="bold")
    text.append(" · ")
    text.append(f"≈{human_size(reclaim) or '0 B'}", style="bold yellow" if reclaim else "bold")
    text.append(" reclaimable · defaults ")
    style = "bold green" if present == applicable else "bold red"
    text.append(f"{present}/{applicable}", style=style)
    text.append(" · ")
    text.append_text(free_text(inventory.caches, names, free))
    return text


class SummaryBar(Static):
    """One line (two when narrow) of totals under the table."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("scanning…", style="dim"), id=id)

    def show(
        self, inventory: Inventory, names: Mapping[str, str], free: FreeSpace | None = None
    ) -> None:
        """Summarise this inventory (the app passes a line a worker built to `update`)."""
        self.update(summary_text(inventory, names, free))
