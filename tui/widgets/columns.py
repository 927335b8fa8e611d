"""How the image table's columns are laid out and painted, for any width.

Pure functions of a row and a width: no widget state, so the table can cache the
strips they return. On a narrow terminal the findings column shrinks first, then
format and age drop, then the cache column shrinks; it never drops while rows of
several caches show. The others are as wide as their widest cell needs, and the
name column gets the rest. A name that does not fit loses its leading path
components first (registry, organisation: "…/environments:cuda-11.3-…"), so the
repository and the tag stay readable; only then is the middle of what remains cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from imgcache.tui.format import FINDING_SHORT, FINDING_STYLES
from imgcache.tui.widgets.rows import Row


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the table as laid out for the current width."""

    key: str
    title: str
    width: int
    right: bool = False


#: Widest widths; the name column takes what is left. Order is left to right.
_WIDTHS = {"format": 6, "comp": 8, "size": 10, "age": 7}
#: Columns whose width follows their widest cell (never below the title and its arrow).
MEASURED = ("comp", "size")
_TITLES = {
    "name": "IMAGE",
    "cache": "CACHE",
    "format": "FORMAT",
    "comp": "COMP",
    "size": "SIZE",
    "age": "AGE",
    "findings": "FINDINGS",
}
#: The name column never gets narrower than this while other columns can go: at 80
#: columns the format goes (the cache's kind mostly says it) so a name keeps its
#: repository's start and its tag.
NAME_MIN = 28
#: Below this width a cut name does not spend two cells on "…/".
_ELIDED_MIN = 10
#: The glyph in the first cell of a marked row (mc's mark: plain ASCII, one cell anywhere).
MARK = "*"
#: The findings column grows with the widest badges, up to this.
FINDINGS_MAX = 24
#: Narrow terminals shrink the findings column to this before anything goes
#: (one badge, or "+N" for more).
FINDINGS_MIN = 8
#: ... and the cache column to this, last: it never goes while several caches show.
CACHE_MIN = 8
_BADGES = {code: Style.parse(style) for code, style in FINDING_STYLES.items()}


def fit(text: str, width: int) -> str:
    """`text` in exactly `width` cells, cut in the middle so a long tag stays visible."""
    size = len(text) if text.isascii() else cell_len(text)
    if size <= width:
        return text + " " * (width - size)
    if width <= 1:
        return "…"[:width]
    if not text.isascii():
        return set_cell_size(text[: width - 1], width - 1) + "…"
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[len(text) - tail :]


def elide_name(text: str, width: int) -> str:
    """`text` in at most `width` cells: leading path components go first, then the middle.

    "determinedai/environments:cuda-11.3-gpu-096d730" becomes
    "…/environments:cuda-11.3-gpu-096d730", then "…/environme…gpu-096d730": the
    repository's own name and the tag outlast the registry and organisation.
    """
    if (len(text) if text.isascii() else cell_len(text)) <= width:
        return text
    parts = text.split("/")
    for start in range(1, len(parts)):
        rest = "…/" + "/".join(parts[start:])
        if cell_len(rest) <= width:
            return rest
    if len(parts) == 1 or width < _ELIDED_MIN:
        return fit(parts[-1] if len(parts) > 1 else text, width)
    # Even the last component is too long: keep its start (the repository) and its
    # end (the tag), marked as having lost its path.
    return "…/" + fit(parts[-1], width - 2)


def measured_width(key: str, widest: int) -> int:
    """The width of a MEASURED column whose widest cell is `widest` cells."""
    title = len(_TITLES[key]) + 2  # room for the sort arrow
    return min(max(widest, title), _WIDTHS[key])


def badges_width(codes: Iterable[str]) -> int:
    """Cells the findings badges of one row take."""
    words = [FINDING_SHORT[c] for c in codes]
    return sum(len(w) for w in words) + max(len(words) - 1, 0)


def widen(
    rows: Iterable[Row], findings_width: int, measured: Mapping[str, int]
) -> tuple[int, dict[str, int]]:
    """The findings width and MEASURED widths for these rows: never narrower than before.

    Never narrowing keeps the columns from jumping while files come and go; the
    name column has whatever the others leave.
    """
    widest = comp = size = 0
    for r in rows:
        widest = max(widest, badges_width(r.codes))
        comp = max(comp, len(r.comp))
        size = max(size, len(r.size_text))
    width = min(max(widest, findings_width), FINDINGS_MAX)
    return width, {"comp": max(comp, measured["comp"]), "size": max(size, measured["size"])}


