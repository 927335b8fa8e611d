"""Form fields the job dialogs share: an image reference checked as it is typed, a cache picker.

`RefField` parses what is typed with `imgcache.backends.inventory.refs.parse` on every change and
says under the input why it is not a reference (the parser's own words), or
what it means once it is (the full reference and the file it will become in the
chosen cache). `CachePicker` lists the configured caches by the names the table
uses; a dialog may mark some as unable to hold what it is about to write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, RadioButton, RadioSet, Static

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory import caches, refs
from imgcache.tui.widgets.toggles import GlyphRadioButton

#: What an empty reference field suggests.
REF_PLACEHOLDER = "e.g. nvcr.io/nvidia/pytorch:25.09-py3"


def describe_ref(text: str, cache: CacheSpec | None) -> tuple[refs.Reference | None, Text]:
    """(the parsed reference or None, the note to show under the input)."""
    if not text.strip():
        return None, Text("")
    try:
        ref = refs.parse(text.strip())
    except refs.RefError as exc:
        return None, Text(f"✘ {exc}", style="red")
    note = Text(f"→ {ref.normalized()}", style="green")
    if cache is not None:
        try:
            path = caches.target_relpath(cache.kind, ref)
            note.append(f"  as {path}", style="dim")
        except refs.RefError as exc:
            return None, Text(f"✘ {exc}", style="red")
    return ref, note


class RefField(Vertical):
    """A labelled input for an image reference, with its meaning or error under it."""

    @dataclass
    class Changed(Message):
        """The reference changed; `reference` is None while it does not parse."""

        field: RefField
        reference: refs.Reference | None

        @property
        def control(self) -> RefField:
            """The field that sent it."""
            return self.field

    def __init__(
        self, label: str = "Image reference", *, value: str = "", id: str | None = None
    ) -> None:
        super().__init__(id=id, classes="field")
        self.label = label
        self.initial = value
        self.cache: CacheSpec | None = None
        self.reference: refs.Reference | None = None

    def compose(self) -> ComposeResult:
        """Label, input, note."""
        yield Label(self.label)
        yield Input(self.initial, placeholder=REF_PLACEHOLDER, compact=True)
        yield Static("", classes="field-note")

    @property
    def input(self) -> Input:
        """The text input."""
        return self.query_one(Input)

    @property
    def value(self) -> str:
        """What is typed, trimmed."""
        return self.input.value.strip()

    @property
    def error(self) -> str | None:
        """Why the text is not a reference (None when it is, or is empty)."""
        _, note = describe_ref(self.input.value, self.cache)
        return note.plain[2:] if note.plain.startswith("✘") else None

    def set_cache(self, cache: CacheSpec | None) -> None:
        """The cache the image goes into (the note names the file it becomes)."""
        self.cache = cache
        self.check()

    def check(self) -> refs.Reference | None:
        """Parse the input again and update the note; returns the reference or None."""
        self.reference, note = describe_ref(self.input.value, self.cache)
        self.query_one(".field-note", Static).update(note)
        self.input.set_class(self.reference is None and bool(self.value), "-invalid")
        return self.reference

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self, self.check()))


class CachePicker(RadioSet):
    """One radio button per configured cache, by the name the table shows.

    Enter chooses the highlighted cache and submits the dialog, as Enter does in
    every other field of it; space only chooses.
    """

    BINDINGS = [Binding("enter", "submit", "Choose and submit", show=False, id="cache_submit")]

    @dataclass
    class Submitted(Message):
        """Enter on the picker: the dialog should submit."""

        picker: CachePicker

    def __init__(
        self,
        specs: Sequence[CacheSpec],
        names: Mapping[str, str],
        *,
        selected: str | None = None,
        id: str | None = None,
    ) -> None:
        self.specs = list(specs)
        chosen = selected if selected in {s.path for s in specs} else specs[0].path
        buttons = [
            GlyphRadioButton(f"{names.get(s.path, s.path)}  {s.label}", value=s.path == chosen)
            for s in specs
        ]
        super().__init__(*buttons, compact=True, id=id)

    def on_mount(self) -> None:
        """Highlight the chosen cache, not the first: Enter must not change the choice."""
        # RadioSet highlights its first button on mount and has no public setter.
        self._selected = max(self.pressed_index, 0)

    def action_submit(self) -> None:
        """Choose the highlighted cache, then ask the dialog to submit."""
        self.action_toggle_button()
        # The set learns which button is pressed from the button's message: ask
        # for the submit once that has been handled.
        self.call_after_refresh(self.post_message, self.Submitted(self))

    @property
    def cache(self) -> CacheSpec | None:
        """The chosen cache."""
        index = self.pressed_index
        return self.specs[index] if 0 <= index < len(self.specs) else None

    def choose(self, path: str) -> None:
        """Select the cache at `path`."""
        for spec, button in zip(self.specs, self.query(RadioButton), strict=True):
            if spec.path == path:
                button.value = True
