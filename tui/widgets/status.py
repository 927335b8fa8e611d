"""The status bar: how each cache is watched, when the view was last updated, trouble.

It is the place the app says that something degraded (a watcher fell back to
polling, a cache root vanished, a directory cannot be read) instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from imgcache.backends.watch import WatchMode
from imgcache.tui.format import printable

_METHOD_STYLES = {
    "inotify": "green",
    "polling": "yellow",
    "waiting": "red",
    "rescan only": "red",
    "off": "dim",
}


class StatusBar(Static):
    """Watch modes, last update, scanning state and the latest problem."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.modes: dict[str, WatchMode] = {}
        self.names: Mapping[str, str] = {}
        self.watching = True
        self.scanning = True
        self.progress: tuple[int, int] | None = None
        """(done, found) of a first scan under way, for "reading headers 3,200/10,000"."""
        self.updated: float | None = None
        self.problems: list[str] = []
        self.event = ""
        self.notice = ""
        self.read_only = False
        """The app runs read-only: said first, so nobody looks for the keys that write."""

    def set_state(self, **changes: object) -> None:
        """Change any of the attributes above and repaint."""
        for name, value in changes.items():
            if not hasattr(self, name):
                raise AttributeError(name)
            setattr(self, name, value)
        self.update(self.text())

    def _watch_text(self) -> Text:
        text = Text()
        if not self.watching:
            text.append("not watching", style=_METHOD_STYLES["off"])
            return text
        if not self.modes:
            text.append("watch starting…", style="dim")
            return text
        groups: dict[str, list[str]] = {}
        for root, mode in self.modes.items():
            groups.setdefault(mode.method, []).append(self.names.get(root, root))
        for method, roots in groups.items():
            if text:
                text.append(" ")
            text.append("● ", style=_METHOD_STYLES.get(method, ""))
            text.append(method)
            if len(self.modes) > 1 and len(groups) > 1:
                text.append(f" ({', '.join(roots)})", style="dim")
        return text

    def text(self) -> Text:
        """The status line as it is now."""
        text = Text("read-only", style="bold reverse") if self.read_only else Text()
        if self.read_only:
            text.append("  ")
        text.append_text(self._watch_text())
        text.append("  ·  ")
        if self.scanning and self.progress is not None and self.updated is None:
            done, found = self.progress
            text.append(f"reading headers {done:,}/{found:,}…", style="bold")
        elif self.scanning:
            text.append("scanning…", style="bold")
        elif self.updated is not None:
            stamp = datetime.fromtimestamp(self.updated).strftime("%H:%M:%S")
            text.append(f"updated {stamp}")
        if self.notice:
            text.append("  ·  ")
            text.append(printable(self.notice), style="bold")
        if self.event:
            text.append("  ·  ")
            text.append(f"⚠ {printable(self.event)}", style="yellow")
        if self.problems:
            text.append("  ·  ")
            count = len(self.problems)
            text.append(f"⚠ {count} problem{'s' if count > 1 else ''}: ", style="bold red")
            text.append(printable(self.problems[0]), style="red")
        return text
