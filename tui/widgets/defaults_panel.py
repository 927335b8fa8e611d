"""The defaults panel: each environment's default image against each cache.

One glance answers "will a CPU / NVIDIA / AMD job find its image here?": a row per
environment, a column per cache, the state in colour and in words (so it reads
the same without colour), with the profile in use in the title. A resource pool
of master.yaml that sets another image for an environment gets a row of its own
under the cluster's, labelled with the pool; under the grid, a line per note on
what master.yaml says about images that imgcache does not read.

The panel has a cell cursor (arrows or hjkl when it has focus): on a cache's cell
it names one default in one cache, on the image column the environment's default
in every cache. Enter asks for the selected default to be pulled where it is
missing or broken (`PullRequested`); the app decides what that means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich import box
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.inventory.defaults import ENVIRONMENT_TITLES, Presence
from imgcache.tui.format import PRESENCE_STYLES, printable
from imgcache.tui.hints import hint_key

#: A mark per state, so the grid reads at a glance even without colour.
PRESENCE_MARKS = {
    "present": "✔",
    "missing": "✘",
    "broken": "!",
    "elsewhere": "~",
    "n/a": "-",
}
#: How the selected cell stands out without a widget to take colours from.
CURSOR_STYLE = Style(reverse=True)
#: States a pull fixes.
PULLABLE = ("missing", "broken")


def presence_counts(inventory: Inventory) -> tuple[int, int]:
    """(present, applicable): how many default/cache pairs hold their image."""
    applicable = [p for p in inventory.presence if p.state != "n/a"]
    return sum(p.state == "present" for p in applicable), len(applicable)


def _cell(p: Presence | None, cursor: Style | None = None) -> Text:
    if p is None:
        return Text("")
    text = Text(f"{PRESENCE_MARKS[p.state]} {p.state}", style=PRESENCE_STYLES[p.state])
    if cursor is not None:
        text.stylize(cursor)
    if p.detail and p.state != "present":
        text.append(f"\n{p.detail}", style="dim")
    return text


def defaults_table(
    inventory: Inventory,
    names: Mapping[str, str],
    cursor: tuple[int, int] | None = None,
    cursor_style: Style = CURSOR_STYLE,
) -> RenderableType:
    """The environments x caches grid with the profile as its title.

    `cursor` is (row, column) of the selected cell: column 0 is the image itself
    (every cache), column i the i-th cache; `cursor_style` marks it.
    """
    profile = inventory.profile
    title = Text.assemble(("Profile ", "bold"), (profile.name, "bold"), f"  {profile.title}")
    notes = [Text(f"⚠ {printable(note)}", style="yellow") for note in inventory.settings.notes]
    if not inventory.defaults:
        return Group(title, Text("No default images configured.", style="dim"), *notes)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("ENVIRONMENT", no_wrap=True)
    table.add_column("DEFAULT IMAGE", overflow="fold", ratio=3)
    for status in inventory.caches:
        table.add_column(names.get(status.spec.path, status.spec.label), overflow="fold", ratio=1)
    by_key = {(id(p.default), p.cache_root): p for p in inventory.presence}
    for row, default in enumerate(inventory.defaults):
        image = Text(printable(default.value))
        if cursor == (row, 0):
            image.stylize(cursor_style)
        if not default.origin.startswith("profile "):
            image.append(f"\n{default.origin}", style="dim")
        env = Text(ENVIRONMENT_TITLES[default.env])
        if default.pool is not None:
            env.append(f"\npool {printable(default.pool)}", style="bold")
        cells: list[Text] = [env, image]
        for column, status in enumerate(inventory.caches, 1):
            p = by_key.get((id(default), status.spec.path))
            cells.append(_cell(p, cursor_style if cursor == (row, column) else None))
        table.add_row(*cells)
    return Group(title, table, *notes)


class DefaultsPanel(VerticalScroll, can_focus=True):
    """The defaults grid, toggled with `d`."""

    COMPONENT_CLASSES = {"defaults-panel--cursor"}

    BINDINGS = [
        Binding("up,k", "move(-1, 0)", "Up", show=False, id="cursor_up"),
        Binding("down,j", "move(1, 0)", "Down", show=False, id="cursor_down"),
        Binding("left,h", "move(0, -1)", "Left", show=False, id="cursor_left"),
        Binding("right,l", "move(0, 1)", "Right", show=False, id="cursor_right"),
        Binding("enter", "pull", "Pull this default", id="pull_default"),
    ]

    @dataclass
    class PullRequested(Message):
        """Enter on a cell: pull this default where these presences lack it."""

        panel: DefaultsPanel
        presences: tuple[Presence, ...]
        """The selected cell's presence, or the whole row's for the image column."""

        @property
        def control(self) -> DefaultsPanel:
            """The panel that sent it."""
            return self.panel

    def __init__(self, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.read_only = read_only
        self.border_title = "Defaults"
        self.cursor = (0, 0)
        self._body = Static(Text("scanning…", style="dim"))
        self._shown: tuple[int, ...] = ()
        self._inventory: Inventory | None = None
        self._names: Mapping[str, str] = {}

    def compose(self) -> ComposeResult:
        """The one Static that holds the grid."""
        yield self._body

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pulling is an action that writes: gone in read-only mode."""
        return not (action == "pull" and self.read_only)

    def show(self, inventory: Inventory, names: Mapping[str, str]) -> None:
        """Show the presence of the defaults in this inventory."""
        self._inventory = inventory
        self._names = names
        key = tuple(hash((p.state, p.path, p.cache_root)) for p in inventory.presence)
        if key == self._shown:
            return  # nothing changed: spare the repaint
        self._shown = key
        present, total = presence_counts(inventory)
        self.border_title = f"Defaults · {present}/{total} present"
        missing = sum(p.state in PULLABLE and p.default.ref is not None for p in inventory.presence)
        self.border_subtitle = (
            f"{hint_key(self.app, 'pull_defaults', 'P')} pulls the {missing} missing"
            if missing and not self.read_only
            else ""
        )
        self._clamp()
        self._paint()

    @property
    def selected(self) -> tuple[Presence, ...]:
        """The presences the cursor names: one cell, or every cache of the environment."""
        inventory = self._inventory
        if inventory is None or not inventory.defaults:
            return ()
        row, column = self.cursor
        default = inventory.defaults[row]
        mine = [p for p in inventory.presence if p.default is default]
        if column == 0:
            return tuple(mine)
        root = inventory.caches[column - 1].spec.path
        return tuple(p for p in mine if p.cache_root == root)

    def _clamp(self) -> None:
        inventory = self._inventory
        rows = len(inventory.defaults) if inventory else 0
        columns = len(inventory.caches) + 1 if inventory else 1
        row, column = self.cursor
        self.cursor = (max(0, min(row, rows - 1)), max(0, min(column, columns - 1)))

    def _paint(self, focused: bool | None = None) -> None:
        if self._inventory is None:
            return
        focused = self.has_focus if focused is None else focused
        cursor = self.cursor if focused else None
        style = self.get_component_rich_style("defaults-panel--cursor", partial=True)
        self._body.update(defaults_table(self._inventory, self._names, cursor, style))

    def on_focus(self) -> None:
        """Show the cursor (this runs before Widget marks itself focused)."""
        self._paint(focused=True)

    def on_blur(self) -> None:
        """Hide the cursor: it only means something while keys move it."""
        self._paint(focused=False)

    def action_move(self, rows: int, columns: int) -> None:
        """Move the cell cursor."""
        row, column = self.cursor
        self.cursor = (row + rows, column + columns)
        self._clamp()
        self._paint()

    def action_pull(self) -> None:
        """Ask for the selected default to be pulled where it is missing."""
        selected = self.selected
        if selected and not self.read_only:
            self.post_message(self.PullRequested(self, selected))
