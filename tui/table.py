"""Fixed-width text tables for the command line (`imgcache list`, `defaults`, profiles).

Rich's `Table` measures every cell several times and, when a column is too narrow,
folds a cell at any character: a reference came out as `determinedai/enviro` over
`nments`, which cannot be pasted, and 20,000 rows took seconds to lay out. Here a
table is measured in one pass over its cells and written as fixed-width lines:

- Without a width (stdout is not a terminal) nothing is folded or cut: each line is
  as long as its cells, without trailing blanks.
- On a terminal, a line marked `REF` (a reference or a path) is whole in its column
  or, when the column is too narrow for it, printed whole on a line of its own just
  above (or below) its row, where it can still be copied in one piece. Only one
  longer than the whole terminal is folded, and only after a `/`, never inside a
  name. `WORDS` and `SPANS` lines wrap at spaces; `FIXED` lines are never folded.

Colour comes from rich's `Style`, rendered once per style (`Painter`), not per cell.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console
from rich.style import Style

#: How a line of a cell may be broken when its column is narrower than the line.
FIXED, REF, WORDS, SPANS = "fixed", "ref", "words", "spans"
#: Blanks between two columns.
GAP = 2
#: Beyond this many width combinations the REF columns share the room in proportion.
_MAX_COMBINATIONS = 20_000
_PATH_PIECES = re.compile(r"[^/]*/|[^/]+")

Span = tuple[str, str]  # text, and its rich style ("" for none)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a cell: styled spans, and how it may be broken (None: as its column)."""

    spans: tuple[Span, ...]
    fold: str | None = None


Cell = str | tuple[Line, ...]  # a line of text in the column's style, or lines of spans


def line(text: str, style: str = "", fold: str | None = None) -> Line:
    """A line of one span."""
    return Line(((text, style),), fold)


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its title, how its lines fold, alignment, style, where a spilled REF goes."""

    title: str
    fold: str = FIXED
    right: bool = False
    style: str = ""
    spill_above: bool = True


def width_of(text: str) -> int:
    """Terminal cells `text` takes (ASCII is one cell a character: the common case, fast)."""
    return len(text) if text.isascii() else cell_len(text)


def fold_path(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells, cut only after a `/` (a longer name stays
    whole on its line)."""
    out: list[str] = []
    current, used = "", 0
    for piece in _PATH_PIECES.findall(text) or [text]:
        w = width_of(piece)
        if current and used + w > width:
            out.append(current)
            current, used = "", 0
        current += piece
        used += w
    out.append(current)
    return out


class Painter:
    """ANSI colour for styles, each rendered by rich once; plain text without colour."""

    def __init__(self, console: Console | None = None) -> None:
        colour = console is not None and console.is_terminal and console.color_system
        self.system = COLOR_SYSTEMS.get(console.color_system or "") if colour else None
        self.no_color = bool(colour) and console.no_color
        self._codes: dict[str, tuple[str, str]] = {}

    def __call__(self, text: str, style: str) -> str:
        """`text` in `style`."""
        if not style or self.system is None or not text:
            return text
        codes = self._codes.get(style)
        if codes is None:
            parsed = Style.parse(style)
            if self.no_color:
                parsed = parsed.without_color
            # Rendered around a marker once; every cell in this style reuses the codes.
            before, _, after = parsed.render("\0", color_system=self.system).partition("\0")
            codes = self._codes[style] = (before, after)
        return f"{codes[0]}{text}{codes[1]}"


def _line_width(ln: Line, fold: str) -> int:
    """Cells a line takes; the spans of a SPANS line are set one blank apart."""
    blanks = len(ln.spans) - 1 if fold == SPANS else 0
    return sum(width_of(text) for text, _ in ln.spans) + blanks


def _units(ln: Line, fold: str) -> list[Span]:
    """What a WORDS or SPANS line may be broken between: its words, or its spans."""
    if fold == SPANS:
        return list(ln.spans)
    return [(word, style) for text, style in ln.spans for word in text.split()]


def _wrap(units: Sequence[Span], width: int) -> list[list[Span]]:
    """Greedy wrap of units joined by one blank; a unit wider than `width` stays whole."""
    rows: list[list[Span]] = [[]]
    used = 0
    for unit in units:
        w = width_of(unit[0])
        if rows[-1] and used + 1 + w > width:
            rows.append([])
            used = 0
        used += w + (1 if rows[-1] else 0)
        rows[-1].append(unit)
    return rows


def _measure_cell(cell: Cell, column: Column) -> tuple[int, int, tuple[int, ...]]:
    """(widest line, narrowest it can fold to, widths of its REF lines) of one cell."""
    lines = (Line(((cell, column.style),)),) if isinstance(cell, str) else cell
    natural = least = 0
    refs = []
    for ln in lines:
        fold = ln.fold or column.fold
        w = _line_width(ln, fold)
        natural = max(natural, w)
        if fold == REF:
            refs.append(w)
        elif fold in (WORDS, SPANS):
            least = max(least, *(width_of(u[0]) for u in _units(ln, fold)), 0)
        else:
            least = max(least, w)
    return natural, least, tuple(refs)


