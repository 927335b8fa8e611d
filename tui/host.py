"""What the app's controllers may use of the app: a narrow protocol, not the app class.

The job and maintenance controllers and the command palette are parts of the app
that live in modules of their own. They reach the app through `Host` - its
settings and state, its main screen, and a few verbs - so none of them imports
`tui.app` (which imports them), and each can be read knowing only this surface.
`ImgcacheApp` is the one class that provides it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from textual.message import Message
    from textual.notifications import SeverityLevel
    from textual.screen import Screen

    from imgcache.backends.config import Settings
    from imgcache.backends.inventory.catalog import Inventory
    from imgcache.backends.jobs.states import JobRequest, JobStatus
    from imgcache.tui.screens.main import MainScreen


class Host(Protocol):
    """The app as its controllers see it."""

    settings: Settings
    """The configuration the app runs with (caches, read-only, keys, ...)."""
    inventory: Inventory | None
    """The inventory on screen; None until the first scan is shown."""
    clock: Callable[[], float]
    """The time ages and findings are dated by (frozen in tests)."""

    @property
    def main(self) -> MainScreen:
        """The main screen: table, tree, panes, status line."""
        ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        markup: bool = True,
    ) -> None:
        """Show a toast."""
        ...

    def push_screen(
        self, screen: Screen[Any], callback: Callable[[Any], object] | None = None
    ) -> Any:
        """Open a screen or dialog; `callback` gets its answer."""
        ...

    def run_worker(self, work: Callable[[], object], **options: Any) -> Any:
        """Run `work` in a worker (a thread, with `thread=True`)."""
        ...

    def post_message(self, message: Message) -> bool:
        """Hand a message to the app (safe from any thread)."""
        ...

    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `callback` on the UI thread, from a worker thread."""
        ...

    def request_scan(self, dirs: set[str] | None, seen: float = 0.0) -> None:
        """Re-list these directories (None: every cache)."""
        ...

    def note_event(self, event: str) -> None:
        """Say something in the status line and keep it for the caches screen."""
        ...

    def submit_jobs(self, requests: Sequence[JobRequest]) -> None:
        """Queue jobs and show the jobs pane (refused in read-only mode)."""
        ...

    def active_jobs(self) -> list[JobStatus]:
        """The jobs of this session still queued or running."""
        ...

    def cancel_job(self, job_id: int) -> None:
        """Cancel one job."""
        ...

    async def run_action(self, action: str) -> bool:
        """Run one of the app's actions by its name, as a key binding would."""
        ...
