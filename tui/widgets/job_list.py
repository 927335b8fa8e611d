"""The jobs pane: every job of this session with its state, progress bar and result.

A line-API widget (two lines per job, see `job_lines`): progress arrives many
times a second and only the job that moved is redrawn. Running jobs come first,
then queued ones, then finished ones, newest first; the cursor stays on its job
when the order changes. The widget only shows statuses it is handed (attributes
down) and says what the admin asked for in messages (up): cancel a job, open
its log. A timer ticks only while a job runs, for the elapsed time and the pulse
of a bar whose tool gives no fraction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from imgcache.backends.jobs.states import JobState, JobStatus
from imgcache.tui.hints import hint_key
from imgcache.tui.widgets.job_lines import LINES_PER_JOB, job_lines, placeholder, sort_key

#: Seconds between two frames while a job runs (elapsed time, pulse).
TICK = 0.2


class JobList(ScrollView, can_focus=True):
    """The jobs of this session, newest activity first."""

    COMPONENT_CLASSES = {"job-list--cursor", "job-list--cursor-blurred"}

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False, id="cursor_up"),
        Binding("down,j", "move(1)", "Down", show=False, id="cursor_down"),
        Binding("c,x", "cancel_job", "Cancel job", id="cancel_job"),
        Binding("enter,l", "open_log", "Log", id="job_log"),
    ]

    @dataclass
    class CancelRequested(Message):
        """`c` on a job that has not finished."""

        job_list: JobList
        job_id: int

        @property
        def control(self) -> JobList:
            """The list that sent it."""
            return self.job_list

    @dataclass
    class LogRequested(Message):
        """Enter on a job: show its log."""

        job_list: JobList
        job_id: int

        @property
        def control(self) -> JobList:
            """The list that sent it."""
            return self.job_list

    def __init__(
        self,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.read_only = read_only
        self.clock = clock
        """Now, for the elapsed time of running jobs (JobStatus times are time.time())."""
        self.names: Mapping[str, str] = {}
        self.statuses: dict[int, JobStatus] = {}
        self.order: list[int] = []
        self.cursor = 0
        self.border_title = "Jobs"
        self._pulse = 0
        self._ticker: Timer | None = None

    # -- data -------------------------------------------------------------------

    @property
    def selected(self) -> JobStatus | None:
        """The job under the cursor."""
        if 0 <= self.cursor < len(self.order):
            return self.statuses[self.order[self.cursor]]
        return None

    def update_jobs(self, statuses: Iterable[JobStatus]) -> None:
        """Take new snapshots of some jobs; the cursor stays on its job."""
        selected = self.order[self.cursor] if self.cursor < len(self.order) else None
        for status in statuses:
            self.statuses[status.id] = status
        order = sorted(self.statuses, key=lambda i: sort_key(self.statuses[i]))
        if order != self.order:
            self.order = order
            if selected is not None:
                self.cursor = order.index(selected)
            self.virtual_size = Size(self._width(), max(len(order), 1) * LINES_PER_JOB)
        self._retitle()
        self._scroll_to_cursor()
        self.refresh()
        self._tick_while_running()

    def _retitle(self) -> None:
        counts = {state: 0 for state in JobState}
        for status in self.statuses.values():
            counts[status.state] += 1
        parts = ["Jobs"]
        for state in JobState:
            if counts[state]:
                parts.append(f"{counts[state]} {state.value}")
        self.border_title = " · ".join(parts)
        cancel = hint_key(self.app, "cancel_job", "c")
        log = hint_key(self.app, "job_log", "enter")
        hide = f"{hint_key(self.app, 'toggle_jobs', 'J')} hides"
        keys = f"{log} log" if self.read_only else f"{cancel} cancels · {log} log"
        self.border_subtitle = f"{keys} · {hide}" if self.statuses else hide

    def _tick_while_running(self) -> None:
        running = any(s.state is JobState.RUNNING for s in self.statuses.values())
        if running and self._ticker is None:
            self._ticker = self.set_interval(TICK, self._tick, name="job progress")
        elif not running and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _tick(self) -> None:
        self._pulse += 1
        for position, job_id in enumerate(self.order):
            if self.statuses[job_id].state is JobState.RUNNING:
                self.refresh_lines(position * LINES_PER_JOB - int(self.scroll_y), LINES_PER_JOB)

    # -- keys -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cancel is an action that writes: gone in read-only mode."""
        return not (action == "cancel_job" and self.read_only)

    def action_move(self, step: int) -> None:
        """Move the cursor by a job."""
        self.move_cursor(self.cursor + step)

    def move_cursor(self, position: int) -> None:
        """Put the cursor on the job at `position` (clamped)."""
        self.cursor = max(0, min(position, len(self.order) - 1))
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        top = self.cursor * LINES_PER_JOB
        height = max(self.scrollable_content_region.height, LINES_PER_JOB)
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, force=True)
        elif top + LINES_PER_JOB > self.scroll_y + height:
            self.scroll_to(y=top + LINES_PER_JOB - height, animate=False, force=True)

    def action_cancel_job(self) -> None:
        """Cancel the selected job, if it has not finished."""
        status = self.selected
        if status is not None and not status.state.finished and not self.read_only:
            self.post_message(self.CancelRequested(self, status.id))

    def action_open_log(self) -> None:
        """Show the selected job's log."""
        status = self.selected
        if status is not None:
            self.post_message(self.LogRequested(self, status.id))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        position = (int(self.scroll_y) + offset.y) // LINES_PER_JOB
        if position < len(self.order):
            self.move_cursor(position)
            if event.chain >= 2:
                self.action_open_log()

    # -- drawing ----------------------------------------------------------------

    def _width(self) -> int:
        return max(self.scrollable_content_region.width, 1)

    def on_resize(self, event: events.Resize) -> None:
        """Keep the cursor's job in view at the new size."""
        self.virtual_size = Size(self._width(), max(len(self.order), 1) * LINES_PER_JOB)
        self._scroll_to_cursor()

    def render_line(self, y: int) -> Strip:
        """Line `y` of the pane: half of one job."""
        width = self._width()
        line = int(self.scroll_y) + y
        position, part = divmod(line, LINES_PER_JOB)
        if not self.order:
            if line == 0:
                return self._strip(placeholder(self.read_only, width), width, None)
            return Strip.blank(width, self.rich_style)
        if position >= len(self.order):
            return Strip.blank(width, self.rich_style)
        status = self.statuses[self.order[position]]
        lines = job_lines(status, width, self.clock(), self.names, self._pulse)
        cursor = None
        if position == self.cursor:
            name = "job-list--cursor" if self.has_focus else "job-list--cursor-blurred"
            cursor = self.get_component_rich_style(name)
        return self._strip(lines[part], width, cursor)

    def _strip(self, text: Text, width: int, cursor: Style | None) -> Strip:
        base = self.rich_style if cursor is None else self.rich_style + cursor
        segments = [
            Segment(s.text, base + s.style if s.style else base)
            for s in text.render(self.app.console)
        ]
        return Strip(segments).adjust_cell_length(width, base)

    def on_mount(self) -> None:
        """Title and key hints before the first job arrives (the keymap is known now)."""
        self._retitle()

    def on_focus(self) -> None:
        """Draw the cursor in its focused colours."""
        self.refresh()

    def on_blur(self) -> None:
        """Draw the cursor in its blurred colours."""
        self.refresh()
