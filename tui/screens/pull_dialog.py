"""The pull dialog (`p`): any image reference, into one of the configured caches.

The reference is checked as it is typed (the parser's reason shows under the
input and the Pull button stays off until it parses). A registry user is
optional; with one, the password is typed into a masked input in the same
dialog and handed to the job as `Credentials`, which never print it: it is not
logged, not shown, and not kept after the job has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioSet, Static

from imgcache.backends.config import CacheSpec
from imgcache.backends.jobs.credentials import Credentials, CredentialsError
from imgcache.tui.widgets.job_fields import CachePicker, RefField


@dataclass(frozen=True)
class PullChoice:
    """What the dialog was filled in with."""

    ref: str
    cache: CacheSpec
    credentials: Credentials | None = None


class PullDialog(ModalScreen[PullChoice | None]):
    """Reference, cache, and optional registry credentials."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="close")]

    def __init__(
        self,
        specs: Sequence[CacheSpec],
        names: Mapping[str, str],
        *,
        cache: str | None = None,
        ref: str = "",
    ) -> None:
        super().__init__()
        self.specs = specs
        self.names = names
        self.initial_cache = cache
        self.initial_ref = ref

    def compose(self) -> ComposeResult:
        """The form."""
        with Vertical(classes="dialog") as box:
            box.border_title = "Pull an image"
            yield RefField(value=self.initial_ref, id="ref")
            yield Label("Into the cache")
            yield CachePicker(self.specs, self.names, selected=self.initial_cache, id="cache")
            with Horizontal(classes="field-row"):
                with Vertical(classes="field"):
                    yield Label("Registry user (optional)")
                    yield Input(placeholder="user", compact=True, id="username")
                with Vertical(classes="field"):
                    yield Label("Password")
                    yield Input(password=True, disabled=True, compact=True, id="password")
            yield Static("", id="pull-problem", classes="field-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Pull", variant="primary", id="pull", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        """Start typing the reference."""
        field = self.query_one(RefField)
        field.set_cache(self.query_one(CachePicker).cache)
        self._refresh_button()
        field.input.focus()

    # -- keeping the form consistent ---------------------------------------------

    def _refresh_button(self) -> None:
        self.query_one("#pull", Button).disabled = self._problem() is not None

    def _problem(self) -> str | None:
        """Why the form cannot be submitted yet, or None."""
        field = self.query_one(RefField)
        if field.reference is None:
            return field.error or "type an image reference"
        if self.query_one(CachePicker).cache is None:
            return "pick a cache"
        user = self.query_one("#username", Input).value.strip()
        if user and not self.query_one("#password", Input).value:
            return "type the password for the registry user"
        return None

    @on(RefField.Changed)
    def _ref_changed(self) -> None:
        self.query_one("#pull-problem", Static).update("")
        self._refresh_button()

    @on(RadioSet.Changed)
    def _cache_changed(self) -> None:
        self.query_one(RefField).set_cache(self.query_one(CachePicker).cache)
        self._refresh_button()

    @on(Input.Changed, "#username")
    def _user_changed(self, event: Input.Changed) -> None:
        password = self.query_one("#password", Input)
        password.disabled = not event.value.strip()
        if password.disabled:
            password.value = ""
        self._refresh_button()

    @on(Input.Changed, "#password")
    def _password_changed(self) -> None:
        self._refresh_button()

    # -- answering ----------------------------------------------------------------

    @on(Input.Submitted)
    @on(CachePicker.Submitted)
    def _submitted(self, event: Input.Submitted | CachePicker.Submitted) -> None:
        # Enter in any field submits; a form not complete says why and goes there.
        event.stop()
        self._submit()

    def _focus_problem(self) -> None:
        """Move to the field the form still needs."""
        if self.query_one(RefField).reference is None:
            self.query_one(RefField).input.focus()
        elif self.query_one(CachePicker).cache is None:
            self.query_one(CachePicker).focus()
        else:
            self.query_one("#password", Input).focus()

    @on(Button.Pressed, "#pull")
    def _pull_pressed(self) -> None:
        self._submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without pulling."""
        self.dismiss(None)

    def _submit(self) -> None:
        problem = self._problem()
        if problem is not None:
            self.query_one("#pull-problem", Static).update(f"✘ {problem}")
            self._focus_problem()
            return
        field = self.query_one(RefField)
        cache = self.query_one(CachePicker).cache
        assert cache is not None
        user = self.query_one("#username", Input).value.strip()
        credentials = None
        if user:
            try:
                credentials = Credentials(user, self.query_one("#password", Input).value)
            except CredentialsError as exc:
                self.query_one("#pull-problem", Static).update(f"✘ {exc}")
                return
        self.dismiss(PullChoice(field.value, cache, credentials))
