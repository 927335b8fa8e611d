"""The defaults panel: each environment's default image against each cache.

One glance answers "will a CPU / NVIDIA / AMD job find its image here?": a row per
environment, a column per cache, the state in colour and in words (so it reads
the same without colour), with the profile in use in the title.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from backends.defaults import ENVIRONMENT_TITLES, Presence
from backends.inventory import Inventory
from tui.format import PRESENCE_STYLES

#: A mark per state, so the grid reads at a glance even without colour.
PRESENCE_MARKS = {
    "present": "✔",
    "missing": "✘",
    "broken": "!",
    "elsewhere": "~",
    "n/a": "-",
}


def presence_counts(inventory: Inventory) -> tuple[int, int]:
    """(present, applicable): how many default/cache pairs hold their image."""
    applicable = [p for p in inventory.presence if p.state != "n/a"]
    return sum(p.state == "present" for p in applicable), len(applicable)


def _cell(p: Presence | None) -> Text:
    if p is None:
        return Text("")
    text = Text(f"{PRESENCE_MARKS[p.state]} {p.state}", style=PRESENCE_STYLES[p.state])
    if p.detail and p.state != "present":
        text.append(f"\n{p.detail}", style="dim")
    return text


def defaults_table(inventory: Inventory, names: Mapping[str, str]) -> RenderableType:
    """The environments x caches grid with the profile as its title."""
    profile = inventory.profile
    title = Text.assemble(("Profile ", "bold"), (profile.name, "bold"), f"  {profile.title}")
    if not inventory.defaults:
        return Group(title, Text("No default images configured.", style="dim"))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("ENVIRONMENT", no_wrap=True)
    table.add_column("DEFAULT IMAGE", overflow="fold", ratio=3)
    for status in inventory.caches:
        table.add_column(names.get(status.spec.path, status.spec.label), overflow="fold", ratio=1)
    by_key = {(id(p.default), p.cache_root): p for p in inventory.presence}
    for default in inventory.defaults:
        image = Text(default.value)
        if not default.origin.startswith("profile "):
            image.append(f"\n{default.origin}", style="dim")
        cells: list[Text] = [Text(ENVIRONMENT_TITLES[default.env]), image]
        for status in inventory.caches:
            cells.append(_cell(by_key.get((id(default), status.spec.path))))
        table.add_row(*cells)
    return Group(title, table)


class DefaultsPanel(VerticalScroll, can_focus=True):
    """The defaults grid, toggled with `d`."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Defaults"
        self._body = Static(Text("scanning…", style="dim"))
        self._shown: tuple[int, ...] = ()

    def compose(self) -> ComposeResult:
        """The one Static that holds the grid."""
        yield self._body

    def show(self, inventory: Inventory, names: Mapping[str, str]) -> None:
        """Show the presence of the defaults in this inventory."""
        key = tuple(hash((p.state, p.path, p.cache_root)) for p in inventory.presence)
        if key == self._shown:
            return  # nothing changed: spare the repaint
        self._shown = key
        present, total = presence_counts(inventory)
        self.border_title = f"Defaults · {present}/{total} present"
        self._body.update(defaults_table(inventory, names))
