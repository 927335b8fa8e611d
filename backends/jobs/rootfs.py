"""Writing into an unpacked rootfs without ever leaving it.

The builtin pipeline unpacks an image into its scratch directory and then
writes the runtime's start-up files into it (`imgcache.backends.jobs.runtime`).
The rootfs comes from an image, so its symlinks are resolved as if it were `/`
(`resolve`): an image whose `/etc` points at `/host/etc` makes us write into
`<rootfs>/host/etc`, never into the machine's own `/etc`. `fix_permissions`
gives the owner the access enroot gives it before squashing.
"""

from __future__ import annotations

import os
import re
import stat

_MAX_LINKS = 40
#: Lone surrogates (JSON may hold them); written as U+FFFD, as jq and Go do.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def resolve(root: str, rel: str) -> str:
    """`rel` under `root`, every symlink on the way followed as if `root` were `/`."""
    stack = [p for p in reversed(rel.split("/")) if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while stack:
        part = stack.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > _MAX_LINKS:
                raise OSError(f"too many symlinks under {root} resolving {rel}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            stack.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
            continue
        done.append(part)
    return os.path.join(root, *done)


def clean_text(text: str) -> str:
    """`text` with each lone surrogate (JSON strings may hold them) as U+FFFD, as Go and jq do."""
    return _SURROGATE.sub("\ufffd", text)


def utf8(text: str) -> bytes:
    """`clean_text(text)` encoded as UTF-8."""
    return clean_text(text).encode()


def write_file(root: str, rel: str, text: str, mode: int) -> None:
    """Create or truncate `rel` inside `root` with `text` (UTF-8), then set `mode`."""
    path = resolve(root, rel)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.isfile(path):
        os.chmod(path, mode)  # images ship read-only /etc/hosts; we must still truncate it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(clean_text(text))
        os.fchmod(f.fileno(), mode)


def make_dir(root: str, rel: str) -> None:
    """Create directory `rel` inside `root` (and its parents) if it is missing."""
    os.makedirs(resolve(root, rel), mode=0o755, exist_ok=True)


def make_link(root: str, rel: str, target: str) -> None:
    """Create symlink `rel` -> `target` inside `root` unless something is there already."""
    parent = resolve(root, os.path.dirname(rel))
    path = os.path.join(parent, os.path.basename(rel))
    if not os.path.lexists(path):
        os.makedirs(parent, mode=0o755, exist_ok=True)
        os.symlink(target, path)


def fix_permissions(root: str, max_depth: int = 14) -> None:
    """Give the owner read (and search) on everything, write on dirs down to `max_depth`.

    enroot (>= 4.0, `common::fixperms`) runs `chmod -R u+rX` and adds `u+w` to
    directories with `find -maxdepth 15` from the folder above the rootfs, which
    reaches 14 levels into the image, the rootfs itself included. Some
    distributions ship files only CAP_DAC_OVERRIDE can read (mode 0000); an
    unprivileged runtime could not read them from the image.
    """
    _add_owner_bits(root, os.lstat(root), writable=True)
    base = root.rstrip("/").count("/")
    for directory, dirs, files in os.walk(root):
        depth = directory.rstrip("/").count("/") - base
        for name in dirs + files:
            path = os.path.join(directory, name)
            _add_owner_bits(path, os.lstat(path), writable=depth < max_depth)


def _add_owner_bits(path: str, st: os.stat_result, *, writable: bool) -> None:
    """`chmod u+rX` (and `u+w` on a directory when `writable`); links are left alone."""
    if stat.S_ISLNK(st.st_mode):
        return
    want = stat.S_IRUSR
    is_dir = stat.S_ISDIR(st.st_mode)
    if is_dir or st.st_mode & 0o111:
        want |= stat.S_IXUSR
    if is_dir and writable:
        want |= stat.S_IWUSR
    if st.st_mode & want != want:
        os.chmod(path, stat.S_IMODE(st.st_mode) | want)
