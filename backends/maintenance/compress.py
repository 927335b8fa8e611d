"""compress: rebuild a squashfs image, or a SIF's primary partition, with the configured options.

The filesystem is streamed `sqfs2tar | tar2sqfs` (squashfs-tools-ng): nothing is
unpacked to disk, so no root is needed to keep owners, modes, xattrs, device nodes,
hard links and times - they travel in the tar headers (`rebuild`). Sockets cannot
travel in a tar stream; an image holding one is refused and nothing replaced.

Every file is read and written through descriptors: the image is opened once from
its cache root without following links (and checked against what the scan saw),
and the tools are handed `/proc/<pid>/fd/<n>` of that descriptor, so a rename of
the path meanwhile cannot make them read another file. The new image is written as
a hidden temp in the same directory (`.imgcache-<name>.<host>-<pid>-<seq>.tmp`),
probed (valid, the asked-for codec, data compressed), listed and compared entry by
entry with the original, given the original's owner, group, mode, times and file
ACL, fsynced, and only then renamed over it - if it is smaller, and if the original
is still the file that was read. Jobs that have the old file open keep reading the
old inode to the end.

A new image that is not smaller is discarded ("nothing to gain") and the result
says so, leaving the original as it was - unless the original uses a legacy codec
(lzo, which squashfuse cannot mount: changing codec is then the point) or `force`.

Before it starts, compress removes what killed jobs left in the image's directory
(`imgcache.backends.jobs.leftovers`); a filesystem that fills up meanwhile is
said as a pull says it ("no space left on MOUNT ..."), not as the tool's I/O error.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, replace
from typing import IO, Any

from imgcache.backends.config import Settings
from imgcache.backends.inventory.model import FileStat, Format, ProbeResult, SquashInfo
from imgcache.backends.inventory.probe import probe_fileobj
from imgcache.backends.inventory.scan import file_stat
from imgcache.backends.jobs import leftovers, publish
from imgcache.backends.maintenance import rebuild, safety, sifedit, squashopts, verify
from imgcache.backends.maintenance.common import (
    MaintenanceError,
    Progress,
    ProgressFn,
    fsync_dir,
    human,
    log,
    owner_name,
)
from imgcache.backends.maintenance.temps import TempFiles, proc_path
from imgcache.backends.tools.run import CancelToken, ToolError

#: Codecs worth leaving even when the new image is not smaller (squashfuse cannot mount lzo).
LEGACY_CODECS = ("lzo",)
#: What compressing a signed SIF costs, for the question the UI asks first.
SIGNED_WARNING = "its signature will no longer verify after compression"
SIGNED_QUESTION = f"{SIGNED_WARNING}; continue?"


@dataclass(frozen=True, slots=True)
class CompressResult:
    """What compress did to one image."""

    path: str
    format: str
    """"squashfs" or "sif"."""
    before: int
    """Size in bytes before."""
    after: int
    """Size in bytes of the new image (also when it was discarded)."""
    replaced: bool
    """False when the new image was not smaller and the original was kept."""
    codec_before: str | None
    data_compressed_before: bool | None
    options: str
    """What the new image was built with, e.g. `zstd level 3, 1 MiB blocks`."""
    seconds: float
    note: str = ""

    @property
    def saved(self) -> int:
        """Bytes given back (0 when the original was kept)."""
        return self.before - self.after if self.replaced else 0

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON."""
        return {
            "path": self.path,
            "format": self.format,
            "before": self.before,
            "after": self.after,
            "replaced": self.replaced,
            "options": self.options,
            "seconds": round(self.seconds, 3),
            "note": self.note,
        }

    @property
    def summary(self) -> str:
        """One line for people: sizes before and after, or why nothing changed."""
        if not self.replaced:
            return f"{self.path}: kept as it was ({self.note})"
        pct = 100 * self.after / self.before if self.before else 0
        text = f"{self.path}: {human(self.before)} -> {human(self.after)} ({pct:.0f}%)"
        return f"{text}; {self.note}" if self.note else text


def check_source(
    probe: ProbeResult,
    options: squashopts.SquashOptions,
    path: str,
    *,
    force: bool = False,
    allow_signed: bool = False,
) -> SquashInfo:
    """The squashfs to recompress, or `MaintenanceError` saying why this image is refused."""
    if probe.corrupt:
        raise MaintenanceError(
            f"{path} is corrupt ({probe.error}); pull it again instead of compressing it",
            "corrupt",
        )
    if probe.format is Format.SIF:
        sif = probe.sif
        if sif is None or sif.primary is None:
            raise MaintenanceError(f"{path} has no primary system partition", "format")
        if sif.primary.fstype != "squashfs":
            raise MaintenanceError(
                f"{path}: its primary partition is {sif.primary.fstype}; "
                "only squashfs partitions can be recompressed",
                "format",
            )
    elif probe.format is not Format.SQUASHFS:
        raise MaintenanceError(
            f"{path} is {probe.format.value}; only squashfs images and SIF files can be compressed",
            "format",
        )
    info = probe.squashfs
    if info is None:
        raise MaintenanceError(f"{path}: the squashfs superblock could not be read", "format")
    if info.compression == options.codec and info.data_compressed and not force:
        raise MaintenanceError(
            f"{path} is already {options.codec} with compressed data; "
            "pass --force to rebuild it anyway",
            "nothing-to-do",
        )
    if probe.sif is not None and probe.sif.signed and not allow_signed:
        raise MaintenanceError(
            f"{path} is signed; {SIGNED_WARNING} (allow it to go ahead)", "signed"
        )
    return info


