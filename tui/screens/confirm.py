"""A yes/no dialog: what is about to happen, then `y` (or Enter) or `n` (or Esc).

Used before work the admin may not have meant to start with one key (pulling every
missing default), before leaving with jobs still running, and before compressing
a signed SIF. Enter starts on the yes button, so the one-key flows stay two keys
(`focus_no` starts on no instead, where a yes must be typed); Esc always says no.
"""

from __future__ import annotations

from rich.console import RenderableType
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmDialog(ModalScreen[bool]):
    """Ask before doing something; dismisses with True for yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm"),
        Binding("n,escape", "answer(False)", "No", id="close"),
    ]

    def __init__(
        self,
        title: str,
        body: RenderableType,
        *,
        yes: str = "Yes",
        no: str = "No",
        focus_no: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.body = body
        self.yes = yes
        self.no = no
        self.focus_no = focus_no

    def compose(self) -> ComposeResult:
        """The question, what it concerns, and two buttons."""
        with Vertical(classes="dialog") as box:
            box.border_title = self.title_text
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.body, id="confirm-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes", compact=True)
                yield Button(f"{self.no} (n)", id="no", compact=True)

    def on_mount(self) -> None:
        """Enter answers yes (no with `focus_no`)."""
        self.query_one("#no" if self.focus_no else "#yes", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Answer with a key."""
        self.dismiss(yes)
