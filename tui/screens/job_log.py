"""The job log screen (Enter on a job): the log file the job writes, followed while it runs.

Every job keeps its log on disk (commands, tool output, result; never a
password). A worker reads the file and follows it like `tail -f` until the job
has finished and the end of the file is shown, so the UI thread never reads
the disk; the text arrives in messages. The title carries the job's state.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Log
from textual.worker import get_current_worker

from imgcache.backends.jobs.states import JobStatus
from imgcache.tui.format import printable
from imgcache.tui.widgets.job_lines import subject

#: Seconds between two looks at a running job's log.
FOLLOW_INTERVAL = 0.2
#: Bytes read at once (a chatty tool's log arrives in several messages).
CHUNK = 256 * 1024
#: Lines kept on screen; the file keeps everything.
MAX_LINES = 50_000


def log_title(status: JobStatus) -> str:
    """ "Log · pull ubuntu:22.04 → /cache · running"."""
    return f"Log · {status.request.kind} {subject(status)[0]} · {status.state.value}"


class JobLogScreen(Screen[None]):
    """One job's log over the whole terminal."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="close"),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False, id="cursor_up"),
        Binding("down,j", "scroll(1)", "Scroll down", show=False, id="cursor_down"),
        Binding("home,g", "top", "Top", show=False, id="cursor_top"),
        Binding("end,G", "bottom", "Bottom", show=False, id="cursor_bottom"),
    ]

    @dataclass
    class Chunk(Message):
        """More of the log, and the job as it was when it was read."""

        text: str
        status: JobStatus

    def __init__(self, status: JobStatus, latest: Callable[[], JobStatus]) -> None:
        super().__init__()
        self.status = status
        self.latest = latest
        """The job's newest snapshot (thread-safe: `JobQueue.get`)."""

    def compose(self) -> ComposeResult:
        """The log and the footer."""
        log = Log(max_lines=MAX_LINES, id="job-log")
        log.border_title = log_title(self.status)
        log.border_subtitle = self.status.log_path
        yield log
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Start reading."""
        self.query_one(Log).focus()
        self._follow(self.status.log_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="job-log")
    def _follow(self, path: str) -> None:
        worker = get_current_worker()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        handle = None
        last = self.status
        try:
            while not worker.is_cancelled:
                # Read the state before the file: whatever a finished job wrote is
                # then already in the file, and the last read gets all of it.
                status = self.latest()
                if handle is None:
                    try:
                        handle = open(path, "rb")  # noqa: SIM115 - closed in finally
                    except FileNotFoundError:
                        handle = None  # queued: the log is not there yet
                data = handle.read(CHUNK) if handle is not None else b""
                text = decoder.decode(data, final=status.state.finished and not data)
                if text or status != last:
                    self.post_message(self.Chunk(text, status))
                    last = status
                if len(data) == CHUNK:
                    continue
                if status.state.finished and not data:
                    return
                time.sleep(FOLLOW_INTERVAL)
        finally:
            if handle is not None:
                handle.close()

    def on_job_log_screen_chunk(self, message: JobLogScreen.Chunk) -> None:
        """Append what was read; retitle when the job's state changed."""
        if message.text:
            # Tools print what they read (file names, registry answers): escape it.
            lines = message.text.split("\n")
            self.query_one(Log).write("\n".join(printable(line.rstrip("\r")) for line in lines))
        if message.status.state is not self.status.state:
            self.query_one(Log).border_title = log_title(message.status)
        self.status = message.status

    @property
    def text(self) -> str:
        """Everything shown so far (for tests)."""
        return "\n".join(self.query_one(Log).lines)

    def action_scroll(self, lines: int) -> None:
        """Scroll by some lines."""
        log = self.query_one(Log)
        log.scroll_to(y=log.scroll_y + lines, animate=False)

    def action_top(self) -> None:
        """Scroll to the top."""
        self.query_one(Log).scroll_home(animate=False)

    def action_bottom(self) -> None:
        """Scroll to the bottom."""
        self.query_one(Log).scroll_end(animate=False)