@dataclass(slots=True)
class _Measure:
    """A column's widest line, the least it folds to, and its REF lines' widths (sorted)."""

    natural: int
    least: int
    refs: list[int]


class Table:
    """Rows of cells under titled columns, rendered by `lines`."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.rows: list[Sequence[Cell]] = []
        """One sequence of cells per row; append to it directly, or use `add_row`."""
        self._measured: tuple[int, list[_Measure]] = (-1, [])

    def add_row(self, *cells: Cell) -> None:
        """Add one row (one cell per column)."""
        self.rows.append(cells)

    # --- layout ---------------------------------------------------------------------

    def natural_width(self) -> int:
        """The width of the table with nothing folded."""
        return sum(m.natural for m in self._measure()) + GAP * (len(self.columns) - 1)

    def _measure(self) -> list[_Measure]:
        # Rows are only ever added, so their count tells whether the measures still hold.
        if self._measured[0] == len(self.rows):
            return self._measured[1]
        measures = []
        for i, column in enumerate(self.columns):
            natural = least = width_of(column.title)
            refs: list[int] = []
            is_ref = column.fold == REF
            # Cells shared between rows (the same findings, the same name) are measured once.
            seen: dict[object, tuple[int, int, tuple[int, ...]]] = {}
            for row in self.rows:
                cell = row[i]
                if isinstance(cell, str) and (is_ref or column.fold == FIXED):
                    w = width_of(cell)
                    if w > natural:
                        natural = w
                    if is_ref:
                        refs.append(w)
                    continue
                key = cell if isinstance(cell, str) else id(cell)
                known = seen.get(key)
                if known is None:
                    known = seen[key] = _measure_cell(cell, column)
                natural = max(natural, known[0])
                least = max(least, known[1])
                refs += known[2]
            if column.fold == FIXED:
                least = natural
            refs.sort()
            measures.append(_Measure(natural, least, refs))
        self._measured = (len(self.rows), measures)
        return measures

    def widths(self, width: int | None) -> list[int]:
        """Each column's width for a terminal `width` wide (None: as wide as the cells)."""
        measures = self._measure()
        natural = [m.natural for m in measures]
        gaps = GAP * (len(natural) - 1)
        if width is None or sum(natural) + gaps <= width:
            return natural
        widths = [m.least for m in measures]
        room = width - gaps - sum(widths)
        ref_cols = [i for i, m in enumerate(measures) if m.refs and m.natural > m.least]
        if room > 0 and ref_cols:
            extra = _share_refs([measures[i] for i in ref_cols], room)
            for i, add in zip(ref_cols, extra, strict=True):
                widths[i] += add
                room -= add
        for i, m in enumerate(measures):
            # What is left widens the wrapping columns (fewer lines per row), up to need.
            if room <= 0:
                break
            if i not in ref_cols and m.natural > widths[i]:
                add = min(room, m.natural - widths[i])
                widths[i] += add
                room -= add
        return widths

    # --- rendering ------------------------------------------------------------------

    def lines(self, width: int | None, paint: Painter, *, rule: bool = False) -> Iterator[str]:
        """The table as text lines without trailing blanks: titles, an optional rule, rows."""
        widths = self.widths(width)
        columns = self.columns
        indents = list(itertools.accumulate((w + GAP for w in widths[:-1]), initial=0))
        if width is not None:
            # Every spilled line of a column starts at the same place: under the column
            # when the longest one fits there, else as far right as it does.
            for i, m in enumerate(self._measure()):
                fitting = [w for w in m.refs if widths[i] < w <= width]
                if fitting:
                    indents[i] = max(0, min(indents[i], width - fitting[-1]))
        head = []
        for column, w in zip(columns, widths, strict=True):
            title = paint(column.title, "bold")
            pad = " " * (w - width_of(column.title))
            head.append(pad + title if column.right else title + pad)
        yield (" " * GAP).join(head).rstrip()
        if rule:
            total = min(sum(widths) + GAP * (len(widths) - 1), width or 1 << 30)
            yield paint("─" * total, "dim")
        rendered: dict[int, tuple[str, int] | None] = {}
        folded: dict[int, list[str]] = {}
        for row in self.rows:
            yield from self._row(row, widths, indents, width, paint, rendered, folded)

    def _row(
        self,
        row: Sequence[Cell],
        widths: Sequence[int],
        indents: Sequence[int],
        width: int | None,
        paint: Painter,
        rendered: dict[int, tuple[str, int] | None],
        folded: dict[int, list[str]],
    ) -> Iterator[str]:
        columns = self.columns
        # The common case: one line per cell, each fitting its column. A cell of lines
        # shared between rows (the same findings) is painted once (`rendered`), and
        # wrapped once (`folded`) when it does not fit.
        parts = []
        for column, cell, w in zip(columns, row, widths, strict=True):
            if isinstance(cell, str):
                n = width_of(cell)
                text = paint(cell, column.style) if column.style else cell
            else:
                key = id(cell)
                if key not in rendered:
                    rendered[key] = _one_line(cell, column, paint)
                done = rendered[key]
                if done is None:
                    break
                text, n = done
            if n > w and column.fold != FIXED:
                break
            parts.append(" " * (w - n) + text if column.right else text + " " * (w - n))
        else:
            yield (" " * GAP).join(parts).rstrip()
            return
        above: list[str] = []
        below: list[str] = []
        blocks: list[list[str]] = []
        for i, (column, cell, w) in enumerate(zip(columns, row, widths, strict=True)):
            shared = not isinstance(cell, str) and column.fold != REF
            if shared and id(cell) in folded:
                blocks.append(folded[id(cell)])
                continue
            lines = (Line(((cell, column.style),)),) if isinstance(cell, str) else cell
            block: list[str] = []
            for ln in lines:
                fold = ln.fold or column.fold
                n = _line_width(ln, fold)
                if n <= w or fold == FIXED or width is None:
                    sep = " " if fold == SPANS else ""
                    block.append(_fit(ln.spans, n, w, column.right, paint, sep))
                elif fold == REF:
                    spill = above if column.spill_above else below
                    spill += _spilled(ln, n, indents[i], width, paint)
                else:
                    for units in _wrap(_units(ln, fold), w):
                        used = sum(width_of(t) for t, _ in units) + len(units) - 1
                        block.append(_fit(units, used, w, column.right, paint, " "))
            if shared:
                folded[id(cell)] = block
            blocks.append(block)
        height = max(1, *(len(b) for b in blocks))
        yield from above
        for k in range(height):
            cells = [b[k] if k < len(b) else " " * w for b, w in zip(blocks, widths, strict=True)]
            text = (" " * GAP).join(cells).rstrip()
            if text or not (above or below):  # a row that only spilled leaves no blank line
                yield text
        yield from below


