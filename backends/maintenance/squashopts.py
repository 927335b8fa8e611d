"""Translate the configured mksquashfs options into tar2sqfs options for compress.

Admins configure `jobs.squash_options` in mksquashfs's words (the pyxis page's
`-comp zstd -Xcompression-level 3 -b 1M`); compress streams the image through
tar2sqfs, which spells the same choices differently (`-c zstd -X level=3 -b 1M`).
Options that only change verbosity or packing details are ignored and named in the
log; an option that would change what the image holds (`-noD`, `-all-root`,
`-no-xattrs`, exclusions ...) or that tar2sqfs cannot honour is refused, because
compress promises the same files, owners, modes and xattrs as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from imgcache.backends.maintenance.common import MaintenanceError

CODECS = ("gzip", "lzma", "lzo", "xz", "lz4", "zstd")
#: Compression levels each codec accepts (tar2sqfs checks the same ranges).
LEVELS = {"zstd": (1, 22), "gzip": (1, 9), "xz": (0, 9), "lzma": (0, 9), "lzo": (1, 9)}
#: mksquashfs -X options with a value, and the tar2sqfs -X key each becomes.
_EXTRA_VALUE = {
    "-Xcompression-level": "level",
    "-Xdict-size": "dictsize",
    "-Xalgorithm": "algorithm",
    "-Xwindow-size": "window",
}
#: mksquashfs options that change only output, logging or packing, never the files.
_IGNORED_FLAGS = {
    "-noappend",
    "-quiet",
    "-no-progress",
    "-progress",
    "-percentage",
    "-info",
    "-no-recovery",
    "-no-duplicates",
    "-always-use-fragments",
    "-no-fragments",
    "-tailends",
    "-no-tailends",
    "-xattrs",
    "-no-exports",
    "-reproducible",
    "-not-reproducible",
}
_IGNORED_WITH_VALUE = {"-mem", "-recovery-path", "-throttle", "-limit", "-mkfs-time", "-fstime"}
_UNCOMPRESSED = re.compile(r"^-no(I|D|F|X|Id|InodeCompression|DataCompression|Fragment.*|Xattr.*)$")


@dataclass(frozen=True, slots=True)
class SquashOptions:
    """What the new squashfs is built with, in tar2sqfs's terms."""

    codec: str
    block_size: int
    extra: tuple[str, ...] = ()
    """tar2sqfs `-X` items, e.g. ("level=3",)."""
    jobs: int | None = None
    exportable: bool = False
    ignored: tuple[str, ...] = ()
    """Configured options that do not apply to compress (logged, not an error)."""

    def tar2sqfs_args(self) -> list[str]:
        """The tar2sqfs options (without the output file)."""
        args = ["-c", self.codec, "-b", str(self.block_size)]
        if self.extra:
            args += ["-X", ",".join(self.extra)]
        args += ["-j", str(self.jobs or os.cpu_count() or 1)]
        if self.exportable:
            args.append("-e")
        return args

    @property
    def level(self) -> int | None:
        """The compression level, when one was set."""
        for item in self.extra:
            if item.startswith("level="):
                return int(item.removeprefix("level="))
        return None

    def describe(self) -> str:
        """For messages: `zstd level 3, 1 MiB blocks`."""
        level = f" level {self.level}" if self.level is not None else ""
        size = self.block_size
        blocks = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
        return f"{self.codec}{level}, {blocks} blocks"


def parse_size(text: str) -> int:
    """A squashfs block size from `1M`, `128K`, `131072`; a power of two, 4 KiB to 1 MiB."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", text)
    if match is None:
        raise MaintenanceError(f"block size {text!r} is not a size like 1M, 128K or 131072")
    size = int(match[1]) << {"": 0, "k": 10, "m": 20}[match[2].lower()]
    if size & (size - 1) or not 4096 <= size <= 1 << 20:
        raise MaintenanceError(f"block size {text} is not a power of two between 4K and 1M")
    return size


def _number(option: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MaintenanceError(f"jobs.squash_options: {option} {text!r} is not a number") from None


def _check_level(codec: str, level: int) -> None:
    if codec not in LEVELS:
        raise MaintenanceError(f"{codec} has no compression levels")
    low, high = LEVELS[codec]
    if not low <= level <= high:
        raise MaintenanceError(f"{codec} compression level {level} is not between {low} and {high}")


def from_mksquashfs(
    options: Sequence[str],
    *,
    codec: str | None = None,
    level: int | None = None,
    block_size: str | int | None = None,
) -> SquashOptions:
    """Read mksquashfs-style `options`, then apply the command line's overrides.

    Choosing another codec than the configured one drops the configured codec's
    `-X` options. Raises `MaintenanceError` naming the option that cannot be honoured.
    """
    conf_codec = "gzip"  # mksquashfs's own default
    size = 128 * 1024
    extra: list[str] = []
    jobs = None
    exportable = False
    ignored: list[str] = []
    args = list(options)
    i = 0

    def value() -> str:
        nonlocal i
        if i + 1 >= len(args):
            raise MaintenanceError(f"jobs.squash_options: {args[i]} needs a value")
        i += 1
        return args[i]

    while i < len(args):
        opt = args[i]
        if opt == "-comp":
            conf_codec = value()
        elif opt == "-b":
            size = parse_size(value())
        elif opt in _EXTRA_VALUE:
            extra.append(f"{_EXTRA_VALUE[opt]}={value()}")
        elif opt == "-Xhc":
            extra.append("hc")
        elif opt in ("-Xstrategy", "-Xbcj"):
            extra.extend(v for v in value().split(",") if v)
        elif opt == "-processors":
            jobs = _number(opt, value())
        elif opt == "-exports":
            exportable = True
        elif opt in _IGNORED_FLAGS:
            ignored.append(opt)
        elif opt in _IGNORED_WITH_VALUE:
            ignored.append(f"{opt} {value()}")
        elif _UNCOMPRESSED.match(opt) or opt == "-no-compression":
            raise MaintenanceError(
                f"jobs.squash_options has {opt}, which leaves part of the image uncompressed; "
                "compress makes compressed images (remove it, or pass --comp/--level)"
            )
        else:
            raise MaintenanceError(
                f"jobs.squash_options has {opt}, which compress cannot honour without changing "
                "the image's files, owners or modes (tar2sqfs has no equivalent)"
            )
        i += 1
    if conf_codec not in CODECS:
        raise MaintenanceError(f"unknown squashfs compressor {conf_codec!r}")
    if codec is not None and codec != conf_codec:
        if codec not in CODECS:
            raise MaintenanceError(f"unknown compressor {codec!r} (one of {', '.join(CODECS)})")
        conf_codec, extra = codec, []
    if level is not None:
        _check_level(conf_codec, level)
        extra = [e for e in extra if not e.startswith("level=")] + [f"level={level}"]
    for item in extra:
        if item.startswith("level="):
            _check_level(conf_codec, _number("-Xcompression-level", item.removeprefix("level=")))
    if block_size is not None:
        size = block_size if isinstance(block_size, int) else parse_size(block_size)
    return SquashOptions(conf_codec, size, tuple(extra), jobs, exportable, tuple(ignored))
