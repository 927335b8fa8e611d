"""The gc screen (`X`): what garbage collection would delete, shown before anything is.

The plan is `imgcache.backends.maintenance.gc.plan` over the inventory on screen: the
images that carry any of the chosen findings (the command line's default:
corrupt, incomplete, duplicate, stale; superseded only when ticked) and the
trash batches past their grace period. Changing a finding or the stale age
makes the plan again. The list shows every file with its size and reason, the
images gc keeps although they match (a current default, a link, another
owner's file, one that may still be being written), and the expired trash.
`y` hands exactly this plan to one gc job; `p` ticks purge (no trash).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ItemGrid
from textual.widgets import Checkbox, Input, Label, Static

from imgcache.backends.maintenance.gc import DEFAULT_CODES, GC_CODES, GcPlan
from imgcache.tui.format import plural
from imgcache.tui.screens.plan_screen import PlanScreen
from imgcache.tui.widgets.plan_view import items_table, section, total_line
from imgcache.tui.widgets.toggles import GlyphCheckbox

#: Makes a plan for (findings, stale days).
GcPlanner = Callable[[tuple[str, ...], int], GcPlan]


@dataclass(frozen=True, slots=True)
class GcChoice:
    """The plan the admin confirmed, and whether to purge instead of using the trash."""

    plan: GcPlan
    purge: bool = False


def gc_text(plan: GcPlan, names: Mapping[str, str]) -> RenderableType:
    """The whole plan: files to delete, images kept, expired trash."""
    parts: list[RenderableType] = []
    if plan.items:
        head = total_line(plural(len(plan.items), "file"), plan.total_bytes, "to delete")
        parts += [head, Text(""), items_table(plan.items, names)]
    else:
        found = ", ".join(plan.codes) or "no finding"
        parts.append(Text(f"No image to delete by {found}.", style="bold"))
    if plan.skipped:
        title = f"Kept although they match: {plural(len(plan.skipped), 'image')}"
        parts.append(section(title, items_table(plan.skipped, names, why="KEPT BECAUSE"), "bold"))
    if plan.trash:
        count = plural(len(plan.trash), "expired trash batch", "expired trash batches")
        title = f"{count} · purged too"
        parts.append(section(title, items_table(plan.trash, names, why="BATCH"), "bold"))
    return Group(*parts)


def gc_totals(plan: GcPlan, purge: bool, grace_days: int) -> Text:
    """The line under the list: what goes, where, and what comes back now."""
    text = Text(" ")
    if plan.items:
        text.append_text(total_line(plural(len(plan.items), "file"), plan.total_bytes, ""))
        text.append(" deleted at once" if purge else f" to the trash (purged after {grace_days} d)")
    else:
        text.append("no file to delete")
    if plan.trash:
        text.append(" · ")
        batches = plural(len(plan.trash), "trash batch", "trash batches")
        text.append_text(total_line(batches, plan.trash_bytes, "purged now"))
    text.append("  ·  y deletes, esc goes back" if not plan.empty else "  ·  esc goes back")
    return text


class GcPlanScreen(PlanScreen[GcPlan, GcChoice]):
    """Choose findings and age, see the plan, confirm it."""

    TITLE_TEXT = "Garbage collection"
    BINDINGS = [
        Binding("y", "run", "Delete these", id="confirm"),
        Binding("escape,q", "close", "Back", id="close"),
        Binding("p", "toggle_purge", "Purge at once (no trash)", id="toggle_purge"),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False, id="cursor_up"),
        Binding("down,j", "scroll(1)", "Scroll down", show=False, id="cursor_down"),
    ]

    def __init__(
        self,
        planner: GcPlanner,
        names: Mapping[str, str],
        *,
        days: int,
        grace_days: int,
        codes: tuple[str, ...] = DEFAULT_CODES,
    ) -> None:
        super().__init__(planner)
        self.names = names
        self.codes = tuple(codes)
        self.days = days
        self.grace_days = grace_days
        self.purge = False

    def compose_options(self) -> ComposeResult:
        """A checkbox per finding; the stale age and purge."""
        yield Label("Delete images that are:", classes="plan-label")
        # A grid that wraps: at 80 columns the boxes take two rows, none cut off.
        with ItemGrid(min_column_width=21, id="gc-codes", classes="plan-options"):
            for code in GC_CODES:
                yield GlyphCheckbox(code, code in self.codes, compact=True, id=f"gc-{code}")
        with Horizontal(id="gc-more", classes="plan-options"):
            yield Label("stale after ")
            yield Input(str(self.days), type="integer", compact=True, id="gc-days")
            yield Label(" days   ")
            yield GlyphCheckbox(
                "purge at once, no trash (p)", self.purge, compact=True, id="gc-purge"
            )

    def replan(self) -> None:
        """Plan again; with no finding ticked there is nothing to plan."""
        if self.codes:
            super().replan()
            return
        # An empty choice would plan only the expired trash; say what is missing instead.
        self.generation += 1
        self.plan = None
        self.error = "tick at least one finding"
        self.query_one("#plan-body", Static).update(Text(self.error, style="bold yellow"))
        self.query_one("#plan-totals", Static).update("")

    def plan_args(self) -> tuple[tuple[str, ...], int]:
        """The ticked findings and the stale age."""
        return self.codes, self.days

    def render_plan(self, plan: GcPlan) -> RenderableType:
        """Files, kept images, expired trash."""
        return gc_text(plan, self.names)

    def totals(self, plan: GcPlan) -> Text:
        """Counts and bytes, and where the files go."""
        return gc_totals(plan, self.purge, self.grace_days)

    def ready(self, plan: GcPlan) -> bool:
        """Something to delete or purge."""
        return not plan.empty

    def answer(self, plan: GcPlan) -> GcChoice:
        """This very plan, and purge."""
        return GcChoice(plan, self.purge)

    @on(Checkbox.Changed)
    def _option(self, event: Checkbox.Changed) -> None:
        event.stop()
        if event.checkbox.id == "gc-purge":
            self.purge = event.value
            self.show_plan()
            return
        codes = tuple(c for c in GC_CODES if self.query_one(f"#gc-{c}", Checkbox).value)
        if codes != self.codes:
            self.codes = codes
            self.replan()

    @on(Input.Changed, "#gc-days")
    def _days(self, event: Input.Changed) -> None:
        event.stop()
        try:
            days = int(event.value)
        except ValueError:
            return  # half typed; the plan on screen stays the one for the last number
        if days >= 0 and days != self.days:
            self.days = days
            self.replan()

    @on(Input.Submitted, "#gc-days")
    def _days_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#plan-list").focus()  # back to the list, where y and p work

    def action_toggle_purge(self) -> None:
        """Purge at once instead of moving to the trash."""
        self.query_one("#gc-purge", Checkbox).toggle()
