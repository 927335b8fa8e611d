"""The streaming rebuild behind compress: `sqfs2tar | tar2sqfs`, then checks of the result.

`stream` runs the pipeline while `unsquashfs -lln` lists the original alongside (so
the listing costs no wall time), and flushes the output as it grows so the final
fsync has little left. `check_rebuilt` refuses a new image that does not probe as
asked, does not list the same entries, or lost xattr sets (see `verify`).
"""

from __future__ import annotations

import contextlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import IO

from imgcache.backends.inventory.model import ProbeResult
from imgcache.backends.inventory.probe import probe_fileobj
from imgcache.backends.maintenance import squashopts, verify
from imgcache.backends.maintenance.common import MaintenanceError, Progress
from imgcache.backends.maintenance.pipeline import run_pipeline
from imgcache.backends.tools.run import CancelToken, ToolError


def check_rebuilt(
    fd: int,
    path: str,
    offset: int,
    before: verify.Listing,
    xattrs_before: int,
    options: squashopts.SquashOptions,
    cancel: CancelToken | None,
    logfile: IO[str] | None,
) -> ProbeResult:
    """Refuse the new image (`fd`, reachable for tools as `path`) unless it probes as
    asked, lists like `before` and keeps the number of xattr sets; its probe otherwise."""
    size = os.fstat(fd).st_size
    probe = probe_fileobj(io.FileIO(fd, closefd=False), size)
    info = verify.check_probe(probe, options, "the new image")
    verify.compare(before, verify.listing(path, offset=offset, cancel=cancel, logfile=logfile))
    xattrs_after = verify.xattr_ids(fd, offset, info)
    if xattrs_after != xattrs_before:
        raise MaintenanceError(
            f"the new image has {xattrs_after} xattr sets, the original {xattrs_before}", "verify"
        )
    return probe


def stream(
    src_path: str,
    offset: int,
    out: int,
    out_path: str,
    size: int,
    shown: str,
    options: squashopts.SquashOptions,
    progress: Progress,
    cancel: CancelToken | None,
    logfile: IO[str] | None,
    listed: str | None = None,
) -> verify.Listing:
    """Run `sqfs2tar | tar2sqfs` while the original (`listed`, else `src_path`) is listed
    alongside; returns that listing, or refuses an image that holds sockets."""

    def tick(done: int | None) -> None:
        # Start writing back what is done, so the final fsync has little left to do.
        with contextlib.suppress(OSError):
            os.fdatasync(out)
        progress(None if done is None else done / max(size, 1), "compressing")

    with ThreadPoolExecutor(1, "imgcache-list") as pool:
        job = pool.submit(
            verify.listing, listed or src_path, offset=offset, cancel=cancel, logfile=logfile
        )
        try:
            # -r . keeps the root directory's owner and mode; -s aborts instead of skipping.
            run_pipeline(
                ["sqfs2tar", "-r", ".", "-s", src_path],
                ["tar2sqfs", "-s", "-q", "-f", *options.tar2sqfs_args(), out_path],
                cancel=cancel,
                logfile=logfile,
                on_tick=tick,
            )
        except ToolError:
            # sqfs2tar -s stops at a socket, which tar cannot carry: say that plainly.
            try:
                found: verify.Listing | None = job.result()
            except Exception:  # the listing failed too; the pipeline's error says more
                found = None
            if found is not None:
                refuse_sockets(found, shown)
            raise
        before = job.result()
    refuse_sockets(before, shown)
    return before


def refuse_sockets(listing: verify.Listing, path: str) -> None:
    """Refuse an image holding sockets, naming the first few."""
    sockets = listing.sockets
    if sockets:
        raise MaintenanceError(
            f"{path} holds {len(sockets)} socket(s) ({', '.join(sockets[:3])}); a tar stream "
            "cannot carry sockets, so compress refuses rather than drop them",
            "sockets",
        )
