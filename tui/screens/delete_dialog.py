"""The delete dialog (`D`): the files, their sizes, what is freed and when, and what is left out.

Before it opens, every file was checked the way the delete job will check it
(`trash.preflight`: no symbolic link, inside its cache root, the file the scan
saw, an owner `delete.allowed_owners` allows). Files that fail are listed with
the reason and left out; the others can go. By default they move to their
cache's trash (`.imgcache-trash`), where jobs that have them open keep reading
them and where they stay `trash_grace_days` days; `p` purges them at once
instead. A file that is an environment's default image says so, in bold yellow
("ubuntu:22.04 is the CPU default image: jobs that use the default will pull it
again"). Enter starts on Cancel: deleting takes a typed `y`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

from rich.console import Group, RenderableType
from rich.text import Text
from textual.binding import Binding

from imgcache.backends.maintenance import PlanItem, total_bytes
from imgcache.tui.format import plural, printable
from imgcache.tui.screens.option_dialog import OptionDialog
from imgcache.tui.widgets.plan_view import items_table, refused_table, section, total_line


@dataclass(frozen=True, slots=True)
class DeletePlan:
    """What a delete would do, as checked before asking."""

    items: tuple[PlanItem, ...]
    """The files that can go."""
    refused: tuple[tuple[PlanItem, str], ...]
    """Files left out, with why."""
    grace_days: int
    """Days a trash batch is kept before it is purged."""
    defaults: Mapping[str, str] = field(default_factory=dict)
    """Path -> what deleting it means, for the files that are a default image."""

    @property
    def total(self) -> int:
        """Bytes of the files that can go."""
        return total_bytes(self.items)


def where_text(purge: bool, grace_days: int) -> str:
    """What happens to the files, in a few words."""
    if purge:
        return "deleted at once: the space comes back now and the files cannot be put back"
    return (
        f"moved to the trash of their cache (.imgcache-trash); the space comes back when the "
        f"trash is purged, after {grace_days} days; jobs reading them keep reading"
    )


def delete_text(
    plan: DeletePlan, names: Mapping[str, str], purge: bool
) -> tuple[RenderableType, bool]:
    """The dialog's body for `purge`, and whether anything can be deleted."""
    parts: list[RenderableType] = []
    if plan.items:
        freed = "freed now" if purge else f"freed when the trash is purged ({plan.grace_days} d)"
        parts.append(total_line(plural(len(plan.items), "file"), plan.total, freed))
        parts.append(Text(""))
        parts.append(items_table(plan.items, names))
        parts.append(Text(""))
        style = "bold red" if purge else "italic"
        parts.append(Text(f"→ {where_text(purge, plan.grace_days)}", style=style))
        for item in plan.items:
            note = plan.defaults.get(item.path)
            if note:
                parts.append(Text(f"⚠ {printable(note)}", style="bold yellow"))
    else:
        parts.append(Text("Nothing can be deleted:", style="bold red"))
    if plan.refused:
        refused = [(item.path, item.root, why, item.size) for item, why in plan.refused]
        title = f"Left out: {plural(len(refused), 'file')} (not deleted)"
        parts.append(section(title, refused_table(refused, names), "bold red"))
    return Group(*parts), bool(plan.items)


class DeleteDialog(OptionDialog):
    """Confirm a delete; dismisses with `purge` on yes, None on no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Delete", id="confirm"),
        Binding("n,escape", "answer(False)", "Cancel", id="close"),
        Binding("p", "toggle_option", "Purge at once (no trash)", id="toggle_purge"),
    ]

    def __init__(self, plan: DeletePlan, names: Mapping[str, str]) -> None:
        count = len(plan.items) or len(plan.refused)
        super().__init__(
            f"Delete {plural(count, 'file')}",
            partial(delete_text, plan, names),
            option="purge at once instead of the trash (p)",
            yes="Delete",
            focus_no=True,
        )
        self.plan = plan
