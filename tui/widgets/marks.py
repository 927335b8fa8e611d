"""Marked rows of the image table, and the table's border title that counts them.

Marks are paths, kept beside the `RowModel` rather than in its rows: a row is
replaced whenever its file changes, a path is not, so marks survive sorting,
filtering and rescans for free. Free of Textual, like `rows`, so the rules can
be tested without a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from imgcache.backends.inventory.model import Image
from imgcache.tui.format import human_size
from imgcache.tui.widgets.rows import SORT_KEYS, Row, RowModel


class Marks:
    """The set of marked files (by path), shown or filtered out."""

    def __init__(self) -> None:
        self.paths: set[str] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __bool__(self) -> bool:
        return bool(self.paths)

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def toggle(self, path: str) -> bool:
        """Mark or unmark one file; True when it is marked now."""
        if path in self.paths:
            self.paths.discard(path)
            return False
        self.paths.add(path)
        return True

    def flip_all(self, paths: Iterable[str]) -> None:
        """Mark all of `paths`; when every one is marked already, unmark them instead."""
        wanted = set(paths)
        if wanted <= self.paths:
            self.paths -= wanted
        else:
            self.paths |= wanted

    def replace(self, paths: Iterable[str], rows: Mapping[str, Row]) -> None:
        """Mark exactly `paths` (those without a row are ignored)."""
        self.paths = {p for p in paths if p in rows}

    def clear(self) -> bool:
        """Unmark everything; False when nothing was marked."""
        had = bool(self.paths)
        self.paths.clear()
        return had

    def prune(self, rows: Mapping[str, Row]) -> None:
        """Drop the marks of files that are no longer in the caches."""
        if self.paths:
            self.paths.intersection_update(rows)

    def total(self, rows: Mapping[str, Row]) -> int:
        """Bytes of the marked files, at their current sizes."""
        return sum(rows[p].image.stat.size for p in self.paths if p in rows)

    def ordered(self, model: RowModel) -> list[Image]:
        """The marked images in the table's sort order."""
        rows = [model.rows[p] for p in self.paths if p in model.rows]
        rows.sort(key=SORT_KEYS[model.sort], reverse=model.reverse)
        return [row.image for row in rows]


def table_title(model: RowModel, marks: Marks) -> str:
    """What the table shows, for its border: counts, scope, filters, sort, marks."""
    parts = [f"Images {len(model):,}/{len(model.rows):,}"]
    if model.scope is not None:
        name = model.names.get(model.scope.root, model.scope.root)
        parts.append(f"{name} > {model.scope.repo}" if model.scope.repo else name)
    if model.text:
        parts.append(f"/{model.text}")
    if model.finding != "all":
        parts.append("any finding" if model.finding == "any" else f"only {model.finding}")
    parts.append(f"by {model.sort} {'▼' if model.descending else '▲'}")
    if marks:
        parts.append(f"{len(marks):,} marked · {human_size(marks.total(model.rows))}")
    return " · ".join(parts)
