"""A full-screen plan (gc, fix permissions): worked out in a thread, listed, then run on `y`.

Planning reads the disk (trash batches, directory modes), so it runs in a
thread worker and the result comes back as a message; until then the screen
says it is planning and `y` does nothing. Each plan is numbered: when the
admin changes an option while a plan is being made, only the newest one is
shown, so what is on screen is always what `y` runs - the job is handed that
very plan object, and applies it and nothing else.

Subclasses say how to make the plan from their options (`plan_args`), how to
draw it (`render_plan`, `totals`), and what `y` answers (`answer`); they also
declare their own BINDINGS, so the help screen lists them under their heading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

P = TypeVar("P")
R = TypeVar("R")


class PlanScreen(Screen[R | None], Generic[P, R]):
    """A plan over the whole terminal; dismisses with `answer()` on yes, None on no."""

    TITLE_TEXT = "Plan"

    @dataclass
    class Planned(Message):
        """A plan (or why none could be made), numbered as it was asked for."""

        generation: int
        plan: Any
        error: str = ""

    def __init__(self, planner: Callable[..., P], *, title: str | None = None) -> None:
        super().__init__()
        self.planner = planner
        self.title_text = title or self.TITLE_TEXT
        self.plan: P | None = None
        """The plan on screen; None while one is being made."""
        self.error = ""
        self.generation = 0

    # -- for subclasses -------------------------------------------------------------

    def compose_options(self) -> ComposeResult:
        """Widgets above the list that change the plan (none by default)."""
        yield from ()

    def plan_args(self) -> tuple[Any, ...]:
        """The planner's arguments, read from the options on the UI thread."""
        return ()

    def render_plan(self, plan: P) -> RenderableType:
        """The list of what the plan does."""
        raise NotImplementedError

    def totals(self, plan: P) -> Text:
        """One line under the list: counts and bytes."""
        raise NotImplementedError

    def ready(self, plan: P) -> bool:
        """True when running the plan would do something."""
        return True

    def answer(self, plan: P) -> R:
        """What the screen dismisses with on yes."""
        raise NotImplementedError

    # -- the screen -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Options, the list, the totals and the keys."""
        with Vertical(id="plan-box") as box:
            box.border_title = self.title_text
            yield from self.compose_options()
            with VerticalScroll(id="plan-list"):
                yield Static("", id="plan-body")
        yield Static("", id="plan-totals")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Focus the list (its keys scroll it) and make the first plan."""
        self.query_one("#plan-list").focus()
        self.replan()

    def replan(self) -> None:
        """Make the plan again for the current options (in a thread)."""
        self.generation += 1
        self.plan = None
        self.error = ""
        self.query_one("#plan-body", Static).update(
            Text("working out the plan…", style="dim italic")
        )
        self.query_one("#plan-totals", Static).update("")
        self._make_plan(self.generation, self.plan_args())

    @work(thread=True, exit_on_error=False, group="plan")
    def _make_plan(self, generation: int, args: tuple[Any, ...]) -> None:
        try:
            plan = self.planner(*args)
        except Exception as exc:  # shown on the screen: no plan is not a crash of the app
            self.post_message(self.Planned(generation, None, str(exc) or type(exc).__name__))
            return
        self.post_message(self.Planned(generation, plan))

    @on(Planned)
    def _planned(self, message: PlanScreen.Planned) -> None:
        if message.generation != self.generation:
            return  # an option changed meanwhile: a newer plan is on its way
        if message.plan is None:
            self.error = message.error
            self.query_one("#plan-body", Static).update(
                Text(f"✘ no plan: {message.error}", style="bold red")
            )
            return
        self.plan = message.plan
        self.show_plan()

    def show_plan(self) -> None:
        """Draw the plan on screen (again: after an option that only changes the totals)."""
        if self.plan is not None:
            self.query_one("#plan-body", Static).update(self.render_plan(self.plan))
            self.query_one("#plan-totals", Static).update(self.totals(self.plan))

    # -- keys -----------------------------------------------------------------------

    def action_run(self) -> None:
        """Run the plan on screen."""
        if self.plan is None:
            note = f"no plan: {self.error}" if self.error else "the plan is still being made"
            self.notify(note, severity="warning")
        elif not self.ready(self.plan):
            self.notify("nothing to do", title=self.title_text)
        else:
            self.dismiss(self.answer(self.plan))

    def action_close(self) -> None:
        """Back, doing nothing."""
        self.dismiss(None)

    def action_scroll(self, lines: int) -> None:
        """Scroll the list by some lines."""
        pane = self.query_one("#plan-list", VerticalScroll)
        pane.scroll_to(y=pane.scroll_y + lines, animate=False)
