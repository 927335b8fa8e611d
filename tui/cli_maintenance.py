"""`imgcache compress`, `rm`, `gc` and `fix-perms`: the maintenance commands.

Each shows what it will do first (files, sizes, total; or mode changes), asks on a
terminal, and refuses without a terminal unless `--yes` is given. PATH|REF
arguments name a file inside a configured cache, or an image reference looked up
in every cache (a reference stored more than once is refused with the candidates
listed). Exit status: 0 done (or nothing to do), 1 refused or failed, 2 usage.
The work is done by `imgcache.backends.maintenance`; this module only parses, asks, prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from imgcache.tui.cli_common import Fail, Formatter, add_common_options, print_json, scan_inventory
from imgcache.tui.format import human_size

_CODECS = ("gzip", "lzma", "lzo", "xz", "lz4", "zstd")
_GC_CODES = ("corrupt", "incomplete", "duplicate", "superseded", "stale")

_COMPRESS = """\
Rebuild each image's squashfs (a SIF's primary partition) with jobs.squash_options
(default -comp zstd -Xcompression-level 3 -b 1M), streamed sqfs2tar | tar2sqfs so
owners, modes, xattrs and device files survive without root. The new image must
probe as valid and list the same files; it then replaces the original atomically,
if it is smaller. Jobs reading the old file keep reading it to the end."""
_RM = """\
Move images into the trash directory of their cache (.imgcache-trash), where jobs
that have them open keep reading them; batches older than delete.trash_grace_days
are purged. Links, files outside the caches and files of owners not in
delete.allowed_owners are refused."""
_GC = """\
Select images by findings (default: corrupt, incomplete, duplicate, stale; add
superseded with --finding), show the plan with sizes and the total, and delete
them when confirmed, together with trash past its grace period. Default images,
links and files written within the last hour are never selected."""
_GC_EXAMPLES = """\
examples:
  imgcache gc --dry-run                 what would go, and why
  imgcache gc --days 180 --yes          stale after 180 days; do not ask
  imgcache gc --finding superseded      old tags of the default images
"""
_FIX_PERMS = """\
Add the read bits of permissions.file_mode to images and the r-x bits of
permissions.dir_mode to every directory from the cache root down to them. Bits
are only added; links are never followed. Each change is printed as
0600 -> 0644 path."""


def register(sub: Any) -> None:
    """Add the maintenance subcommands to the `imgcache` subparsers `sub`."""

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
    p.add_argument("--yes", action="store_true", help="compress signed SIF files without asking")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=run)

    p = sub.add_parser(
        "rm",
        help="delete images (to the cache's trash by default)",
        description=_RM,
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument("targets", nargs="+", metavar="PATH|REF", help="a file in a cache, or a ref")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--purge", action="store_true", help="delete at once instead of to the trash")
    p.set_defaults(handler=run)

    p = sub.add_parser(
        "gc",
        help="delete images selected by their findings, after showing the plan",
        description=_GC,
        epilog=_GC_EXAMPLES,
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument("--days", type=int, metavar="N", help="stale after N days (default: config)")
    p.add_argument(
        "--finding",
        action="append",
        choices=_GC_CODES,
        metavar="CODE",
        help=f"select by this finding (repeatable; one of {', '.join(_GC_CODES)})",
    )
    p.add_argument("--dry-run", action="store_true", help="show the plan only")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--purge", action="store_true", help="delete at once instead of to the trash")
    p.add_argument("--json", action="store_true", help="print the plan or the result as JSON")
    p.set_defaults(handler=run)

    p = sub.add_parser(
        "fix-perms",
        help="make images readable and their directories enterable, as configured",
        description=_FIX_PERMS,
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument("--dry-run", action="store_true", help="show the changes only")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--json", action="store_true", help="print the changes (made) as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the maintenance command `args.command`."""
    from imgcache.backends.maintenance import MaintenanceError

    handler: Callable[[argparse.Namespace], int] = {
        "compress": cmd_compress,
        "rm": cmd_rm,
        "gc": cmd_gc,
        "fix-perms": cmd_fix_perms,
    }[args.command]
    try:
        return handler(args)
    except MaintenanceError as exc:
        code = 2 if exc.reason == "usage" else 1
        raise Fail(f"{args.command}: {exc}", code) from None


