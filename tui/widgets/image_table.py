"""The image table: a virtual table drawn line by line, fast at 10,000 rows.

Only the lines on screen are ever rendered (Textual's line API), the rows live
in a `RowModel`, and a changed file repaints one line. The header is line 0 of
the widget and never scrolls; row `i` of the view is drawn at `i - scroll_y + 1`.

Space marks rows (like mc, ranger or k9s) for the actions that take several
images. Marks are a set of paths beside the model, not part of it: marking
repaints one line and the border title, never the view; marks survive sorting,
filtering and rescans, and a mark on a file that is gone is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from imgcache.backends.inventory.model import Image
from imgcache.tui.format import short_age
from imgcache.tui.widgets.columns import (
    Column,
    column_at,
    fit,
    header_strip,
    layout,
    row_strip,
    widen,
)
from imgcache.tui.widgets.marks import Marks, table_title
from imgcache.tui.widgets.rows import SORT_COLUMNS, Patch, Plan, Row, RowModel, Scope, plan
from imgcache.tui.widgets.table_cursor import CursorKeys

#: The actions that mark rows (hidden and refused while marking is off: read-only).
MARK_ACTIONS = frozenset({"toggle_mark", "mark_all", "clear_marks"})


class ImageTable(CursorKeys, ScrollView, can_focus=True):
    """Every image in the caches, sortable and filterable, one line each."""

    COMPONENT_CLASSES = {
        "image-table--header",
        "image-table--cursor",
        "image-table--cursor-blurred",
        "image-table--dim",
        "image-table--placeholder",
        "image-table--marked",
    }

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="cursor_up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="cursor_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="page_down"),
        Binding("ctrl+u", "half_page(-1)", "Half page up", show=False, id="half_page_up"),
        Binding("ctrl+d", "half_page(1)", "Half page down", show=False, id="half_page_down"),
        Binding("home,g", "cursor_top", "First image", show=False, id="cursor_top"),
        Binding("end,G", "cursor_bottom", "Last image", show=False, id="cursor_bottom"),
        Binding("enter", "select", "Details", id="details"),
        # Marks only feed actions that write: gone in read-only mode (`marking`).
        Binding("space", "toggle_mark", "Mark or unmark, then down", show=False, id="toggle_mark"),
        Binding("asterisk", "mark_all", "Mark all shown (or unmark)", show=False, id="mark_all"),
        Binding("u", "clear_marks", "Clear every mark", show=False, id="clear_marks"),
    ]

    @dataclass
    class Highlighted(Message):
        """The cursor is on another image (or on none)."""

        table: ImageTable
        image: Image | None

        @property
        def control(self) -> ImageTable:
            """The table that sent it."""
            return self.table

        def can_replace(self, message: Message) -> bool:
            """Holding `j` sends many; only the last one matters."""
            return isinstance(message, ImageTable.Highlighted)

    @dataclass
    class Selected(Message):
        """Enter or a double click on an image."""

        table: ImageTable
        image: Image

        @property
        def control(self) -> ImageTable:
            """The table that sent it."""
            return self.table

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.clock = clock
        self.model = RowModel()
        self.cursor = 0
        self.placeholder = "scanning the caches…"
        self.border_title = "Images"
        self._columns: list[Column] = []
        self._layout_key: tuple = ()
        self._findings_width = 8
        self._measured: dict[str, int] = {"comp": 0, "size": 0}
        self._posted: Image | None = None
        self._strips: LRUCache[tuple, tuple[Row, Strip, tuple]] = LRUCache(1024)
        self.marking = True
        """False in read-only mode: nothing would act on marks."""
        self.marks = Marks()
        """The marked images (shown or filtered out)."""

    # -- data -------------------------------------------------------------------

    @property
    def highlighted(self) -> Image | None:
        """The image under the cursor."""
        if 0 <= self.cursor < len(self.model):
            return self.model.row(self.cursor).image
        return None

    def set_names(self, names: Mapping[str, str]) -> None:
        """The short name of each cache root, for the CACHE column."""
        self.model.names = dict(names)
        self._layout_key = ()

    def update(self, images: Iterable[Image] | Plan) -> Patch:
        """Take a scan's images (or a plan worked out in a worker); repaint what changed."""
        path = self._cursor_path()
        offset = self.cursor - int(self.scroll_y)
        first = not self.model.rows
        if isinstance(images, Plan):
            change = images
        else:
            change = plan(images, self.model.rows, self.model.names)
        patch = self.model.apply(change)
        self._measure(self.model.rows.values() if first else change.fresh)
        if self.marks:
            # Marks on files that are gone go with them; the title's sum follows sizes.
            self.marks.prune(self.model.rows)
            self._retitle()
        if first:
            self._after_change(None, rebuilt=True)
        elif patch.rebuilt:
            self._after_change(path, rebuilt=True, offset=offset)
        else:
            for changed in patch.rows:
                position = self.model.position(changed)
                if position is not None:
                    self.refresh_line(position + 1)
            self._post_highlight()
        return patch

    def set_sort(self, column: str, reverse: bool = False) -> None:
        """Sort by one of SORT_COLUMNS; the cursor stays on its image."""
        path = self._cursor_path()
        self.model.set_sort(column, reverse)
        self._after_change(path, rebuilt=True)

    def cycle_sort(self) -> None:
        """Sort by the next column, in its natural order."""
        index = SORT_COLUMNS.index(self.model.sort)
        self.set_sort(SORT_COLUMNS[(index + 1) % len(SORT_COLUMNS)])

    def reverse_sort(self) -> None:
        """Flip the order of the current sort."""
        self.set_sort(self.model.sort, not self.model.reverse)

    def set_filters(
        self,
        *,
        text: str | None = None,
        finding: str | None = None,
        scope: Scope | bool | None = False,
    ) -> None:
        """Change filters; the cursor stays on its image when it still shows."""
        path = self._cursor_path()
        self.model.set_filters(text=text, finding=finding, scope=scope)
        self._after_change(path, rebuilt=True)

    def select_path(self, path: str) -> bool:
        """Put the cursor on a file's row; False when it is not shown."""
        position = self.model.position(path)
        if position is None:
            return False
        self.move_cursor(position)
        return True

    def _cursor_path(self) -> str | None:
        image = self.highlighted
        return image.path if image else None

    def _measure(self, rows: Iterable[Row]) -> None:
        width, measured = widen(rows, self._findings_width, self._measured)
        if width != self._findings_width or measured != self._measured:
            self._findings_width = width
            self._measured = measured
            self._layout_key = ()

    def _after_change(self, path: str | None, *, rebuilt: bool, offset: int | None = None) -> None:
        """Keep the cursor on its image (and at the same height on screen) after a change."""
        count = len(self.model)
        position = self.model.position(path) if path else None
        if position is None:
            position = min(self.cursor, max(count - 1, 0))
        self.virtual_size = Size(self._width(), count + 1)
        if offset is not None:
            # A refresh should not make the list jump under the reader's eyes.
            self.scroll_to(y=max(position - offset, 0), animate=False, force=True)
        self.cursor = position
        self._scroll_to_cursor()
        if rebuilt:
            self.refresh()
        self._post_highlight()
        self._retitle()

    def _retitle(self) -> None:
        self.border_title = table_title(self.model, self.marks)

    def _post_highlight(self) -> None:
        image = self.highlighted
        if image is not self._posted:
            self._posted = image
            self.post_message(self.Highlighted(self, image))

    # -- marks ------------------------------------------------------------------

    def targets(self) -> list[Image]:
        """What an action applies to: the marked images, else the one under the cursor."""
        if self.marks:
            return self.marks.ordered(self.model)
        image = self.highlighted
        return [image] if image is not None else []

    def set_marks(self, paths: Iterable[str]) -> None:
        """Mark exactly these files (those not in the table are ignored)."""
        self.marks.replace(paths, self.model.rows)
        self._marks_changed()

    def _marks_changed(self) -> None:
        # Only the lines on screen are drawn again; the view stays as it is.
        self.refresh()
        self._retitle()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The mark keys exist only while marking is on."""
        return self.marking or action not in MARK_ACTIONS

    def action_toggle_mark(self) -> None:
        """Mark or unmark the image under the cursor, then move down (as mc does)."""
        image = self.highlighted
        if image is not None and self.marking:
            self.marks.toggle(image.path)
            self.refresh_line(self.cursor + 1)
            self._retitle()
            self.move_cursor(self.cursor + 1)

    def action_mark_all(self) -> None:
        """Mark every image the filters show; when all are marked already, unmark them."""
        if self.marking:
            self.marks.flip_all(row.image.path for row in self.model.visible())
            self._marks_changed()

    def action_clear_marks(self) -> None:
        """Unmark everything, shown or not."""
        if self.marks.clear():
            self._marks_changed()

    # -- cursor (moving it: `CursorKeys`) ---------------------------------------

    def action_select(self) -> None:
        """Open the details of the image under the cursor."""
        image = self.highlighted
        if image is not None:
            self.post_message(self.Selected(self, image))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = column_at(self._layout(), offset.x)
            if column is not None:
                same = column == self.model.sort
                self.set_sort(column, not self.model.reverse if same else False)
            return
        position = int(self.scroll_y) + offset.y - 1
        if position < len(self.model):
            self.move_cursor(position)
            if event.chain >= 2:
                self.action_select()

    # -- drawing ----------------------------------------------------------------

    def _width(self) -> int:
        return max(self.scrollable_content_region.width, 1)

    def on_resize(self, event: events.Resize) -> None:
        """Lay the columns out again for the new width."""
        self.virtual_size = Size(self._width(), len(self.model) + 1)
        self._scroll_to_cursor()

    def _layout(self) -> list[Column]:
        width = self._width()
        caches = len(self.model.names)
        scoped = self.model.scope is not None
        measured = self._measured
        key = (width, caches, scoped, self._findings_width, measured["comp"], measured["size"])
        if key != self._layout_key:
            cache_width = max((len(n) for n in self.model.names.values()), default=5)
            show_cache = caches > 1 and not scoped
            self._columns = layout(
                width, self._findings_width, cache_width if show_cache else 0, measured
            )
            self._layout_key = key
        return self._columns

    def render_line(self, y: int) -> Strip:
        """Draw the header (y == 0) or the row shown at line `y`."""
        width = self._width()
        self._layout()  # brings _layout_key up to date before the cache is consulted
        if y == 0:
            return self._header(width)
        position = int(self.scroll_y) + y - 1
        if position >= len(self.model):
            if position == 0:
                style = self.get_component_rich_style("image-table--placeholder")
                text = self._empty_text()
                return Strip([Segment(fit(f" {text}", width), style)], width)
            return Strip.blank(width, self.rich_style)
        row = self.model.row(position)
        is_cursor = position == self.cursor
        marked = row.image.path in self.marks
        age = short_age(self.clock() - row.image.stat.mtime)
        focus = is_cursor and self.has_focus
        key = (id(row), is_cursor, focus, marked, width, age, self.app.theme)
        cached = self._strips.get(key)
        # The row itself is kept with its strip: an id can be reused by a new row.
        if cached is not None and cached[0] is row and cached[2] == self._layout_key:
            return cached[1]
        strip = self._row(row, width, is_cursor, age, marked)
        self._strips[key] = (row, strip, self._layout_key)
        return strip

    def _empty_text(self) -> str:
        if self.model.rows:
            return "no image matches the filters (esc clears them)"
        return self.placeholder

    def _header(self, width: int) -> Strip:
        style = self.get_component_rich_style("image-table--header")
        return header_strip(self._layout(), self.model.sort, self.model.descending, width, style)

    def _row(self, row: Row, width: int, is_cursor: bool, age: str, marked: bool) -> Strip:
        base = self.rich_style
        dim = self.get_component_rich_style("image-table--dim")
        mark = None
        if marked:
            mark = self.get_component_rich_style("image-table--marked")
            base = base + mark
            dim = dim + mark
        if is_cursor:
            name = "image-table--cursor" if self.has_focus else "image-table--cursor-blurred"
            cursor = self.get_component_rich_style(name)
            base = base + cursor
            dim = dim + cursor
        # The glyph keeps the mark's colour on the cursor's background.
        glyph = base + mark if mark is not None else None
        return row_strip(row, self._layout(), width, age, base, dim, glyph)
