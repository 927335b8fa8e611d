"""The details screen: one image's details over the whole terminal (Enter on a row).

On a small terminal this is the only way to see the details; on a big one it is
the same content as the details pane with room for every descriptor and layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from imgcache.backends.inventory.model import Image
from imgcache.tui.format import display_name
from imgcache.tui.widgets.details import DetailsPane


class DetailsScreen(Screen[None]):
    """Everything imgcache knows about one image."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="close"),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False, id="cursor_up"),
        Binding("down,j", "scroll(1)", "Scroll down", show=False, id="cursor_down"),
        Binding("home,g", "top", "Top", show=False, id="cursor_top"),
        Binding("end,G", "bottom", "Bottom", show=False, id="cursor_bottom"),
    ]

    def __init__(self, image: Image, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.image = image
        self.clock = clock

    def compose(self) -> ComposeResult:
        """The details pane over the whole screen."""
        pane = DetailsPane(clock=self.clock, id="details-full")
        pane.border_title = f"Details · {display_name(self.image)}"
        yield pane
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Fill the pane and let the keys scroll it."""
        pane = self.query_one(DetailsPane)
        pane.show(self.image)
        pane.focus()

    def action_scroll(self, lines: int) -> None:
        """Scroll the details by some lines."""
        pane = self.query_one(DetailsPane)
        pane.scroll_to(y=pane.scroll_y + lines, animate=False)

    def action_top(self) -> None:
        """Scroll to the top."""
        self.query_one(DetailsPane).scroll_home(animate=False)

    def action_bottom(self) -> None:
        """Scroll to the bottom."""
        self.query_one(DetailsPane).scroll_end(animate=False)