def confirm(command: str, question: str, yes: bool, action: str) -> int | None:
    """None to go ahead; else the exit status (refused without a terminal, or answered no)."""
    if yes:
        return None
    if not sys.stdin.isatty():
        print(
            f"imgcache {command}: not a terminal; pass --yes to {action} without asking",
            file=sys.stderr,
        )
        return 2
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return None
    print("nothing done")
    return 1


def resolve(inventory: Any, texts: list[str], command: str) -> list[Any]:
    """PlanItems for PATH|REF arguments; `_Fail` for a ref that matches none or several."""
    from imgcache.backends.inventory import caches, refs
    from imgcache.backends.maintenance import MaintenanceError, PlanItem
    from imgcache.backends.maintenance.safety import rel_in_root

    by_path = {image.path: image for image in inventory.images}
    items: list[PlanItem] = []
    for text in texts:
        if text.startswith(("/", "./", "../")) or os.path.lexists(text):
            for spec in inventory.settings.caches:
                try:
                    rel = rel_in_root(spec.path, text)
                except MaintenanceError as exc:
                    if exc.reason == "root":
                        raise Fail(f"{command}: {exc}") from None
                    continue
                path = os.path.join(spec.path, rel)
                # Not scanned (behind a link, in the trash, new): the checks will say why.
                image = by_path.get(path)
                size, seen = (image.stat.size, image.stat) if image else (0, None)
                items.append(PlanItem(path, size, "named on the command line", spec.path, seen))
                break
            else:
                roots = ", ".join(spec.path for spec in inventory.settings.caches)
                raise Fail(f"{command}: {text} is outside every configured cache ({roots})")
            continue
        try:
            ref = refs.parse(text)
        except refs.RefError as exc:
            raise Fail(
                f"{command}: {text}: no such file, and not an image reference ({exc})"
            ) from None
        found = [
            image
            for image in inventory.images
            if image.ref is not None and image.ref in (text, caches.ref_string(image.cache, ref))
        ]
        if not found:
            raise Fail(f"{command}: no cached image is {text}")
        if len(found) > 1:
            listed = "\n".join(f"  {image.path}" for image in found)
            raise Fail(f"{command}: {text} matches {len(found)} files; name one:\n{listed}")
        image = found[0]
        items.append(PlanItem(image.path, image.stat.size, f"ref {text}", image.root, image.stat))
    return list({item.path: item for item in items}.values())


def print_items(items: Any, total_label: str, noun: str = "file(s)") -> None:
    """Print plan items as `size  path  (reason)` lines and the total."""
    for item in items:
        print(f"  {human_size(item.size):>10}  {item.path}  ({item.reason})")
    total = sum(item.size for item in items)
    print(f"{len(items)} {noun}, {human_size(total)} {total_label}")


def _print_removed(result: Any) -> int:
    for removed in result.removed:
        where = f"moved to {removed.trashed_to}" if removed.trashed_to else "deleted"
        print(f"{removed.path}: {where}")
    for batch in result.purged_batches:
        print(f"purged old trash {batch}")
    for _path, why in result.failed:
        print(f"imgcache: {why}", file=sys.stderr)
    print(f"{len(result.removed)} file(s), {human_size(result.bytes)} removed")
    return 1 if result.failed else 0


def _trash_note(settings: Any, purge: bool) -> str:
    if purge:
        return "to delete at once"
    return f"to move to the trash (purged after {settings.trash_grace_days} days)"


def cmd_rm(args: argparse.Namespace) -> int:
    """`imgcache rm PATH|REF...`."""
    from imgcache.backends.maintenance import trash

    inventory = scan_inventory(args)
    items = resolve(inventory, args.targets, "rm")
    refused = trash.preflight(inventory.settings, items)
    if refused:
        for _item, exc in refused:
            print(f"imgcache rm: {exc}", file=sys.stderr)
        print("imgcache rm: nothing was deleted", file=sys.stderr)
        return 1
    print_items(items, _trash_note(inventory.settings, args.purge))
    total = human_size(sum(item.size for item in items))
    status = confirm("rm", f"Delete {len(items)} file(s), {total}?", args.yes, "delete")
    if status is not None:
        return status
    result = trash.delete(inventory.settings, items, purge=args.purge)
    return _print_removed(result)


