"""Moving the cursor of a line-API list with the keyboard: one line, a page, the ends.

`ImageTable` draws a header on line 0 and row `i` on line `i - scroll_y + 1`; this
mixin moves its `cursor` over `model` and keeps it on screen, repainting only the
two lines the cursor leaves and enters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.geometry import Region

    from imgcache.tui.widgets.rows import RowModel


class CursorKeys:
    """The cursor actions of the image table (mixed into a `ScrollView`)."""

    if TYPE_CHECKING:  # what the mixin uses of the widget it is mixed into
        cursor: int
        model: RowModel
        scroll_y: float
        scrollable_content_region: Region

        def refresh_line(self, y: int) -> Any: ...
        def scroll_to(self, *args: Any, **kwargs: Any) -> Any: ...
        def _post_highlight(self) -> None: ...

    @property
    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def move_cursor(self, position: int) -> None:
        """Move the cursor to a display position (clamped)."""
        count = len(self.model)
        position = max(0, min(position, count - 1)) if count else 0
        if position != self.cursor:
            self.refresh_line(self.cursor + 1)
            self.cursor = position
            self.refresh_line(position + 1)
        self._scroll_to_cursor()
        self._post_highlight()

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_y)
        rows = self._page
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, force=True)

    def action_cursor_up(self) -> None:
        """Move up one image."""
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        """Move down one image."""
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        """Move up one screen."""
        self.move_cursor(self.cursor - self._page)

    def action_page_down(self) -> None:
        """Move down one screen."""
        self.move_cursor(self.cursor + self._page)

    def action_half_page(self, direction: int) -> None:
        """Move half a screen (vim's ctrl+d / ctrl+u)."""
        self.move_cursor(self.cursor + direction * max(self._page // 2, 1))

    def action_cursor_top(self) -> None:
        """Move to the first image."""
        self.move_cursor(0)

    def action_cursor_bottom(self) -> None:
        """Move to the last image."""
        self.move_cursor(len(self.model) - 1)
