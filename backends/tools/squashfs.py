"""mksquashfs: build the squashfs filesystem of a SIF or an enroot image.

mksquashfs rather than tar2sqfs: it takes a directory (umoci's unpacked rootfs,
whiteouts already applied), the configured options are mksquashfs options
(`-comp zstd -Xcompression-level 3 -b 1M` as the pyxis page writes them), it has
`-all-root` for unprivileged builds, and it is what apptainer and enroot run, so
the result matches theirs.

With `-progress` mksquashfs prints its bar even on a pipe:
`[=====|    ] 123/456  27%`, redrawn with carriage returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_PROGRESS = re.compile(r"\]\s+(\d+)/(\d+)\s+(\d+)%")


def mksquashfs_argv(
    source: str,
    dest: str,
    options: Sequence[str],
    *,
    all_root: bool,
    exclude_dev: bool = False,
    progress: bool = True,
) -> list[str]:
    """`mksquashfs SOURCE DEST -noappend [-all-root] OPTIONS -progress [-wildcards -e dev/*]`."""
    argv = ["mksquashfs", source, dest, "-noappend"]
    if all_root:
        argv.append("-all-root")
    argv += list(options)
    argv.append("-progress" if progress else "-no-progress")
    if exclude_dev:
        # enroot never puts /dev contents in an image: the runtime mounts its own.
        # -e takes every argument after it, so it comes last.
        argv += ["-wildcards", "-e", "dev/*"]
    return argv


def progress_parser(on_fraction: Callable[[float], None]) -> Callable[[str], None]:
    """A line callback turning mksquashfs's bar into a 0..1 fraction."""

    def on_line(line: str) -> None:
        match = _PROGRESS.search(line)
        if match:
            done, total = int(match[1]), int(match[2])
            if total:
                on_fraction(min(done / total, 1.0))

    return on_line
