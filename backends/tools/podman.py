"""podman: `podman pull` then `podman save --format=oci-archive`.

podman reads registries.conf (including `CONTAINERS_REGISTRIES_CONF`) and
takes credentials from `--authfile`. `podman save -o` writes the archive to the
path given. The job then removes the image from the user's podman storage
(`podman rmi`) unless it was there before (`podman image exists`): a cache of
archives should not fill a second store with copies of everything saved.
"""

from __future__ import annotations

import os
import shutil


def find() -> str | None:
    """The podman program on PATH, or None."""
    return shutil.which("podman")


def pull_argv(ref: str, authfile: str | None = None) -> list[str]:
    """`podman pull [--authfile F] REF`; on a pipe it prints "Copying blob" lines."""
    auth = ["--authfile", authfile] if authfile else []
    return ["podman", "pull", *auth, ref]


def save_argv(ref: str, dest: str) -> list[str]:
    """`podman save --format=oci-archive -o DEST REF`."""
    return ["podman", "save", "--format=oci-archive", "-o", dest, ref]


def exists_argv(ref: str) -> list[str]:
    """`podman image exists REF`: exit status 0 when the local store has it, 1 when not."""
    return ["podman", "image", "exists", ref]


def rmi_argv(ref: str) -> list[str]:
    """`podman rmi REF`: untag REF, and remove the image when no other tag names it."""
    return ["podman", "rmi", ref]


def storage_dir() -> str:
    """Where podman keeps pulled images for this user (for "no space" messages)."""
    if os.geteuid() == 0:
        return "/var/lib/containers/storage"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "containers", "storage")