def _keep_owner(fd: int, st: os.stat_result, path: str) -> None:
    """Give the new file the original's owner and group, or refuse before any work."""
    if os.geteuid() == 0:
        os.fchown(fd, st.st_uid, st.st_gid)
        return
    if st.st_gid != os.fstat(fd).st_gid:
        try:
            os.fchown(fd, -1, st.st_gid)
        except PermissionError:
            raise MaintenanceError(
                f"{path} belongs to group {st.st_gid}, which you are not in; "
                "run compress as root to keep its group",
                "owner",
            ) from None


def _finish(fd: int, src: int, st: os.stat_result, logfile: IO[str] | None) -> None:
    """Mode, file xattrs (ACLs) and times of the original, then flush to disk.

    The times are the original's as they were before compress read it: the image's
    age (pulled when, last used when) is what the stale finding judges.
    """
    os.fchmod(fd, st.st_mode & 0o7777)
    for name in os.listxattr(src):
        # security.* labels belong to the new inode's context; ACLs and user data do not.
        if name.startswith(("user.", "system.posix_acl_access")):
            try:
                os.setxattr(fd, name, os.getxattr(src, name))
            except OSError as exc:
                log(logfile, f"could not copy the file's {name}: {exc.strerror}")
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.fsync(fd)


def compress_image(
    root: str,
    path: str,
    settings: Settings,
    *,
    expected: FileStat | None = None,
    codec: str | None = None,
    level: int | None = None,
    block_size: str | int | None = None,
    force: bool = False,
    allow_signed: bool = False,
    cancel: CancelToken | None = None,
    on_progress: ProgressFn | None = None,
    logfile: IO[str] | None = None,
) -> CompressResult:
    """Recompress the image at `path` in the cache at `root`; see the module docstring.

    `codec`, `level` and `block_size` override `settings.squash_options`. Refuses
    (`MaintenanceError`) a corrupt image, one already in the codec with compressed
    data (unless `force`), a signed SIF (unless `allow_signed`), and one owned by
    another user when not running as root.
    """
    started = time.monotonic()
    options = squashopts.from_mksquashfs(
        settings.squash_options, codec=codec, level=level, block_size=block_size
    )
    for ignored in options.ignored:
        log(logfile, f"jobs.squash_options {ignored}: does not apply to compress, ignored")
    progress = Progress(on_progress)
    progress(0.0, f"checking {path}")
    with safety.locate(root, path, expected=expected) as loc:
        src = safety.open_read_at(loc.dir_fd, loc.name)
        try:
            st = os.fstat(src)
            if (st.st_dev, st.st_ino) != (loc.stat.st_dev, loc.stat.st_ino):
                raise MaintenanceError(f"{path} changed while it was opened; try again", "changed")
            if os.geteuid() != 0 and st.st_uid != os.geteuid():
                who = owner_name(st.st_uid)
                allowed = "root" if who == "root" else f"{who} or root"
                raise MaintenanceError(
                    f"{path} is owned by {who}; only {allowed} can replace it and keep its owner",
                    "owner",
                )
            probe = probe_fileobj(io.FileIO(src, closefd=False), st.st_size)
            info = check_source(probe, options, path, force=force, allow_signed=allow_signed)
            for gone in leftovers.clean_dir_fd(loc.dir_fd, os.path.dirname(loc.path)):
                log(logfile, f"removed a leftover of an interrupted job: {gone}")
            with TempFiles(loc.dir_fd, os.path.dirname(loc.path)) as temps:
                args = (loc, src, st, probe, options, temps, progress, cancel, logfile)
                try:
                    after = (_compress_sif if probe.sif is not None else _compress_sqfs)(*args)
                except (ToolError, OSError) as exc:
                    # Asked while the temps still fill the disk; said once they are gone.
                    if rebuild.out_of_space(loc.dir_fd, exc):
                        raise rebuild.OutOfSpace from None
                    raise
                result = CompressResult(
                    path=path,
                    format="sif" if probe.sif is not None else "squashfs",
                    before=st.st_size,
                    after=after,
                    replaced=False,
                    codec_before=info.compression,
                    data_compressed_before=info.data_compressed,
                    options=options.describe(),
                    seconds=0.0,
                )
                notes = []
                if after >= st.st_size:
                    if not (force or info.compression in LEGACY_CODECS):
                        note = f"nothing to gain: the new image would be {human(after)}"
                        log(logfile, note)
                        return _done(result, started, False, note)
                    why = "it was forced" if force else f"{info.compression} is a legacy codec"
                    notes.append(f"not smaller, replaced because {why}")
                _finish(temps.final, src, st, logfile)
                try:
                    now = os.stat(loc.name, dir_fd=loc.dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    raise MaintenanceError(
                        f"{path} was removed while it was being compressed; the new copy was "
                        "discarded",
                        "changed",
                    ) from None
                if file_stat(now).key != file_stat(st).key:
                    raise MaintenanceError(
                        f"{path} changed while it was being compressed; the new copy was "
                        "discarded - rescan and try again",
                        "changed",
                    )
                temps.publish(loc.name)
                fsync_dir(loc.dir_fd)
                if probe.sif is not None and probe.sif.signed:
                    notes.append("its signature no longer verifies")
                log(logfile, f"replaced {path}: {st.st_size} -> {after} bytes")
                progress(1.0, "done")
                return _done(result, started, True, "; ".join(notes))
        except rebuild.OutOfSpace:
            full = publish.no_space_message(loc.path, rebuild.room_needed(st, probe))
            raise MaintenanceError(f"{full}; {path} was left as it was", "space") from None
        except ToolError as exc:
            raise MaintenanceError(f"compressing {path} failed: {exc}", "tool") from None
        except OSError as exc:
            raise MaintenanceError(
                f"compressing {path} failed: {exc.strerror or exc}", "io"
            ) from None
        finally:
            os.close(src)


def _done(result: CompressResult, started: float, replaced: bool, note: str) -> CompressResult:
    seconds = time.monotonic() - started
    return replace(result, replaced=replaced, note=note, seconds=seconds)


def _compress_sqfs(
    loc: safety.Located,
    src: int,
    st: os.stat_result,
    probe: ProbeResult,
    options: squashopts.SquashOptions,
    temps: TempFiles,
    progress: Progress,
    cancel: CancelToken | None,
    logfile: IO[str] | None,
) -> int:
    """Build the new squashfs as the final temp; returns its size."""
    out = temps.create(loc.name, final=True)
    _keep_owner(out, st, loc.path)
    assert probe.squashfs is not None
    xattrs = verify.xattr_ids(src, 0, probe.squashfs)
    progress.step(0.0, 0.95)
    source = proc_path(src, loc.path)
    before = rebuild.stream(
        source, 0, out, temps.proc(out), st.st_size, loc.path, options, progress, cancel, logfile
    )
    progress.step(0.95, 1.0)
    progress(0.0, "verifying")
    rebuild.check_rebuilt(out, temps.proc(out), 0, before, xattrs, options, cancel, logfile)
    return os.fstat(out).st_size


def _compress_sif(
    loc: safety.Located,
    src: int,
    st: os.stat_result,
    probe: ProbeResult,
    options: squashopts.SquashOptions,
    temps: TempFiles,
    progress: Progress,
    cancel: CancelToken | None,
    logfile: IO[str] | None,
) -> int:
    """Build the new SIF as the final temp; returns its size."""
    assert probe.sif is not None and probe.sif.primary is not None and probe.squashfs
    out = temps.create(loc.name, final=True)
    _keep_owner(out, st, loc.path)
    layout = sifedit.read_layout(src)
    slot = layout.slot_of(probe.sif.primary.id)
    offset, size = layout.span(slot)
    sifedit.log_layout(logfile, "descriptors before", layout)
    xattrs = verify.xattr_ids(src, offset, probe.squashfs)
    # sqfs2tar reads a squashfs from the start of a file: give it the partition alone.
    old_part = temps.create(f"{loc.name}.part")
    progress.step(0.0, 0.1)
    sifedit.copy_range(src, offset, old_part, 0, size, cancel=cancel, on_bytes=progress)
    new_part = temps.create(f"{loc.name}.newpart")
    progress.step(0.1, 0.9)
    # The listing compared at the end is the original's, read from the SIF itself.
    before = rebuild.stream(
        temps.proc(old_part),
        offset,
        new_part,
        temps.proc(new_part),
        size,
        loc.path,
        options,
        progress,
        cancel,
        logfile,
        listed=proc_path(src, loc.path),
    )
    temps.remove(old_part)
    progress.step(0.9, 0.97)
    part_size = os.fstat(new_part).st_size
    new_layout = sifedit.write_sif(
        src, layout, slot, new_part, part_size, out, now=int(time.time()), cancel=cancel
    )
    temps.remove(new_part)
    sifedit.log_layout(logfile, "descriptors after", new_layout)
    progress.step(0.97, 1.0)
    progress(0.0, "verifying")
    new_probe = rebuild.check_rebuilt(
        out, temps.proc(out), offset, before, xattrs, options, cancel, logfile
    )
    sifedit.check_kept(src, layout, out, sifedit.read_layout(out), slot)
    primary = new_probe.sif.primary if new_probe.sif else None
    if primary is None or primary.id != probe.sif.primary.id:
        raise MaintenanceError("the new SIF does not have the same primary partition", "verify")
    return os.fstat(out).st_size
