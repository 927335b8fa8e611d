"""How one job reads in the jobs pane: two lines of text, drawn for any width.

Pure functions of a `JobStatus`, a width and "now", so they can be tested and
cached without a widget. The first line says what the job is (state, kind,
reference, cache, elapsed time), the second how far it got: a bar (a moving
pulse when the tool gives no fraction), the percentage, the phase or the final
message, and which backend runs it. A failed job's second line is its reason,
in full width: that is what the admin needs from it.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.cells import cell_len
from rich.text import Text

from imgcache.backends.jobs.states import JobState, JobStatus
from imgcache.tui.format import printable
from imgcache.tui.widgets.columns import elide_name, fit

#: A mark and a colour per state, so the list reads without colour too.
STATE_MARKS = {
    JobState.QUEUED: "◌",
    JobState.RUNNING: "●",
    JobState.DONE: "✔",
    JobState.FAILED: "✘",
    JobState.CANCELLED: "⊘",
}
STATE_STYLES = {
    JobState.QUEUED: "dim",
    JobState.RUNNING: "bold yellow",
    JobState.DONE: "bold green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "bold magenta",
}
#: The bar's colours: what is done, what is left.
BAR_STYLES = {
    JobState.QUEUED: "bright_black",
    JobState.RUNNING: "yellow",
    JobState.DONE: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
}
BAR_REST = "bright_black"
#: Cells of the pulse that moves along the bar of a job without a fraction.
PULSE = 6
#: Lines each job takes in the list.
LINES_PER_JOB = 2


def sort_key(status: JobStatus) -> tuple[int, float]:
    """Running jobs first, then queued ones (oldest first), then finished (newest first)."""
    if status.state is JobState.RUNNING:
        return (0, status.id)
    if status.state is JobState.QUEUED:
        return (1, status.id)
    return (2, -(status.finished or status.created))


def duration(seconds: float) -> str:
    """ "0:42", "12:05", "1:02:03"."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def elapsed(status: JobStatus, now: float) -> str:
    """How long the job ran (or has been running); "" while it waits."""
    if status.started is None:
        return ""
    end = status.finished if status.finished is not None else now
    return duration(end - status.started)


def subject(status: JobStatus) -> tuple[str, str]:
    """(what the job works on, a note): the reference and its label, or for jobs on
    files already in a cache (no reference) the label alone."""
    request = status.request
    if request.ref:
        return printable(request.ref), printable(request.label)
    return printable(request.label or request.cache.path), ""


def result_text(status: JobStatus) -> str:
    """The job's final message, without the path at its start when it is the job's
    target (compress says "PATH: 1.2 GiB -> 512 MiB"; the line already names the file)."""
    message = status.message
    prefix = f"{status.target}: "
    if status.target and message.startswith(prefix):
        message = message[len(prefix) :]
    return printable(message)


def cache_name(status: JobStatus, names: Mapping[str, str]) -> str:
    """The short name of the job's cache, as the table's CACHE column shows it."""
    cache = status.request.cache
    return names.get(cache.path, cache.label)


def bar(status: JobStatus, width: int, pulse: int = 0) -> Text:
    """A bar `width` cells wide: filled to the fraction, or a pulse at step `pulse`."""
    text = Text()
    if width <= 0:
        return text
    fraction = status.fraction
    if status.state is JobState.DONE:
        fraction = 1.0
    style = BAR_STYLES[status.state]
    if fraction is None:
        if status.state is not JobState.RUNNING:
            return Text("━" * width, style=BAR_REST)
        # No fraction from the tool: a short segment sweeps back and forth.
        span = max(width - PULSE, 1)
        step = pulse % (2 * span)
        start = step if step < span else 2 * span - step
        text.append("━" * start, style=BAR_REST)
        text.append("━" * min(PULSE, width - start), style=style)
        text.append("━" * max(width - start - PULSE, 0), style=BAR_REST)
        return text
    fraction = min(max(fraction, 0.0), 1.0)
    halves = int(fraction * width * 2)
    full, half = divmod(halves, 2)
    text.append("━" * full, style=style)
    if half:
        text.append("╸", style=style)
    rest = width - full - half
    if rest:
        text.append("━" * rest, style=BAR_REST)
    return text


def first_line(status: JobStatus, width: int, now: float, names: Mapping[str, str]) -> Text:
    """ "● running   pull determinedai/pytorch-ngc:0.35.1 → apptainer · cuda default   0:42"."""
    state = status.state
    head = Text.assemble(
        " ",
        (STATE_MARKS[state], STATE_STYLES[state]),
        " ",
        (f"{state.value:<9}", STATE_STYLES[state]),
    )
    tail = f" {elapsed(status, now):>7} "
    request = status.request
    kind = f" {request.kind} "
    where = f" → {cache_name(status, names)}"
    what, note = subject(status)
    label = f" · {note}" if note else ""
    room = width - head.cell_len - len(tail) - cell_len(kind) - cell_len(where)
    if cell_len(what) > room - cell_len(label):
        label = ""  # the whole reference matters more than the note
    room -= cell_len(label)
    ref = elide_name(what, max(room, 8))
    middle = Text.assemble(kind, (ref, "bold"), where, (label, "dim"))
    line = head + middle
    line.truncate(max(width - len(tail), 0))
    line.pad_right(max(width - len(tail) - line.cell_len, 0))
    line.append(tail, style="dim")
    return line


def second_line(status: JobStatus, width: int, pulse: int = 0) -> Text:
    """ "   ━━━━━━━━╸━━━━━━━━  45%  fetching 3/12 layers · builtin (skopeo, umoci)".

    A failed job shows its one-line reason instead of a bar.
    """
    state = status.state
    line = Text("   ")
    if state is JobState.FAILED:
        # Why it failed is what matters: all the room goes to the reason.
        line.append(printable(status.message) or "failed", style="red")
    else:
        line.append_text(bar(status, min(30, max(10, width // 5)), pulse))
        shown = 1.0 if state is JobState.DONE else status.fraction
        percent = f"{int(shown * 100):>3}%" if shown is not None else "    "
        line.append(f" {percent}  ")
        line.append(
            result_text(status) if state.finished and status.message else printable(status.phase)
        )
    if status.backend:
        line.append(f" · {status.backend}", style="dim")
    line.truncate(width, overflow="ellipsis")
    line.pad_right(max(width - line.cell_len, 0))
    return line


def job_lines(
    status: JobStatus, width: int, now: float, names: Mapping[str, str], pulse: int = 0
) -> tuple[Text, Text]:
    """Both lines of one job, each exactly `width` cells."""
    return first_line(status, width, now, names), second_line(status, width, pulse)


def placeholder(read_only: bool, width: int) -> Text:
    """What the empty list says."""
    if read_only:
        text = " read-only: no jobs can be started (imgcache was opened with --read-only)"
    else:
        text = " no jobs yet: p pulls an image, P the missing defaults, a adds a local file"
    return Text(fit(text, width), style="dim italic")
