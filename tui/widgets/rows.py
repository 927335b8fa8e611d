"""The image table's data: one `Row` per file, filtered and sorted in memory.

Kept apart from the widget (and free of Textual) so that sorting, filtering and
incremental updates can be reasoned about and tested on their own. The view is
stored in ascending key order; a reversed sort only maps display positions, so a
new or changed row can be placed with a binary search instead of a full re-sort.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory.findings import ORDER
from imgcache.backends.inventory.model import Format, Image
from imgcache.tui.format import compression_label, display_name, human_size, printable

#: Sortable columns, in the order `s` cycles through them.
SORT_COLUMNS = ("name", "cache", "format", "comp", "size", "age", "findings")
#: Columns whose natural order puts the biggest, oldest or worst first.
DESCENDING = frozenset({"size", "age", "findings"})
#: The quick filters by finding: everything, anything with a finding, or one code.
FINDING_FILTERS = ("all", "any", *ORDER)
#: Short format names for the table; the details show the full one.
FORMAT_SHORT = {
    Format.SIF: "sif",
    Format.OCI_SIF: "ocisif",
    Format.SQUASHFS: "sqsh",
    Format.OCI_ARCHIVE: "oci",
    Format.DOCKER_ARCHIVE: "docker",
    Format.UNKNOWN: "-",
}
#: The tree's group for files whose name maps to no image reference.
NO_REPO = "(no reference)"
#: More changes than this at once and the view is rebuilt rather than patched.
PATCH_LIMIT = 64


def repo_of(name: str) -> str:
    """The repository of a displayed reference: the name without tag or digest."""
    name = name.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def cache_names(specs: Sequence[CacheSpec]) -> dict[str, str]:
    """A short name per cache root: its directory name, or its label when that repeats."""
    names = {
        spec.path: printable(os.path.basename(spec.path.rstrip("/")) or spec.path) for spec in specs
    }
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {path: (name if counts[name] == 1 else path) for path, name in names.items()}


@dataclass(slots=True)
class Row:
    """One line of the image table; its `image` is swapped only on the UI thread.

    Everything the table draws, filters and sorts on is computed once, here, so a
    sort of 10,000 rows compares ready-made tuples.
    """

    image: Image
    name: str
    repo: str
    cache: str
    fmt: str
    comp: str
    size_text: str
    codes: tuple[str, ...]
    search: str
    """Lower-case text the `/` filter looks in."""
    key_name: tuple
    key_cache: tuple
    key_format: tuple
    key_comp: tuple
    key_size: tuple
    key_age: tuple
    key_findings: tuple

    @property
    def path(self) -> str:
        """The file's absolute path, the row's identity."""
        return self.image.path


_names: dict[str, str] = {}


def _display(image: Image) -> str:
    # Parsing a reference costs more than everything else a row needs; many files
    # share a reference (one per cache), so remember the answer per reference.
    if image.ref is None:
        return printable(image.rel)
    name = _names.get(image.ref)
    if name is None:
        name = _names[image.ref] = display_name(image)
    return name


def make_row(image: Image, cache: str) -> Row:
    """Build the row for one image."""
    name = _display(image)
    fmt = FORMAT_SHORT[image.probe.format]
    comp = compression_label(image)
    codes = image.codes
    path = image.path
    lname = name.lower()
    search = f"{name}\n{path}\n{cache}\n{image.probe.format.value}\n{comp}\n{' '.join(codes)}\n"
    severity = _SEVERITY[codes[0]] if codes else len(ORDER)
    return Row(
        image=image,
        name=name,
        repo=repo_of(name) if image.ref is not None else NO_REPO,
        cache=cache,
        fmt=fmt,
        comp=comp,
        size_text=human_size(image.stat.size),
        codes=codes,
        search=(search + image.owner).lower(),
        key_name=(lname, cache, path),
        key_cache=(cache, lname, path),
        key_format=(fmt, lname, path),
        key_comp=(comp or "\uffff", lname, path),
        key_size=(-image.stat.size, path),
        key_age=(image.stat.mtime, path),
        key_findings=(severity, -len(codes), lname, path),
    )


_SEVERITY = {code: i for i, code in enumerate(ORDER)}
SORT_KEYS: dict[str, Callable[[Row], tuple]] = {
    column: attrgetter(f"key_{column}") for column in SORT_COLUMNS
}


def _same(old: Image, new: Image) -> bool:
    """True when a rescan left everything a row shows unchanged."""
    return (
        old.stat.key == new.stat.key
        and old.codes == new.codes
        and old.ref == new.ref
        and old.owner == new.owner
        and old.probe is new.probe
    )


@dataclass(slots=True)
class Scope:
    """The part of the caches the tree narrowed the table to."""

    root: str
    repo: str | None = None


@dataclass(slots=True)
class Patch:
    """What an update did to the view, so the widget repaints only what it must."""

    rebuilt: bool = False
    """The view was recomputed or rows were inserted or removed."""
    rows: set[str] = field(default_factory=set)
    """Paths whose rows were replaced in place."""


@dataclass(slots=True)
class Plan:
    """How to turn the current rows into a new inventory's, worked out off the UI thread."""

    base: dict[str, Row]
    """The rows this plan was computed against."""
    rows: dict[str, Row]
    """The new rows by path (unchanged ones are the same objects as in `base`)."""
    swaps: list[tuple[Row, Image]]
    """Unchanged rows and the new record each should carry."""
    fresh: list[Row]
    """New rows, and replacements for rows whose display changed."""
    gone: list[Row]


