"""The `/` text filter: an input over the table that narrows it as you type.

Every word must appear in the image's name, path, cache, format, compression,
findings or owner. Enter (or down) goes back to the table keeping the filter;
Esc clears it and hides the bar.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """The text filter input; hidden until `/` opens it."""

    BINDINGS = [
        Binding("escape", "clear", "Clear filter", id="filter_clear"),
        Binding("down", "done", "Back to the table", show=False, id="filter_done"),
    ]

    @dataclass
    class TextChanged(Message):
        """The filter text changed (every keystroke)."""

        bar: FilterBar
        text: str

        @property
        def control(self) -> FilterBar:
            """The bar that sent it."""
            return self.bar

        def can_replace(self, message: Message) -> bool:
            """Fast typing filters once, with the latest text."""
            return isinstance(message, FilterBar.TextChanged)

    @dataclass
    class Done(Message):
        """Leave the bar; `cleared` when Esc emptied it."""

        bar: FilterBar
        cleared: bool

        @property
        def control(self) -> FilterBar:
            """The bar that sent it."""
            return self.bar

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="filter: words in name, path, cache, format, findings, owner",
            id=id,
        )

    def _on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.TextChanged(self, event.value))

    async def action_submit(self) -> None:
        """Enter: keep the filter and go back to the table."""
        self.action_done()

    def action_done(self) -> None:
        """Keep the filter and go back to the table."""
        self._leave()
        self.post_message(self.Done(self, cleared=False))

    def action_clear(self) -> None:
        """Empty the filter and hide the bar."""
        self.value = ""
        self._leave()
        self.post_message(self.TextChanged(self, ""))
        self.post_message(self.Done(self, cleared=True))

    def _leave(self) -> None:
        # Move focus now, not when the Done message is handled: keys typed right
        # after Enter (one SSH packet can carry "/foo\rj") must reach the table
        # below this bar, the next pane in the focus chain, not the input.
        self.screen.focus_next()
