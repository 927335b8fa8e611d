"""`imgcache compress PATH|REF...`: the plan, a question, then each image rebuilt.

The plan lists every image with its size and its codec before and after
(`lzo -noD -> zstd level 3, 1 MiB blocks`), marks signed SIF files (their
signature will no longer verify), and lists the images left alone (already
compressed as asked: `--force` rebuilds them) and those refused (corrupt, not a
squashfs, a link), each with why. Nothing is rewritten before the admin says yes
on a terminal, or passes `--yes` where there is none. Exit status: 0 done or
nothing to do, 1 any image refused or failed, 2 bad options or no terminal.
"""

from __future__ import annotations

import argparse
import stat
import sys
from collections.abc import Callable
from typing import Any

from imgcache.tui.cli_common import (
    Fail,
    Formatter,
    add_common_options,
    confirm,
    plan_stream,
    print_json,
    scan_inventory,
)
from imgcache.tui.cli_plans import error, resolve
from imgcache.tui.format import compression_label, human_size, plural, printable

_CODECS = ("gzip", "lzma", "lzo", "xz", "lz4", "zstd")
_COMPRESS = """\
Rebuild each image's squashfs (a SIF's primary partition) with jobs.squash_options
(default -comp zstd -Xcompression-level 3 -b 1M), streamed sqfs2tar | tar2sqfs so
owners, modes, xattrs and device files survive without root. The plan (codec
before -> after, sizes) comes first; nothing is rewritten until you say yes, or
pass --yes where there is no terminal. The new image must probe as valid and list
the same files; it then replaces the original atomically, if it is smaller. Jobs
reading the old file keep reading it to the end."""


def register(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """Add `compress` to the `imgcache` subparsers `sub`, run by `handler`."""
    p = sub.add_parser(
        "compress",
        help="recompress squashfs images and SIF files (zstd by default)",
        description=_COMPRESS,
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument("targets", nargs="+", metavar="PATH|REF", help="a file in a cache, or a ref")
    p.add_argument("--comp", choices=_CODECS, help="compressor (default: from the config)")
    p.add_argument("--level", type=int, metavar="N", help="compression level")
    p.add_argument("--block-size", metavar="B", help="squashfs block size, e.g. 1M or 128K")
    p.add_argument("--force", action="store_true", help="rebuild even if already compressed so")
    p.add_argument("--yes", action="store_true", help="do not ask (signed SIF files included)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=handler, writes=True)


def _progress_printer() -> Callable[[float | None, str], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(fraction: float | None, text: str) -> None:
        done = "" if fraction is None else f"{fraction * 100:3.0f}% "
        sys.stderr.write(f"\r\033[K{done}{printable(text)}")
        sys.stderr.flush()

    return show


def _check(inventory: Any, items: list[Any], options: Any, force: bool) -> tuple[list, list, list]:
    """(ready (item, image), left alone (item, why), refused (item, error)) for the plan."""
    from imgcache.backends.maintenance import MaintenanceError, safety
    from imgcache.backends.maintenance.compress import check_source

    by_path = {image.path: image for image in inventory.images}
    ready, left, refused = [], [], []
    for item in items:
        image = by_path.get(item.path)
        try:
            if image is None:
                # Not in the scan (a link, the trash, new): let the checks say why.
                with safety.locate(item.root, item.path):
                    pass
                raise MaintenanceError(f"{item.path} changed since the scan; try again", "changed")
            if stat.S_ISLNK(image.stat.mode):
                raise MaintenanceError(
                    f"{item.path} is a symbolic link; imgcache never follows links", "symlink"
                )
            check_source(image.probe, options, image.path, force=force, allow_signed=True)
        except MaintenanceError as exc:
            (left if exc.reason == "nothing-to-do" else refused).append((item, exc))
            continue
        ready.append((item, image))
    return ready, left, refused


def cmd_compress(args: argparse.Namespace) -> int:
    """`imgcache compress PATH|REF...`."""
    from imgcache.backends.maintenance import MaintenanceError
    from imgcache.backends.maintenance.compress import SIGNED_WARNING, compress_image
    from imgcache.backends.maintenance.squashopts import from_mksquashfs

    inventory = scan_inventory(args)
    try:
        # Bad options are a usage error, found before any image is touched.
        options = from_mksquashfs(
            inventory.settings.squash_options,
            codec=args.comp,
            level=args.level,
            block_size=args.block_size,
        )
    except MaintenanceError as exc:
        raise Fail(f"compress: {exc}", 2) from None
    items = resolve(inventory, args.targets, "compress")
    ready, left, refused = _check(inventory, items, options, args.force)
    out = plan_stream(args)
    after = options.describe()
    signed = {image.path for _item, image in ready if image.probe.sif and image.probe.sif.signed}
    for item, image in ready:
        before = compression_label(image) or image.probe.format.value
        print(f"  {human_size(item.size):>10}  {before} -> {after}  {printable(item.path)}",
              file=out)  # fmt: skip
        if item.path in signed:
            print(f"  {'':>10}  ! signed: {SIGNED_WARNING}", file=out)
    for item, exc in left:
        why = str(exc).removeprefix(f"{item.path} ")
        print(f"  left alone {printable(item.path)}: {printable(why)}", file=out)
    for _item, exc in refused:
        error("compress", str(exc))
    results: list[dict[str, Any]] = [
        {"path": item.path, "error": str(exc), "reason": exc.reason} for item, exc in left + refused
    ]
    failed = len(refused)
    if ready:
        total = human_size(sum(item.size for item, _ in ready))
        print(f"{plural(len(ready), 'file')}, {total} to recompress with {after}", file=out)
        some = f", {len(signed)} of them signed" if signed else ""
        question = f"Compress {plural(len(ready), 'file')}{some}?"
        status = confirm("compress", question, args.yes, "compress", out)
        if status is not None:
            return status
    progress = _progress_printer()
    for item, _image in ready:
        try:
            result = compress_image(
                item.root,
                item.path,
                inventory.settings,
                expected=item.expected,
                codec=args.comp,
                level=args.level,
                block_size=args.block_size,
                force=args.force,
                allow_signed=item.path in signed,
                on_progress=progress,
            )
        except MaintenanceError as exc:
            if progress:
                sys.stderr.write("\r\033[K")
            error("compress", str(exc))
            failed += 1
            results.append({"path": item.path, "error": str(exc), "reason": exc.reason})
            continue
        if progress:
            sys.stderr.write("\r\033[K")
        results.append(result.as_dict())
        if not args.json:
            print(printable(result.summary))
    if args.json:
        print_json(results)
    return 1 if failed else 0