def plan(images: Iterable[Image], base: dict[str, Row], names: Mapping[str, str]) -> Plan:
    """Diff a new inventory's images against `base`; only reads `base` (worker-safe)."""
    rows: dict[str, Row] = {}
    swaps: list[tuple[Row, Image]] = []
    fresh: list[Row] = []
    for image in images:
        old = base.get(image.path)
        # The catalog hands back the very object of an image that did not change:
        # one identity test for nearly every row of a rescan.
        if old is not None and (old.image is image or _same(old.image, image)):
            rows[image.path] = old
            if old.image is not image:
                swaps.append((old, image))
        else:
            cache = names.get(image.root) or os.path.basename(image.root) or image.root
            row = rows[image.path] = make_row(image, cache)
            fresh.append(row)
    gone = [row for path, row in base.items() if path not in rows]
    return Plan(base, rows, swaps, fresh, gone)


class RowModel:
    """All rows, the filters and sort order, and the resulting view."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names: dict[str, str] = dict(names or {})
        self.rows: dict[str, Row] = {}
        self.text = ""
        self.finding = "all"
        self.scope: Scope | None = None
        self.sort = "name"
        self.reverse = False
        self.rebuilds = 0
        """How many times the view was recomputed (for tests and the bench)."""
        self._view: list[Row] = []
        self._keys: list[tuple] = []
        self._index: dict[str, int] | None = None

    # -- reading ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._view)

    def row(self, position: int) -> Row:
        """The row shown at a display position."""
        if self.reverse:
            position = len(self._view) - 1 - position
        return self._view[position]

    def position(self, path: str) -> int | None:
        """The display position of a file's row, or None when it is filtered out."""
        if self._index is None:
            self._index = {row.image.path: i for i, row in enumerate(self._view)}
        index = self._index.get(path)
        if index is None:
            return None
        return len(self._view) - 1 - index if self.reverse else index

    def visible(self) -> list[Row]:
        """The rows in display order."""
        return self._view[::-1] if self.reverse else list(self._view)

    @property
    def descending(self) -> bool:
        """True when the view lists the biggest, oldest, worst or last name first."""
        return (self.sort in DESCENDING) != self.reverse

    def matches(self, row: Row) -> bool:
        """True when a row passes the scope, finding and text filters."""
        if self.scope is not None:
            if row.image.root != self.scope.root:
                return False
            if self.scope.repo is not None and row.repo != self.scope.repo:
                return False
        if self.finding != "all":
            codes = row.codes
            if self.finding == "any" and not codes:
                return False
            if self.finding != "any" and self.finding not in codes:
                return False
        if self.text:
            return all(word in row.search for word in self.text.lower().split())
        return True

    # -- changing ---------------------------------------------------------------

    def load(self, images: Iterable[Image]) -> None:
        """Replace every row."""
        self.apply(plan(images, {}, self.names))

    def refresh(self) -> None:
        """Recompute the view from all rows (after a filter or sort change)."""
        key = SORT_KEYS[self.sort]
        if self.filtered:
            view = [row for row in self.rows.values() if self.matches(row)]
        else:
            view = list(self.rows.values())
        view.sort(key=key)
        self._view = view
        self._keys = list(map(key, view))
        self._index = None
        self.rebuilds += 1

    def update(self, images: Iterable[Image]) -> Patch:
        """Take a new inventory's images, touching only rows that changed."""
        return self.apply(plan(images, self.rows, self.names))

    def apply(self, change: Plan) -> Patch:
        """Carry out a plan made against the current rows (on the UI thread)."""
        if change.base is not self.rows:
            # Planned against rows that have since been replaced: start over.
            change = plan([row.image for row in change.rows.values()], self.rows, self.names)
        patch = Patch()
        for row, image in change.swaps:
            row.image = image  # same row on screen; the details read the new record
        previous = self.rows
        self.rows = change.rows
        fresh, gone = change.fresh, change.gone
        if not previous or len(fresh) + len(gone) > PATCH_LIMIT:
            self.refresh()
            patch.rebuilt = True
            return patch
        key = SORT_KEYS[self.sort]
        for row in gone:
            if self.matches(row):
                self._remove(row, key)
                patch.rebuilt = True
        for row in fresh:
            old = previous.get(row.image.path)
            was = old is not None and self.matches(old)
            now = self.matches(row)
            if was and now and key(old) == key(row):
                # Same place in the view: swap the row, repaint one line.
                index = bisect.bisect_left(self._keys, key(old))
                self._view[index] = row
                patch.rows.add(row.image.path)
                continue
            if was:
                self._remove(old, key)
            if now:
                k = key(row)
                index = bisect.bisect_left(self._keys, k)
                self._keys.insert(index, k)
                self._view.insert(index, row)
            if was or now:
                patch.rebuilt = True
                self._index = None
        return patch

    def _remove(self, row: Row, key: Callable[[Row], tuple]) -> None:
        k = key(row)
        index = bisect.bisect_left(self._keys, k)
        if index < len(self._keys) and self._keys[index] == k:
            del self._keys[index]
            del self._view[index]
            self._index = None

    # -- sort and filters -------------------------------------------------------

    def set_sort(self, column: str, reverse: bool = False) -> None:
        """Sort by `column` (one of SORT_COLUMNS), in its natural or reversed order."""
        if column not in SORT_KEYS:
            raise ValueError(f"unknown sort column {column!r}")
        changed_column = column != self.sort
        self.sort, self.reverse = column, reverse
        if changed_column:
            self.refresh()
        else:
            self._index = None

    def set_filters(
        self,
        *,
        text: str | None = None,
        finding: str | None = None,
        scope: Scope | bool | None = False,
    ) -> None:
        """Change any of the filters (`scope=None` clears the scope) and recompute."""
        if text is not None:
            self.text = text.strip()
        if finding is not None:
            if finding not in FINDING_FILTERS:
                raise ValueError(f"unknown finding filter {finding!r}")
            self.finding = finding
        if scope is not False:
            self.scope = scope  # type: ignore[assignment]
        self.refresh()

    @property
    def filtered(self) -> bool:
        """True when any filter hides rows."""
        return bool(self.text or self.finding != "all" or self.scope is not None)