def layout(
    width: int,
    findings_width: int,
    cache_width: int,
    measured: Mapping[str, int] | None = None,
) -> list[Column]:
    """The columns for a table `width` cells wide (`cache_width` 0: no CACHE column).

    `measured` gives the widest cell of the MEASURED columns; without it they take
    their widest width.
    """
    widths = dict(_WIDTHS)
    for key, widest in (measured or {}).items():
        widths[key] = measured_width(key, widest)
    wanted: list[Column] = [
        Column("format", _TITLES["format"], widths["format"]),
        Column("comp", _TITLES["comp"], widths["comp"]),
        Column("size", _TITLES["size"], widths["size"], right=True),
        Column("age", _TITLES["age"], _WIDTHS["age"], right=True),
        Column("findings", _TITLES["findings"], findings_width),
    ]
    if cache_width:
        wanted.insert(0, Column("cache", _TITLES["cache"], min(max(cache_width, 5), 14)))

    def room(columns: list[Column]) -> int:
        return width - 1 - sum(c.width + 1 for c in columns)

    # Narrow terminals give up what tells least first: room in the findings column
    # (its badges end "+N"), then the format and the age, then room in the cache
    # column. The cache column itself stays: without it rows of different caches
    # look alike.
    for key, least in (("findings", FINDINGS_MIN), ("format", 0), ("age", 0), ("cache", CACHE_MIN)):
        short = NAME_MIN - room(wanted)
        if short <= 0:
            break
        if least:
            wanted = [
                replace(c, width=max(least, c.width - short)) if c.key == key else c for c in wanted
            ]
        else:
            wanted = [c for c in wanted if c.key != key]
    return [Column("name", _TITLES["name"], max(room(wanted), 8)), *wanted]


def column_at(columns: list[Column], x: int) -> str | None:
    """The key of the column under cell `x` of a line (for clicks on the header)."""
    left = 1
    for column in columns:
        if left <= x < left + column.width + 1:
            return column.key
        left += column.width + 1
    return None


def header_strip(
    columns: list[Column], sort: str, descending: bool, width: int, style: Style
) -> Strip:
    """The header line, with an arrow on the sort column."""
    segments = [Segment(" ", style)]
    arrow = "▼" if descending else "▲"
    for column in columns:
        title = column.title
        if column.key == sort:
            title = f"{title} {arrow}" if not column.right else f"{arrow} {title}"
        text = fit(title, column.width)
        if column.right:
            text = text.strip().rjust(column.width)
        segments.append(Segment(text + " ", style))
    return Strip(segments).adjust_cell_length(width, style)


def row_strip(
    row: Row,
    columns: list[Column],
    width: int,
    age: str,
    base: Style,
    dim: Style,
    mark: Style | None = None,
) -> Strip:
    """One image's line; `base` and `dim` already carry the cursor's colours if any.

    With `mark` (the marked rows' style) the first cell shows MARK in it: the
    glyph keeps a marked row readable without colour and under the cursor.
    """
    segments = [Segment(MARK, mark) if mark is not None else Segment(" ", base)]
    image = row.image
    for column in columns:
        key = column.key
        if key == "findings":
            segments.extend(badge_segments(row.codes, column.width, base))
            continue
        if key == "name":
            style = base if image.ref is not None else base + Style(italic=True)
            name = fit(elide_name(row.name, column.width), column.width)
            segments.append(Segment(name + " ", style))
            continue
        if key == "size":
            text = row.size_text.rjust(column.width)
        elif key == "age":
            text = age.rjust(column.width)
        else:
            text = fit(getattr(row, "fmt" if key == "format" else key), column.width)
        segments.append(Segment(text + " ", dim if key in ("cache", "format") else base))
    return Strip(segments).adjust_cell_length(width, base)


def badge_segments(codes: tuple[str, ...], width: int, base: Style) -> list[Segment]:
    """Coloured finding badges in `width` cells, ending "+N" when not all fit."""
    words = [(FINDING_SHORT[code], _BADGES[code]) for code in codes]
    shown, used = len(words), badges_width(codes)
    if used > width:
        # Show what fits and say how many more there are: "raw lzo +2".
        shown = used = 0
        while shown < len(words):
            need = used + (1 if shown else 0) + len(words[shown][0])
            more = len(words) - shown - 1
            if need + (len(f" +{more}") if more else 0) > width:
                break
            shown, used = shown + 1, need
    segments: list[Segment] = []
    for word, style in words[:shown]:
        if segments:
            segments.append(Segment(" ", base))
        segments.append(Segment(word, style))
    if shown < len(words):
        more = f"{' ' if shown else ''}+{len(words) - shown}"
        segments.append(Segment(more, base))
        used += len(more)
    segments.append(Segment(" " * max(width - used, 0) + " ", base))
    return segments
