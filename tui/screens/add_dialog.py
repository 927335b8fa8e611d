"""The add dialog (`a`): a local image file into a cache, under a reference.

What `manage-singularity-cache -i FILE REF` does, with the checks up front: the
file is probed as it is typed (in a worker: a file on a slow filesystem must not
freeze the screen) and the dialog says what it is, or why it cannot be added;
only the caches that hold that format can be chosen. An archive that names its
image fills in the reference. The job probes the file again before it copies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, RadioSet, Static

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory import naming, probe, refs
from imgcache.backends.inventory.caches import NATIVE_FORMATS
from imgcache.backends.inventory.model import Format
from imgcache.tui.format import human_size
from imgcache.tui.widgets.job_fields import CachePicker, RefField

#: Seconds the path must rest before it is probed (no probe per keystroke).
PROBE_DELAY = 0.25


@dataclass(frozen=True)
class FileCheck:
    """What a path turned out to be."""

    path: str
    """As typed."""
    source: str
    """Absolute, with ~ expanded."""
    format: Format | None = None
    summary: str = ""
    error: str | None = None
    suggested_ref: str = ""


def check_file(path: str) -> FileCheck:
    """Probe `path` as an image to add (reads headers only; call it off the UI thread)."""
    source = os.path.abspath(os.path.expanduser(path.strip()))
    if not path.strip():
        return FileCheck(path, source, error="")
    if not os.path.exists(source):
        return FileCheck(path, source, error="no such file")
    if not os.path.isfile(source):
        return FileCheck(path, source, error="not a regular file")
    if not os.access(source, os.R_OK):
        return FileCheck(path, source, error="not readable by you")
    result = probe.probe_path(source)
    if result.format is Format.UNKNOWN:
        what = result.note or "not a SIF, squashfs or container archive"
        return FileCheck(path, source, result.format, error=what)
    if result.corrupt:
        return FileCheck(
            path, source, result.format, error=f"a broken {result.format}: {result.error}"
        )
    if result.not_image is not None:
        return FileCheck(path, source, result.format, error=result.note or result.not_image)
    if result.format is Format.SIF and (result.sif is None or result.sif.primary is None):
        return FileCheck(path, source, result.format, error="a SIF without a system partition")
    parts = [result.format.value]
    if result.compression:
        parts.append(result.compression)
    parts.append(human_size(os.path.getsize(source)))
    suggested = ""
    if result.archive is not None and result.archive.refs:
        suggested = result.archive.refs[0]
    elif source.endswith(".sqsh"):
        try:
            suggested = str(naming.enroot_ref_from_filename(os.path.basename(source)))
        except refs.RefError:
            suggested = ""
    return FileCheck(path, source, result.format, ", ".join(parts), suggested_ref=suggested)


@dataclass(frozen=True)
class AddChoice:
    """What the dialog was filled in with."""

    source: str
    ref: str
    cache: CacheSpec


class AddDialog(ModalScreen[AddChoice | None]):
    """File, reference, cache."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="close")]

    @dataclass
    class Probed(Message):
        """The worker read the file's headers."""

        check: FileCheck

    def __init__(
        self, specs: Sequence[CacheSpec], names: Mapping[str, str], *, cache: str | None = None
    ) -> None:
        super().__init__()
        self.specs = specs
        self.names = names
        self.initial_cache = cache
        self.check: FileCheck | None = None
        self._timer: Timer | None = None
        self._submit_when_read = False
        """Enter came before the file was read: submit when it has been."""

    def compose(self) -> ComposeResult:
        """The form."""
        with Vertical(classes="dialog") as box:
            box.border_title = "Add a local image file"
            with Vertical(classes="field"):
                yield Label("File (SIF, .sqsh, oci- or docker-archive)")
                yield Input(placeholder="/path/to/image.sif", compact=True, id="path")
                yield Static("", id="path-note", classes="field-note")
            yield RefField("Under the reference", id="ref")
            yield Label("Into the cache")
            yield CachePicker(self.specs, self.names, selected=self.initial_cache, id="cache")
            yield Static("", id="add-problem", classes="field-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add", variant="primary", id="add", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        """Start with the path."""
        self.query_one(RefField).set_cache(self.query_one(CachePicker).cache)
        self.query_one("#path", Input).focus()

    # -- probing the file ---------------------------------------------------------

    @on(Input.Changed, "#path")
    def _path_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.check = None
        self._submit_when_read = False
        self.query_one("#path-note", Static).update(Text("…", style="dim"))
        self._refresh_button()
        if self._timer is not None:
            self._timer.stop()
        value = event.value
        self._timer = self.set_timer(PROBE_DELAY, lambda: self._probe(value))

    @work(thread=True, exclusive=True, group="probe", exit_on_error=False)
    def _probe(self, path: str) -> None:
        self.post_message(self.Probed(check_file(path)))

    def on_add_dialog_probed(self, message: AddDialog.Probed) -> None:
        """Show what the file is, if it is still the file typed."""
        check = message.check
        if check.path != self.query_one("#path", Input).value:
            return  # typed on since: another probe is coming
        self.check = check
        note = self.query_one("#path-note", Static)
        if check.error is not None:
            note.update(Text(f"✘ {check.error}" if check.error else "", style="red"))
        else:
            note.update(Text(f"✔ {check.summary}", style="green"))
            field = self.query_one(RefField)
            if check.suggested_ref and not field.value:
                field.input.value = check.suggested_ref
                field.check()  # now, not when the input's own message comes round
            picker = self.query_one(CachePicker)
            fits = [s for s in self.specs if check.format in NATIVE_FORMATS[s.kind]]
            if fits and picker.cache not in fits:
                picker.choose(fits[0].path)
        self._refresh_button()
        if self._submit_when_read:
            self._submit_when_read = False
            self._submit()

    # -- keeping the form consistent ---------------------------------------------

    def _problem(self) -> str | None:
        """Why the form cannot be submitted yet, or None."""
        check = self.check
        if check is None:
            return "waiting for the file to be read"
        if check.error is not None:
            return check.error or "type the path of an image file"
        field = self.query_one(RefField)
        if field.reference is None:
            return field.error or "type the reference to file it under"
        if self.query_one(CachePicker).cache is None:
            return "pick a cache"
        return self._cache_problem()

    def _cache_problem(self) -> str | None:
        """Why the chosen cache cannot hold the file, or None."""
        cache = self.query_one(CachePicker).cache
        check = self.check
        if cache is None or check is None or check.format is None or check.error is not None:
            return None
        if check.format in NATIVE_FORMATS[cache.kind]:
            return None
        held = " or ".join(f.value for f in NATIVE_FORMATS[cache.kind])
        return f"{self.names.get(cache.path, cache.path)} holds {held}, not {check.format}"

    def _refresh_button(self) -> None:
        self.query_one("#add", Button).disabled = self._problem() is not None
        # The path and the reference say their own problems under their inputs.
        problem = self._cache_problem()
        self.query_one("#add-problem", Static).update(
            Text(f"✘ {problem}", style="red") if problem else ""
        )

    @on(RefField.Changed)
    def _ref_changed(self) -> None:
        self._refresh_button()

    @on(RadioSet.Changed)
    def _cache_changed(self) -> None:
        self.query_one(RefField).set_cache(self.query_one(CachePicker).cache)
        self._refresh_button()

    # -- answering ----------------------------------------------------------------

    @on(Input.Submitted)
    @on(CachePicker.Submitted)
    def _submitted(self, event: Input.Submitted | CachePicker.Submitted) -> None:
        # Enter in any field submits; a form not complete says why and goes there.
        event.stop()
        self._submit()

    def _focus_problem(self) -> None:
        """Move to the field the form still needs (each says its problem under it)."""
        if self.check is None or self.check.error is not None:
            self.query_one("#path", Input).focus()
        elif self.query_one(RefField).reference is None:
            self.query_one(RefField).input.focus()
        else:
            self.query_one(CachePicker).focus()

    @on(Button.Pressed, "#add")
    def _add_pressed(self) -> None:
        self._submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without adding."""
        self.dismiss(None)

    def _submit(self) -> None:
        problem = self._problem()
        if self.check is None and self.query_one("#path", Input).value.strip():
            # Enter right after typing the path: submit once the file has been read.
            self._submit_when_read = True
            return
        if problem is not None or self.check is None:
            self._focus_problem()
            return
        cache = self.query_one(CachePicker).cache
        assert cache is not None
        self.dismiss(AddChoice(self.check.source, self.query_one(RefField).value, cache))
