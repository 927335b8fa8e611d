"""`imgcache list`, `imgcache defaults` and the profiles as text tables, on a terminal or a pipe.

The tables are `tui.table` tables: measured in one pass and written as
fixed-width lines, so 20,000 images print in a fraction of the scan's time, and
a reference or path is never cut inside a name (on a terminal too narrow for it
it gets a line of its own; on a pipe nothing is folded at all).
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console

from imgcache.backends.config import CacheSpec
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
    plural,
    printable,
    short_age,
)
from imgcache.tui.table import (
    REF,
    SPANS,
    WORDS,
    Cell,
    Column,
    Line,
    Painter,
    Table,
    line,
    write_lines,
)
from imgcache.tui.widgets.rows import FORMAT_SHORT, cache_names


def cache_labels(specs: Sequence[CacheSpec]) -> dict[str, str]:
    """Cache root -> what the CACHE column says: the kind, or `kind:name` (the root's
    directory name, or the whole root when that repeats) when a kind has several caches."""
    names = cache_names(specs)
    kinds = Counter(spec.kind for spec in specs)
    return {
        spec.path: spec.kind.value
        if kinds[spec.kind] == 1
        else f"{spec.kind.value}:{names[spec.path]}"
        for spec in specs
    }


def images_table(
    images: Iterable[Image],
    now: float,
    labels: Mapping[str, str],
    *,
    badges: bool = False,
) -> Table:
    """The image table, one row per file in the order given; coloured finding badges
    with `badges` (`shorten` makes the compact form for a narrow terminal)."""
    table = Table(
        [
            Column("IMAGE", REF),
            Column("CACHE"),
            Column("FORMAT"),
            Column("COMP"),
            Column("SIZE", right=True),
            Column("AGE", right=True),
            Column("FINDINGS", SPANS),
        ]
    )
    # Many files share a reference (one per cache) and a set of findings: each is
    # worked out once. Parsing a reference costs more than the rest of a row.
    names: dict[str, Cell] = {}
    findings: dict[tuple[str, ...], Cell] = {}
    add = table.rows.append
    for image in images:
        ref = image.ref
        name = names.get(ref) if ref is not None else None
        if name is None:
            if ref is None:
                name = (line(printable(image.rel), "italic"),)
            else:
                name = names[ref] = display_name(image)
        codes = image.codes
        badge = findings.get(codes)
        if badge is None:
            if badges and codes:
                badge = (Line(tuple((f" {code} ", FINDING_STYLES[code]) for code in codes)),)
            else:
                badge = " ".join(codes)
            findings[codes] = badge
        add(
            (
                name,
                labels.get(image.root) or image.cache.value,
                image.probe.format.value,
                compression_label(image),
                human_size(image.stat.size),
                human_age(now - image.stat.mtime),
                badge,
            )
        )
    return table


def shorten(table: Table, images: Sequence[Image], now: float) -> Table:
    """`table` (made by `images_table` from `images`) with the compact age and format."""
    short = Table(table.columns)
    short.rows = [
        (name, cache, FORMAT_SHORT[i.probe.format], comp, size, short_age(now - i.stat.mtime), f)
        for (name, cache, _fmt, comp, size, _age, f), i in zip(table.rows, images, strict=True)
    ]
    return short


def summary_line(inventory: Inventory, images: Sequence[Image]) -> str:
    """One line under the table: counts, total size, findings."""
    counts = Counter(code for image in images for code in image.codes)
    parts = [f"{counts[code]:,} {code}" for code in ORDER if counts[code]]
    size = human_size(sum(i.stat.size for i in images))
    caches = plural(len(inventory.caches), "cache")
    line_ = f"{plural(len(images), 'file')}, {size}, in {caches}"
    if parts:
        line_ += "; findings: " + ", ".join(parts)
    return line_


def print_images(
    console: Console, inventory: Inventory, images: Sequence[Image], now: float
) -> None:
    """Print the image table (and, on a terminal, a summary line under it)."""
    terminal = console.is_terminal
    width = console.width if terminal else None
    labels = cache_labels(inventory.settings.caches)
    table = images_table(images, now, labels, badges=terminal)
    if width is not None and table.natural_width() > width:
        table = shorten(table, images, now)
    paint = Painter(console)
    write_lines(console.file, table.lines(width, paint, rule=terminal))
    if terminal:
        summary = textwrap.wrap(summary_line(inventory, images), width or 80)
        write_lines(console.file, [paint(text, "dim") for text in summary])


def _where(state: str, path: str | None, detail: str) -> tuple[Line, ...]:
    lines = []
    if state != "missing" and path:
        lines.append(line(printable(path), "", REF))
    if detail:
        lines.append(line(printable(detail), "dim", WORDS))
    return tuple(lines)


def _next(cells: list[Cell]) -> Cell:
    """The first of `cells`, taken off the list; empty when none is left."""
    return cells.pop(0) if cells else ""


def defaults_table(inventory: Inventory, *, apart: bool = False) -> Table:
    """Each environment's default image and, beside it, one row per cache: state and where.

    A resource pool's own default follows the cluster's, its environment labelled with
    the pool. With `apart` (for a terminal too narrow for the whole table) the image gets
    a row of its own above its caches, so that when it must go on a line of its own it is
    still read as the head of its environment.
    """
    table = Table(
        [
            Column("ENVIRONMENT"),
            Column("DEFAULT IMAGE", REF, spill_above=False),
            Column("CACHE"),
            Column("STATE"),
            Column("WHERE", REF, spill_above=False),
        ]
    )
    labels = cache_labels([status.spec for status in inventory.caches])
    for default in inventory.defaults:
        titles: list[Cell] = [ENVIRONMENT_TITLES[default.env]]
        if default.pool is not None:
            titles.append(f"pool {printable(default.pool)}")
        named: list[Cell] = [
            (line(printable(default.value), "", REF),),
            (line(printable(default.origin), "dim", WORDS),),
        ]
        if apart:
            table.add_row(titles.pop(0), named.pop(0), "", "", "")
        found = {p.cache_root: p for p in inventory.presence if p.default is default}
        for status in inventory.caches:
            p = found.get(status.spec.path)
            cells: tuple[Cell, ...] = ("", "", "")
            if p is not None:
                state = (line(p.state, PRESENCE_STYLES[p.state]),)
                cells = (labels[status.spec.path], state, _where(p.state, p.path, p.detail))
            table.add_row(_next(titles), _next(named), *cells)
        while titles or named:
            table.add_row(_next(titles), _next(named), "", "", "")
    return table


def note_lines(notes: Sequence[str]) -> list[str]:
    """One line per note of the settings: what master.yaml says that imgcache does not read."""
    return [f"note: {printable(note)}" for note in notes]


def print_defaults(console: Console, inventory: Inventory) -> None:
    """Print the defaults of each environment (and pool) against each configured cache,
    then the notes."""
    terminal = console.is_terminal
    paint = Painter(console)
    profile = inventory.profile
    head = f"Profile {printable(profile.name)}: {printable(profile.title)}"
    heads = textwrap.wrap(head, console.width) if terminal else [head]
    heads[0] = paint("Profile", "bold") + heads[0].removeprefix("Profile")
    width = console.width if terminal else None
    table = defaults_table(inventory)
    if width is not None and table.natural_width() > width:
        table = defaults_table(inventory, apart=True)
    lines = table.lines(width, paint, rule=terminal)
    notes = note_lines(inventory.settings.notes)
    if terminal:
        notes = [paint(part, "yellow") for note in notes for part in textwrap.wrap(note, width)]
    write_lines(console.file, [*heads, *lines, *notes])


def print_profiles(console: Console, current: str) -> None:
    """List the shipped profiles of default images."""
    terminal = console.is_terminal
    table = Table([Column("PROFILE"), Column("CPU / CUDA / ROCM", REF, spill_above=False)])
    for profile in load_profiles().values():
        mark = " (in use)" if profile.name == current else ""
        name: Cell = (line(profile.name + mark, "bold" if mark else ""),)
        for env, image in profile.images.items():
            table.add_row(name, f"{env}: {image}")
            name = ""
    paint = Painter(console)
    write_lines(
        console.file, table.lines(console.width if terminal else None, paint, rule=terminal)
    )