def _fit(spans: Sequence[Span], used: int, w: int, right: bool, paint: Painter, sep: str) -> str:
    """Spans painted and padded to `w` cells."""
    text = sep.join(paint(t, s) for t, s in spans)
    pad = " " * max(0, w - used)
    return pad + text if right else text + pad


def _one_line(cell: tuple[Line, ...], column: Column, paint: Painter) -> tuple[str, int] | None:
    """A cell of one line painted, with its width; None for a cell of several lines."""
    if len(cell) != 1:
        return None
    ln = cell[0]
    fold = ln.fold or column.fold
    sep = " " if fold == SPANS else ""
    return sep.join(paint(t, st) for t, st in ln.spans), _line_width(ln, fold)


def _spilled(ln: Line, n: int, indent: int, width: int, paint: Painter) -> list[str]:
    """A REF line too wide for its column, on lines of its own: whole, `indent` blanks in
    when it fits there, further left when not; folded after `/` only past `width`."""
    style = ln.spans[0][1] if len(ln.spans) == 1 else ""
    text = "".join(t for t, _ in ln.spans)
    if n <= width:
        return [" " * min(indent, width - n) + paint(text, style)]
    return [paint(piece, style) for piece in fold_path(text, width)]


def _share_refs(measures: Sequence[_Measure], room: int) -> list[int]:
    """Widths to add to REF columns so that the fewest REF lines spill, within `room`."""
    options = []
    for m in measures:
        # Useful widths: exactly those of some line (anything between spills as much).
        wanted = sorted({w - m.least for w in m.refs if m.least < w <= m.least + room})
        options.append([0, *wanted])
    if math.prod(len(o) for o in options) > _MAX_COMBINATIONS:
        total = sum(m.natural - m.least for m in measures) or 1
        return [min(m.natural - m.least, room * (m.natural - m.least) // total) for m in measures]
    best: tuple[int, int] | None = None
    choice: tuple[int, ...] = tuple(0 for _ in measures)
    for combo in itertools.product(*options):
        used = sum(combo)
        if used > room:
            continue
        spills = sum(
            len(m.refs) - bisect.bisect_right(m.refs, m.least + add)
            for m, add in zip(measures, combo, strict=True)
        )
        key = (spills, used)
        if best is None or key < best:
            best, choice = key, combo
    return list(choice)


def write_lines(out: TextIO, lines: Iterable[str]) -> None:
    """Write `lines` to `out`, each ended by a newline."""
    out.writelines(f"{text}\n" for text in lines)
