"""The command palette's imgcache commands, built from what is on screen right now.

Counts in the names ("Show only stale (4 images)") come from the current rows, a
filter in use offers to clear itself, each cache can be jumped to by name, and
the job commands say what they would do ("Pull the missing defaults (4 jobs)",
"Delete 3 marked images (24.1 GiB)…"). In read-only mode no command that writes,
and no mark command, is listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from imgcache.backends.inventory.findings import ORDER, VOCABULARY
from imgcache.backends.jobs.queue import missing_default_requests
from imgcache.tui.format import human_size, plural
from imgcache.tui.host import Host
from imgcache.tui.job_control import merge_requests
from imgcache.tui.widgets.job_lines import subject
from imgcache.tui.widgets.rows import SORT_COLUMNS, Scope

Command = tuple[str, str, Callable[[], object]]


def commands(app: Host) -> Iterator[Command]:
    """(name, help, callback) for every command that makes sense now."""
    main = app.main
    model = main.table.model
    yield ("Rescan all caches", "walk every cache again (r)", _action(app, "rescan"))
    yield ("Filter by text", "type words to narrow the table (/)", main.action_filter_text)
    yield ("Filter by finding", "pick a finding to show (f)", main.action_filter_finding)
    counts = Counter(code for row in model.rows.values() for code in row.codes)
    for code in ORDER:
        if counts[code]:
            term = VOCABULARY[code]
            name = f"Show only {code} ({counts[code]} image{'s' if counts[code] > 1 else ''})"
            yield (name, term.meaning, partial(main.set_finding, code))
    if any(counts.values()):
        any_finding = partial(main.set_finding, "any")
        yield ("Show images with any finding", "anything to act on", any_finding)
    if model.filtered:
        yield ("Clear all filters", "text, finding and cache (esc)", main.action_clear_filters)
    for column in SORT_COLUMNS:
        if column != model.sort:
            sort = partial(_sort, app, column)
            yield (f"Sort by {column}", "s cycles the columns, S reverses", sort)
    yield ("Reverse the sort order", f"now by {model.sort} (S)", main.action_sort_reverse)
    panel = "Hide" if main.show_defaults else "Show"
    yield (f"{panel} the defaults panel", "default images per environment and cache (d)",
           main.action_toggle_defaults)  # fmt: skip
    tree = "Hide" if main.tree.display else "Show"
    yield (f"{tree} the tree of caches", "caches and repositories (t)", main.action_toggle_tree)
    for spec in app.settings.caches:
        name = main.names.get(spec.path, spec.path)
        yield (f"Go to cache {name}", spec.label, partial(main.set_scope, Scope(spec.path)))
    image = main.table.highlighted
    if image is not None:
        yield ("Open details of the selected image", image.path, main.table.action_select)
    yield ("Caches and watch status", "roots, free space, watch modes, problems (i)",
           _action(app, "caches"))  # fmt: skip
    yield ("Trash of every cache", "what was deleted, by whom; put back or purge (T)",
           _action(app, "trash"))  # fmt: skip
    yield from job_commands(app)
    yield ("Keys", "every key binding (?)", _action(app, "help"))
    yield ("Quit imgcache", "leave the app (q)", _action(app, "quit"))


def job_commands(app: Host) -> Iterator[Command]:
    """The jobs pane, and in read-write mode the commands that start or stop jobs."""
    main = app.main
    pane = "Hide" if main.job_list.display else "Show"
    yield (f"{pane} the jobs pane", "jobs of this session, their progress and logs (J)",
           main.action_toggle_jobs)  # fmt: skip
    if app.settings.read_only:
        return
    yield (
        "Pull an image…",
        "any reference into a cache of your choice (p)",
        _action(app, "pull_ref"),
    )
    if app.inventory is not None:
        requests = merge_requests(missing_default_requests(app.inventory.presence))
        if requests:
            count = f"{len(requests)} job{'s' if len(requests) > 1 else ''}"
            yield (f"Pull the missing defaults ({count})", "into every cache that lacks them (P)",
                   _action(app, "pull_defaults"))  # fmt: skip
    yield ("Add a local image file…", "a SIF, .sqsh or archive under a reference (a)",
           _action(app, "add_file"))  # fmt: skip
    yield from maintenance_commands(app)
    for status in app.active_jobs():
        cancel = partial(app.cancel_job, status.id)
        what = subject(status)[0]
        yield (f"Cancel job {status.request.kind} {what}", status.phase, cancel)


def maintenance_commands(app: Host) -> Iterator[Command]:
    """Marks, compress, delete, gc and fix-perms, named after what they would act on."""
    table = app.main.table
    marks = table.marks
    if marks:
        size = human_size(marks.total(table.model.rows))
        what = perms_what = f"{plural(len(marks), 'marked image')} ({size})"
    else:
        image = table.highlighted
        what = f"the selected image ({image.rel})" if image is not None else ""
        perms_what = "every image"
    if what:
        yield (f"Compress {what}…", "rebuild with jobs.squash_options, zstd by default (C)",
               _action(app, "compress"))  # fmt: skip
        yield (
            f"Delete {what}…",
            "to the cache's trash, or purge at once (D)",
            _action(app, "delete"),
        )
    yield ("Garbage-collect…", "plan by findings and age, then delete what it lists (X)",
           _action(app, "gc"))  # fmt: skip
    yield (f"Fix permissions of {perms_what}…", "add the configured read bits (M)",
           _action(app, "fix_perms"))  # fmt: skip
    yield ("Mark every image shown", "space marks one, u clears (*)", table.action_mark_all)
    if marks:
        yield (
            f"Clear the marks ({len(marks)})",
            "unmark every image (u)",
            table.action_clear_marks,
        )


def _action(app: Host, name: str) -> Callable[[], object]:
    """The app's action `name`, run as its key binding runs it (by name, not by method)."""
    return partial(app.run_action, name)


def _sort(app: Host, column: str) -> None:
    app.main.table.set_sort(column)


class ImgcacheCommands(Provider):
    """imgcache's actions for the command palette (ctrl+p)."""

    def _app(self) -> Host:
        # Only the app registers this provider (ImgcacheApp.COMMANDS).
        return cast(Host, self.app)

    async def discover(self) -> Hits:
        """Everything, for the empty palette."""
        app = self._app()
        for name, help_text, callback in commands(app):
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Commands whose name matches what was typed."""
        app = self._app()
        matcher = self.matcher(query)
        for name, help_text, callback in commands(app):
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
