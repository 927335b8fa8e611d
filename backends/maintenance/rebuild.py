"""The streaming rebuild behind compress: `sqfs2tar | tar2sqfs`, then checks of the result.

`stream` runs the pipeline while `unsquashfs -lln` lists the original alongside (so
the listing costs no wall time), and flushes the output as it grows so the final
fsync has little left. `check_rebuilt` refuses a new image that does not probe as
asked, does not list the same entries, or lost xattr sets (see `verify`).
`out_of_space` tells a full filesystem from another failure of the tools.
"""

from __future__ import annotations

import contextlib
import errno
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
from imgcache.backends.wording import plural


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

    # The listing gets a token of its own, so that whatever stops the pipeline (a
    # cancel, Ctrl-C, SIGTERM) stops it too instead of waiting for it to finish.
    stop_listing = CancelToken()
    if cancel is not None:
        cancel._register(stop_listing.cancel)
    try:
        with ThreadPoolExecutor(1, "imgcache-list") as pool:
            job = pool.submit(
                verify.listing, listed or src_path, offset=offset, cancel=stop_listing,
                logfile=logfile,
            )  # fmt: skip
            try:
                # -r . keeps the root directory's owner and mode; -s aborts instead of skipping.
                run_pipeline(
                    ["sqfs2tar", "-r", ".", "-s", src_path],
                    ["tar2sqfs", "-s", "-q", "-f", *options.tar2sqfs_args(), out_path],
                    cancel=cancel,
                    logfile=logfile,
                    on_tick=tick,
                )
                before = job.result()
            except ToolError:
                # sqfs2tar -s stops at a socket, which tar cannot carry: say that plainly.
                try:
                    found: verify.Listing | None = job.result()
                except Exception:  # the listing failed too; the pipeline's error says more
                    found = None
                if found is not None:
                    refuse_sockets(found, shown)
                raise
            except BaseException:
                stop_listing.cancel()
                raise
    finally:
        if cancel is not None:
            cancel._unregister(stop_listing.cancel)
    refuse_sockets(before, shown)
    return before


def refuse_sockets(listing: verify.Listing, path: str) -> None:
    """Refuse an image holding sockets, naming the first few."""
    sockets = listing.sockets
    if sockets:
        raise MaintenanceError(
            f"{path} holds {plural(len(sockets), 'socket')} ({', '.join(sockets[:3])}); "
            "a tar stream cannot carry sockets, so compress refuses rather than drop them",
            "sockets",
        )


class OutOfSpace(Exception):
    """The rebuild failed because the image's filesystem is full (`out_of_space`)."""


#: Less free space than this after a failed write means the filesystem filled up:
#: tar2sqfs then only says "I/O error". A few of its 1 MiB blocks.
FULL_BELOW = 8 * 1024 * 1024


def out_of_space(dir_fd: int, exc: BaseException) -> bool:
    """Whether a failed rebuild failed because the image's filesystem is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, ToolError) and "no space left" in exc.tail.lower():
        return True
    try:
        vfs = os.fstatvfs(dir_fd)
    except OSError:
        return False
    blocks = vfs.f_bfree if os.geteuid() == 0 else vfs.f_bavail
    return blocks * vfs.f_frsize < FULL_BELOW


def room_needed(st: os.stat_result, probe: ProbeResult) -> int:
    """About the most room a rebuild takes: the new image, and for a SIF the partition twice."""
    primary = probe.sif.primary if probe.sif is not None else None
    return st.st_size + (2 * primary.size if primary is not None else 0)
