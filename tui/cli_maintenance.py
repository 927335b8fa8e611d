"""`imgcache rm`, `gc` and `fix-perms` (and, from `cli_compress`, `compress`): maintenance.

Each shows what it will do first (files, sizes, total; or mode changes), asks on a
terminal, and refuses without a terminal unless `--yes` is given. PATH|REF
arguments name a file inside a configured cache, or an image reference looked up
in every cache (a reference stored more than once is refused with the candidates
listed). A plan that deletes an environment's default image says so under that
file. Exit status: 0 done (or nothing to do), 1 refused or failed, 2 usage (and
read-only, and no terminal without `--yes`). The work is done by
`imgcache.backends.maintenance`; this module only parses, asks, prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from imgcache.backends.inventory.findings import GC_CODES
from imgcache.tui import cli_compress
from imgcache.tui.cli_common import (
    Fail,
    Formatter,
    add_common_options,
    confirm,
    plan_stream,
    print_json,
    scan_inventory,
)
from imgcache.tui.cli_plans import error, print_items, print_removed, resolve, trash_note
from imgcache.tui.format import human_size, plural, printable

_RM = """\
Move images into the trash directory of their cache (.imgcache-trash), where jobs
that have them open keep reading them; batches older than delete.trash_grace_days
are purged. Links, files outside the caches and files of owners not in
delete.allowed_owners are refused."""
_GC = """\
Select images by findings (default: corrupt, incomplete, duplicate, stale; add
superseded or not-an-image with --finding), show the plan with sizes and the total, and delete
them when confirmed, together with trash past its grace period. Default images,
links and files written within the last hour (whatever --days says) are never
selected; a default image kept is named with its environment."""
_GC_EXAMPLES = """\
examples:
  imgcache gc --dry-run                 what would go, and why
  imgcache gc --days 180 --yes          stale after 180 days; do not ask
  imgcache gc --finding superseded      old tags of the default images
  imgcache gc --finding not-an-image    empty or junk files named like images
"""
_FIX_PERMS = """\
Add the read bits of permissions.file_mode to images and the r-x bits of
permissions.dir_mode to every directory from the cache root down to them. Bits
are only added; links are never followed. Each change is printed as
0600 -> 0644 path."""


def register(sub: Any) -> None:
    """Add the maintenance subcommands to the `imgcache` subparsers `sub`."""

    cli_compress.register(sub, run)

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
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run, writes=True)

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
        choices=GC_CODES,
        metavar="CODE",
        help=f"select by this finding (repeatable; one of {', '.join(GC_CODES)})",
    )
    p.add_argument("--dry-run", action="store_true", help="show the plan only")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--purge", action="store_true", help="delete at once instead of to the trash")
    p.add_argument("--json", action="store_true", help="print the plan or the result as JSON")
    p.set_defaults(handler=run, writes=lambda args: not args.dry_run)

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
    p.set_defaults(handler=run, writes=lambda args: not args.dry_run)


def run(args: argparse.Namespace) -> int:
    """Run the maintenance command `args.command`."""
    from imgcache.backends.maintenance import MaintenanceError

    handler: Callable[[argparse.Namespace], int] = {
        "compress": cli_compress.cmd_compress,
        "rm": cmd_rm,
        "gc": cmd_gc,
        "fix-perms": cmd_fix_perms,
    }[args.command]
    try:
        return handler(args)
    except MaintenanceError as exc:
        code = 2 if exc.reason == "usage" else 1
        raise Fail(f"{args.command}: {exc}", code) from None


def cmd_rm(args: argparse.Namespace) -> int:
    """`imgcache rm PATH|REF...`: the plan (a default image says so), ask, delete."""
    from imgcache.backends.maintenance import gc, trash

    inventory = scan_inventory(args)
    items = resolve(inventory, args.targets, "rm")
    refused = trash.preflight(inventory.settings, items)
    if refused:
        for _item, exc in refused:
            error("rm", str(exc))
        error("rm", "nothing was deleted")
        return 1
    out = plan_stream(args)
    notes = gc.default_notes(inventory, [item.path for item in items])
    print_items(items, trash_note(inventory.settings, args.purge), notes=notes, out=out)
    total = human_size(sum(item.size for item in items))
    question = f"Delete {plural(len(items), 'file')}, {total}?"
    status = confirm("rm", question, args.yes, "delete", out)
    if status is not None:
        return status
    result = trash.delete(inventory.settings, items, purge=args.purge, via="rm")
    if not args.json:
        return print_removed(result)
    doc = result.as_dict()
    doc["default_images"] = [{"path": path, "note": note} for path, note in notes.items()]
    print_json(doc)
    return 1 if result.failed else 0


def cmd_gc(args: argparse.Namespace) -> int:
    """`imgcache gc`: the plan (JSON with --json), then, when confirmed, the deletions."""
    from imgcache.backends.maintenance import gc

    inventory = scan_inventory(args)
    plan = gc.plan(inventory, codes=args.finding, days=args.days)
    if args.json and args.dry_run:
        print_json(plan.as_dict())
        return 0
    out = plan_stream(args)
    codes = ", ".join(plan.codes) or "no finding"
    print(f"gc by {codes} (stale after {plan.days} days)", file=out)
    print_items(plan.items, trash_note(inventory.settings, args.purge), out=out)
    for item in plan.skipped:
        print(f"  kept {printable(item.path)}: {printable(item.reason)}", file=out)
    if plan.trash:
        print_items(
            plan.trash, "to purge now", "expired trash batch", "expired trash batches", out=out
        )
    if plan.empty and not args.dry_run:  # dead jobs' temps go as a pull's do (apply does too)
        for path in gc.remove_leftovers(inventory.settings):
            print(f"removed a leftover of an interrupted job: {printable(path)}", file=out)
    if args.dry_run or plan.empty:
        if args.json:
            print_json({"removed": [], "failed": [], "purged_batches": [], "bytes": 0})
        return 0
    total = human_size(plan.total_bytes + plan.trash_bytes)
    count = plural(len(plan.items), "file") + (
        f", {plural(len(plan.trash), 'trash batch', 'trash batches')}" if plan.trash else ""
    )
    status = confirm("gc", f"Delete {count}, {total}?", args.yes, "delete", out)
    if status is not None:
        return status
    result = gc.apply(plan, inventory.settings, purge=args.purge)
    if not args.json:
        return print_removed(result)
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
    out = plan_stream(args)
    for change in plan.changes:
        print(printable(change.line), file=out)
    for path, why in plan.skipped:
        print(f"  left alone {printable(path)}: {printable(why)}", file=out)
    print(plural(len(plan.changes), "mode change"), file=out)
    if args.dry_run or not plan.changes:
        return 0
    question = f"Change {plural(len(plan.changes), 'mode')}?"
    status = confirm("fix-perms", question, args.yes, "change permissions", out)
    if status is not None:
        return status
    result = perms.apply_permissions(plan)
    if args.json:
        print_json(result.as_dict())
        return 1 if result.failed else 0
    for change in result.changed:
        print(f"changed {printable(change.line)}")
    for _path, why in result.failed:
        print(f"imgcache: {printable(why)}", file=sys.stderr)
    return 1 if result.failed else 0
