"""Rich tables for `imgcache list` and `imgcache defaults` on a terminal or a pipe."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.inventory.defaults import ENVIRONMENT_TITLES, load_profiles
from imgcache.backends.inventory.findings import ORDER
from imgcache.backends.inventory.model import Image
from imgcache.tui.format import (
    FINDING_STYLES,
    PRESENCE_STYLES,
    compression_label,
    display_name,
    human_age,
    human_size,
)


def _badges(image: Image, console: Console) -> Text:
    text = Text()
    for code in image.codes:
        if text:
            text.append(" ")
        if console.is_terminal:
            text.append(f" {code} ", style=FINDING_STYLES[code])
        else:
            text.append(code)
    return text


def images_table(images: Sequence[Image], now: float, console: Console) -> Table:
    """The image table: one row per file."""
    plain = not console.is_terminal
    table = Table(
        box=None if plain else box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
    )
    table.add_column("IMAGE", ratio=3, overflow="fold", no_wrap=plain)
    table.add_column("CACHE", no_wrap=True)
    table.add_column("FORMAT", no_wrap=True)
    table.add_column("COMP", no_wrap=True)
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("AGE", justify="right", no_wrap=True)
    table.add_column("FINDINGS", ratio=2, overflow="fold", no_wrap=plain)
    for image in images:
        name = display_name(image)
        table.add_row(
            Text(name, style="" if image.ref else "italic"),
            image.cache.value,
            image.probe.format.value,
            compression_label(image),
            human_size(image.stat.size),
            human_age(now - image.stat.mtime),
            _badges(image, console),
        )
    return table


def summary_line(inventory: Inventory, images: Sequence[Image]) -> str:
    """One line under the table: counts, total size, findings."""
    counts = Counter(code for image in images for code in image.codes)
    parts = [f"{counts[code]} {code}" for code in ORDER if counts[code]]
    size = human_size(sum(i.stat.size for i in images))
    caches = len(inventory.caches)
    line = f"{len(images)} files, {size}, in {caches} cache{'s' if caches != 1 else ''}"
    if parts:
        line += "; findings: " + ", ".join(parts)
    return line


def print_images(
    console: Console, inventory: Inventory, images: Sequence[Image], now: float
) -> None:
    """Print the image table, then a summary and any problems (on a terminal)."""
    table = images_table(images, now, console)
    if not console.is_terminal:
        # Rich pads every cell; a pipe gets lines without trailing blanks for grep and cut.
        with console.capture() as capture:
            console.print(table)
        for line in capture.get().splitlines():
            print(line.rstrip())
        return
    console.print(table)
    if console.is_terminal:
        console.print(summary_line(inventory, images), style="dim")


def print_defaults(console: Console, inventory: Inventory) -> None:
    """Print the defaults of each environment against each configured cache."""
    profile = inventory.profile
    console.print(f"[bold]Profile[/] {profile.name}: {profile.title}")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("ENVIRONMENT", no_wrap=True)
    table.add_column("DEFAULT IMAGE", overflow="fold")
    for status in inventory.caches:
        table.add_column(status.spec.label, overflow="fold")
    for default in inventory.defaults:
        cells: list[Text | str] = [
            ENVIRONMENT_TITLES[default.env],
            Text(default.value) + Text(f"\n{default.origin}", style="dim"),
        ]
        for status in inventory.caches:
            found = [
                p
                for p in inventory.presence
                if p.default is default and p.cache_root == status.spec.path
            ]
            if not found:
                cells.append("")
                continue
            p = found[0]
            cell = Text(p.state, style=PRESENCE_STYLES[p.state])
            if p.state != "missing" and p.path:
                cell.append(f"\n{p.path}", style="dim")
            if p.detail:
                cell.append(f"\n{p.detail}", style="dim")
            cells.append(cell)
        table.add_row(*cells)
    console.print(table)


def print_profiles(console: Console, current: str) -> None:
    """List the shipped profiles of default images."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("PROFILE", no_wrap=True)
    table.add_column("CPU / CUDA / ROCM", overflow="fold")
    for profile in load_profiles().values():
        mark = " (in use)" if profile.name == current else ""
        images = "\n".join(f"{env}: {img}" for env, img in profile.images.items())
        table.add_row(Text(profile.name + mark, style="bold" if mark else ""), images)
    console.print(table)
