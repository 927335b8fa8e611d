"""How a scan accounts for itself: what it cost, and how far it got.

`ScanStats` is counted as the scan goes (directories listed, files found,
headers read); `ProgressCallback` is what a caller may pass to hear how far a
long first scan got, and `ProgressReporter` passes those counts on to it at most
`PROGRESS_INTERVAL` apart. A test that wants every report sets
`PROGRESS_INTERVAL` on this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: Seconds between two progress reports of one scan, at least.
PROGRESS_INTERVAL = 0.1

ProgressCallback = Callable[[int, int], None]
"""``progress(done, found)``: how far a scan got, for a "reading headers 3,200/10,000" line.

`found` is the number of files listed so far: it grows while directories are
listed, cache by cache, so it reaches the total only when the last cache has
been listed. `done` is how many of them have their record: header read, or
known already (unchanged since the last scan, or remembered by the probe memo);
on a first scan that is the files probed. Called from the scanning thread,
between files, at most every `PROGRESS_INTERVAL` seconds and once at the end
with ``done == found``; it must return quickly, and whatever it raises stops
the scan.
"""


@dataclass(slots=True)
class ScanStats:
    """What one scan or rescan cost."""

    lstats: int = 0
    dirs: int = 0
    files: int = 0
    probed: int = 0
    memo_hits: int = 0
    header_bytes: int = 0
    seconds: float = 0.0


class ProgressReporter:
    """Reports of one scan to a `ProgressCallback`, no closer than `PROGRESS_INTERVAL`."""

    __slots__ = ("_callback", "_next")

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._next = 0.0

    def report(self, done: int, found: int) -> None:
        """Pass `(done, found)` on, unless the last report was too recent."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + PROGRESS_INTERVAL
            self._callback(done, found)

    def finish(self, found: int) -> None:
        """The last report: every file found has its record."""
        self._callback(found, found)