def cmd_gc(args: argparse.Namespace) -> int:
    """`imgcache gc`: the plan (JSON with --json), then, when confirmed, the deletions."""
    from imgcache.backends.maintenance import gc

    inventory = scan_inventory(args)
    plan = gc.plan(inventory, codes=args.finding, days=args.days)
    if args.json and args.dry_run:
        print_json(plan.as_dict())
        return 0
    if not args.json:
        print(f"gc by {', '.join(plan.codes)} (stale after {plan.days} days)")
        print_items(plan.items, _trash_note(inventory.settings, args.purge))
        for item in plan.skipped:
            print(f"  kept {item.path}: {item.reason}")
        if plan.trash:
            print_items(plan.trash, "to purge now", "expired trash batch(es)")
    if args.dry_run or plan.empty:
        if args.json:
            print_json({"removed": [], "failed": [], "purged_batches": [], "bytes": 0})
        return 0
    total = human_size(plan.total_bytes + plan.trash_bytes)
    count = f"{len(plan.items)} file(s)" + (
        f", {len(plan.trash)} trash batch(es)" if plan.trash else ""
    )
    status = confirm("gc", f"Delete {count}, {total}?", args.yes, "delete")
    if status is not None:
        return status
    result = gc.apply(plan, inventory.settings, purge=args.purge)
    if not args.json:
        return _print_removed(result)
    print_json(result.as_dict())
    return 1 if result.failed else 0


def cmd_fix_perms(args: argparse.Namespace) -> int:
    """`imgcache fix-perms`: the changes (JSON with --json), then, when confirmed, made."""
    from imgcache.backends.maintenance import perms

    inventory = scan_inventory(args)
    plan = perms.plan_permissions(inventory)
    if args.json and (args.dry_run or not plan.changes):
        print_json(plan.as_dict())
        return 0
    if not args.json:
        for change in plan.changes:
            print(change.line)
        for path, why in plan.skipped:
            print(f"  left alone {path}: {why}")
        print(f"{len(plan.changes)} mode change(s)")
    if args.dry_run or not plan.changes:
        return 0
    question = f"Change {len(plan.changes)} mode(s)?"
    status = confirm("fix-perms", question, args.yes, "change permissions")
    if status is not None:
        return status
    result = perms.apply_permissions(plan)
    if args.json:
        print_json(result.as_dict())
        return 1 if result.failed else 0
    for change in result.changed:
        print(f"changed {change.line}")
    for _path, why in result.failed:
        print(f"imgcache: {why}", file=sys.stderr)
    return 1 if result.failed else 0


def _progress_printer() -> Callable[[float | None, str], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(fraction: float | None, text: str) -> None:
        done = "" if fraction is None else f"{fraction * 100:3.0f}% "
        sys.stderr.write(f"\r\033[K{done}{text}")
        sys.stderr.flush()

    return show


def cmd_compress(args: argparse.Namespace) -> int:
    """`imgcache compress PATH|REF...`."""
    from imgcache.backends.maintenance import MaintenanceError
    from imgcache.backends.maintenance.compress import SIGNED_WARNING, compress_image
    from imgcache.backends.maintenance.squashopts import from_mksquashfs

    inventory = scan_inventory(args)
    try:
        # Bad options are a usage error, found before any image is touched.
        from_mksquashfs(
            inventory.settings.squash_options,
            codec=args.comp,
            level=args.level,
            block_size=args.block_size,
        )
    except MaintenanceError as exc:
        raise Fail(f"compress: {exc}", 2) from None
    items = resolve(inventory, args.targets, "compress")
    by_path = {image.path: image for image in inventory.images}
    signed = [i for i in items if (s := by_path.get(i.path)) and s.probe.sif and s.probe.sif.signed]
    for item in signed:
        print(f"imgcache compress: {item.path} is signed; {SIGNED_WARNING}", file=sys.stderr)
        status = confirm("compress", "Compress it anyway?", args.yes, "compress signed images")
        if status is not None:
            return status
    progress = _progress_printer()
    results: list[dict[str, Any]] = []
    failed = 0
    for item in items:
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
                allow_signed=item in signed,
                on_progress=progress,
            )
        except MaintenanceError as exc:
            if progress:
                sys.stderr.write("\r\033[K")
            if exc.reason == "nothing-to-do":
                # Already compressed as asked: not a failure for a script looping over images.
                if not args.json:
                    print(exc)
            else:
                print(f"imgcache compress: {exc}", file=sys.stderr)
                failed += 1
            results.append({"path": item.path, "error": str(exc), "reason": exc.reason})
            continue
        if progress:
            sys.stderr.write("\r\033[K")
        results.append(result.as_dict())
        if not args.json:
            print(result.summary)
    if args.json:
        print_json(results)
    return 1 if failed else 0
