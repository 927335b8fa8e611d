"""The finding filter picker (`f`): choose a finding to see only the images that have it.

Each choice shows how many images it would leave, so the picker doubles as a
count of what is wrong in the caches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from imgcache.backends.inventory.findings import ORDER, VOCABULARY
from imgcache.tui.format import FINDING_SHORT, FINDING_STYLES


def choices(codes: Iterable[tuple[str, ...]]) -> list[tuple[str, Text]]:
    """(filter, label) for "all", "any" and every finding, with counts."""
    counts: Counter[str] = Counter()
    total = with_any = 0
    for image_codes in codes:
        total += 1
        if image_codes:
            with_any += 1
        counts.update(image_codes)
    result = [
        ("all", Text.assemble(("all", "bold"), f"  every image ({total})")),
        ("any", Text.assemble(("any", "bold"), f"  any finding ({with_any})")),
    ]
    for code in ORDER:
        label = Text.assemble(
            (FINDING_SHORT[code], FINDING_STYLES[code]),
            f"  {VOCABULARY[code].title} ({counts[code]})",
        )
        result.append((code, label))
    return result


class FindingPicker(ModalScreen[str | None]):
    """A small list of finding filters; Enter picks, Esc leaves the filter as it is."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel", id="close"),
        Binding("enter", "pick", "Show", id="pick"),
        Binding("k", "cursor(-1)", "Up", show=False, id="cursor_up"),
        Binding("j", "cursor(1)", "Down", show=False, id="cursor_down"),
    ]

    def __init__(self, codes: Iterable[tuple[str, ...]], current: str) -> None:
        super().__init__()
        self._choices = choices(codes)
        self._current = current

    def compose(self) -> ComposeResult:
        """The list of filters."""
        options = [Option(label, id=code) for code, label in self._choices]
        picker = OptionList(*options, id="finding-list")
        picker.border_title = "Show only"
        yield picker

    def on_mount(self) -> None:
        """Start on the filter in use."""
        picker = self.query_one(OptionList)
        picker.highlighted = [code for code, _ in self._choices].index(self._current)
        picker.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Apply the picked filter (a click on an option)."""
        self.dismiss(event.option.id)

    def action_pick(self) -> None:
        """Apply the highlighted filter.

        Bound on the screen, not left to the list: keys typed right after `f` arrive
        before the list has focus.
        """
        picker = self.query_one(OptionList)
        if picker.highlighted is not None:
            self.dismiss(picker.get_option_at_index(picker.highlighted).id)

    def action_cursor(self, step: int) -> None:
        """Move the highlight (vim keys)."""
        picker = self.query_one(OptionList)
        if step < 0:
            picker.action_cursor_up()
        else:
            picker.action_cursor_down()

    def action_dismiss_none(self) -> None:
        """Close without changing the filter."""
        self.dismiss(None)
