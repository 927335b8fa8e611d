"""The trash screen (`T`): every cache's deleted images, by batch; put back or purge.

One entry per batch (`ROOT/.imgcache-trash/<UTC time>-<id>`): its cache, when and
by whom it was deleted (from the batch's manifest), how many files and bytes,
when it will be purged, and its files under their old names. `r` puts the
selected batch back and `x` purges it, each after a confirmation; a restore is
refused, with the names, when any of them is taken now. Listing, checking,
restoring and purging read or write the disk, so they run in thread workers and
report back with messages; the UI thread only draws. In read-only mode the list
is shown and `r` and `x` are refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from imgcache.backends.config import Settings
from imgcache.backends.maintenance.batches import Batch, list_batches
from imgcache.backends.maintenance.purge import purge_trash
from imgcache.backends.maintenance.restore import RestoreItem, check, items_of, restore
from imgcache.tui.format import human_size, plural, printable
from imgcache.tui.screens.confirm import ConfirmDialog

#: Files listed under each batch before "… and N more".
FILES_SHOWN = 6


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def batch_text(batch: Batch, names: Mapping[str, str], grace_days: float) -> Text:
    """One batch as its entry in the list: a heading line, then its files."""
    cache = names.get(batch.root) or printable(batch.root)
    text = Text()
    text.append(f"{cache}  ", style="dim")
    text.append(batch.name, style="bold")
    via = f" ({printable(batch.by.via)})" if batch.by is not None and batch.by.via else ""
    text.append(f"  deleted {_when(batch.created)} by ")
    text.append(printable(batch.by_label) + via, style="bold")
    text.append(f" · {plural(len(batch.files), 'file')} · {human_size(batch.size)}")
    text.append(f" · purged after {_when(batch.expires(grace_days))}", style="dim")
    for f in batch.files[:FILES_SHOWN]:
        kind = "" if f.kind == "file" else f"  ({f.kind}: never followed or put back)"
        text.append(f"\n  {human_size(f.size):>10}  {printable(f.rel)}{kind}")
    if len(batch.files) > FILES_SHOWN:
        text.append(f"\n  … and {len(batch.files) - FILES_SHOWN} more", style="dim")
    return text


class TrashScreen(Screen[None]):
    """The batches of every cache's trash; restore or purge the selected one."""

    BINDINGS = [
        Binding("r", "restore", "Put back", id="trash_restore"),
        Binding("x", "purge", "Purge now", id="trash_purge"),
        Binding("f5", "reload", "Reload", id="trash_reload"),
        Binding("escape,q,T", "close", "Back", id="close"),
    ]

    @dataclass
    class Loaded(Message):
        """The batches of every cache, and problems (links where the trash should be)."""

        batches: list[Batch]
        problems: list[str]

    @dataclass
    class Checked(Message):
        """A batch's files, and those whose name is taken now (for the restore question)."""

        batch: Batch
        items: list[RestoreItem]
        refused: list[str]

    @dataclass
    class Finished(Message):
        """A restore or purge ended: what to say, and which directories changed."""

        text: str
        error: bool = False
        dirs: set[str] = field(default_factory=set)

    def __init__(
        self,
        settings: Settings,
        names: Mapping[str, str],
        rescan: Callable[[set[str]], None],
    ) -> None:
        super().__init__()
        self.settings = settings
        self.names = names
        self.rescan = rescan
        self.batches: list[Batch] | None = None
        """The batches on screen; None while they are being read."""
        self.busy = False
        """A restore or purge is running (one at a time)."""

    def compose(self) -> ComposeResult:
        """The list of batches, a totals line, the keys."""
        with Vertical(id="plan-box") as box:
            box.border_title = "Trash"
            yield OptionList(id="plan-list")
        yield Static("", id="plan-totals")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Read the batches (in a thread)."""
        self.query_one(OptionList).focus()
        self.action_reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Restore and purge write: hidden and refused in read-only mode."""
        return not (action in ("restore", "purge") and self.settings.read_only)

    # -- reading ----------------------------------------------------------------------

    def action_reload(self) -> None:
        """Read every cache's trash again."""
        self.batches = None
        self.query_one(OptionList).clear_options()
        self.query_one("#plan-totals", Static).update(Text(" reading the trash…", style="dim"))
        self._load([spec.path for spec in self.settings.caches])

    @work(thread=True, exit_on_error=False, group="trash")
    def _load(self, roots: Sequence[str]) -> None:
        batches: list[Batch] = []
        problems: list[str] = []
        for root in roots:
            found, trouble = list_batches(root)
            batches += found
            problems += trouble
        self.post_message(self.Loaded(batches, problems))

    @on(Loaded)
    def _loaded(self, message: TrashScreen.Loaded) -> None:
        self.batches = message.batches
        options = self.query_one(OptionList)
        options.clear_options()
        for problem in message.problems:
            options.add_option(Option(Text(f"⚠ {printable(problem)}", style="red"), disabled=True))
        grace = self.settings.trash_grace_days
        for batch in message.batches:
            options.add_option(Option(batch_text(batch, self.names, grace), id=batch.path))
        if not message.batches:
            caches = plural(len(self.settings.caches), "cache")
            options.add_option(Option(Text(f"The trash is empty ({caches}).", style="bold"),
                                      disabled=True))  # fmt: skip
        self.query_one("#plan-totals", Static).update(self._totals())
        if message.batches:
            options.highlighted = len(message.problems)

    def _totals(self) -> RenderableType:
        batches = self.batches or []
        text = Text(" ")
        text.append(plural(len(batches), "batch", "batches"), style="bold")
        text.append(" · ")
        text.append(human_size(sum(b.size for b in batches)), style="bold")
        text.append(" in the trash")
        if self.settings.read_only:
            text.append("  ·  read-only: nothing can be put back or purged", style="yellow")
        elif batches:
            text.append("  ·  r puts the selected batch back, x purges it, esc goes back")
        return text

    def selected(self) -> Batch | None:
        """The batch under the cursor."""
        options = self.query_one(OptionList)
        if self.batches is None or options.highlighted is None:
            return None
        chosen = options.get_option_at_index(options.highlighted).id
        return next((b for b in self.batches if b.path == chosen), None)

    # -- restore ----------------------------------------------------------------------

    def action_restore(self) -> None:
        """Check the selected batch's names (in a thread), then ask."""
        batch = self.selected()
        if batch is None or self.busy:
            return
        self.busy = True
        self._check(batch)

    @work(thread=True, exit_on_error=False, group="trash")
    def _check(self, batch: Batch) -> None:
        items = items_of(batch)
        try:
            refused = [why for _item, why in check(items)]
        except Exception as exc:  # shown, not raised: the app stays up
            refused = [str(exc) or type(exc).__name__]
        self.post_message(self.Checked(batch, items, refused))

    @on(Checked)
    def _checked(self, message: TrashScreen.Checked) -> None:
        self.busy = False
        if message.refused:
            self.notify(
                printable("; ".join(message.refused)), title="Nothing put back",
                severity="error", markup=False,
            )  # fmt: skip
            return
        if not message.items:
            self.notify("this batch holds no file that can be put back", severity="warning")
            return
        lines = [Text(f"  {printable(item.path)}") for item in message.items]
        body = Group(
            Text(f"{plural(len(message.items), 'file')} go back under their old names:"),
            *lines,
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.busy = True
                self._restore(message.items)

        self.app.push_screen(ConfirmDialog("Put back?", body, yes="Put back"), answered)

    @work(thread=True, exit_on_error=False, group="trash")
    def _restore(self, items: list[RestoreItem]) -> None:
        try:
            result = restore(self.settings, items)
        except Exception as exc:  # shown, not raised
            self.post_message(self.Finished(f"cannot put back: {exc}", error=True))
            return
        dirs = {os.path.dirname(item.path) for item in result.restored}
        text = f"{plural(len(result.restored), 'file')} put back"
        if result.failed:
            text += f"; {len(result.failed)} not: {result.failed[0][1]}"
        self.post_message(self.Finished(text, bool(result.failed), dirs))

    # -- purge ------------------------------------------------------------------------

    def action_purge(self) -> None:
        """Ask, then purge the selected batch (in a thread)."""
        batch = self.selected()
        if batch is None or self.busy:
            return
        body = Text(
            f"{printable(batch.path)}\n{plural(len(batch.files), 'file')} · "
            f"{human_size(batch.size)}: deleted for good, they cannot be put back."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.busy = True
                self._purge(batch)

        dialog = ConfirmDialog("Purge this batch?", body, yes="Purge", focus_no=True)
        self.app.push_screen(dialog, answered)

    @work(thread=True, exit_on_error=False, group="trash")
    def _purge(self, batch: Batch) -> None:
        result = purge_trash(batch.root, None, only={batch.path})
        if result.failed:
            self.post_message(self.Finished(result.failed[0][1], error=True))
        else:
            self.post_message(self.Finished(f"purged {batch.name} ({human_size(batch.size)})"))

    @on(Finished)
    def _finished(self, message: TrashScreen.Finished) -> None:
        self.busy = False
        severity = "error" if message.error else "information"
        self.notify(printable(message.text), severity=severity, markup=False)
        if message.dirs:
            self.rescan(message.dirs)
        self.action_reload()

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
