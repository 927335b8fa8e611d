"""A confirmation with one on/off option that changes what will happen (purge, force).

The base of the delete and compress dialogs: a title, a body drawn from the
option's current value (so the list and the totals follow the toggle), the
option as a checkbox, and two buttons. The body function also says whether
there is anything to do; when there is not, yes is disabled and `y` does
nothing. Dismisses with the option's value on yes, None on no.

Subclasses declare their own BINDINGS (y, n/esc, and the option's key) so the
help screen lists each dialog's keys under its own heading.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import RenderableType
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Static

from imgcache.tui.widgets.toggles import GlyphCheckbox

#: Draws the body for an option value: (what will happen, whether anything will).
BodyFn = Callable[[bool], tuple[RenderableType, bool]]


class OptionDialog(ModalScreen[bool | None]):
    """Ask before an action; the checkbox's value is the answer to yes."""

    def __init__(
        self,
        title: str,
        body: BodyFn,
        *,
        option: str,
        value: bool = False,
        yes: str = "Yes",
        no: str = "Cancel",
        focus_no: bool = False,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.option_label = option
        self.value = value
        self.yes = yes
        self.no = no
        self.focus_no = focus_no
        self.ready = False
        """True when yes would do something."""

    def compose(self) -> ComposeResult:
        """The body, the option and the buttons."""
        with Vertical(classes="dialog option-dialog") as box:
            box.border_title = self.title_text
            with VerticalScroll(classes="dialog-body"):
                yield Static("", id="option-body")
            yield GlyphCheckbox(self.option_label, self.value, compact=True, id="option")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes", compact=True)
                yield Button(f"{self.no} (n)", id="no", compact=True)

    def on_mount(self) -> None:
        """Draw the body; Enter starts on yes, or on no for what cannot be undone."""
        self._redraw()
        start = "#no" if self.focus_no or not self.ready else "#yes"
        self.query_one(start, Button).focus()

    def _redraw(self) -> None:
        body, self.ready = self.body(self.value)
        self.query_one("#option-body", Static).update(body)
        self.query_one("#yes", Button).disabled = not self.ready

    @on(Checkbox.Changed, "#option")
    def _option_changed(self, event: Checkbox.Changed) -> None:
        self.value = event.value
        self._redraw()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Yes (when there is something to do) or no."""
        if not yes:
            self.dismiss(None)
        elif self.ready:
            self.dismiss(self.value)

    def action_toggle_option(self) -> None:
        """Flip the option (its key, or space on the checkbox)."""
        self.query_one("#option", Checkbox).toggle()
