"""The help screen (`?`): every key binding of the app, as remapped by the config.

The list is built from the bindings the classes declare with the app's keymap laid
over them, so a `[keys]` entry in the config shows here as it works. The id column
is the name to use in the config's `[keys]` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Footer, Static

from imgcache.tui.widgets.summary import COMPRESSION_SAVING


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One binding as the help screen lists it."""

    section: str
    keys: tuple[str, ...]
    description: str
    id: str | None


def declared(node: type[DOMNode], *, own_only: bool = False) -> list[Binding]:
    """The bindings a class declares; with its bases' too unless `own_only`.

    As in Textual, a key bound by a subclass replaces the base class's binding.
    """
    classes = [node] if own_only else [c for c in reversed(node.__mro__) if "BINDINGS" in vars(c)]
    keys: dict[str, list[Binding]] = {}
    for cls in classes:
        own: dict[str, list[Binding]] = {}
        for binding in Binding.make_bindings(vars(cls).get("BINDINGS", [])):
            own.setdefault(binding.key, []).append(binding)
        keys.update(own)
    return [binding for bindings in keys.values() for binding in bindings]


def help_entries(
    sections: list[tuple[str, type[DOMNode], bool]],
    keymap: Mapping[str, str],
    app: App[object],
) -> list[HelpEntry]:
    """(section, class, own_only) -> entries, with `keymap` (binding id -> keys) applied."""
    entries: list[HelpEntry] = []
    for section, cls, own_only in sections:
        grouped: dict[tuple[str, str | None], list[str]] = {}
        described: dict[tuple[str, str | None], str] = {}
        for binding in declared(cls, own_only=own_only):
            if binding.system or not (binding.description or binding.id):
                continue
            key = (binding.action, binding.id)
            keys = grouped.setdefault(key, [])
            if binding.id and binding.id in keymap:
                remapped = [k.strip() for k in keymap[binding.id].split(",") if k.strip()]
                for k in remapped:
                    if k not in keys:
                        keys.append(k)
            elif binding.key not in keys:
                keys.append(binding.key)
            described[key] = binding.description or binding.action
        for (action, binding_id), keys in grouped.items():
            shown = tuple(app.get_key_display(Binding(k, action)) for k in keys)
            entries.append(HelpEntry(section, shown, described[(action, binding_id)], binding_id))
    return entries


def help_table(entries: list[HelpEntry]) -> Group:
    """The entries as one table per section, then a note on remapping."""
    parts: list[Table | Text] = []
    section = None
    table: Table | None = None
    for entry in entries:
        if entry.section != section:
            section = entry.section
            table = Table(
                title=Text(f"\n{section}" if parts else section, style="bold underline"),
                title_justify="left",
                box=None,
                show_header=False,
                pad_edge=False,
            )
            table.add_column("KEYS", no_wrap=True, min_width=14)
            table.add_column("WHAT", min_width=30)
            table.add_column("ID", style="dim", no_wrap=True)
            parts.append(table)
        assert table is not None
        table.add_row(Text(" ".join(entry.keys), style="bold"), entry.description, entry.id or "")
    note = Text.from_markup(
        "The third column is each binding's id: remap keys in the config file, e.g. "
        '[bold]\\[keys][/] then [bold]rescan = "r,f5"[/] (keys comma-separated).\n'
        "Reclaimable space is an estimate: corrupt, incomplete, duplicate, stale and "
        "superseded files count in full, an uncompressed squashfs counts "
        f"{COMPRESSION_SAVING:.0%} of its size (what zstd saved in the pyxis docs, "
        "18G -> 7.1G).\n"
    )
    keys = {entry.id: "/".join(entry.keys) for entry in entries if entry.id}
    if "toggle_mark" in keys:
        # Named by the keys in use, so a remap in the config shows here too.
        get = keys.get
        note.append(get("toggle_mark", ""), style="bold")
        note.append(
            f" marks images in the table; {get('compress')} and {get('delete')} act on the "
            f"marked ones, else on the selected one; {get('fix_perms')} on the marked ones, "
            f"else on all; {get('gc')} plans over all. Each shows what it will do and asks.\n"
        )
    parts.insert(0, note)
    return Group(*parts)


class HelpScreen(Screen[None]):
    """Every binding, by where it works."""

    BINDINGS = [
        Binding("escape,question_mark", "app.pop_screen", "Back", id="close"),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False, id="cursor_up"),
        Binding("down,j", "scroll(1)", "Scroll down", show=False, id="cursor_down"),
    ]

    def __init__(self, entries: list[HelpEntry]) -> None:
        super().__init__()
        self.entries = entries

    def compose(self) -> ComposeResult:
        """The tables in a scrolling pane."""
        pane = VerticalScroll(Static(help_table(self.entries)), id="help")
        pane.border_title = "Keys"
        yield pane
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Focus the pane so the keys scroll it."""
        self.query_one("#help").focus()

    def action_scroll(self, lines: int) -> None:
        """Scroll by some lines."""
        pane = self.query_one("#help", VerticalScroll)
        pane.scroll_to(y=pane.scroll_y + lines, animate=False)
