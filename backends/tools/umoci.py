"""umoci: unpack an OCI image layout into a root filesystem, whiteouts applied.

`umoci raw unpack` writes only the rootfs (no runtime bundle, no mtree), which
is all a squashfs needs. As root it keeps the image's owners; otherwise it needs
`--rootless`, and every file ends up owned by the caller (mksquashfs then gets
`-all-root`, as apptainer and enroot do for unprivileged builds).
"""

from __future__ import annotations

import os


def rootless() -> bool:
    """True when umoci must run with `--rootless` (not root)."""
    return os.geteuid() != 0


def unpack_argv(
    layout: str, tag: str, rootfs: str, *, as_rootless: bool | None = None
) -> list[str]:
    """`umoci raw unpack [--rootless] --image LAYOUT:TAG ROOTFS`."""
    flags = ["--rootless"] if (rootless() if as_rootless is None else as_rootless) else []
    return ["umoci", "raw", "unpack", *flags, "--image", f"{layout}:{tag}", rootfs]
